import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import t from 'tap'
import { Agent, request } from 'undici'
import { hashDownload, largeBlob } from '../helpers/blob-stream.js'
import { selfSignedCert } from '../helpers/tls-cert.js'
import { buildImage } from '../helpers/oci-builder.js'
import { pushImage, putManifest } from '../helpers/registry-http.js'
import { answers, exchange } from '../helpers/raw-http.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The read carrier (src/proxy/read-carrier.ts) carries the fast lane's GETs and HEADs over raw
// registry connections. What a client sees must not change: bodies byte for byte, Range and
// 304, HEAD on kept-alive connections, Location rewriting, repeated headers, errors, TLS; and
// what it must never do: leak a registry connection when a client leaves mid-body, or hand a
// connection with unread bytes to the next request.

const MiB = 1 << 20

async function pushLarge(base: string, repo: string, size: number, seed: string): Promise<string> {
  const blob = largeBlob(size, seed)
  const start = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  const location = new URL(String(start.headers['location']), base)
  location.searchParams.set('digest', blob.digest)
  const put = await request(location, { method: 'PUT', headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' }, body: blob.stream() })
  await put.body.dump()
  if (put.statusCode !== 201) throw new Error(`upload answered ${put.statusCode}`)
  return blob.digest
}

const hashOf = (url: string, init: { headers?: Record<string, string>; dispatcher?: Agent } = {}): ReturnType<typeof hashDownload> => hashDownload(url, { ...init, headersTimeout: 60_000, bodyTimeout: 60_000 })

t.test('blobs, ranges, 304 and HEAD through the carrier, on kept-alive registry connections', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const carrier = proxy.app.readCarrier
  t.not(carrier, null, 'a plain-HTTP registry gets the carrier')
  const digest = await pushLarge(registry.url, 'carrier/big', 48 * MiB + 12345, 'carrier-big')

  const whole = await hashOf(`${proxy.url}/v2/carrier/big/blobs/${digest}`)
  t.equal(whole.status, 200)
  t.equal(whole.bytes, 48 * MiB + 12345, 'every byte')
  t.equal(whole.digest, digest, 'and the right ones')
  t.ok(carrier!.pool.open >= 1, 'the carrier carried it')

  const direct = await request(`${registry.url}/v2/carrier/big/blobs/${digest}`, { headers: { range: 'bytes=1000000-1999999' } })
  const expected = Buffer.from(await direct.body.arrayBuffer())
  const ranged = await request(`${proxy.url}/v2/carrier/big/blobs/${digest}`, { headers: { range: 'bytes=1000000-1999999' } })
  const got = Buffer.from(await ranged.body.arrayBuffer())
  t.equal(ranged.statusCode, 206, 'Range reads answer 206')
  t.equal(ranged.headers['content-range'], direct.headers['content-range'])
  t.ok(got.equals(expected), 'the requested bytes')

  const etag = String(whole.headers['etag'])
  const notModified = await request(`${proxy.url}/v2/carrier/big/blobs/${digest}`, { headers: { 'if-none-match': etag } })
  t.equal(notModified.statusCode, 304, 'If-None-Match answers 304')
  t.equal((await notModified.body.arrayBuffer()).byteLength, 0, 'with no body')

  // Many HEADs one after the other: each answered, none carrying a body, one connection for all.
  const before = carrier!.pool.open
  for (let i = 0; i < 50; i++) {
    const head = await request(`${proxy.url}/v2/carrier/big/blobs/${digest}`, { method: 'HEAD' })
    await head.body.dump()
    if (head.statusCode !== 200 || head.headers['content-length'] !== String(48 * MiB + 12345)) t.fail(`HEAD ${i}: ${head.statusCode} ${String(head.headers['content-length'])}`)
  }
  t.equal(carrier!.pool.open, before, 'HEADs reuse the kept-alive registry connection')

  const missing = await request(`${proxy.url}/v2/carrier/big/blobs/sha256:${'0'.repeat(64)}`)
  const error = (await missing.body.json()) as { errors: { code: string }[] }
  t.equal(missing.statusCode, 404)
  t.equal(error.errors[0]?.code, 'BLOB_UNKNOWN', "the registry's own error body")
  const after404 = await hashOf(`${proxy.url}/v2/carrier/big/blobs/${digest}`, { headers: { range: 'bytes=0-9' } })
  t.equal(after404.bytes, 10, 'and the connection after it carries the next answer cleanly')
})

t.test('clients that leave mid-download leave no registry connection behind', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const pool = proxy.app.readCarrier!.pool
  const digest = await pushLarge(registry.url, 'carrier/abort', 32 * MiB, 'carrier-abort')

  const abortOne = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const req = httpRequest(`${proxy.url}/v2/carrier/abort/blobs/${digest}`, (res) => {
        res.once('data', () => req.destroy())
      })
      req.on('error', () => resolve())
      req.on('close', () => resolve())
      req.end()
    })
  // 40 at once, then 40 more one by one.
  await Promise.all(Array.from({ length: 40 }, abortOne))
  for (let i = 0; i < 40; i++) await abortOne()
  const deadline = Date.now() + 5_000
  while (pool.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.equal(pool.open, 0, 'every registry connection of an abandoned download is closed')

  const whole = await hashOf(`${proxy.url}/v2/carrier/abort/blobs/${digest}`)
  t.equal(whole.digest, digest, 'the next download is whole')
  t.equal(pool.open, 1, 'on one new connection, kept for the next request')
})

