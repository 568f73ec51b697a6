import t from 'tap'
import { json, startFakeRegistry } from '../helpers/fake-registry.js'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { startProxy } from '../helpers/proxy.js'
import { rawRequest } from '../helpers/raw-http.js'
import { basic, errorsOf, getManifest, pushImage, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Modes and policies: enforce, warn, off, per-repository rules, and what happens when the
// proxy cannot look (lookups failing, timing out, or refused for the client's credentials).

const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'policy' })
const missing = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'policy-missing' })
const broken = buildIndex([amd, missing])

t.test('modes and per-repository rules', async (t) => {
  const registry = await registryFor(t)
  for (const repo of ['strict/app', 'lenient/app', 'wild/app']) await pushImage(registry.url, repo, amd)
  const proxy = await startProxy(registry.url, {
    validation: {
      rules: [
        { match: 'lenient/**', mode: 'warn' },
        { match: 'wild/*', mode: 'off' },
      ],
    },
  })
  t.teardown(() => proxy.close())

  const strict = await putManifest(proxy.url, 'strict/app', '1', broken.manifest)
  t.equal(strict.status, 400, 'enforce (the default) rejects')
  t.equal((await errorsOf(strict))[0]?.code, 'MANIFEST_BLOB_UNKNOWN')

  // warn forwards; distribution then refuses the missing child itself.
  const lenient = await putManifest(proxy.url, 'lenient/app', '1', broken.manifest)
  t.equal(lenient.status, 400, 'warn forwards and the registry answers for itself')
  t.equal((await errorsOf(lenient))[0]?.message, 'blob unknown to registry', "the registry's own answer, untouched")
  const warned = proxy.logs.find((r) => r['event'] === 'push.warned')
  t.equal(warned.length, 1, 'logged as push.warned')
  t.equal(warned[0]!['repository'], 'lenient/app')
  t.equal(warned[0]!['upstreamStatus'], 400)

  const before = proxy.logs.records.length
  const wild = await putManifest(proxy.url, 'wild/app', '1', broken.manifest)
  t.equal(wild.status, 400, 'off: a plain proxy')
  t.equal(proxy.logs.records.slice(before).filter((r) => String(r['event']).startsWith('push.')).length, 0, 'no decision is made')
})

t.test('a registry that does not validate lists: the proxy still catches them', async (t) => {
  const fake = await startFakeRegistry((req, res) => {
    if (req.method === 'PUT') return json(res, 201, {}, { 'docker-content-digest': broken.manifest.digest })
    return json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] })
  })
  t.teardown(() => fake.close())
  const proxy = await proxyFor(t, fake.url)
  const res = await putManifest(proxy.url, 'team/app', '1', broken.manifest)
  t.equal(res.status, 400)
  const errors = await errorsOf(res)
  t.equal(errors.length, 2, 'both children are reported')
  t.match(errors[0]?.message, `child ${amd.manifest.digest} (linux/amd64) is not in team/app`)
  t.notOk(fake.requests.some((r) => r.method === 'PUT'), 'the list never reached the registry')
})

t.test('lookups that fail: 503 with Retry-After, or forward when configured', async (t) => {
  let slow = false
  const fake = await startFakeRegistry(async (req, res) => {
    if (req.method === 'PUT') return json(res, 201, {}, { 'docker-content-digest': broken.manifest.digest })
    if (slow) await new Promise((r) => setTimeout(r, 1_000))
    return json(res, 500, { errors: [{ code: 'UNKNOWN', message: 'storage backend down' }] })
  })
  t.teardown(() => fake.close())

  const proxy = await proxyFor(t, fake.url, { validation: { retryAfterSeconds: 7, timeoutMs: 300 } })
  const res = await putManifest(proxy.url, 'team/app', '1', broken.manifest)
  t.equal(res.status, 503, 'never a silent accept')
  t.equal(res.headers.get('retry-after'), '7')
  t.match((await errorsOf(res))[0]?.message, /could not verify this list: looking up sha256:[0-9a-f]+ failed \(the registry answered 500\)/)
  t.equal(proxy.logs.find((r) => r['event'] === 'push.unverified').length, 1)

  slow = true
  const timedOut = await putManifest(proxy.url, 'team/app', '2', broken.manifest)
  t.equal(timedOut.status, 503, 'the time budget fires')
  t.match((await errorsOf(timedOut))[0]?.message, /within 300 ms/)
  slow = false

  const forwarding = await proxyFor(t, fake.url, { validation: { onLookupFailure: 'forward' } })
  const forwarded = await putManifest(forwarding.url, 'team/app', '3', broken.manifest)
  t.equal(forwarded.status, 201, 'forwarded unverified')
  const record = forwarding.logs.find((r) => r['event'] === 'push.unverified')[0]
  t.equal(record?.['action'], 'forwarded')
})

t.test('credentials that cannot read: the registry challenges, the proxy says nothing', async (t) => {
  const registry = await registryFor(t, { users: { alice: 'alice-pw' } })
  await pushImage(registry.url, 'team/app', amd, undefined, basic('alice', 'alice-pw'))
  const proxy = await proxyFor(t, registry.url)

  const anonymous = await rawRequest(proxy.url, 'PUT', '/v2/team/app/manifests/1', { 'content-type': broken.manifest.mediaType }, broken.manifest.bytes)
  t.equal(anonymous.status, 401, "the registry's own challenge")
  t.match(String(anonymous.headers['www-authenticate']), /^Basic realm=/)
  t.notMatch(anonymous.body.toString(), /manifest-guard/, 'no diagnosis for someone who cannot read the repository')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.deferred').length, 1)

  const wrong = await putManifest(proxy.url, 'team/app', '1', broken.manifest, basic('alice', 'wrong'))
  t.equal(wrong.status, 401, 'bad credentials: same')

  const alice = await putManifest(proxy.url, 'team/app', '1', broken.manifest, basic('alice', 'alice-pw'))
  t.equal(alice.status, 400, 'good credentials: the diagnosis')
  t.match((await errorsOf(alice))[0]?.message, `child ${missing.manifest.digest} (linux/arm64)`)
  t.equal((await getManifest(registry.url, 'team/app', '1', basic('alice', 'alice-pw'))).status, 404)
})
