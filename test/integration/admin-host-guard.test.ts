import Fastify from 'fastify'
import t from 'tap'
import { hostGuard } from '../../src/admin/host-guard.js'
import { rawRequest } from '../helpers/raw-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The admin listeners answer only their own names (the DNS-rebinding guard): a page on
// evil.example that made its name resolve to the listener's address sends `Host:
// evil.example` and is refused on every route, before any token, lookup or page; the
// listener's own address, localhost, IP addresses (Prometheus scrapes by pod IP) and the
// names in admin.allowedHosts are answered.

const ROUTES = ['/_guard/v1/decisions', '/_guard/', '/_guard/v1/check/team/app/1.0', '/metrics', '/nowhere']
const FOREIGN = ['evil.example', 'evil.example:9464', 'EVIL.example.', 'localhost.evil.example', '127.0.0.1.nip.io', 'guard.registry.svc.evil.example']

t.test('the admin listeners refuse a foreign Host on every route, and answer their own names', async (t) => {
  const registry = await registryFor(t)
  // No admin token: the CLI's default, and the case a rebinding page would exploit.
  const proxy = await proxyFor(t, registry.url, { admin: { allowedHosts: ['guard.registry.svc'] } })
  const port = new URL(proxy.adminUrl).port
  const lookups = async (): Promise<string> => (await rawRequest(proxy.adminUrl, 'GET', '/metrics')).body.toString().split('\n').filter((l) => l.startsWith('manifest_guard_upstream_lookups_total')).join('\n')
  const before = await lookups()

  t.test('Host: evil.example and the like get 421 and an OCI error, on every route', async (t) => {
    for (const host of FOREIGN) {
      for (const path of ROUTES) {
        const res = await rawRequest(proxy.adminUrl, 'GET', path, { host })
        t.equal(res.status, 421, `${host} ${path}`)
        t.match(String(res.headers['content-type']), /application\/json/)
        const body = JSON.parse(res.body.toString()) as { errors: { code: string; message: string }[] }
        t.equal(body.errors[0]?.code, 'DENIED')
        t.match(body.errors[0]?.message, /admin\.allowedHosts/)
        t.notMatch(res.body.toString(), /team\/app|decisions"/, 'and nothing of what the route holds')
      }
    }
    t.equal(await lookups(), before, 'a refused check made no registry lookup')
  })

  t.test('its own names are answered', async (t) => {
    const own = [`127.0.0.1:${port}`, `localhost:${port}`, 'LOCALHOST', `[::1]:${port}`, '10.1.2.3:9464', '[fd00::7]:9464', 'guard.registry.svc', `guard.registry.svc:${port}`]
    for (const host of own) {
      const metrics = await rawRequest(proxy.adminUrl, 'GET', '/metrics', { host })
      t.equal(metrics.status, 200, `${host} /metrics`)
      const decisions = await rawRequest(proxy.adminUrl, 'GET', '/_guard/v1/decisions', { host })
      t.equal(decisions.status, 200, `${host} /_guard/v1/decisions`)
      const page = await rawRequest(proxy.adminUrl, 'GET', '/_guard/', { host })
      t.equal(page.status, 200, `${host} /_guard/`)
    }
  })

  t.test('with the API on a listener of its own, both listeners keep the guard', async (t) => {
    const split = await proxyFor(t, registry.url, { admin: { apiListen: '127.0.0.1:0' } })
    for (const [url, path] of [
      [split.adminUrl, '/metrics'],
      [split.apiUrl!, '/_guard/v1/decisions'],
      [split.apiUrl!, '/_guard/'],
    ] as const) {
      t.equal((await rawRequest(url, 'GET', path, { host: 'evil.example' })).status, 421, `${path}: evil.example refused`)
      t.equal((await rawRequest(url, 'GET', path, { host: `localhost:${new URL(url).port}` })).status, 200, `${path}: localhost answered`)
    }
  })

})

t.test('a listener whose address is a name answers to that name', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('onRequest', hostGuard('admin.internal', []))
  app.get('/metrics', async () => 'ok')
  for (const [host, status] of [['admin.internal:9464', 200], ['ADMIN.internal.', 200], ['admin.internal.evil.example', 421], ['evil.example', 421]] as const) {
    t.equal((await app.inject({ url: '/metrics', headers: { host } })).statusCode, status, host)
  }
})