t.test('downloads over the proxy’s own TLS', async (t) => {
  const { cert, key } = await selfSignedCert('mg-carrier-tls-')
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { tls: { cert, key } })
  const agent = new Agent({ connect: { ca: readFileSync(cert) } })
  t.teardown(() => agent.close())
  const digest = await pushLarge(registry.url, 'carrier/tls', 24 * MiB + 7, 'carrier-tls')
  for (let i = 0; i < 3; i++) {
    const got = await hashOf(`${proxy.url}/v2/carrier/tls/blobs/${digest}`, { dispatcher: agent })
    t.equal(got.digest, digest, `download ${i + 1} over TLS is whole`)
  }
  const head = await request(`${proxy.url}/v2/carrier/tls/blobs/${digest}`, { method: 'HEAD', dispatcher: agent })
  await head.body.dump()
  t.equal(head.headers['content-length'], String(24 * MiB + 7), 'HEAD over TLS')
})

/** A registry stand-in on a raw socket, for answers a real registry does not give. */
interface RawRegistry {
  readonly url: string
  readonly requests: string[]
  connections(): number
  close(): Promise<void>
}

async function startRawRegistry(answer: (path: string, socket: Socket) => void): Promise<RawRegistry> {
  const requests: string[] = []
  let connections = 0
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let pending = ''
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1')
      let end: number
      while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
        const head = pending.slice(0, end)
        pending = pending.slice(end + 4)
        const line = head.split('\r\n')[0] ?? ''
        requests.push(line)
        answer(line.split(' ')[1] ?? '', socket)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    connections: () => connections,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

t.test('answers only a stand-in gives: chunked, repeated headers, redirects, idle closes, failures', async (t) => {
  const digest = `sha256:${'a'.repeat(64)}`
  const registry = await startRawRegistry((path, socket) => {
    if (path.startsWith('/v2/chunked/')) {
      // Written in pieces that split the framing, with an extension and a trailer.
      const pieces = ['HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5', ';ext=1\r\nhel', 'lo\r', '\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n', '\r\n']
      const next = (): void => void (pieces.length > 0 && socket.write(pieces.shift() as string, () => setTimeout(next, 5)))
      next()
    } else if (path.startsWith('/v2/badchunk/')) {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX')
    } else if (path.startsWith('/v2/challenge/')) {
      socket.write('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="a"\r\nWWW-Authenticate: Bearer realm="b"\r\nContent-Length: 2\r\n\r\n{}')
    } else if (path.startsWith('/v2/redirect/')) {
      socket.write(`HTTP/1.1 307 Temporary Redirect\r\nLocation: ${registryUrl}/v2/elsewhere/blobs/${digest}\r\nContent-Length: 0\r\n\r\n`)
    } else if (path.startsWith('/v2/bye/')) {
      // Answers, then closes the kept-alive connection as a registry's idle timeout would.
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye', () => setTimeout(() => socket.end(), 20))
    } else if (path.startsWith('/v2/cut/')) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n')
      socket.write(Buffer.alloc(300_000, 7), () => socket.destroy())
    } else if (path.startsWith('/v2/garbage/')) {
      socket.write('HTTP/1.1 200 OK\r\nContent Length: 5\r\n\r\nhello')
    } else if (path.startsWith('/v2/stall/')) {
      // Starts the body, then sends nothing more.
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789')
    } else if (path.startsWith('/v2/silent/')) {
      // Never answers.
    } else {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}')
    }
  })
  const registryUrl = registry.url
  t.teardown(() => registry.close())
  const proxy = await proxyFor(t, registry.url, { upstreamTimeouts: { headersMs: 500, bodyMs: 500 } })

  const chunked = await request(`${proxy.url}/v2/chunked/manifests/latest`)
  t.equal(chunked.statusCode, 200)
  t.equal(await chunked.body.text(), 'hello world', 'a chunked answer reaches the client whole')
  t.equal(registry.requests.filter((r) => r.includes('/v2/chunked/')).length, 1, 'asked once: the carrier decodes it')
  const again = await request(`${proxy.url}/v2/ok/manifests/latest`)
  t.equal(await again.body.text(), '{}', 'and its connection carries the next request')

  // Cut mid-answer: the client may or may not have seen the head before the connection went.
  await t.rejects(
    request(`${proxy.url}/v2/badchunk/manifests/latest`).then((r) => r.body.text()),
    'a chunked body with broken framing is cut for the client',
  )

  const challenge = await request(`${proxy.url}/v2/challenge/manifests/latest`)
  await challenge.body.dump()
  t.equal(challenge.statusCode, 401)
  t.same(challenge.headers['www-authenticate'], ['Basic realm="a"', 'Bearer realm="b"'], 'both challenges, in order')

  const redirect = await request(`${proxy.url}/v2/redirect/blobs/${digest}`)
  await redirect.body.dump()
  t.equal(redirect.statusCode, 307)
  t.equal(redirect.headers['location'], `${proxy.url}/v2/elsewhere/blobs/${digest}`, 'a Location naming the registry points back at the proxy')

  const bye = await request(`${proxy.url}/v2/bye/manifests/latest`)
  t.equal(await bye.body.text(), 'bye')
  await new Promise((r) => setTimeout(r, 200))
  const afterBye = await request(`${proxy.url}/v2/ok/manifests/latest`)
  t.equal(await afterBye.body.text(), '{}', 'the request after an idle close is answered')

  const cut = await request(`${proxy.url}/v2/cut/blobs/${digest}`)
  t.equal(cut.statusCode, 200)
  await t.rejects(cut.body.arrayBuffer(), 'a body the registry cuts short is cut for the client too')

  const stall = await request(`${proxy.url}/v2/stall/blobs/${digest}`)
  t.equal(stall.statusCode, 200)
  await t.rejects(stall.body.arrayBuffer(), 'a body the registry stops sending is cut after upstreamTimeouts.bodyMs')

  const garbage = await request(`${proxy.url}/v2/garbage/manifests/latest`)
  await garbage.body.dump()
  t.equal(garbage.statusCode, 502, 'a head the proxy cannot read answers 502')

  const silent = await request(`${proxy.url}/v2/silent/manifests/latest`)
  const body = (await silent.body.json()) as { errors: { code: string }[] }
  t.equal(silent.statusCode, 504, 'a registry that does not answer in time: 504')
  t.equal(body.errors[0]?.code, 'UNAVAILABLE')

  const still = await request(`${proxy.url}/v2/ok/manifests/latest`)
  t.equal(await still.body.text(), '{}', 'still serving')
  const metrics = await (await request(`${proxy.adminUrl}/metrics`)).body.text()
  t.match(metrics, /manifest_guard_proxied_requests_total\{method="GET",status_class="5xx"\} [1-9]/, 'failures are counted')
})

