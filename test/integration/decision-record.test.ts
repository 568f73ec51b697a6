import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { isJsonObject, type JsonValue, parseJsonTree } from '../../src/oci/json-tree.js'
import { basic, errorsOf, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Every list push decision is one structured record; credentials appear in none of them.

const USER = 'carol'
const PASSWORD = 'Very-Secret-Pa55'

t.test('one decision record per rejected push, with every field, and no credentials anywhere', async (t) => {
  const registry = await registryFor(t, { users: { [USER]: PASSWORD } })
  const proxy = await proxyFor(t, registry.url)
  const auth = basic(USER, PASSWORD)
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'record' })
  const gone = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'record' })
  await pushImage(proxy.url, 'team/app', amd, '1.0-amd64', auth)
  const list = buildIndex([amd, gone])

  const res = await fetch(`${proxy.url}/v2/team/app/manifests/1.0`, {
    method: 'PUT',
    headers: { authorization: auth, 'content-type': list.manifest.mediaType, 'user-agent': 'record-test/1.0', cookie: 'session=cookie-value-123' },
    body: list.manifest.bytes,
  })
  t.equal(res.status, 400)
  const errors = await errorsOf(res)

  const records = proxy.logs.find((r) => typeof r['event'] === 'string' && (r['event'] as string).startsWith('push.'))
  t.equal(records.length, 1, 'exactly one decision record')
  const r = records[0]!
  t.match(r, {
    event: 'push.rejected',
    level: 'warn',
    identity: { kind: 'basic', user: USER },
    clientAddress: '127.0.0.1',
    userAgent: 'record-test/1.0',
    repository: 'team/app',
    reference: '1.0',
    digest: list.manifest.digest,
    mediaType: list.manifest.mediaType,
    action: 'rejected',
    status: 400,
    children: 2,
    blobs: 2,
  })
  t.same(r['identity'], { kind: 'basic', user: USER }, 'the registry answered lookups carrying this password: not claimed')
  t.type(r['upstreamRequests'], 'number')
  t.type(r['cacheHits'], 'number')
  t.type(r['latencyMs'], 'number')
  t.match(String(r['requestId']), /^[0-9a-f]{12}$/)
  t.match(errors[0]!.message, `[manifest-guard request ${String(r['requestId'])}]`, 'the id the user sees is the id in the log')
  t.match(r['problems'], [{ cause: 'never-pushed', digest: gone.manifest.digest, platforms: ['linux/arm64'], object: 'child manifest' }])

  await t.test('a Basic user whose password the registry refused is only claimed', async (t) => {
    const wrong = `Basic ${Buffer.from(`${USER}:not-the-password`).toString('base64')}`
    const res = await fetch(`${proxy.url}/v2/team/app/manifests/3.0`, { method: 'PUT', headers: { authorization: wrong, 'content-type': list.manifest.mediaType }, body: list.manifest.bytes })
    t.equal(res.status, 401, "the registry's own answer")
    const rec = proxy.logs.find((x) => x['reference'] === '3.0')[0]
    t.same(rec?.['identity'], { kind: 'basic', user: USER, claimed: true })
    t.notMatch(proxy.logs.raw.join(''), 'not-the-password')
  })

  await t.test('a token the registry never accepted gives only a claimed subject', async (t) => {
    const payload = Buffer.from(JSON.stringify({ sub: 'ci-robot' })).toString('base64url')
    const token = `eyJhbGciOiJub25lIn0.${payload}.c2lnbmF0dXJl`
    await fetch(`${proxy.url}/v2/team/app/manifests/2.0`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': list.manifest.mediaType }, body: list.manifest.bytes })
    const rec = proxy.logs.find((x) => x['reference'] === '2.0')[0]
    t.same(rec?.['identity'], { kind: 'bearer', subject: 'ci-robot', claimed: true })
    t.notMatch(proxy.logs.raw.join(''), token, 'the token is in no log line')
    t.notMatch(proxy.logs.raw.join(''), 'c2lnbmF0dXJl')
  })

  // After the subtests above (awaited), so their lines are searched too.
  const everything = proxy.logs.raw.join('')
  t.notMatch(everything, PASSWORD, 'no password in any log line')
  t.notMatch(everything, auth.slice(6), 'no Basic credentials in any log line')
  t.notMatch(everything, 'cookie-value-123', 'no cookie in any log line')
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
  t.notMatch(metrics, PASSWORD, 'none in the metrics')
  t.notMatch(metrics, auth.slice(6))
})

t.test('every log line is one JSON object with each key once', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'keys-once' })
  await pushImage(proxy.url, 'team/app', amd)
  await putManifest(proxy.url, 'team/app', 'good', buildIndex([amd]).manifest)
  await putManifest(proxy.url, 'team/app', 'bad', buildIndex([amd, buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'keys-once' })]).manifest)
  t.ok(proxy.logs.raw.length >= 2, `${proxy.logs.raw.length} lines`)
  const repeated = (v: JsonValue, at: string): string[] => {
    if (Array.isArray(v)) return v.flatMap((x, i) => repeated(x, `${at}[${i}]`))
    if (!isJsonObject(v)) return []
    const keys = v.members.map(([k]) => k)
    return [...keys.filter((k, i) => keys.indexOf(k) !== i).map((k) => `${at}.${k}`), ...v.members.flatMap(([k, x]) => repeated(x, `${at}.${k}`))]
  }
  for (const line of proxy.logs.raw) {
    const tree = parseJsonTree(Buffer.from(line))
    if ('problem' in tree) {
      t.fail(`not JSON: ${line}`)
      continue
    }
    t.same(repeated(tree.value, ''), [], `each key once: ${line.slice(0, 60)}…`)
  }
})
