import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyInstance } from 'fastify'
import type { Seam } from './seam.js'
import type { Services } from './services.js'

// The pass-through routes: every method on /v2/… goes to the seam. @fastify/http-proxy owns
// the routes and the content parsers that hand request bodies over as streams (nothing is
// buffered); the forwarding itself is the forwarder's, called from the seam.

const METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

export async function registerPassthrough(app: FastifyInstance, services: Services, seam: Seam): Promise<void> {
  // fastify's own parsers (application/json, text/plain) would read a body whole and keep it
  // from the registry: a blob uploaded as text/plain would reach it empty. The plugin's
  // parsers hand every body over as a stream, whatever its content type.
  app.removeAllContentTypeParsers()
  const proxyOptions: FastifyHttpProxyOptions = {
    upstream: services.config.upstream,
    prefix: '/v2',
    rewritePrefix: '/v2',
    httpMethods: METHODS,
    // Given so the plugin's reply-from creates no connection pool of its own.
    undici: services.passthrough as never,
    disableRequestLogging: true,
    handler: (request, reply) => seam(request, reply),
  }
  await app.register(httpProxy, proxyOptions)
}
