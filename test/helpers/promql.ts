import { parser } from '@prometheus-io/lezer-promql'

// PromQL read with the Prometheus project's own grammar (the one its web UI uses): syntax
// errors, and every metric and label name an expression refers to.

export interface PromqlRefs {
  /** Text around each syntax error; empty when the expression parses. */
  readonly errors: readonly string[]
  readonly selectors: readonly { readonly metric: string; readonly labels: readonly string[] }[]
  /** Labels of `by (…)` / `without (…)` / `on (…)` clauses. */
  readonly grouping: readonly string[]
}

/** Grafana's interval variables, which are not PromQL, replaced by a duration that is. */
export function withoutGrafanaIntervals(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m')
}

export function promqlRefs(expr: string): PromqlRefs {
  const errors: string[] = []
  const selectors: { metric: string; labels: string[] }[] = []
  const grouping: string[] = []
  const text = (n: { from: number; to: number }) => expr.slice(n.from, n.to)
  parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) errors.push(`near "${expr.slice(Math.max(0, node.from - 20), node.to + 20)}"`)
      if (node.name === 'VectorSelector') {
        const metric = node.node.getChild('Identifier')
        const labels: string[] = []
        const matchers = node.node.getChild('LabelMatchers')
        for (let m = matchers?.firstChild; m; m = m.nextSibling) {
          const name = m.getChild('LabelName')
          if (name !== null) labels.push(text(name))
        }
        selectors.push({ metric: metric === null ? '' : text(metric), labels })
      }
      if (node.name === 'GroupingLabels') {
        for (let c = node.node.firstChild; c; c = c.nextSibling) if (c.name === 'LabelName') grouping.push(text(c))
      }
    },
  })
  return { errors, selectors, grouping }
}
