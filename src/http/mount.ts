import type { FastifyReply, FastifyRequest } from 'fastify'
import { clientKind, mountRefusedMessage } from '../diagnose/message.js'
import { RegistryError } from '../oci/error-code.js'
import { sendRegistryError } from './error-mapper.js'
import type { UpstreamResponseHandler } from './seam.js'
import type { Services } from './services.js'

// POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>. When the source no longer holds
// the blob the registry opens a normal upload (202) instead. skopeo, buildah and podman then
// upload the blob themselves; docker gives up with `error mounting <digest>`, which says
// nothing of why. For docker only, the 202 becomes an error that explains it, and the upload
// session the registry opened is cancelled so nothing is left behind.

export function mountResponseHandler(services: Services, request: FastifyRequest, repository: string): UpstreamResponseHandler | undefined {
  const query = request.query as Record<string, string | undefined>
  const digest = query['mount']
  const from = query['from']
  if (request.method !== 'POST' || digest === undefined || from === undefined) return undefined
  if (clientKind(request.headers['user-agent']) !== 'docker') return undefined
  return (reply: FastifyReply, res) => {
    if (res.statusCode !== 202) {
      reply.send(res.stream)
      return
    }
    res.stream.resume()
    const location = reply.getHeader('location')
    const message = mountRefusedMessage({ digest, from, repository, requestId: request.id })
    request.log.warn({ event: 'mount.refused', repository, from, digest, client: 'docker' }, message)
    void services.client.cancelUpload(typeof location === 'string' ? location : undefined, request.headers.authorization)
    for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
    sendRegistryError(reply, RegistryError.of('BLOB_UNKNOWN', message, { digest, from, repository }))
  }
}
