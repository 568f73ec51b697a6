// Strings from clients (platform fields, media types, keys and values of a pushed body, the
// user name of a Basic header) end up in text a person reads: the client's error message, a
// terminal tailing the log, the audit file, the decisions page. There, a control character
// is an instruction rather than text: ESC[31m recolours a terminal (and can do worse), U+202E
// turns `linux/amd64` into something that reads otherwise, a newline forges a second line. So
// each such character is written as its JSON escape (`\u001b`, `\u202e`), visible and inert.
// Everything else, non-ASCII letters included, stays as it is.

/**
 * C0 controls, DEL and C1 controls; the bidirectional marks, embeddings, overrides and
 * isolates (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069); the line and paragraph
 * separators U+2028/U+2029, which end a line in some readers.
 */
const NOT_TEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g

function escape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/** `text` with every character that is not text written as `\uXXXX`. */
export function printable(text: string): string {
  // The common case, a plain string, costs one test and no copy.
  NOT_TEXT.lastIndex = 0
  return NOT_TEXT.test(text) ? text.replace(NOT_TEXT, escape) : text
}

/** The same for every string inside a value (object keys included), structure kept. */
export function printableDeep<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T
  if (Array.isArray(value)) return value.map((v: unknown) => printableDeep(v)) as T
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[printable(k)] = printableDeep(v)
    return out as T
  }
  return value
}
