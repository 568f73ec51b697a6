import escapeHtml from 'escape-html'

// HTML from tagged templates: every interpolated value is escaped (escape-html, the escaper
// of express and send) unless it is itself a fragment made by `html`, so text from clients
// (user names, platforms, messages) can only ever be text. Values go in element content or
// in double-quoted attributes, never in scripts, styles or unquoted attributes.

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text
  }
}

export type HtmlValue = Html | string | number | boolean | undefined | null | readonly HtmlValue[]

export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  let out = strings[0] ?? ''
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '')
  })
  return new Html(out)
}

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.text
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === undefined || value === null || value === false) return ''
  return escapeHtml(String(value))
}
