import { request as httpRequest } from 'node:http'
import { Readable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { largeBlob } from '../helpers/blob-stream.js'
import { startFakeRegistry } from '../helpers/fake-registry.js'
import { heapAfterGc } from '../helpers/heap.js'
import { spawnProxy } from '../helpers/proxy.js'
import { freePort } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Faults with real processes the test controls: a registry that dies mid-upload, one that is
// slow, clients that give up half way, a proxy that restarts mid-push. Nothing half-written
// is accepted, nothing hangs, nothing leaks.

const MiB = 1 << 20

/**
 * A body that yields `total` bytes slowly enough that something can happen half way; `at`
 * runs once when that many bytes have been handed to the client.
 */
function slowBody(total: number, chunk = MiB, pauseMs = 5, at?: { bytes: number; run: () => void }): Readable {
  let sent = 0
  const block = Buffer.alloc(chunk, 7)
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null)
      sent += chunk
      if (at !== undefined && sent >= at.bytes) {
        at.run()
        at = undefined
      }
      setTimeout(() => this.push(block), pauseMs)
    },
  })
}

async function startUpload(base: string, repo: string): Promise<URL> {
  const res = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
  await res.body.dump()
  return new URL(String(res.headers['location']), base)
}

t.test('the registry dies mid-upload: the client gets an error and nothing is accepted', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const blob = largeBlob(128 * MiB, 'killed-mid-upload')
  const location = await startUpload(proxy.url, 'faults/app')
  location.searchParams.set('digest', blob.digest)
  // The registry dies once a quarter of the body is on its way: mid-upload, whatever the machine's speed.
  let killedAt = -1
  const body = slowBody(128 * MiB, MiB, 5, { bytes: 32 * MiB, run: () => ((killedAt = 32 * MiB), void registry.kill()) })
  const outcome = await request(location, { method: 'PUT', headers: { 'content-length': String(128 * MiB) }, body, headersTimeout: 30_000 }).then(
    async (res) => ({ status: res.statusCode, text: await res.body.text() }),
    (err: Error) => ({ status: 0, text: err.message }),
  )
  t.equal(killedAt, 32 * MiB, 'the registry was killed with the upload under way')
  t.not(outcome.status, 201, `the upload failed (${outcome.status} ${outcome.text.slice(0, 120)})`)
  if (outcome.status !== 0) t.match(outcome.text, /"errors"/, 'with an OCI error body when one could still be sent')
  await registry.start()
  const head = await request(`${registry.url}/v2/faults/app/blobs/${blob.digest}`, { method: 'HEAD' })
  await head.body.dump()
  t.equal(head.statusCode, 404, 'no half-written blob was accepted')
  const again = await request(`${proxy.url}/v2/`)
  await again.body.dump()
  t.equal(again.statusCode, 200, 'the proxy serves on once the registry is back')
})

t.test('a slow registry: the configured timeouts fire', async (t) => {
  // The registry answers slow-headers only when the test ends: a 504 before then can only
  // come from the proxy's own timeout, however slow the machine.
  let answerAtLast = (): void => undefined
  const held = new Promise<void>((resolve) => (answerAtLast = resolve))
  const fake = await startFakeRegistry(async (req, res) => {
    if (req.url.includes('slow-headers')) await held
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': '1000' })
    if (req.url.includes('slow-body')) {
      res.write(Buffer.alloc(10))
      await new Promise((r) => setTimeout(r, 3_000))
    }
    res.end(Buffer.alloc(req.url.includes('slow-body') ? 990 : 1000))
  })
  t.teardown(() => {
    answerAtLast()
    return fake.close()
  })
  const proxy = await proxyFor(t, fake.url, { upstreamTimeouts: { headersMs: 400, bodyMs: 400 } })

  const started = performance.now()
  const res = await request(`${proxy.url}/v2/app/blobs/slow-headers`, { headersTimeout: 60_000 })
  const body = (await res.body.json()) as { errors: { code: string; message: string }[] }
  t.equal(res.statusCode, 504, 'headers timeout: 504, while the registry still holds its answer')
  t.match(body.errors[0]?.message, /did not answer in time/)
  t.ok(performance.now() - started >= 400, 'not before headersMs')

  const cut = await request(`${proxy.url}/v2/app/blobs/slow-body`).then(
    async (r) => {
      try {
        await r.body.arrayBuffer()
        return 'complete'
      } catch {
        return 'cut'
      }
    },
    () => 'cut',
  )
  t.equal(cut, 'cut', 'a body that stalls past bodyMs is cut, never passed off as complete')
})

