import t from 'tap'
import { assertOk, DockerCli, skopeoPull, skopeoPush } from '../helpers/clients.js'
import { buildImage, buildIndex, ociLayoutRef, twoPlatformIndex } from '../helpers/oci-builder.js'
import { rawRequest } from '../helpers/raw-http.js'
import { startRecordingRelay, tokenSubject } from '../helpers/recording-relay.js'
import { errorsOf } from '../helpers/registry-http.js'
import { startTokenServer } from '../helpers/token-server.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// A real bearer-token flow: a token server the registry trusts, clients that fetch scoped
// tokens, and the proxy in between. The validation uses the client's token and nothing
// else; a client learns nothing about repositories its token cannot read; an anonymous
// client cannot make the proxy look anything up for it.

const USERS = {
  alice: { password: 'alice-pw', grants: { 'team/**': ['pull', 'push'] as const, 'secret/**': ['pull', 'push'] as const } },
  bob: { password: 'bob-pw', grants: { 'team/app': ['pull', 'push'] as const } },
}

async function tokenFor(realm: string, service: string, user: string, password: string, scope: string): Promise<string> {
  const res = await fetch(`${realm}?service=${service}&scope=${encodeURIComponent(scope)}`, { headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` } })
  return `Bearer ${((await res.json()) as { token: string }).token}`
}

t.test('bearer tokens through the proxy', async (t) => {
  const tokens = await startTokenServer({ users: USERS })
  t.teardown(() => tokens.close())
  const registry = await registryFor(t, { token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertPath: tokens.rootCertPath } })
  const relay = await startRecordingRelay(registry.url)
  t.teardown(() => relay.close())
  const proxy = await proxyFor(t, relay.url)
  const alice = { user: 'alice', password: 'alice-pw' }

  t.test('skopeo pushes and pulls with tokens through the proxy', async (t) => {
    const { index } = twoPlatformIndex('bearer-skopeo')
    assertOk(await skopeoPush(ociLayoutRef(index), `${proxy.host}/team/app:1.0`, { creds: alice }), 'skopeo push')
    const layout = ociLayoutRef(index, 'x').replace(/:x$/, '-pulled')
    assertOk(await skopeoPull(`${proxy.host}/team/app:1.0`, `${layout}:pulled`, alice), 'skopeo pull')
    const accepted = proxy.logs.find((r) => r['event'] === 'push.accepted' && r['repository'] === 'team/app')
    t.ok(accepted.length >= 1, 'the list was validated and accepted')
    // The registry verified the token (it answered the lookups and took the list): no longer claimed.
    t.same(accepted[0]?.['identity'], { kind: 'bearer', subject: 'alice' })
  })

  t.test('the docker CLI pushes a list with tokens through the proxy', async (t) => {
    const docker = new DockerCli()
    t.teardown(() => docker.cleanup())
    docker.login(proxy.host, alice)
    const { amd64, arm64 } = twoPlatformIndex('bearer-docker')
    assertOk(await skopeoPush(ociLayoutRef(amd64), `${proxy.host}/team/web:1.0-amd64`, { creds: alice }), 'push amd64')
    assertOk(await skopeoPush(ociLayoutRef(arm64), `${proxy.host}/team/web:1.0-arm64`, { creds: alice }), 'push arm64')
    assertOk(await docker.run(['manifest', 'create', '--insecure', `${proxy.host}/team/web:1.0`, `${proxy.host}/team/web:1.0-amd64`, `${proxy.host}/team/web:1.0-arm64`]), 'create')
    assertOk(await docker.run(['manifest', 'push', '--insecure', `${proxy.host}/team/web:1.0`]), 'push')
  })

  t.test("lookups carry the client's own token and nothing broader; other repositories stay unnamed", async (t) => {
    // alice keeps images in secret/app, through the proxy: the ledger knows they are there.
    const hidden = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'bearer-secret' })
    assertOk(await skopeoPush(ociLayoutRef(hidden), `${proxy.host}/secret/app:1.0`, { creds: alice }), 'alice pushes to secret/app')
    // bob may only use team/app; his list names alice's child.
    const bobToken = await tokenFor(tokens.realm, tokens.service, 'bob', 'bob-pw', 'repository:team/app:pull,push')
    const list = buildIndex([hidden])
    const before = relay.requests.length
    const res = await fetch(`${proxy.url}/v2/team/app/manifests/bob`, { method: 'PUT', headers: { authorization: bobToken, 'content-type': list.manifest.mediaType }, body: list.manifest.bytes })
    t.equal(res.status, 400, 'rejected: the child is not in team/app')
    const errors = await errorsOf(res)
    t.notMatch(JSON.stringify(errors), 'secret', 'nothing about secret/app, which bob cannot read')
    t.match(errors[0]?.message, `child ${hidden.manifest.digest} (linux/amd64) is not in team/app`)
    const lookups = relay.requests.slice(before).filter((r) => r.method !== 'PUT')
    t.ok(lookups.length > 0, 'the proxy looked things up')
    for (const l of lookups) t.equal(tokenSubject(l.authorization), 'bob', `${l.method} ${l.url.slice(0, 60)} carried bob's own token`)
    t.notOk(relay.requests.slice(before).some((r) => r.method === 'PUT'), 'the rejected list never reached the registry')
  })

  t.test("children left in team/app/amd64: the client's token for team/app cannot look there, and the answer says so (no false 'never pushed'); repair cannot copy them", async (t) => {
    const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'bearer-left-behind' })
    assertOk(await skopeoPush(ociLayoutRef(amd), `${proxy.host}/team/app/amd64:1.0`, { creds: alice }), 'the platform image pushed to team/app/amd64 through the proxy')
    // What a client pushing team/app holds: a token for team/app only.
    const token = await tokenFor(tokens.realm, tokens.service, 'alice', 'alice-pw', 'repository:team/app:pull,push')
    const list = buildIndex([amd])
    const repairing = await proxyFor(t, relay.url, { validation: { repair: 'copy-children' } })
    for (const [what, url] of [['the proxy', proxy.url], ['with repair: copy-children', repairing.url]] as const) {
      const res = await fetch(`${url}/v2/team/app/manifests/left`, { method: 'PUT', headers: { authorization: token, 'content-type': list.manifest.mediaType }, body: list.manifest.bytes })
      t.equal(res.status, 400, `${what}: refused`)
      const message = (await errorsOf(res))[0]?.message ?? ''
      t.match(message, `child ${amd.manifest.digest} (linux/amd64) is not in team/app, and manifest-guard could not look for it in team/app/amd64`)
      t.match(message, 'the registry refused your credentials there')
      t.notMatch(message, /no record|never pushed/, 'no claim the refused lookups cannot back')
    }
    t.equal(repairing.logs.find((r) => r['event'] === 'push.repaired').length, 0, 'nothing copied: the token cannot read team/app/amd64')
  })

  t.test('an anonymous client cannot make the proxy validate a repository it cannot read', async (t) => {
    const { index } = twoPlatformIndex('bearer-anon')
    const before = relay.requests.length
    const res = await rawRequest(proxy.url, 'PUT', '/v2/team/app/manifests/anon', { 'content-type': index.manifest.mediaType }, index.manifest.bytes)
    t.equal(res.status, 401, "the registry's own challenge")
    t.match(String(res.headers['www-authenticate']), /^Bearer realm=/)
    t.notMatch(res.body.toString(), 'manifest-guard', 'no diagnosis')
    const made = relay.requests.slice(before)
    t.ok(made.every((r) => r.authorization === undefined), 'nothing but anonymous requests')
    t.ok(made.filter((r) => r.method !== 'PUT').length <= 2, `lookups stop at the first refusal (${made.length - 1} made)`)
  })

  t.test('no credential in any log line', async (t) => {
    const all = proxy.logs.raw.join('')
    t.notMatch(all, 'alice-pw')
    t.notMatch(all, 'bob-pw')
    t.notMatch(all, /Bearer ey/)
    t.notMatch(all, /eyJ[A-Za-z0-9_-]{20,}\.eyJ/, 'no JWT')
  })
})
