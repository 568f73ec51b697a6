import type { FastifyRequest } from 'fastify'
import { clientKind, mountRefusedMessage } from '../diagnose/message.js'
import { RegistryError } from '../oci/error-code.js'
import type { ResponseInterceptor } from './forwarder.js'
import type { Services } from './services.js'

// POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>. When the source no longer holds
// the blob the registry opens a normal upload (202) instead. skopeo, buildah and podman then
// upload the blob themselves; docker gives up with `error mounting <digest>`, which says
// nothing of why. For docker only, the 202 becomes an error that explains it, and the upload
// session the registry opened is cancelled so nothing is left behind.

export function mountInterceptor(services: Services, request: FastifyRequest, repository: string): ResponseInterceptor | undefined {
  const query = request.query as Record<string, string | undefined>
  const digest = query['mount']
  const from = query['from']
  if (digest === undefined || from === undefined) return undefined
  if (clientKind(request.headers['user-agent']) !== 'docker') return undefined
  return async (response) => {
    if (response.statusCode !== 202) return 'pass'
    const message = mountRefusedMessage({ digest, from, repository, requestId: request.id })
    request.log.warn({ event: 'mount.refused', repository, from, digest, client: 'docker' }, message)
    const location = response.headers.location
    void services.client.cancelUpload(typeof location === 'string' ? location : undefined, request.headers.authorization)
    return RegistryError.of('BLOB_UNKNOWN', message, { digest, from, repository })
  }
}
