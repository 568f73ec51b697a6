import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

// There is no Kubernetes cluster here. Helm's `lookup` (helm template --dry-run=server) asks
// the API server two things: the core API's resource list and the object itself. This
// answers exactly those from a map of Secrets, and 404 for anything else.

export interface FakeKubeApi {
  readonly url: string
  readonly requests: string[]
  close(): Promise<void>
}

export async function startFakeKubeApi(secrets: Record<string, Record<string, string>>): Promise<FakeKubeApi> {
  const requests: string[] = []
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? ''
    requests.push(`${req.method} ${path}`)
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (path === '/api/v1') {
      return send(200, { kind: 'APIResourceList', groupVersion: 'v1', resources: [{ name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['get', 'list'] }] })
    }
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets\/([^/]+)$/.exec(path)
    const data = m === null ? undefined : secrets[`${m[1]}/${m[2]}`]
    if (m !== null && data !== undefined) {
      return send(200, { apiVersion: 'v1', kind: 'Secret', metadata: { name: m[2], namespace: m[1] }, type: 'Opaque', data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) })
    }
    send(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
