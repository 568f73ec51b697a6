import t from 'tap'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { startProxy } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'
import { basic, errorsOf, pushImage } from '../helpers/registry-http.js'

// Every list push decision is one structured record; credentials appear in none of them.

const USER = 'carol'
const PASSWORD = 'Very-Secret-Pa55'

t.test('one decision record per rejected push, with every field, and no credentials anywhere', async (t) => {
  const registry = await startRegistry({ users: { [USER]: PASSWORD } })
  t.teardown(() => registry.stop())
  const proxy = await startProxy(registry.url)
  t.teardown(() => proxy.close())
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
  t.type(r['upstreamRequests'], 'number')
  t.type(r['cacheHits'], 'number')
  t.type(r['latencyMs'], 'number')
  t.match(String(r['requestId']), /^[0-9a-f]{12}$/)
  t.match(errors[0]!.message, `[manifest-guard request ${String(r['requestId'])}]`, 'the id the user sees is the id in the log')
  t.match(r['problems'], [{ cause: 'never-pushed', digest: gone.manifest.digest, platforms: ['linux/arm64'], object: 'child manifest' }])

  t.test('a Basic user whose password the registry refused is only claimed', async (t) => {
    const wrong = `Basic ${Buffer.from(`${USER}:not-the-password`).toString('base64')}`
    const res = await fetch(`${proxy.url}/v2/team/app/manifests/3.0`, { method: 'PUT', headers: { authorization: wrong, 'content-type': list.manifest.mediaType }, body: list.manifest.bytes })
    t.equal(res.status, 401, "the registry's own answer")
    const rec = proxy.logs.find((x) => x['reference'] === '3.0')[0]
    t.same(rec?.['identity'], { kind: 'basic', user: USER, claimed: true })
    t.notMatch(proxy.logs.raw.join(''), 'not-the-password')
  })

  t.test('a token the registry never accepted gives only a claimed subject', async (t) => {
    const payload = Buffer.from(JSON.stringify({ sub: 'ci-robot' })).toString('base64url')
    const token = `eyJhbGciOiJub25lIn0.${payload}.c2lnbmF0dXJl`
    await fetch(`${proxy.url}/v2/team/app/manifests/2.0`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': list.manifest.mediaType }, body: list.manifest.bytes })
    const rec = proxy.logs.find((x) => x['reference'] === '2.0')[0]
    t.same(rec?.['identity'], { kind: 'bearer', subject: 'ci-robot', claimed: true })
    t.notMatch(proxy.logs.raw.join(''), token, 'the token is in no log line')
    t.notMatch(proxy.logs.raw.join(''), 'c2lnbmF0dXJl')
  })

  const everything = proxy.logs.raw.join('')
  t.notMatch(everything, PASSWORD, 'no password in any log line')
  t.notMatch(everything, auth.slice(6), 'no Basic credentials in any log line')
  t.notMatch(everything, 'cookie-value-123', 'no cookie in any log line')
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
  t.notMatch(metrics, PASSWORD, 'none in the metrics')
  t.notMatch(metrics, auth.slice(6))
})
