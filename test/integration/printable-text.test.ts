import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { errorsOf, getManifest, pushChildren, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Control characters and bidi overrides from a pushed body come out escaped (`\u202e`,
// `\u001b`) wherever they become text: the client's message, the log record, the audit record,
// the decisions page and the JSON API. Side by side with a real registry, which refuses the
// same list for its missing child (and quotes nothing of it); nothing is stored either way.

const RLO = '\u202e'
const ESC = '\u001b'
/** An architecture that would recolour a terminal and read backwards. */
const HOSTILE_ARCH = `amd64${RLO}46mra${ESC}[31m`
const HOSTILE_VARIANT = `v8${ESC}]0;pwned\u0007`
const HOSTILE_OS_VERSION = `10.0\u2066\u0085`
/** What the text must show instead. */
const ESCAPED_ARCH = 'amd64\\u202e46mra\\u001b[31m'

/** Every character printable.ts escapes, as a class. */
const NOT_TEXT = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/

/** Every string inside a parsed JSON value. */
function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(strings)
  if (typeof value === 'object' && value !== null) return Object.entries(value).flatMap(([k, v]) => [k, ...strings(v)])
  return []
}

t.test('control and bidi characters of a body come out escaped everywhere they become text', async (t) => {
  const registry = await registryFor(t)
  const direct = await registryFor(t)
  const audit = join(mkdtempSync(join(tmpdir(), 'mg-printable-')), 'audit.jsonl')
  const proxy = await proxyFor(t, registry.url, { audit: { file: audit } })

  const present = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'printable-present' })
  const missing = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'printable-missing' })
  const index = buildIndex([present, missing])
  // The hostile platform is the entry's: the list is what the client wrote.
  const doc = JSON.parse(index.manifest.bytes.toString()) as { manifests: { platform: Record<string, string> }[] }
  doc.manifests[1]!.platform = { os: 'windows', architecture: HOSTILE_ARCH, variant: HOSTILE_VARIANT, 'os.version': HOSTILE_OS_VERSION }
  const list = { bytes: Buffer.from(JSON.stringify(doc)), mediaType: index.manifest.mediaType }
  for (const base of [registry.url, direct.url]) await pushChildren(base, 'team/app', buildIndex([present]))

  const straight = await putManifest(direct.url, 'team/app', 'hostile', list)
  const straightErrors = await errorsOf(straight)
  t.equal(straight.status, 400, 'straight to the registry: refused')
  t.equal(straightErrors[0]?.code, 'MANIFEST_BLOB_UNKNOWN', 'for its missing child')

  const through = await putManifest(proxy.url, 'team/app', 'hostile', list)
  const wire = await through.text()
  t.equal(through.status, 400, 'through the proxy: refused too')
  const errors = (JSON.parse(wire) as { errors: { code: string; message: string; detail: unknown }[] }).errors
  t.equal(errors[0]?.code, 'MANIFEST_BLOB_UNKNOWN')
  const message = errors[0]!.message

  t.test('the message the client prints', async (t) => {
    t.match(message, ESCAPED_ARCH, `names the platform escaped: ${message.slice(0, 160)}`)
    t.match(message, 'v8\\u001b]0;pwned\\u0007')
    t.match(message, '10.0\\u2066\\u0085')
    t.notOk(NOT_TEXT.test(message), 'and holds no control or bidi character')
    t.notOk(strings(errors).some((s) => NOT_TEXT.test(s)), 'nor does its detail')
    t.notOk(NOT_TEXT.test(wire), 'the body on the wire neither')
  })

  t.test('the log record', async (t) => {
    const line = proxy.logs.raw.find((l) => l.includes('"push.rejected"'))!
    t.ok(line !== undefined, 'one push.rejected line')
    const record = JSON.parse(line) as Record<string, unknown>
    t.same(record['messages'], [message], 'with the message the client got')
    t.ok(strings(record).some((s) => s.includes(ESCAPED_ARCH)), 'the platform in the problem is escaped')
    t.notOk(strings(record).some((s) => NOT_TEXT.test(s)), 'no field holds a control or bidi character')
    // JSON would write ESC as \u001b anyway; U+202E it would write raw.
    t.notOk(line.includes(RLO), 'nor does the raw line')
  })

  t.test('the audit record', async (t) => {
    let text = ''
    for (let waited = 0; !text.includes('push.rejected') && waited < 5_000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100))
      text = readFileSync(audit, 'utf8')
    }
    const record = JSON.parse(text.trim().split('\n').at(-1)!) as Record<string, unknown>
    t.same(record['messages'], [message])
    t.ok(strings(record).some((s) => s.includes(ESCAPED_ARCH)), 'the platform is escaped')
    t.notOk(NOT_TEXT.test(text.replace(/\n/g, '')), 'the file holds no control or bidi character but the newlines between records')
  })

  t.test('the decisions page and the JSON API', async (t) => {
    const page = await request(`${proxy.adminUrl}/_guard/`)
    const html = await page.body.text()
    t.equal(page.statusCode, 200)
    t.match(html, ESCAPED_ARCH, 'the page shows the escaped form')
    t.notOk(NOT_TEXT.test(html.replace(/[\n\t]/g, '')), 'and no control or bidi character')
    const api = await request(`${proxy.adminUrl}/_guard/v1/decisions`)
    const listed = (await api.body.json()) as { decisions: Record<string, unknown>[] }
    const decision = listed.decisions.find((d) => d['reference'] === 'hostile')!
    t.same(decision['messages'], [message], 'the API has the message as sent')
    t.ok(strings(decision).some((s) => s.includes(ESCAPED_ARCH)))
    t.notOk(strings(listed).some((s) => NOT_TEXT.test(s)), 'no string of the API holds a control or bidi character')
  })

  t.test('nothing is stored, either way', async (t) => {
    t.equal((await getManifest(registry.url, 'team/app', 'hostile')).status, 404, 'behind the proxy')
    t.equal((await getManifest(direct.url, 'team/app', 'hostile')).status, 404, 'straight')
  })

  t.test('a refused body quoting what it says quotes it escaped', async (t) => {
    // The body's own mediaType disagrees with the Content-Type: the answer quotes both.
    const said = `${index.manifest.mediaType}${RLO}${ESC}[2J`
    const bytes = Buffer.from(JSON.stringify({ ...doc, mediaType: said }))
    const res = await putManifest(proxy.url, 'team/app', 'mislabelled', { bytes, mediaType: index.manifest.mediaType })
    const body = await res.text()
    t.equal(res.status, 400)
    t.match(body, '\\\\u202e\\\\u001b[2J', `the answer quotes the body escaped: ${body.slice(0, 200)}`)
    t.notOk(NOT_TEXT.test(body), 'and holds no control or bidi character')
  })
})
