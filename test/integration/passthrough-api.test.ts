import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { blob, pseudoRandom, sha256 } from '../helpers/oci-builder.js'
import { getManifest, pushBlob, putManifest } from '../helpers/registry-http.js'
import { tcpCounter } from '../helpers/tcp-counter.js'
import { requireTool, run } from '../helpers/tools.js'
import { buildImage } from '../helpers/oci-builder.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// The registry API through the proxy, request by request: chunked uploads, cross-repo
// mounts, Range reads, tag listing, deletes, large curl uploads, and connection reuse.

t.test('registry API workflows pass through unchanged', async (t) => {
  const registry = await registryFor(t)
  const relay = await tcpCounter(registry.port)
  t.teardown(() => relay.close())
  const proxy = await proxyFor(t, relay.url)
  const base = proxy.url

  t.test('chunked upload: POST, PATCH, PATCH, PUT', async (t) => {
    const data = pseudoRandom('chunked', 3 << 20)
    const digest = sha256(data)
    const start = await request(`${base}/v2/chunks/blobs/uploads/`, { method: 'POST' })
    await start.body.dump()
    t.equal(start.statusCode, 202)
    t.ok(start.headers['docker-upload-uuid'], 'Docker-Upload-UUID passes through')
    let location = new URL(String(start.headers['location']))
    t.equal(location.host, proxy.host, 'Location names the proxy')
    let offset = 0
    for (const size of [1 << 20, 2 << 20]) {
      const chunk = data.subarray(offset, offset + size)
      const patch = await request(location, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + size - 1}`, 'content-length': String(size) },
        body: chunk,
      })
      await patch.body.dump()
      t.equal(patch.statusCode, 202, `PATCH ${offset}+${size} accepted`)
      offset += size
      t.equal(patch.headers['range'], `0-${offset - 1}`, 'Range reports the bytes received')
      location = new URL(String(patch.headers['location']))
      t.equal(location.host, proxy.host)
    }
    location.searchParams.set('digest', digest)
    const put = await request(location, { method: 'PUT', headers: { 'content-length': '0' } })
    await put.body.dump()
    t.equal(put.statusCode, 201, 'upload completed')
    t.equal(put.headers['docker-content-digest'], digest)
    const head = await request(`${registry.url}/v2/chunks/blobs/${digest}`, { method: 'HEAD' })
    await head.body.dump()
    t.equal(Number(head.headers['content-length']), data.length, 'the registry holds every byte')
  })

  t.test('cross-repository mount', async (t) => {
    const b = blob(pseudoRandom('mount', 4096), 'application/octet-stream')
    await pushBlob(base, 'src/app', b)
    const mount = await request(`${base}/v2/dst/app/blobs/uploads/?mount=${b.digest}&from=src/app`, { method: 'POST' })
    await mount.body.dump()
    t.equal(mount.statusCode, 201, 'mounted')
    t.equal(new URL(String(mount.headers['location'])).host, proxy.host)
    const head = await request(`${base}/v2/dst/app/blobs/${b.digest}`, { method: 'HEAD' })
    await head.body.dump()
    t.equal(head.statusCode, 200, 'the blob is in the target repository')
  })

  t.test('Range read of a blob', async (t) => {
    const b = blob(pseudoRandom('range', 10_000), 'application/octet-stream')
    await pushBlob(base, 'ranged', b)
    const res = await request(`${base}/v2/ranged/blobs/${b.digest}`, { headers: { range: 'bytes=100-199' } })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.statusCode, 206)
    t.ok(body.equals(b.bytes.subarray(100, 200)), 'exactly the requested bytes')
    t.equal(res.headers['content-range'], 'bytes 100-199/10000')
  })

  t.test('tags, catalog and deletes', async (t) => {
    const image = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'tags' })
    for (const bl of [image.config, ...image.layers]) await pushBlob(base, 'tagged', bl)
    for (const tag of ['a', 'b', 'c']) t.equal((await putManifest(base, 'tagged', tag, image.manifest)).status, 201)
    for (const path of ['/v2/tagged/tags/list', '/v2/tagged/tags/list?n=2', '/v2/_catalog']) {
      const direct = await request(`${registry.url}${path}`)
      const proxied = await request(`${base}${path}`)
      t.equal(proxied.statusCode, direct.statusCode, `${path}: same status`)
      t.equal(await proxied.body.text(), await direct.body.text(), `${path}: same body`)
      t.equal(proxied.headers['link'], direct.headers['link'], `${path}: same Link`)
    }
    const del = await request(`${base}/v2/tagged/manifests/${image.manifest.digest}`, { method: 'DELETE' })
    await del.body.dump()
    t.equal(del.statusCode, 202, 'manifest deleted through the proxy')
    t.equal((await getManifest(registry.url, 'tagged', 'a')).status, 404, 'gone from the registry')
  })

  t.test('curl uploads over 1 MiB (Expect: 100-continue)', async (t) => {
    requireTool('curl', 'apt-get install -y curl')
    const data = pseudoRandom('curl', 2 << 20)
    const digest = sha256(data)
    const start = await request(`${base}/v2/curled/blobs/uploads/`, { method: 'POST' })
    await start.body.dump()
    const location = new URL(String(start.headers['location']))
    location.searchParams.set('digest', digest)
    const file = join(mkdtempSync(join(tmpdir(), 'mg-curl-')), 'blob')
    writeFileSync(file, data)
    const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${file}`, location.toString()])
    t.equal(r.stdout, '201', `curl's PUT with Expect: 100-continue succeeds (${r.stderr})`)
  })

  t.test('HEAD requests reuse upstream connections', async (t) => {
    const b = blob(pseudoRandom('heads', 512), 'application/octet-stream')
    await pushBlob(base, 'heads', b)
    const before = relay.connections()
    for (let i = 0; i < 50; i++) {
      // reset: false, or undici itself would ask the proxy to close after each HEAD.
      const res = await request(`${base}/v2/heads/blobs/${b.digest}`, { method: 'HEAD', reset: false })
      await res.body.dump()
      t.equal(res.statusCode, 200)
      t.notOk(res.headers['connection'] === 'close', 'the client connection stays open')
    }
    t.ok(relay.connections() - before <= 2, `50 HEADs used ${relay.connections() - before} new upstream connections`)
  })
})
