import type { FastifyRequest } from 'fastify'
import { findBlobUse } from '../diagnose/blob-owner.js'
import { mountRefusedMessage } from '../diagnose/message.js'
import { isDigest } from '../oci/digest.js'
import { RegistryError } from '../oci/error-code.js'
import type { ResponseInterceptor } from './contracts.js'
import type { RegistryClient } from '../upstream/registry-client.js'

// POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>. When the source does not hold
// the blob, the registry opens a normal upload (202) instead, as the distribution spec says.
// Every client but one reads that right: skopeo, buildah, podman and the docker engine upload
// the blob themselves. The docker CLI's `manifest push` gives up with "error mounting <digest>",
// which says nothing of why — except for Windows images, whose foreign layers are never in a
// registry. So the 202 is changed only for the docker CLI, and only when the blob is shown to
// belong to an ordinary image of the source repository; the upload session the registry opened
// is then cancelled so nothing is left behind. Anything else keeps the registry's answer.

/** Time the proxy spends finding out what the blob is, on the failure path only. */
const BLOB_USE_TIMEOUT_MS = 3_000

/** The docker CLI's manifest commands send `Docker-Client/<version> (<os>)`; the engine `docker/<version> …`. */
function isDockerCli(userAgent: string | undefined): boolean {
  return (userAgent ?? '').toLowerCase().startsWith('docker-client/')
}

export function mountInterceptor(client: RegistryClient, request: FastifyRequest, repository: string): ResponseInterceptor | undefined {
  const query = request.query as Record<string, string | undefined>
  const digest = query['mount']
  const from = query['from']
  if (!isDigest(digest) || from === undefined || !isDockerCli(request.headers['user-agent'])) return undefined
  return async (response) => {
    if (response.statusCode !== 202) return 'pass'
    const ctx = { authorization: request.headers.authorization, signal: AbortSignal.timeout(BLOB_USE_TIMEOUT_MS) }
    const use = await findBlobUse(client, from, digest, ctx)
    // Passed on, the refusal is logged with every other refused mount (traffic observer).
    if (use !== 'ordinary') return 'pass'
    const message = mountRefusedMessage({ digest, from, repository, requestId: request.id })
    request.log.warn({ event: 'mount.refused', repository, from, digest, client: 'docker', blobUse: use }, message)
    const location = response.headers.location
    void client.cancelUpload(typeof location === 'string' ? location : undefined, request.headers.authorization)
    return RegistryError.of('BLOB_UNKNOWN', message, { digest, from, repository })
  }
}
