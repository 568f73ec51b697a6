import type { FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError } from '../oci/error-code.js'
import { parseRegistryPath, type RegistryPath } from '../oci/reference.js'
import { sendRegistryError } from './error-mapper.js'
import type { DeleteHandler, Forward, ManifestPutHandler, ResponseInterceptor } from './contracts.js'
import { mountInterceptor } from './mount.js'
import type { RegistryClient } from '../upstream/registry-client.js'

// The one interception seam. Every proxied request is decided here once — by route() for
// the fast lane's reads (which then skip fastify), by the handler for everything else: paths
// that could make the proxy and the registry disagree are refused, manifest PUTs go to the
// list push handler, docker's failed mounts are explained, and everything else streams
// straight through.

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the seam; read by the traffic observer. */
    registryPath: RegistryPath | null
  }
}

export type Seam = (request: FastifyRequest, reply: FastifyReply) => unknown

export type Route = 'refuse' | 'list-push' | 'mount' | 'delete' | 'forward'

/** The seam's one decision: what happens to a request, from its method and path alone. */
export function route(method: string, path: RegistryPath): Route {
  if (path.kind === 'invalid') return 'refuse'
  // Reads of such paths get the registry's own 404; a write is refused here, so no list
  // can reach the registry under a name or reference the proxy did not understand.
  if (path.kind === 'bad-manifest' && method === 'PUT') return 'refuse'
  if (method === 'PUT' && path.kind === 'manifest') return 'list-push'
  if (method === 'POST' && path.kind === 'upload') return 'mount'
  if (method === 'DELETE' && (path.kind === 'manifest' || path.kind === 'blob')) return 'delete'
  return 'forward'
}

export function pathOf(url: string): RegistryPath {
  const query = url.indexOf('?')
  return parseRegistryPath(query === -1 ? url : url.slice(0, query))
}

const REFUSALS = {
  name: RegistryError.of('NAME_INVALID', 'manifest-guard: invalid repository name (lower-case components of [a-z0-9._-], at most 255 characters)'),
  digest: RegistryError.of('DIGEST_INVALID', 'manifest-guard: invalid digest reference (sha256:<64 lower-case hex> or sha512:<128>)'),
  tag: RegistryError.of('TAG_INVALID', 'manifest-guard: invalid tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})'),
} as const

function refusal(path: RegistryPath): RegistryError {
  if (path.kind === 'bad-manifest') return REFUSALS[path.problem]
  return RegistryError.of('NAME_INVALID', `manifest-guard: ${path.kind === 'invalid' ? path.reason : 'invalid path'}`)
}

const passAnswer: ResponseInterceptor = async () => 'pass'

export function createSeam(client: RegistryClient, forward: Forward, onManifestPut: ManifestPutHandler, onDelete?: DeleteHandler): Seam {
  return function seam(request: FastifyRequest, reply: FastifyReply) {
    const path = pathOf(request.url)
    request.registryPath = path
    switch (route(request.method, path)) {
      case 'refuse':
        return sendRegistryError(reply, refusal(path))
      case 'list-push':
        return onManifestPut(request, reply, path as Extract<RegistryPath, { kind: 'manifest' }>, (intercept) => {
          reply.hijack()
          // Every manifest PUT's answer is held until the traffic observer has recorded the
          // push in the ledger: a client (or another replica) acting on a 201 finds it there.
          forward(request, reply.raw, intercept ?? passAnswer)
        })
      case 'mount':
        reply.hijack()
        return forward(request, reply.raw, mountInterceptor(client, request, (path as { name: string }).name))
      case 'delete':
        // A delete that would break a tagged list is refused (delete-guard.ts).
        if (onDelete !== undefined) {
          return onDelete(request, reply, path as Extract<RegistryPath, { kind: 'manifest' | 'blob' }>, () => {
            reply.hijack()
            forward(request, reply.raw)
          })
        }
        reply.hijack()
        return forward(request, reply.raw)
      case 'forward':
        reply.hijack()
        return forward(request, reply.raw)
    }
  }
}
