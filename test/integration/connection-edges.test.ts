import t from 'tap'
import { answers, exchange } from '../helpers/raw-http.js'
import { pushImage } from '../helpers/registry-http.js'
import { buildImage } from '../helpers/oci-builder.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// How a client uses its connection, each sent as the same bytes straight to a real registry
// and through the proxy: the answers (status lines and bodies) must be the same.

t.test('connection edges, side by side with the registry', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'edges' })
  await pushImage(registry.url, 'edges/app', image, 'v1')
  const accept = `Accept: ${image.manifest.mediaType}\r\n`
  const manifest = `GET /v2/edges/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n${accept}\r\n`
  const cases: [string, string, { halfClose?: boolean }][] = [
    ['a client that half-closes after its request (shutdown(SHUT_WR)) still gets the answer', manifest, { halfClose: true }],
    ['and every answer of the requests it pipelined before', `${manifest}HEAD /v2/edges/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n${accept}\r\nGET /v2/edges/none/tags/list HTTP/1.1\r\nHost: x\r\n\r\n`, { halfClose: true }],
    ['a list PUT sent whole then half-closed gets its answer', `PUT /v2/edges/app/manifests/v2 HTTP/1.1\r\nHost: x\r\nContent-Type: ${image.manifest.mediaType}\r\nContent-Length: ${image.manifest.bytes.length}\r\n\r\n${image.manifest.bytes.toString('latin1')}`, { halfClose: true }],
    ['bytes after a Connection: close request: the first is answered, the rest ignored', `GET /v2/edges/app/manifests/v1 HTTP/1.1\r\nHost: x\r\n${accept}Connection: close\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n`, {}],
  ]
  for (const [name, text, options] of cases) {
    const [direct, proxied] = await Promise.all([exchange(registry.url, text, 3_000, options), exchange(proxy.url, text, 3_000, options)])
    t.ok(answers(direct).length > 0, `${name}: the registry answers`)
    t.same(answers(proxied), answers(direct), `${name}: the proxy answers the same`)
  }
})
