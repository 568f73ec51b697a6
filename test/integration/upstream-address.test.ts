import t from 'tap'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// /readyz on the proxy port must not reveal the upstream URL: anyone who can reach the proxy
// can ask it, and the registry's own address is what a proxy in front of it hides. Neither do
// the errors a client gets when the registry is down; the log names it, for operators.

t.test('/readyz on the proxy port does not reveal the upstream URL', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const port = String(registry.port)
  const reveals = (text: string): boolean => text.includes(registry.url) || text.includes(registry.host) || text.includes(`:${port}`)

  const ready = await fetch(`${proxy.url}/readyz`)
  const readyText = await ready.text()
  t.equal(ready.status, 200, `ready: ${readyText}`)
  t.notOk(reveals(readyText), 'the ready answer names no address')

  await registry.stop()
  const unready = await fetch(`${proxy.url}/readyz`)
  const unreadyText = await unready.text()
  t.equal(unready.status, 503, `unready: ${unreadyText}`)
  t.notOk(reveals(unreadyText), 'the unready answer names no address')
  t.match(JSON.parse(unreadyText), { status: 'unready', detail: /refused/ }, 'but says what is wrong')

  for (const [method, path] of [['GET', '/v2/team/app/manifests/latest'], ['HEAD', '/v2/team/app/blobs/sha256:' + '0'.repeat(64)], ['POST', '/v2/team/app/blobs/uploads/']] as const) {
    const res = await fetch(`${proxy.url}${path}`, { method })
    const text = await res.text()
    t.equal(res.status, 502, `${method} with the registry down: 502`)
    if (method !== 'HEAD') t.match(JSON.parse(text), { errors: [{ code: 'UNAVAILABLE', message: /the registry refused the connection/ }] })
    t.notOk(reveals(text) || reveals(JSON.stringify(res.headers)), `${method}: the error names no address`)
  }
  t.ok(
    proxy.logs.find((r) => r['event'] === 'upstream.failed' && r['upstream'] === registry.url).length > 0,
    'the log names the registry, for whoever runs the proxy',
  )
})
