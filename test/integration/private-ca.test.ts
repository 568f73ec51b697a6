import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { twoPlatformIndex } from '../helpers/oci-builder.js'
import { errorsOf, pushChildren, putManifest } from '../helpers/registry-http.js'
import { selfSignedCert } from '../helpers/tls-cert.js'
import { freePort, requireTool, stopProcess, waitFor } from '../helpers/tools.js'
import { loadConfig } from '../../src/config/load.js'
import { createLedger } from '../../src/proxy/services.js'
import type { PushRecord } from '../../src/ledger/push-record.js'
import type { Digest } from '../../src/oci/digest.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// A registry whose certificate a private CA signed (issue 23: Harbor with internal TLS, a
// registry behind a company CA). Without caFile the proxy cannot reach it; with caFile the
// pass-through and the list checks both go over verified TLS; what was pushed is read back
// from the registry.

t.test('caFile: an HTTPS registry behind a private CA', async (t) => {
  const ca = await selfSignedCert('mg-private-ca-')
  const registry = await registryFor(t, { tls: { cert: ca.cert, key: ca.key } })

  const untrusting = await proxyFor(t, registry.url)
  const refused = await fetch(`${untrusting.url}/v2/`)
  await refused.arrayBuffer()
  t.equal(refused.status, 502, 'without caFile the registry is not trusted')

  const proxy = await proxyFor(t, registry.url, { caFile: ca.cert })
  const base = await fetch(`${proxy.url}/v2/`)
  await base.arrayBuffer()
  t.equal(base.status, 200, 'with caFile the pass-through reaches it')
  t.equal((await fetch(`${proxy.url}/readyz`)).status, 200, 'and readiness asks it')

  // A good list: its children checked over TLS, then forwarded.
  const good = twoPlatformIndex('private-ca-good')
  await pushChildren(proxy.url, 'ca/app', good.index)
  const accepted = await putManifest(proxy.url, 'ca/app', '1.0', good.index.manifest)
  t.equal(accepted.status, 201, 'a whole list is accepted')
  const trusting = new Agent({ connect: { ca: readFileSync(ca.cert) } })
  t.teardown(() => trusting.close())
  const stored = await request(`${registry.url}/v2/ca/app/manifests/1.0`, { dispatcher: trusting, headers: { accept: good.index.manifest.mediaType } })
  await stored.body.dump()
  t.equal(stored.statusCode, 200, 'the registry holds the list')
  t.equal(stored.headers['docker-content-digest'], good.index.manifest.digest, 'byte for byte')

  // A list whose arm64 child was never pushed: refused by the proxy's own lookups, which
  // needed the CA too (an untrusted lookup would fail as 503, not name the child).
  const broken = twoPlatformIndex('private-ca-broken')
  await pushChildren(proxy.url, 'ca/broken', { ...broken.index, children: [broken.amd64] })
  const rejected = await putManifest(proxy.url, 'ca/broken', '1.0', broken.index.manifest)
  t.equal(rejected.status, 400, 'a list naming a missing child is refused')
  const [first] = await errorsOf(rejected)
  t.equal(first?.code, 'MANIFEST_BLOB_UNKNOWN')
  t.match(first?.message, broken.arm64.manifest.digest.slice(7, 19), 'naming the missing child')
})

t.test('caFile and an ACL user: the ledger on rediss:// behind a private CA', async (t) => {
  requireTool('redis-server', 'apt-get install -y redis-server')
  const ca = await selfSignedCert('mg-redis-ca-')
  const port = await freePort()
  // TLS only, and no default user: the ACL user named in the URL, or nothing.
  const conf = join(ca.dir, 'redis.conf')
  writeFileSync(conf, ['user default off', 'user guard on >guard-password ~* +@all', ''].join('\n'))
  const redis = spawn(
    'redis-server',
    [conf, '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', ca.cert, '--tls-key-file', ca.key, '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let log = ''
  redis.stdout.on('data', (d: Buffer) => (log += d.toString()))
  redis.stderr.on('data', (d: Buffer) => (log += d.toString()))
  t.teardown(() => stopProcess(redis))
  await waitFor(async () => {
    if (redis.exitCode !== null) throw new Error(`redis-server exited: ${log}`)
    return log.includes('Ready to accept connections')
  }, 10_000, 'redis-server with TLS')

  const record: PushRecord = { digest: `sha256:${'a'.repeat(64)}` as Digest, repository: 'ca/app', tag: '1.0', mediaType: 'application/vnd.oci.image.manifest.v1+json', at: Date.now(), identity: undefined, source: 'proxy' }
  const ledgerOf = (values: Record<string, unknown>) =>
    createLedger(loadConfig({ values: { ledger: { store: 'redis', redisUrl: `rediss://guard@127.0.0.1:${port}/0`, redisPassword: 'guard-password', redisTimeoutMs: 2_000 }, ...values } }))

  const untrusting = ledgerOf({})
  t.teardown(() => untrusting.close())
  await t.rejects(untrusting.record(record), 'without caFile the Redis certificate is not trusted')

  const trusting = ledgerOf({ caFile: ca.cert })
  t.teardown(() => trusting.close())
  await trusting.record(record)
  const back = await trusting.pushesOf(record.digest)
  t.equal(back.length, 1, 'with caFile, as the ACL user named in the URL, a record is written and read back')
  t.equal(back[0]?.tag, '1.0')
})
