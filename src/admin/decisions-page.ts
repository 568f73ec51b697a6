import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { RegistryError } from '../oci/error-code.js'
import { isRepositoryName } from '../oci/reference.js'
import type { DecisionEvent } from '../proxy/contracts.js'
import { EVENTS } from '../proxy/decision-log.js'
import type { DecisionRing } from '../observability/decision-ring.js'
import { sendRegistryError } from '../proxy/error-mapper.js'
import { Html, html } from './html.js'
import { identityLabel } from '../proxy/identity.js'

// GET /_guard/: the recent decisions as one server-rendered page, for the person on call who
// would rather look than `curl | jq`. Plain HTML and a GET form for the filters: no script,
// no build step, nothing fetched. Everything a client sent (user names, platforms, messages)
// goes through `html`, and the Content-Security-Policy allows no script at all, so a page
// that escaped wrongly would still run nothing.

export const PAGE_PATH = '/_guard/'
const RESULTS = Object.keys(EVENTS)
const DEFAULT_ROWS = 100
const MAX_ROWS = 1000

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24}
h1{font-size:1.3em;margin:0 0 .3em}
p.note{color:#57606a;margin:.2em 0 1em}
form{display:flex;gap:1em;align-items:end;margin-bottom:1em;flex-wrap:wrap}
label{display:flex;flex-direction:column;font-size:.85em;color:#57606a}
input,select,button{font:inherit;padding:.25em .4em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.35em .6em;border-bottom:1px solid #d0d7de}
th{background:#f6f8fa;font-size:.85em}
td:nth-child(-n+4){white-space:nowrap}
td.message{overflow-wrap:anywhere;max-width:60em}
td.message p{margin:0 0 .3em}
code{font-size:.9em;overflow-wrap:anywhere}
small{color:#57606a}
.result{font-weight:600;padding:.1em .4em;border-radius:.3em}
.rejected{background:#ffebe9;color:#a40e26}
.warned,.unverified{background:#fff8c5;color:#7d4e00}
.accepted{background:#dafbe1;color:#116329}
.deferred{background:#ddf4ff;color:#0550ae}
`

/** The page's own constant style sheet: the one thing not escaped (its hash is in the CSP). */
const STYLE_SHEET = new Html(STYLE)

/** Only the page's own style sheet, no script, no image, nothing framed, forms to itself. */
const CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // User names and client addresses: not for shared caches or the back button of a kiosk.
  'cache-control': 'no-store',
}

export interface DecisionFilter {
  readonly repository: string | undefined
  readonly result: string | undefined
  readonly limit: number
}

export function registerDecisionsPage(app: FastifyInstance, decisions: DecisionRing<DecisionEvent>, kept: number): void {
  app.get('/_guard', async (_request, reply) => reply.redirect(PAGE_PATH))
  app.get(PAGE_PATH, async (request, reply) => {
    const filter = parseDecisionFilter(request.query as Record<string, unknown>, reply, MAX_ROWS)
    if (filter === undefined) return reply
    const rows = decisions.list({
      ...(filter.repository === undefined ? {} : { repository: filter.repository }),
      ...(filter.result === undefined ? {} : { result: filter.result }),
      limit: filter.limit,
    })
    return reply.headers(HEADERS).send(page(rows, filter, kept, Date.now()).text)
  })
}

/** The filters (the page's and the API's), or undefined once a 400 has been sent. Empty fields mean "any". */
export function parseDecisionFilter(query: Record<string, unknown>, reply: FastifyReply, maxRows: number): DecisionFilter | undefined {
  const one = (key: string): string | undefined => {
    const v = query[key]
    const s = Array.isArray(v) ? v[0] : v
    return typeof s === 'string' && s.trim() !== '' ? s.trim() : undefined
  }
  const repository = one('repository')
  const result = one('result')
  const limit = one('limit')
  if (repository !== undefined && !isRepositoryName(repository)) {
    sendRegistryError(reply, RegistryError.of('NAME_INVALID', `repository filter: not a repository name (${repository.slice(0, 256)})`))
    return undefined
  }
  if (result !== undefined && !RESULTS.includes(result)) {
    sendRegistryError(reply, RegistryError.of('UNSUPPORTED', `result filter: expected one of ${RESULTS.join(', ')}`, undefined, 400))
    return undefined
  }
  if (limit !== undefined && !/^\d{1,7}$/.test(limit)) {
    sendRegistryError(reply, RegistryError.of('UNSUPPORTED', `limit: expected a number of rows from 1 to ${maxRows}`, undefined, 400))
    return undefined
  }
  return { repository, result, limit: Math.min(Math.max(Number(limit ?? DEFAULT_ROWS), 1), maxRows) }
}

function page(rows: readonly DecisionEvent[], filter: DecisionFilter, kept: number, now: number): Html {
  const query = new URLSearchParams({ ...(filter.repository === undefined ? {} : { repository: filter.repository }), ...(filter.result === undefined ? {} : { result: filter.result }) }).toString()
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>manifest-guard: recent decisions</title>
<style>${STYLE_SHEET}</style>
</head>
<body>
<h1>Recent list push decisions</h1>
<p class="note">Newest first, from the last ${kept} decisions this replica keeps (admin.recentDecisions); every replica keeps its own. Times are UTC; rendered ${new Date(now).toISOString()}.</p>
<form method="get" action="${PAGE_PATH}">
<label>Repository <input name="repository" value="${filter.repository ?? ''}" placeholder="team/app" size="30"></label>
<label>Result <select name="result"><option value="">any</option>${RESULTS.map((r) => html`<option${filter.result === r ? html` selected` : ''}>${r}</option>`)}</select></label>
<input type="hidden" name="limit" value="${filter.limit}">
<button type="submit">Filter</button>
<a href="${PAGE_PATH}">Clear</a>
</form>
${rows.length === 0 ? html`<p class="empty">No decision matches.</p>` : table(rows, now)}
<p class="note">${rows.length} shown. As JSON: <a href="/_guard/v1/decisions${query === '' ? '' : `?${query}`}">/_guard/v1/decisions</a></p>
</body>
</html>
`
}

function table(rows: readonly DecisionEvent[], now: number): Html {
  return html`<table>
<thead><tr><th>Time</th><th>Repository:reference</th><th>Result</th><th>Cause</th><th>Identity</th><th>Message</th></tr></thead>
<tbody>
${rows.map((e) => row(e, now))}</tbody>
</table>`
}

function row(e: DecisionEvent, now: number): Html {
  const result = e.event.replace(/^push\./, '')
  const causes = [...new Set(e.problems.map((p) => String(p['cause'])))]
  const who = identityLabel(e.identity)
  return html`<tr>
<td><time datetime="${e.time}">${e.time.replace('T', ' ').replace(/\.\d+Z$/, '')}</time><br><small>${ago(now - Date.parse(e.time))}</small></td>
<td><code title="${e.digest}">${e.repository}:${e.reference}</code></td>
<td><span class="result ${result}">${result}</span>${e.upstreamStatus === undefined ? '' : html`<br><small>registry: ${e.upstreamStatus}</small>`}</td>
<td>${causes.length === 0 ? '—' : causes.join(', ')}</td>
<td>${who ?? 'anonymous'}${e.clientAddress === undefined ? '' : html`<br><small>${e.clientAddress}</small>`}</td>
<td class="message">${message(e)}${e.messages === undefined ? html`<small>request ${e.requestId}</small>` : ''}</td>
</tr>
`
}

/** What the client was told; for a list that was forwarded, what was found. */
function message(e: DecisionEvent): Html {
  const lines = e.messages ?? e.problems.map((p) => summary(p))
  const more = e.problemsOmitted === undefined ? '' : html`<p>… and ${e.problemsOmitted} more problems</p>`
  return html`${lines.map((l) => html`<p>${l}</p>`)}${more}`
}

function summary(p: Record<string, unknown>): string {
  const platforms = Array.isArray(p['platforms']) ? ` (${p['platforms'].join(', ')})` : ''
  const what = [p['object'], p['digest']].filter((x) => typeof x === 'string').join(' ')
  return `${String(p['cause'])}: ${what}${platforms}`.replace(/: $/, '')
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`
  return `${Math.round(s / 86_400)} d ago`
}
