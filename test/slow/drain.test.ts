import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { type ProxyProcess, spawnProxy } from '../helpers/proxy.js'
import { registryFor } from '../helpers/fixture.js'

// Graceful drain (issue 23): a rollout fails no push. The built CLI in a child process gets
// SIGTERM while a slow blob upload goes through it: the upload completes and the registry holds
// the same blob as after the same upload straight to it; /readyz answers 503 from the signal on
// (proxy port and admin listener); a new request 1 s after the signal is still answered; the
// listener closes after the drain delay; the process exits, by its deadline even when a request
// never ends.

/** A blob of `chunks` × `chunkBytes`, sent at one chunk per `everyMs` (a slow client). */
const CHUNK_BYTES = 256 * 1024
const CHUNKS = 60
const EVERY_MS = 200

interface Answer {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

/** One request on a connection of its own; the body, if any, written chunk by chunk at the given pace. */
function send(base: string, method: string, path: string, body?: { chunks: Buffer[]; everyMs: number; stallAfter?: number }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const length = body === undefined ? 0 : body.chunks.reduce((n, c) => n + c.length, 0)
    const req = httpRequest(`${base}${path}`, { method, agent: false, headers: { 'content-length': String(length), 'content-type': 'application/octet-stream' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }))
      res.on('error', reject)
    })
    req.on('error', reject)
    if (body === undefined) return void req.end()
    let i = 0
    const next = (): void => {
      if (body.stallAfter !== undefined && i >= body.stallAfter) return // a client that never finishes
      if (i === body.chunks.length) return void req.end()
      req.write(body.chunks[i++])
      setTimeout(next, body.everyMs)
    }
    next()
  })
}

const location = (answer: Answer): string => {
  const loc = String(answer.headers['location'])
  return loc.startsWith('http') ? loc.slice(new URL(loc).origin.length) : loc
}

/** A monolithic blob upload: POST for a session, then one PUT carrying the whole body. */
async function upload(base: string, repository: string, chunks: Buffer[], everyMs: number, digest: string, onStarted?: () => void): Promise<Answer> {
  const start = await send(base, 'POST', `/v2/${repository}/blobs/uploads/`)
  if (start.status !== 202) throw new Error(`POST answered ${start.status}: ${start.body}`)
  const path = location(start)
  const put = send(base, 'PUT', `${path}${path.includes('?') ? '&' : '?'}digest=${digest}`, { chunks, everyMs })
  onStarted?.()
  return put
}

function exited(proxy: ProxyProcess): Promise<number> {
  return new Promise((resolve) => {
    if (proxy.child.exitCode !== null) return resolve(Date.now())
    proxy.child.once('exit', () => resolve(Date.now()))
  })
}

const statusOf = async (url: string): Promise<number | string> => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) })
    await res.arrayBuffer()
    return res.status
  } catch (err) {
    return ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code ?? (err as Error).message
  }
}