t.test('a registry that is down: a prompt 502', async (t) => {
  const registry = await startRawRegistry(() => {})
  const url = registry.url
  await registry.close()
  const proxy = await proxyFor(t, url)
  const res = await request(`${proxy.url}/v2/x/manifests/latest`)
  const body = (await res.body.json()) as { errors: { code: string; message: string }[] }
  t.equal(res.statusCode, 502)
  t.match(body.errors[0]?.message, /refused the connection/)
})

t.test("reads that carry a body get the registry's answers, and the next request on the connection its own", async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { server: { headersTimeoutMs: 2_000 } })
  const cases = [
    ['GET with a Content-Length body', 'GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /v2/none/tags/list HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HEAD with a Content-Length body', 'HEAD /v2/none/manifests/latest HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /v2/none/tags/list HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['GET with a chunked body', 'GET /v2/none/tags/list HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'],
  ] as const
  for (const [name, text] of cases) {
    const [direct, proxied] = await Promise.all([exchange(registry.url, text, 1_500), exchange(proxy.url, text, 1_500)])
    t.equal(answers(direct).length, 2, `${name}: the registry answers both requests`)
    t.same(answers(proxied), answers(direct), `${name}: the proxy answers the same, in time`)
  }
})

t.test('a listing the registry sends chunked reaches the client byte for byte, asked once', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'many-tags' })
  await pushImage(registry.url, 'carrier/tags', image)
  // Enough tags that distribution's answer outgrows Go's response buffer and goes chunked.
  for (let i = 0; i < 150; i++) await (await putManifest(registry.url, 'carrier/tags', `release-${String(i).padStart(4, '0')}`, image.manifest)).arrayBuffer()
  const direct = await request(`${registry.url}/v2/carrier/tags/tags/list`)
  const directBody = await direct.body.text()
  t.equal(direct.headers['transfer-encoding'], 'chunked', 'the registry sends it chunked')
  const pool = proxy.app.readCarrier!.pool
  const proxied = await request(`${proxy.url}/v2/carrier/tags/tags/list`)
  t.equal(proxied.statusCode, direct.statusCode)
  t.equal(await proxied.body.text(), directBody, 'the same bytes')
  // Carried, its connection is back in the pool; handed over to undici, it would be closed.
  t.same({ open: pool.open, idle: pool.idle }, { open: 1, idle: 1 }, 'carried by the carrier, its connection kept alive')
  const next = await request(`${proxy.url}/v2/carrier/tags/manifests/release-0000`, { headers: { accept: image.manifest.mediaType } })
  await next.body.dump()
  t.equal(next.statusCode, 200, 'the next read is answered')
  t.same({ open: pool.open, idle: pool.idle }, { open: 1, idle: 1 }, 'on that same connection')
})

