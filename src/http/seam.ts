import type { FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError } from '../oci/error-code.js'
import { parseRegistryPath, type RegistryPath } from '../oci/reference.js'
import { sendRegistryError } from './error-mapper.js'
import type { Forward, ResponseInterceptor } from './forwarder.js'
import { mountInterceptor } from './mount.js'
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
  /** Sends the request upstream; an interceptor sees the registry's answer first. */
  forward: (intercept?: ResponseInterceptor) => void,
) => unknown

export type Seam = (request: FastifyRequest, reply: FastifyReply) => unknown

export type Route = 'refuse' | 'list-push' | 'mount' | 'forward'

/** The seam's one decision: what happens to a request, from its method and path alone. */
export function route(method: string, path: RegistryPath): Route {
  if (path.kind === 'invalid') return 'refuse'
  if (method === 'PUT' && path.kind === 'manifest') return 'list-push'
  if (method === 'POST' && path.kind === 'upload') return 'mount'
  return 'forward'
}

export function pathOf(url: string): RegistryPath {
  const query = url.indexOf('?')
  return parseRegistryPath(query === -1 ? url : url.slice(0, query))
}

export function createSeam(services: Services, forward: Forward, onManifestPut: ManifestPutHandler): Seam {
  return function seam(request: FastifyRequest, reply: FastifyReply) {
    const path = pathOf(request.url)
    request.registryPath = path
    switch (route(request.method, path)) {
      case 'refuse':
        return sendRegistryError(reply, RegistryError.of('NAME_INVALID', `manifest-guard: ${(path as { reason: string }).reason}`))
      case 'list-push':
        return onManifestPut(request, reply, path as Extract<RegistryPath, { kind: 'manifest' }>, (intercept) => {
          reply.hijack()
          forward(request, reply.raw, intercept)
        })
      case 'mount':
        reply.hijack()
        return forward(request, reply.raw, mountInterceptor(services, request, (path as { name: string }).name))
      case 'forward':
        reply.hijack()
        return forward(request, reply.raw)
    }
  }
}
