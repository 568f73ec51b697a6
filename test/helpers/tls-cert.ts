import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireTool, run } from './tools.js'

/** A self-signed certificate for 127.0.0.1 (as a client verifies it), in a new directory. */
export async function selfSignedCert(prefix: string): Promise<{ dir: string; cert: string; key: string }> {
  requireTool('openssl', 'apt-get install -y openssl')
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const cert = join(dir, 'tls.crt')
  const key = join(dir, 'tls.key')
  const made = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert])
  if (made.code !== 0) throw new Error(`openssl req failed: ${made.stderr}`)
  return { dir, cert, key }
}
