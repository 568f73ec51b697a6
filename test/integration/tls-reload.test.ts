import { copyFileSync, mkdtempSync, readFileSync, renameSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { connect } from 'node:tls'
import t from 'tap'
import { selfSignedCert } from '../helpers/tls-cert.js'
import { waitFor } from '../helpers/tools.js'
import { proxyFor } from '../helpers/fixture.js'

// The proxy's certificate is read again when its files change (issue 23: cert-manager renews
// by rewriting the mounted Secret). Kubernetes swaps a Secret volume's files by renaming a
// symlink; the test does the same. A half-written pair keeps the old certificate served.

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '')
      socket.end()
    })
    socket.on('error', reject)
  })
}

const fingerprintOf = (cert: string): string => new X509Certificate(readFileSync(cert)).fingerprint256

t.test('a renewed certificate is served without a restart', async (t) => {
  const first = await selfSignedCert('mg-reload-a-')
  const second = await selfSignedCert('mg-reload-b-')
  // The layout of a Secret volume: tls.crt -> ..data/tls.crt, ..data -> a timestamped directory.
  const volume = mkdtempSync(join(tmpdir(), 'mg-secret-volume-'))
  const publish = (name: string, cert: string, key: string): void => {
    const dir = mkdtempSync(join(volume, `..${name}-`))
    copyFileSync(cert, join(dir, 'tls.crt'))
    copyFileSync(key, join(dir, 'tls.key'))
    symlinkSync(dir, join(volume, '..data_tmp'))
    renameSync(join(volume, '..data_tmp'), join(volume, '..data'))
  }
  publish('first', first.cert, first.key)
  symlinkSync('..data/tls.crt', join(volume, 'tls.crt'))
  symlinkSync('..data/tls.key', join(volume, 'tls.key'))

  const proxy = await proxyFor(t, 'http://127.0.0.1:9', { tls: { cert: join(volume, 'tls.crt'), key: join(volume, 'tls.key') } }, { certificateCheckMs: 100 })
  const port = Number(proxy.host.split(':')[1])
  t.equal(await servedFingerprint(port), fingerprintOf(first.cert), 'the first certificate is served')

  // A pair that does not match (the new certificate, the old key): the old one stays.
  publish('half', second.cert, first.key)
  await waitFor(async () => proxy.logs.find((r) => String(r['msg']).includes('not a usable pair')).length > 0, 10_000, 'the mismatch to be noticed')
  t.equal(await servedFingerprint(port), fingerprintOf(first.cert), 'a mismatched pair is not served')

  publish('second', second.cert, second.key)
  await waitFor(async () => proxy.logs.find((r) => r['msg'] === 'TLS certificate reloaded').length > 0, 10_000, 'the reload')
  t.equal(await servedFingerprint(port), fingerprintOf(second.cert), 'the renewed certificate is served')
  t.not(fingerprintOf(first.cert), fingerprintOf(second.cert))
})
