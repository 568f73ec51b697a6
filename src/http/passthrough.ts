import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { RegistryError } from '../oci/error-code.js'
import { forwardingHeaders } from './forwarding-headers.js'
import type { Services } from './services.js'

// The pass-through: every method on /v2/… streams to the registry and back. The plugin's
// own content parsers hand bodies over as streams; nothing here buffers. The one handler
// that may look at a body is the seam passed in.

export type ReplyOptions = Parameters<FastifyReply['from']>[1]
export type Seam = (request: FastifyRequest, reply: FastifyReply, dest: string, options: ReplyOptions) => unknown

const METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

export async function registerPassthrough(app: FastifyInstance, services: Services, seam: Seam): Promise<void> {
  const { config } = services
  const headers = forwardingHeaders({
    upstreamOrigin: config.upstream,
    trustForwarded: config.trustForwardedHeaders,
    tls: config.tls.cert !== undefined,
  })
  const proxyOptions: FastifyHttpProxyOptions = {
    upstream: config.upstream,
    prefix: '/v2',
    rewritePrefix: '/v2',
    httpMethods: METHODS,
    // reply-from takes any object with request(): ours keeps HEAD connections alive.
    undici: services.passthrough as never,
    disableRequestLogging: true,
    handler: seam,
    replyOptions: {
      // The plugin types its hooks for HTTP/2 servers too; this server is HTTP/1.1 only.
      rewriteRequestHeaders: (request, h) => headers.request(request as FastifyRequest, h as IncomingHttpHeaders),
      rewriteHeaders: (h, request) => headers.response(h as IncomingHttpHeaders, request as FastifyRequest),
      // reply-from retries GETs answered 503 on its own; a proxy must show the client what
      // the registry said.
      retryDelay: () => null,
      onError: (reply, { error }) => {
        reply.send(upstreamFailure(config.upstream, error as Error & { cause?: unknown }))
      },
    },
  }
  await app.register(httpProxy, proxyOptions)
}

/** A failed pass-through as a prompt OCI error: 504 for timeouts, 502 otherwise. */
function upstreamFailure(upstream: string, error: Error & { cause?: unknown }): RegistryError {
  const cause = (error.cause ?? error) as { code?: string; message?: string }
  const timedOut = /TIMEOUT/.test(cause.code ?? '') || error.name === 'GatewayTimeoutError'
  const what = cause.code === 'ECONNREFUSED' ? 'refused the connection' : timedOut ? 'did not answer in time' : `failed (${cause.code ?? cause.message ?? 'unknown'})`
  return RegistryError.of('UNAVAILABLE', `manifest-guard: the registry at ${upstream} ${what}`, undefined, timedOut ? 504 : 502)
}
