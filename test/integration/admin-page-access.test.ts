import t from 'tap'
import { request } from 'undici'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { basic, errorsOf, pushChildren, putManifest } from '../helpers/registry-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The admin token rule (Bearer for tools, the Basic password for browsers) for the API and
// the decisions page alike, the page's answers to bad filters, and the page on the API's own
// listener (admin.apiListen), never on the metrics one.

const TOKEN = 'listeners-admin-token'

t.test('the decisions page and the API: one token rule, on the API listener', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { admin: { token: TOKEN, apiListen: '127.0.0.1:0' } })
  const apiUrl = proxy.apiUrl!

  const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'listeners' })
  const gone = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'listeners' })
  await pushChildren(proxy.url, 'team/app', buildIndex([amd]))
  const refused = await putManifest(proxy.url, 'team/app', 'bad', buildIndex([amd, gone]).manifest)
  t.equal(refused.status, 400)
  const answered = (await errorsOf(refused))[0]!.message

  t.test('the decision record keeps the message the client was answered', async (t) => {
    const record = proxy.logs.find((r) => r['event'] === 'push.rejected')[0]
    t.same(record?.['messages'], [answered])
  })

  t.test('one token rule for the API and the page: Bearer, or the Basic password with any user', async (t) => {
    for (const path of ['/_guard/v1/decisions', '/_guard/']) {
      for (const authorization of [`Bearer ${TOKEN}`, basic('oncall', TOKEN), basic('', TOKEN), `bearer  ${TOKEN}`]) {
        const res = await request(`${apiUrl}${path}`, { headers: { authorization } })
        t.equal(res.statusCode, 200, `${path} with ${authorization.split(' ')[0]}`)
        await res.body.dump()
      }
      for (const authorization of [undefined, `Bearer ${TOKEN}x`, basic(TOKEN, 'wrong'), basic('oncall', ''), `Basic ${Buffer.from(TOKEN).toString('base64')}`, 'Basic !!!', `Digest ${TOKEN}`]) {
        const res = await request(`${apiUrl}${path}`, { headers: authorization === undefined ? {} : { authorization } })
        t.equal(res.statusCode, 401, `${path} refuses ${String(authorization)}`)
        t.same(res.headers['www-authenticate'], ['Basic realm="manifest-guard admin", charset="UTF-8"', 'Bearer realm="manifest-guard admin"'], 'a challenge browsers answer, and one for tools')
        t.match(await res.body.json(), { errors: [{ code: 'UNAUTHORIZED', message: /Basic/ }] })
      }
    }
  })

  t.test('the page: bad filters get an OCI error body; /_guard goes to /_guard/', async (t) => {
    const get = (q: string) => request(`${apiUrl}/_guard/${q}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    for (const [q, code] of [['?repository=Team/App', 'NAME_INVALID'], ['?result=bogus', 'UNSUPPORTED'], ['?limit=-1', 'UNSUPPORTED'], ['?repository=' + 'a'.repeat(300) + '<x>', 'NAME_INVALID']] as const) {
      const res = await get(q)
      t.equal(res.statusCode, 400, q.slice(0, 40))
      t.match(res.headers['content-type'], /application\/json/)
      t.match(await res.body.json(), { errors: [{ code }] })
    }
    const ok = await get('?repository=team/app&result=rejected&limit=5')
    t.equal(ok.statusCode, 200)
    t.match(ok.headers['content-type'], 'text/html')
    t.match(ok.headers['content-security-policy'], /default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'/)
    t.equal(ok.headers['cache-control'], 'no-store')
    t.equal(ok.headers['x-frame-options'], 'DENY')
    const page = await ok.body.text()
    t.match(page, 'team/app:bad')
    t.match(page, '<option selected>rejected</option>')
    t.notMatch(page, /<script/i, 'no script at all')
    const redirect = await request(`${apiUrl}/_guard`, { headers: { authorization: `Bearer ${TOKEN}` } })
    t.equal(redirect.statusCode, 302)
    t.equal(redirect.headers['location'], '/_guard/')
    await redirect.body.dump()
  })

  t.test('the page lives with the API: not on the metrics listener', async (t) => {
    for (const authorization of [undefined, `Bearer ${TOKEN}`]) {
      const res = await request(`${proxy.adminUrl}/_guard/`, { headers: authorization === undefined ? {} : { authorization } })
      t.equal(res.statusCode, 404, `no page on admin.listen (${authorization === undefined ? 'no token' : 'token'})`)
      await res.body.dump()
    }
    const metrics = await request(`${proxy.adminUrl}/metrics`)
    t.equal(metrics.statusCode, 200)
    await metrics.body.dump()
  })
})
