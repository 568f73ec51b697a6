import { createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { pushBlob } from '../helpers/registry-http.js'
import { waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Hostile and broken clients: sockets that never finish their headers, uploads that stall
// mid-body, more connections than a listener should hold. None may lock out a real client, and
// each is let go within its timeout. Bounded in count and time; loopback only.

const SHORT = { headersTimeoutMs: 1_500, bodyIdleTimeoutMs: 2_000, keepAliveTimeoutMs: 2_000 }

function open(url: string, localAddress?: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const s = connect({ port: Number(port), host: hostname, ...(localAddress === undefined ? {} : { localAddress }) }, () => resolve(s))
    s.once('error', reject)
  })
}

/** A fresh upload session's path (POSTed from 127.0.0.1). */
async function newSession(url: string): Promise<string> {
  const start = await request(`${url}/v2/team/app/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  const session = new URL(String(start.headers['location']))
  return `${session.pathname}${session.search}`
}

/**
 * A PATCH announcing 1 MiB that sends 1 byte, from the given local address; resolves with the
 * socket and the status line of whatever the proxy answers while it stalls ('' for nothing).
 */
async function stalledPatch(url: string, path: string, options: { from?: string; headers?: string } = {}): Promise<{ socket: Socket; answer: () => string }> {
  const socket = await open(url, options.from)
  let received = ''
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')))
  socket.on('error', () => {})
  socket.write(`PATCH ${path} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n${options.headers ?? ''}Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\nx`)
  return { socket, answer: () => received.split('\r\n', 1)[0] ?? '' }
}

/** A whole chunked blob upload (POST, PATCH, PUT ?digest=); resolves with the final status. */
async function wholeUpload(url: string, repo: string, bytes: Buffer, timeoutMs: number): Promise<number> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
  const limits = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs }
  const start = await request(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', ...limits })
  await start.body.dump()
  const patch = await request(new URL(String(start.headers['location']), url), { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: bytes, ...limits })
  await patch.body.dump()
  const put = new URL(String(patch.headers['location']), url)
  put.searchParams.set('digest', digest)
  const done = await request(put, { method: 'PUT', ...limits })
  await done.body.dump()
  return done.statusCode
}

/** Resolves with how long the server took to close the socket (or rejects past `limitMs`). */
function closedWithin(s: Socket, limitMs: number): Promise<number> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    if (s.destroyed) return resolve(0)
    const timer = setTimeout(() => reject(new Error(`still open after ${limitMs} ms`)), limitMs)
    s.on('error', () => {})
    s.once('close', () => {
      clearTimeout(timer)
      resolve(Date.now() - started)
    })
    s.resume()
  })
}

/**
 * Opens one more connection to a listener at its cap: Node accepts it and closes it at once,
 * so it asks for `path` and gets no answer.
 */
async function pastTheCap(t: Test, url: string, path: string): Promise<void> {
  // Node accepts a connection past the cap and closes it: a refused connect means nothing listens.
  const extra = await open(url).catch(() => undefined)
  if (extra === undefined) return void t.fail(`${url} refused the connection outright: the listener is gone, not capped`)
  let answered = ''
  extra.on('data', (d: Buffer) => (answered += d.toString('latin1')))
  extra.on('error', () => {})
  t.teardown(() => extra.destroy())
  extra.write(`GET ${path} HTTP/1.1\r\nHost: ${new URL(url).host}\r\n\r\n`)
  // Closed unanswered is what shows the cap; the bound only catches a hang (a loaded machine is slow).
  const took = await closedWithin(extra, 5_000).catch(() => Infinity)
  const said = answered === '' ? '' : `; answered ${answered.split('\r\n', 1)[0]}`
  t.ok(took < 5_000 && answered === '', `a connection past server.maxConnections is closed on arrival, unanswered (after ${took} ms${said})`)
}

/**
 * The value once it has stopped changing: read every 25 ms until it holds for `quietMs` (at most
 * `limitMs`), so a count is asserted when the proxy has acted, not after a guessed sleep.
 */
async function settled(read: () => number, quietMs = 300, limitMs = 10_000): Promise<number> {
  const until = Date.now() + limitMs
  let value = read()
  let since = Date.now()
  while (Date.now() - since < quietMs && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 25))
    const now = read()
    if (now !== value) [value, since] = [now, Date.now()]
  }
  return value
}

async function ping(url: string): Promise<{ status: number; ms: number }> {
  const started = Date.now()
  const res = await request(`${url}/v2/`, { headersTimeout: 5_000, bodyTimeout: 5_000 })
  await res.body.dump()
  return { status: res.statusCode, ms: Date.now() - started }
}

t.test('no server timeouts', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { server: { ...SHORT, maxConnections: 300 } })

  t.test('sockets that never finish their headers are closed, and real clients are served meanwhile', async (t) => {
    const silent = await Promise.all(Array.from({ length: 150 }, () => open(proxy.url)))
    const partial = await Promise.all(Array.from({ length: 50 }, () => open(proxy.url)))
    for (const s of partial) s.write('GET /v2/ HTTP/1.1\r\nHost: x\r\n')
    const served = await ping(proxy.url)
    t.equal(served.status, 200, `GET /v2/ answered in ${served.ms} ms with 200 sockets hanging`)
    // Upper bounds here catch a socket left open (no timeout at all), not a slow machine.
    const times = await Promise.all([...silent, ...partial].map((s) => closedWithin(s, 30_000)))
    t.ok(Math.max(...times) < 30_000, `all 200 closed, the last after ${Math.max(...times)} ms (headers timeout 1.5 s)`)
  })

  t.test('an upload that goes silent mid-body is closed after the body idle timeout', async (t) => {
    const start = await request(`${proxy.url}/v2/team/app/blobs/uploads/`, { method: 'POST' })
    await start.body.dump()
    const session = new URL(String(start.headers['location']))
    const s = await open(proxy.url)
    s.write(`PATCH ${session.pathname}${session.search} HTTP/1.1\r\nHost: ${proxy.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\nx`)
    const took = await closedWithin(s, 30_000)
    t.ok(took >= 1_500 && took < 30_000, `closed after ${took} ms of silence (body idle timeout 2 s)`)
    // The registry's half-sent upload was aborted: the session holds nothing.
    const status = await request(`${registry.url}${session.pathname}${session.search}`)
    const text = await status.body.text()
    t.not(status.statusCode, 500, `the registry is fine (${status.statusCode} ${text.slice(0, 80)})`)
    t.equal((await ping(proxy.url)).status, 200)
  })

  t.test('a listener holds at most server.maxConnections', async (t) => {
    const held = await Promise.all(Array.from({ length: 300 }, () => open(proxy.url)))
    // Let go even when an assertion fails: held sockets would keep the proxy from closing.
    t.teardown(() => held.forEach((s) => s.destroy()))
    await pastTheCap(t, proxy.url, '/v2/')
    for (const s of held) s.destroy()
    await waitFor(async () => (await ping(proxy.url).then((p) => p.status, () => 0)) === 200, 5_000, 'the proxy to serve again once connections are let go')
    t.pass('served again once connections are let go')
  })

  t.test('the admin listeners keep the same limits', async (t) => {
    const split = await proxyFor(t, registry.url, { server: { ...SHORT, maxConnections: 300 }, admin: { apiListen: '127.0.0.1:0' } })
    for (const [name, url] of [['admin.listen', split.adminUrl], ['admin.apiListen', split.apiUrl!]] as const) {
      const silent = await Promise.all(Array.from({ length: 20 }, () => open(url)))
      // A request whose body never arrives whole (registry notifications are small).
      const slow = await open(url)
      t.teardown(() => [...silent, slow].forEach((s) => s.destroy()))
      slow.write(`POST /_guard/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`)
      const times = await Promise.all([...silent, slow].map((s) => closedWithin(s, 6_000)))
      t.ok(Math.max(...times) < 6_000, `${name}: silent sockets and a body that never arrives whole are closed, the last after ${Math.max(...times)} ms`)
      const held = await Promise.all(Array.from({ length: 300 }, () => open(url)))
      t.teardown(() => held.forEach((s) => s.destroy()))
      await pastTheCap(t, url, '/metrics')
      held.forEach((s) => s.destroy())
      // Answered at all (the API listener has no /metrics: its 404 is an answer too).
      await waitFor(async () => (await fetch(`${url}/metrics`).then((r) => r.status, () => 0)) !== 0, 5_000, `${name} to answer again once connections are let go`)
      t.pass(`${name}: answers again once connections are let go`)
    }
  })

  t.test('an idle keep-alive connection is closed after the keep-alive timeout', async (t) => {
    const s = await open(proxy.url)
    s.write(`GET /v2/ HTTP/1.1\r\nHost: ${proxy.host}\r\n\r\n`)
    const took = await closedWithin(s, 30_000)
    t.ok(took >= 1_500 && took < 30_000, `closed after ${took} ms idle (keep-alive timeout 2 s)`)
  })
})

t.test('pool exhaustion', async (t) => {
  const registry = await registryFor(t)

  t.test('150 stalled uploads hold no read back, and are let go', async (t) => {
    const proxy = await proxyFor(t, registry.url, { server: { ...SHORT, maxUploadsPerClient: 1_000 } })
    const stalled: Socket[] = []
    for (let i = 0; i < 150; i++) stalled.push((await stalledPatch(proxy.url, await newSession(proxy.url))).socket)
    const reads = await Promise.all(Array.from({ length: 20 }, () => ping(proxy.url)))
    t.same(new Set(reads.map((r) => r.status)), new Set([200]), `20 reads answered with 150 uploads stalled (slowest ${Math.max(...reads.map((r) => r.ms))} ms)`)
    const head = await request(`${proxy.url}/v2/team/app/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' })
    await head.body.dump()
    t.equal(head.statusCode, 404, 'a blob HEAD gets the registry answer')
    const times = await Promise.all(stalled.map((s) => closedWithin(s, 10_000)))
    t.ok(Math.max(...times) < 10_000, `every stalled upload closed, the last after ${Math.max(...times)} ms`)
    const fresh = await request(`${proxy.url}/v2/team/app/blobs/uploads/`, { method: 'POST' })
    await fresh.body.dump()
    t.equal(fresh.statusCode, 202, 'uploads work again')
  })

  t.test('one client may hold server.maxUploadsPerClient uploads in flight; more get 429 with Retry-After', async (t) => {
    const proxy = await proxyFor(t, registry.url, { server: { ...SHORT, maxUploadsPerClient: 4 } })
    const stalled: Socket[] = []
    for (let i = 0; i < 4; i++) stalled.push((await stalledPatch(proxy.url, await newSession(proxy.url))).socket)
    await new Promise((r) => setTimeout(r, 200))
    const fifth = await request(`${proxy.url}/v2/team/app/blobs/uploads/`, { method: 'POST' })
    const body = await fifth.body.text()
    t.equal(fifth.statusCode, 429, 'the fifth write is refused')
    t.equal(fifth.headers['retry-after'], '1')
    t.match(body, /"code":"TOOMANYREQUESTS".*server\.maxUploadsPerClient/)
    t.equal((await ping(proxy.url)).status, 200, 'reads are not capped')
    await Promise.all(stalled.map((s) => closedWithin(s, 10_000)))
    const after = await request(`${proxy.url}/v2/team/app/blobs/uploads/`, { method: 'POST' })
    await after.body.dump()
    t.equal(after.statusCode, 202, 'once they are let go, the client writes again')
  })

  t.test('one client stalling uploads up to its cap leaves other clients\' writes served', async (t) => {
    // The default cap (32) is a quarter of the write pool (128): with the cap off, the stalled
    // uploads below would hold every registry connection until the body idle timeout.
    const proxy = await proxyFor(t, registry.url, { server: { ...SHORT, bodyIdleTimeoutMs: 10_000 } })
    const sessions: string[] = []
    for (let i = 0; i < 140; i++) sessions.push(await newSession(proxy.url))
    // 127.0.0.2 is another client address on loopback (Linux routes all of 127/8 there).
    const stalled = await Promise.all(sessions.map((path) => stalledPatch(proxy.url, path, { from: '127.0.0.2' })))
    t.teardown(() => stalled.forEach((s) => s.socket.destroy()))
    const cap = proxy.config.server.maxUploadsPerClient
    const refusedCount = () => stalled.filter((s) => s.answer().startsWith('HTTP/1.1 429')).length
    // Answers arrive as fast as a busy machine lets them: wait for them, within bounds.
    for (let waited = 0; refusedCount() < 140 - cap && waited < 5_000; waited += 100) await new Promise((r) => setTimeout(r, 100))
    await new Promise((r) => setTimeout(r, 200))
    t.equal(refusedCount(), 140 - cap, `127.0.0.2 holds ${cap} uploads; the other ${refusedCount()} were refused at once`)
    const started = Date.now()
    const status = await wholeUpload(proxy.url, 'team/other', Buffer.alloc(1 << 20, 3), 5_000)
    t.equal(status, 201, `127.0.0.1 uploads a whole blob meanwhile, in ${Date.now() - started} ms`)
  })

  t.test('behind a trusted ingress the cap counts the address the ingress added, not what the client claims', async (t) => {
    const proxy = await proxyFor(t, registry.url, { trustForwardedHeaders: true, server: { ...SHORT, maxUploadsPerClient: 2 } })
    // The ingress appends the address it saw; whatever comes before is the client's to choose.
    const via = (claimed: string, seen: string) => ({ headers: `X-Forwarded-For: ${claimed}, ${seen}\r\n` })
    const held = [await stalledPatch(proxy.url, await newSession(proxy.url), via('198.51.100.1', '203.0.113.7')), await stalledPatch(proxy.url, await newSession(proxy.url), via('198.51.100.2', '203.0.113.7'))]
    t.teardown(() => held.forEach((s) => s.socket.destroy()))
    const third = await stalledPatch(proxy.url, await newSession(proxy.url), via('198.51.100.3', '203.0.113.7'))
    t.teardown(() => third.socket.destroy())
    const other = await stalledPatch(proxy.url, await newSession(proxy.url), { headers: 'X-Forwarded-For: 203.0.113.8\r\n' })
    t.teardown(() => other.socket.destroy())
    await new Promise((r) => setTimeout(r, 300))
    t.match(third.answer(), /^HTTP\/1.1 429/, 'a third upload of 203.0.113.7 is refused, whatever it claims to be')
    t.equal(held.map((s) => s.answer()).join(''), '', 'its first two are held')
    t.equal(other.answer(), '', 'another address behind the same ingress is not counted with it')
  })

  t.test('downloads one client stops reading hold at most server.maxReadsPerClient read connections; its other reads wait, other clients are served', async (t) => {
    const proxy = await proxyFor(t, registry.url, { server: { ...SHORT, bodyIdleTimeoutMs: 10_000, maxReadsPerClient: 4 } })
    // Larger than the socket buffers between the registry and a client that never reads.
    const big = Buffer.alloc(16 << 20, 1)
    const digest = `sha256:${createHash('sha256').update(big).digest('hex')}`
    await pushBlob(registry.url, 'team/big', { bytes: big, digest })
    // Reads of a plain-HTTP registry go by the read carrier's connections: those held are the open ones not idle.
    const carrier = proxy.app.readCarrier!
    const held = (): number => carrier.pool.open - carrier.pool.idle
    const stalled: Socket[] = []
    t.teardown(() => stalled.forEach((s) => s.destroy()))
    for (let i = 0; i < 10; i++) {
      const s = await open(proxy.url, '127.0.0.2')
      s.on('error', () => {})
      s.pause()
      s.write(`GET /v2/team/big/blobs/${digest} HTTP/1.1\r\nHost: ${proxy.host}\r\n\r\n`)
      stalled.push(s)
    }
    t.equal(await settled(held), 4, '127.0.0.2 holds 4 read connections; its 6 other reads wait in the proxy')
    const reads = await Promise.all(Array.from({ length: 5 }, () => ping(proxy.url)))
    t.same(new Set(reads.map((r) => r.status)), new Set([200]), `127.0.0.1 is served meanwhile (slowest ${Math.max(...reads.map((r) => r.ms))} ms)`)
    // The first four let go: four of the waiting ones take their connections.
    stalled.slice(0, 4).forEach((s) => s.destroy())
    t.equal(await settled(held), 4, 'the waiting reads go in their turn')
    stalled.forEach((s) => s.destroy())
    t.equal(await settled(held), 0, 'and every connection is let go with its client')
    const from2 = new Agent({ connect: { localAddress: '127.0.0.2' } })
    t.teardown(() => from2.close())
    const again = await request(`${proxy.url}/v2/team/big/blobs/${digest}`, { method: 'HEAD', dispatcher: from2, headersTimeout: 5_000 })
    await again.body.dump()
    t.equal(again.statusCode, 200, '127.0.0.2 reads again: no slot was lost')
  })
})
