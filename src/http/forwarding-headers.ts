import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { type ClientOrigin, clientOrigin } from './client-origin.js'

// Header handling for the pass-through, both directions. Everything not named here passes
// untouched: Authorization, WWW-Authenticate, Docker-Content-Digest, Docker-Upload-UUID,
// Range, OCI-* and the rest.

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, not to the message.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'transfer-encoding']

export interface ForwardingOptions {
  readonly upstreamOrigin: string
  readonly trustForwarded: boolean
  readonly tls: boolean
}

export function forwardingHeaders(options: ForwardingOptions): {
  request: (request: FastifyRequest, headers: IncomingHttpHeaders) => IncomingHttpHeaders
  response: (headers: IncomingHttpHeaders, request: FastifyRequest) => IncomingHttpHeaders
} {
  const upstreamPrefix = `${options.upstreamOrigin}/`
  return {
    request(request, headers) {
      for (const name of HOP_BY_HOP) delete headers[name]
      // undici refuses `Expect: 100-continue` (and so would 500 every large curl upload);
      // Node has already answered the client's expectation itself (DESIGN.md §7).
      delete headers['expect']
      const origin = clientOrigin(request, options.trustForwarded, options.tls)
      // distribution builds upload Locations from these, so they point back at the proxy.
      headers['x-forwarded-host'] = origin.host
      headers['x-forwarded-proto'] = origin.proto
      const peer = request.socket.remoteAddress ?? ''
      const prior = options.trustForwarded ? headers['x-forwarded-for'] : undefined
      headers['x-forwarded-for'] = prior === undefined ? peer : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}`
      if (!options.trustForwarded) delete headers['forwarded']
      return headers
    },
    response(headers, request) {
      for (const name of HOP_BY_HOP) delete headers[name]
      const location = headers.location
      // A registry that ignores X-Forwarded-* still names itself: point the client back here.
      if (typeof location === 'string' && location.startsWith(upstreamPrefix)) {
        headers.location = rebase(location.slice(upstreamPrefix.length - 1), clientOrigin(request, options.trustForwarded, options.tls))
      }
      return headers
    },
  }
}

function rebase(path: string, origin: ClientOrigin): string {
  return `${origin.proto}://${origin.host}${path}`
}
