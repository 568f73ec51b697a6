import { connect, type Socket } from 'node:net'
import t from 'tap'
import { buildImage, MT, sha256 } from '../helpers/oci-builder.js'
import { json } from '../helpers/real-world.js'
import { waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// A client that disconnects mid-body is not an error of the proxy: whatever it was sending (a
// blob chunk, a monolithic upload, a list the proxy reads whole before checking it), the proxy
// logs one info line (client.closed), counts the request as 499 (nginx's "client closed
// request"), never a 5xx, and the registry stores nothing of it. Loopback only, a handful of
// sockets.

/** Levels that would call the client's leaving a problem of the proxy's (the logger writes labels). */
const ALARMING = new Set(['warn', 'error', 'fatal'])

/** Sends the request head and part of the body it announces, then lets the socket go. */
async function leaveMidBody(url: string, method: string, path: string, headers: Record<string, string>, sent: Buffer, announced: number, how: 'close' | 'go silent'): Promise<void> {
  const { hostname, port } = new URL(url)
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname, () => resolve(s))
    s.once('error', reject)
  })
  socket.on('error', () => {})
  const head = Object.entries({ host: `${hostname}:${port}`, ...headers, 'content-length': String(announced) })
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  socket.write(`${method} ${path} HTTP/1.1\r\n${head}\r\n`)
  socket.write(sent)
  if (how === 'close') {
    await new Promise((r) => setTimeout(r, 200))
    socket.destroy()
    return
  }
  // Silent: the proxy lets it go after server.bodyIdleTimeoutMs.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the proxy kept a silent upload open for 10 s')), 10_000)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.resume()
  })
}

function requestCounts(metrics: string, method: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of metrics.matchAll(new RegExp(`^manifest_guard_proxied_requests_total\\{method="${method}",status_class="(\\dxx)"\\} (\\d+)$`, 'gm'))) out[m[1]!] = Number(m[2])
  return out
}

t.test('a client that disconnects mid-body is not an error of the proxy', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { server: { bodyIdleTimeoutMs: 1_000 } })
  const repo = 'team/app'
  const blob = Buffer.alloc(256 << 10, 5)
  const digest = sha256(blob)
  const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'client gone' })
  const index = json({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [image.descriptor] }, MT.ociIndex)

  const newSession = async (): Promise<string> => {
    const res = await fetch(`${proxy.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    await res.arrayBuffer()
    const location = new URL(res.headers.get('location')!, proxy.url)
    return `${location.pathname}${location.search}`
  }
  const octets = { 'content-type': 'application/octet-stream' }
  const cases: { name: string; method: string; path: () => Promise<string>; headers: Record<string, string>; body: Buffer; how: 'close' | 'go silent' }[] = [
    { name: 'a blob chunk (PATCH)', method: 'PATCH', path: newSession, headers: octets, body: blob, how: 'close' },
    { name: 'a monolithic upload (PUT ?digest=)', method: 'PUT', path: async () => `${await newSession()}&digest=${digest}`, headers: octets, body: blob, how: 'close' },
    { name: 'a blob in the POST itself', method: 'POST', path: async () => `/v2/${repo}/blobs/uploads/?digest=${digest}`, headers: octets, body: blob, how: 'close' },
    { name: 'a list the proxy reads whole', method: 'PUT', path: async () => `/v2/${repo}/manifests/1.0`, headers: { 'content-type': MT.ociIndex }, body: index.bytes, how: 'close' },
    { name: 'an image manifest', method: 'PUT', path: async () => `/v2/${repo}/manifests/${image.manifest.digest}`, headers: { 'content-type': MT.ociManifest }, body: image.manifest.bytes, how: 'close' },
    { name: 'a blob chunk, then silence', method: 'PATCH', path: newSession, headers: octets, body: blob, how: 'go silent' },
    { name: 'a list, then silence', method: 'PUT', path: async () => `/v2/${repo}/manifests/1.0`, headers: { 'content-type': MT.ociIndex }, body: index.bytes, how: 'go silent' },
  ]

  for (const c of cases) {
    const before = proxy.logs.records.length
    const scrape = async () => (await (await fetch(`${proxy.adminUrl}/metrics`)).text())
    const counted = requestCounts(await scrape(), c.method)
    // Half of what is announced: the body is cut in the middle.
    await leaveMidBody(proxy.url, c.method, await c.path(), c.headers, c.body.subarray(0, c.body.length >> 1), c.body.length, c.how)
    // The proxy hears the client leave a moment after the socket goes: wait for its record and its count.
    const counts4xx = async () => requestCounts(await scrape(), c.method)['4xx'] ?? 0
    await waitFor(async () => proxy.logs.records.slice(before).some((r) => r['event'] === 'client.closed') && (await counts4xx()) > (counted['4xx'] ?? 0), 10_000, `${c.name}: the proxy to record the client leaving`)
    const records = proxy.logs.records.slice(before)
    t.same(
      records.filter((r) => ALARMING.has(String(r['level']))).map((r) => r['msg']),
      [],
      `${c.name}, ${c.how}: nothing logged as a warning or an error`,
    )
    t.match(records.filter((r) => r['event'] === 'client.closed'), [{ level: 'info', repository: repo }], `${c.name}: one info line says the client left`)
    const now = requestCounts(await scrape(), c.method)
    t.equal((now['5xx'] ?? 0) - (counted['5xx'] ?? 0), 0, `${c.name}: no 5xx counted`)
    t.equal((now['4xx'] ?? 0) - (counted['4xx'] ?? 0), 1, `${c.name}: counted once, as 499`)
  }

  const stored = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' })
  t.equal(stored.status, 404, 'the registry holds none of the cut blobs')
  const list = await fetch(`${registry.url}/v2/${repo}/manifests/1.0`, { method: 'HEAD', headers: { accept: MT.ociIndex } })
  t.equal(list.status, 404, 'nor the cut list')
  const ping = await fetch(`${proxy.url}/v2/`)
  t.equal(ping.status, 200, 'and the proxy serves on')
})