t.test('a pipelining client that leaves leaves no registry connection or read slot behind', async (t) => {
  const registry = await registryFor(t)
  // Two read slots: two answers held for ever would lock this client out.
  const proxy = await proxyFor(t, registry.url, { server: { maxReadsPerClient: 2 } })
  const pool = proxy.app.readCarrier!.pool
  const digest = await pushLarge(registry.url, 'carrier/pipelined', 8 * MiB, 'carrier-pipelined')

  // Three downloads on one connection, none read: the second and third answers are queued
  // behind the first (no socket of their own), then the client goes.
  const { port } = new URL(proxy.url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.on('error', () => {})
  socket.pause()
  socket.write(`GET /v2/carrier/pipelined/blobs/${digest} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(3))
  const started = Date.now() + 5_000
  while (pool.open < 2 && Date.now() < started) await new Promise((r) => setTimeout(r, 50))
  t.equal(pool.open, 2, 'two downloads under way (the client has two read slots)')
  socket.destroy()

  const deadline = Date.now() + 5_000
  while (pool.open > pool.idle && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.equal(pool.open, pool.idle, 'no registry connection is held for a client that left')
  const next = await request(`${proxy.url}/v2/carrier/pipelined/blobs/${digest}`, { method: 'HEAD', headersTimeout: 5_000 })
  await next.body.dump()
  t.equal(next.statusCode, 200, "and the client's next read is answered")
})

t.test('a pipelining client that leaves during a handed-over (close-delimited) answer leaves no registry request behind', async (t) => {
  const listing = Buffer.alloc(64 * MiB, 97)
  // Neither a length nor chunked: the body ends with the connection, which the carrier hands
  // to the undici forwarder.
  const registry = await startRawRegistry((_path, socket) => {
    socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n')
    socket.write(listing)
    socket.end()
  })
  t.teardown(() => registry.close())
  const proxy = await proxyFor(t, registry.url, { server: { maxReadsPerClient: 2 } })
  const reads = proxy.app.guard.passthroughReads

  const { port } = new URL(proxy.url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.on('error', () => {})
  socket.pause()
  socket.write('GET /v2/listing/tags/list HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3))
  const started = Date.now() + 5_000
  while (reads.stats.running < 2 && Date.now() < started) await new Promise((r) => setTimeout(r, 50))
  t.equal(reads.stats.running, 2, 'both listings under way through the undici forwarder')
  socket.destroy()

  const deadline = Date.now() + 5_000
  while (reads.stats.running > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.equal(reads.stats.running, 0, 'the queued answer’s registry request is cancelled too')
})