t.test('SIGTERM during a slow upload: the upload completes, the drain is seen, the process exits', async (t) => {
  const registry = await registryFor(t)
  const chunks = Array.from({ length: CHUNKS }, () => randomBytes(CHUNK_BYTES))
  const digest = `sha256:${createHash('sha256').update(Buffer.concat(chunks)).digest('hex')}`

  // Straight to the registry: what the same upload gives.
  const direct = await upload(registry.url, 'drain/direct', chunks, 0, digest)
  t.equal(direct.status, 201, 'the registry takes the upload')

  const DELAY_MS = 3_000
  const TIMEOUT_MS = 30_000
  const proxy = await spawnProxy(['--upstream', registry.url, '--shutdown-drain-delay-ms', String(DELAY_MS), '--shutdown-timeout-ms', String(TIMEOUT_MS)])
  t.teardown(() => proxy.stop())
  t.equal(await statusOf(`${proxy.url}/readyz`), 200, 'ready before the signal')
  t.equal(await statusOf(`${proxy.adminUrl}/readyz`), 200, 'the admin listener says ready too')

  let started = 0
  const through = upload(proxy.url, 'drain/through', chunks, EVERY_MS, digest, () => (started = Date.now()))
  await new Promise((r) => setTimeout(r, 2_000))
  const gone = exited(proxy)
  const signalled = Date.now()
  proxy.child.kill('SIGTERM')

  // From the signal on, readiness fails on both listeners.
  await new Promise((r) => setTimeout(r, 100))
  t.equal(await statusOf(`${proxy.url}/readyz`), 503, '/readyz answers 503 right after SIGTERM')
  t.equal(await statusOf(`${proxy.adminUrl}/readyz`), 503, 'the admin /readyz too (the chart probes it)')
  t.equal(await statusOf(`${proxy.adminUrl}/healthz`), 200, 'liveness holds while draining')

  // A new request, on a new connection, one second after the signal, still reaches the registry.
  await new Promise((r) => setTimeout(r, Math.max(0, signalled + 1_000 - Date.now())))
  const late = await send(proxy.url, 'GET', '/v2/')
  t.equal(late.status, 200, 'a new request 1 s after SIGTERM is answered')
  t.equal(late.headers['docker-distribution-api-version'], 'registry/2.0', 'by the registry')

  // Once the delay is over, the listener is closed.
  await new Promise((r) => setTimeout(r, Math.max(0, signalled + DELAY_MS + 1_000 - Date.now())))
  t.equal(await statusOf(`${proxy.url}/v2/`), 'ECONNREFUSED', 'new connections are refused after the drain delay')

  const answer = await through
  const finished = Date.now()
  t.ok(finished - started > 10_000, `the upload was in flight for ${finished - started} ms (${(finished - signalled) / 1000} s after SIGTERM)`)
  t.equal(answer.status, direct.status, 'the upload through the draining proxy completes as it does straight to the registry')
  t.equal(answer.headers['docker-content-digest'], direct.headers['docker-content-digest'], 'with the same digest')

  const exitAt = await gone
  t.equal(proxy.child.exitCode, 0, 'a clean exit')
  t.ok(exitAt - finished < 5_000, `the process exits once the upload is done (${exitAt - finished} ms later)`)
  t.ok(exitAt - signalled < DELAY_MS + TIMEOUT_MS, 'before its deadline')

  // Read back what the registry holds: the same blob in both repositories.
  for (const repository of ['drain/direct', 'drain/through']) {
    const res = await fetch(`${registry.url}/v2/${repository}/blobs/${digest}`)
    const bytes = Buffer.from(await res.arrayBuffer())
    t.equal(res.status, 200, `${repository}: the registry holds the blob`)
    t.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, digest, `${repository}: every byte of it`)
  }
  t.match(proxy.output(), /"msg":"every request in flight finished"/)
})

t.test('a request that never ends does not keep the process past its deadline', async (t) => {
  const registry = await registryFor(t)
  const DELAY_MS = 1_000
  const TIMEOUT_MS = 3_000
  // The body idle timeout is far longer than the deadline: only the deadline can end this request.
  const proxy = await spawnProxy(['--upstream', registry.url, '--shutdown-drain-delay-ms', String(DELAY_MS), '--shutdown-timeout-ms', String(TIMEOUT_MS), '--server-body-idle-timeout-ms', '600000'])
  t.teardown(() => proxy.stop())
  const start = await send(proxy.url, 'POST', '/v2/drain/stuck/blobs/uploads/')
  t.equal(start.status, 202)
  const chunks = Array.from({ length: 8 }, () => randomBytes(64 * 1024))
  const stuck = send(proxy.url, 'PUT', `${location(start)}&digest=sha256:${'0'.repeat(64)}`, { chunks, everyMs: 10, stallAfter: 2 }).catch((err: Error) => err)
  await new Promise((r) => setTimeout(r, 500))
  const gone = exited(proxy)
  const signalled = Date.now()
  proxy.child.kill('SIGTERM')
  const exitAt = await gone
  const took = exitAt - signalled
  t.ok(took >= DELAY_MS + TIMEOUT_MS - 200, `the stuck request had its full time (exit ${took} ms after SIGTERM)`)
  t.ok(took < DELAY_MS + TIMEOUT_MS + 3_000, `and the process exits by its deadline (${DELAY_MS + TIMEOUT_MS} ms: ${took} ms)`)
  t.equal(proxy.child.exitCode, 0)
  t.ok((await stuck) instanceof Error, 'the stuck request was cut')
  t.match(proxy.output(), /shutdown deadline reached: cutting the requests still in flight/)
})
