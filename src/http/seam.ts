import type { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError } from '../oci/error-code.js'
import { parseRegistryPath, type RegistryPath } from '../oci/reference.js'
import { sendRegistryError } from './error-mapper.js'
import type { ReplyOptions, Seam } from './passthrough.js'
import { mountResponseHandler } from './mount.js'
import type { Services } from './services.js'

// The one interception seam. Every proxied request passes through here once: paths that
// could make the proxy and the registry disagree are refused, manifest PUTs go to the list
// push handler, docker's failed mounts are explained, and everything else streams straight
// through.

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the seam; read by the traffic observer. */
    registryPath: RegistryPath | null
  }
}

export type ManifestPutHandler = (
  request: FastifyRequest,
  reply: FastifyReply,
  path: Extract<RegistryPath, { kind: 'manifest' }>,
  /** Sends the request upstream; `onResponse` takes over the registry's answer. */
  forward: (onResponse?: UpstreamResponseHandler) => unknown,
) => unknown

export type UpstreamResponseHandler = (reply: FastifyReply, res: { statusCode: number; headers: Record<string, unknown>; stream: Readable }) => void

export function createSeam(services: Services, onManifestPut: ManifestPutHandler | undefined): Seam {
  return function seam(request: FastifyRequest, reply: FastifyReply, dest: string, options: ReplyOptions) {
    const query = request.url.indexOf('?')
    const path = parseRegistryPath(query === -1 ? request.url : request.url.slice(0, query))
    request.registryPath = path
    if (path.kind === 'invalid') return sendRegistryError(reply, RegistryError.of('NAME_INVALID', `manifest-guard: ${path.reason}`))
    const forward = (onResponse?: UpstreamResponseHandler): unknown =>
      reply.from(dest, onResponse === undefined ? options : { ...options, onResponse: (_req, rep, res) => onResponse(rep as FastifyReply, res as never) })
    if (onManifestPut !== undefined && request.method === 'PUT' && path.kind === 'manifest') return onManifestPut(request, reply, path, forward)
    if (path.kind === 'upload' && request.method === 'POST') return forward(mountResponseHandler(services, request, path.name))
    return forward()
  }
}
