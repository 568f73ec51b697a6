import { createServer } from 'node:http'
import { Pool } from 'undici'

// The floor of the stack, for the benchmark's reference column: the least a Node proxy on
// undici can do per request (no routing, no validation, no metrics, no header rewriting
// beyond hop-by-hop). Usage: floor-proxy UPSTREAM_URL PORT

const [upstream = 'http://127.0.0.1:5000', port = '0'] = process.argv.slice(2)
const pool = new Pool(upstream, { connections: 128 })
const HOP = ['connection', 'keep-alive', 'transfer-encoding', 'host', 'expect']

createServer((req, res) => {
  const headers: Record<string, string | string[]> = {}
  for (const name in req.headers) if (!HOP.includes(name)) headers[name] = req.headers[name] as string | string[]
  // As the proxy does: the registry then points upload Locations back here, so an upload's
  // PATCH and PUT go through this forwarder too, not straight to the registry.
  headers['x-forwarded-host'] = req.headers.host ?? ''
  headers['x-forwarded-proto'] = 'http'
  pool.dispatch(
    { method: req.method as 'GET', path: req.url ?? '/', headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req, ...(req.method === 'HEAD' ? { reset: false } : {}) },
    {
      // Without onRequestStart undici takes the handler for an old-style one.
      onRequestStart() {},
      onResponseStart(c, status, h) {
        for (const name of HOP) delete h[name]
        res.writeHead(status, h)
        res.on('drain', () => c.resume())
      },
      onResponseData(c, chunk) {
        if (!res.write(chunk)) c.pause()
      },
      onResponseEnd() {
        res.end()
      },
      onResponseError(_c, err) {
        if (res.headersSent) res.destroy(err)
        else res.writeHead(502).end()
      },
    },
  )
}).listen(Number(port), '127.0.0.1', function (this: import('node:net').Server) {
  const address = this.address()
  process.stdout.write(`listening ${typeof address === 'object' && address !== null ? address.port : port}\n`)
})
