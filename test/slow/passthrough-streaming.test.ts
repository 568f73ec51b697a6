import t from 'tap'
import { request } from 'undici'
import { hashDownload, largeBlob } from '../helpers/blob-stream.js'
import { spawnProxy } from '../helpers/proxy.js'
import { registryFor } from '../helpers/fixture.js'

// A 1 GiB blob streams up and down through the proxy process while its peak memory stays far
// below the blob size: nothing is buffered.

const GiB = 1 << 30
/**
 * Far under the blob: a proxy that buffered would pass 1 GiB. Not tighter: how much garbage
 * (each read's chunk) waits for the collector depends on the machine's load, and a loaded CI
 * run measured 201 MiB where a quiet one measures 140-160. The bench measures the figure that
 * must stay flat with transfer size (npm run bench, peak RSS for 128 and 512 MiB).
 */
const RSS_LIMIT = 256 * (1 << 20)

t.test('1 GiB blob upload and download stream through the proxy', async (t) => {
  const registry = await registryFor(t)
  const proxy = await spawnProxy(['--upstream', registry.url, '--log-level', 'warn'])
  t.teardown(() => proxy.stop())
  const blob = largeBlob(GiB, 'one-gib')

  const start = await request(`${proxy.url}/v2/big/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  t.equal(start.statusCode, 202, 'upload started')
  const location = new URL(String(start.headers['location']), proxy.url)
  t.equal(location.host, proxy.host, 'the upload Location points at the proxy')
  location.searchParams.set('digest', blob.digest)
  const put = await request(location, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(GiB) },
    body: blob.stream(),
    headersTimeout: 300_000,
    bodyTimeout: 300_000,
  })
  await put.body.dump()
  t.equal(put.statusCode, 201, 'the registry accepted the 1 GiB blob')
  t.equal(put.headers['docker-content-digest'], blob.digest)

  const down = await hashDownload(`${proxy.url}/v2/big/blobs/${blob.digest}`)
  t.equal(down.status, 200)
  t.equal(down.bytes, GiB, 'downloaded every byte')
  t.equal(down.digest, blob.digest, 'downloaded bytes hash to the digest')

  const peak = proxy.peakRss()
  t.ok(peak > 0, 'read the proxy peak RSS')
  t.ok(peak < RSS_LIMIT, `proxy peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB stays under ${RSS_LIMIT / 2 ** 20} MiB for a 1024 MiB blob`)
})