t.test('200 clients abort mid-upload: no leaked sockets, requests or memory', async (t) => {
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url)
  const pool = proxy.app.guard.passthrough
  const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length

  // One warm-up round so lazily created state (pools, JIT, caches) is not counted as a leak.
  const abortOne = async (i: number): Promise<void> => {
    const location = await startUpload(proxy.url, 'faults/abort')
    location.searchParams.set('digest', `sha256:${String(i).padStart(64, '0')}`)
    await new Promise<void>((resolve) => {
      const req = httpRequest(location, { method: 'PUT', headers: { 'content-length': String(8 * MiB) } })
      req.on('error', () => resolve())
      req.on('close', () => resolve())
      req.write(Buffer.alloc(256 << 10, 1), () => setTimeout(() => req.destroy(), 5))
    })
  }
  for (let i = 0; i < 20; i++) await abortOne(i)
  await new Promise((r) => setTimeout(r, 500))
  const before = { handles: handles(), heap: heapAfterGc() }
  for (let i = 0; i < 200; i++) await abortOne(1000 + i)
  await new Promise((r) => setTimeout(r, 1_000))
  const after = { handles: handles(), heap: heapAfterGc() }
  t.equal(pool.stats.running, 0, 'no upstream request left running')
  t.equal(pool.stats.pending, 0, 'none left waiting')
  t.ok(after.handles <= before.handles + 4, `open sockets: ${before.handles} before, ${after.handles} after`)
  t.ok(after.heap - before.heap < 16 * MiB, `heap grew ${((after.heap - before.heap) / MiB).toFixed(1)} MiB over 200 aborted uploads`)
  const ok = await request(`${proxy.url}/v2/`)
  await ok.body.dump()
  t.equal(ok.statusCode, 200, 'still serving')
})

t.test("the proxy restarts mid-push: the client's retry succeeds", async (t) => {
  const registry = await registryFor(t)
  const port = await freePort()
  let proxy = await spawnProxy(['--upstream', registry.url, '--log-level', 'warn'], {}, port)
  const blob = largeBlob(64 * MiB, 'restart-mid-push')
  const first = await startUpload(proxy.url, 'faults/restart')
  first.searchParams.set('digest', blob.digest)
  setTimeout(() => proxy.kill(), 200)
  const failed = await request(first, { method: 'PUT', headers: { 'content-length': String(64 * MiB) }, body: slowBody(64 * MiB) }).then(
    async (r) => r.statusCode,
    () => 0,
  )
  t.not(failed, 201, 'the push in flight fails with the proxy')
  proxy = await spawnProxy(['--upstream', registry.url, '--log-level', 'warn'], {}, port)
  t.teardown(() => proxy.stop())
  // The retry: a fresh upload session, as every client does after a failed one.
  const retry = await startUpload(proxy.url, 'faults/restart')
  retry.searchParams.set('digest', blob.digest)
  const put = await request(retry, { method: 'PUT', headers: { 'content-length': String(64 * MiB) }, body: blob.stream() })
  await put.body.dump()
  t.equal(put.statusCode, 201, 'the retry through the restarted proxy succeeds')
  const head = await request(`${registry.url}/v2/faults/restart/blobs/${blob.digest}`, { method: 'HEAD' })
  await head.body.dump()
  t.equal(Number(head.headers['content-length']), 64 * MiB, 'the blob is whole')
})
