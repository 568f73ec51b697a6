import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { assertOk, skopeo } from '../helpers/clients.js'
import { ociLayoutRef, twoPlatformIndex } from '../helpers/oci-builder.js'
import { CLI, spawnProxy } from '../helpers/proxy.js'
import { getManifest } from '../helpers/registry-http.js'
import { selfSignedCert } from '../helpers/tls-cert.js'
import { requireTool, run } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// TLS termination: docker refuses plain HTTP for registries off loopback, so the proxy can
// serve HTTPS itself. Clients verify its certificate; upload Locations say https.

t.test('the proxy serves HTTPS with its own certificate', async (t) => {
  const { dir, cert, key } = await selfSignedCert('mg-tls-')
  const registry = await registryFor(t)
  const proxy = await proxyFor(t, registry.url, { tls: { cert, key } })
  t.match(proxy.url, /^https:/)
  const agent = new Agent({ connect: { ca: readFileSync(cert) } })
  t.teardown(() => agent.close())

  const base = await request(`${proxy.url}/v2/`, { dispatcher: agent })
  await base.body.dump()
  t.equal(base.statusCode, 200, 'GET /v2/ over verified TLS')
  const upload = await request(`${proxy.url}/v2/tls/app/blobs/uploads/`, { method: 'POST', dispatcher: agent })
  await upload.body.dump()
  t.match(String(upload.headers['location']), new RegExp(`^https://${proxy.host}/v2/tls/app/blobs/uploads/`), 'upload Locations name https and the proxy')
  const ready = await request(`${proxy.url}/readyz`, { dispatcher: agent })
  await ready.body.dump()
  t.equal(ready.statusCode, 200)

  // skopeo with the proxy's CA: a verified TLS push through the proxy, validation included.
  const certDir = join(dir, 'certs')
  await run('mkdir', ['-p', certDir])
  writeFileSync(join(certDir, 'ca.crt'), readFileSync(cert))
  const { index } = twoPlatformIndex('tls')
  assertOk(await skopeo(['copy', '--all', '--dest-cert-dir', certDir, ociLayoutRef(index), `docker://${proxy.host}/tls/app:1.0`]), 'skopeo push over verified TLS')
  t.equal((await getManifest(registry.url, 'tls/app', '1.0')).status, 200, 'the list reached the registry')
  t.equal(proxy.logs.find((r) => r['event'] === 'push.accepted').length, 1, 'and was validated on the way')
})

t.test('manifest-guard healthcheck reports a healthy TLS proxy with a self-signed certificate, and says why when not', async (t) => {
  requireTool('openssl', 'apt-get install -y openssl')
  const dir = mkdtempSync(join(tmpdir(), 'mg-tls-'))
  const cert = join(dir, 'tls.crt')
  const key = join(dir, 'tls.key')
  // Self-signed, for the registry's public name: nothing a client at 127.0.0.1 could verify.
  const made = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=registry.example.com', '-keyout', key, '-out', cert])
  t.equal(made.code, 0, made.stderr)
  const registry = await registryFor(t)
  const proxy = await spawnProxy(['--upstream', registry.url, '--tls-cert', cert, '--tls-key', key], {}, undefined, 'https')
  const check = (): ReturnType<typeof run> => run(process.execPath, [CLI, 'healthcheck', '--listen', proxy.host, '--tls-cert', cert, '--tls-key', key])
  const healthy = await check()
  t.equal(healthy.code, 0, `healthy (${healthy.stderr})`)
  await proxy.stop()
  const down = await check()
  t.equal(down.code, 1, 'unhealthy once it is gone')
  t.match(down.stderr, `manifest-guard healthcheck: https://${proxy.host}/healthz failed: ECONNREFUSED`, 'and says why')

  const plain = await spawnProxy(['--upstream', registry.url])
  t.teardown(() => plain.stop())
  const mismatch = await run(process.execPath, [CLI, 'healthcheck', '--listen', plain.host, '--tls-cert', cert, '--tls-key', key])
  t.equal(mismatch.code, 1, 'TLS expected, plain HTTP served: unhealthy')
  t.match(mismatch.stderr, /failed: \S+ the listener does not speak TLS \(tls\.cert is set here: does the proxy serve TLS\?\)\n$/, 'on one line, saying what it means')
  const bad = await run(process.execPath, [CLI, 'healthcheck', '--listen', 'nowhere'])
  t.equal(bad.code, 1, 'a bad setting is unhealthy (1; Docker reserves 2)')
  t.equal(bad.stderr, 'manifest-guard healthcheck: invalid config: listen (flag --listen): expected HOST:PORT, e.g. 127.0.0.1:5001 or [::1]:5001, got "nowhere"\n', 'in one line, no stack')
})
