import { readFileSync } from 'node:fs'
import type { Server as HttpsServer } from 'node:https'
import type { Logger } from '../observability/logger.js'

// The proxy's TLS certificate is read again when its files change (issue 23): cert-manager
// renews a certificate by rewriting the mounted Secret, and a process that read it once would
// serve the old one until it expires. Kubernetes swaps a Secret volume's files by renaming a
// symlink, which file watchers miss; comparing the bytes every few seconds never does.

/** How often the certificate files are compared with what is served. */
export const CERTIFICATE_CHECK_MS = 10_000

export interface CertificateFiles {
  readonly cert: string
  readonly key: string
}

/** Serves new certificate files once both read and pair up; a half-written pair waits for the next check. Returns a stop function. */
export function watchCertificate(server: HttpsServer, files: CertificateFiles, served: { cert: Buffer; key: Buffer }, logger: Logger, everyMs = CERTIFICATE_CHECK_MS): () => void {
  let current = served
  let complained = ''
  const check = (): void => {
    let next: { cert: Buffer; key: Buffer }
    try {
      next = { cert: readFileSync(files.cert), key: readFileSync(files.key) }
    } catch (err) {
      return complain(`cannot read the certificate files: ${(err as Error).message}`)
    }
    if (next.cert.equals(current.cert) && next.key.equals(current.key)) return
    try {
      server.setSecureContext(next)
    } catch (err) {
      // The key and certificate do not match (yet): keep serving the old pair.
      return complain(`the new certificate files are not a usable pair: ${(err as Error).message}`)
    }
    current = next
    complained = ''
    logger.info({ cert: files.cert }, 'TLS certificate reloaded')
  }
  const complain = (why: string): void => {
    if (why !== complained) logger.warn({ cert: files.cert }, `${why}; still serving the previous certificate`)
    complained = why
  }
  const timer = setInterval(check, everyMs)
  timer.unref()
  return () => clearInterval(timer)
}
