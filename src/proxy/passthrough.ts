import httpProxy, { type FastifyHttpProxyOptions } from '@fastify/http-proxy'
import type { FastifyInstance } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { Seam } from './seam.js'
import type { Pool } from 'undici'

// The pass-through routes: every method on /v2/… goes to the seam. @fastify/http-proxy owns
// the routes and the content parsers that hand request bodies over as streams (nothing is
// buffered); the forwarding itself is the forwarder's, called from the seam.

const METHODS = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS']

/** The client's own Content-Type, kept aside while fastify picks a body parser. */
const clientContentType = Symbol('clientContentType')
type Held = IncomingMessage & { [clientContentType]?: string | undefined }
/** What fastify is shown instead: a type its catch-all stream parser takes. */
const NEUTRAL_CONTENT_TYPE = 'application/octet-stream'

export async function registerPassthrough(app: FastifyInstance, upstream: { readonly origin: string; readonly pool: Pool }, seam: Seam): Promise<void> {
  // fastify's own parsers (application/json, text/plain) would read a body whole and keep it
  // from the registry: a blob uploaded as text/plain would reach it empty. The plugin's
  // parsers hand every body over as a stream, whatever its content type.
  app.removeAllContentTypeParsers()
  installContentTypeShield(app)
  const proxyOptions: FastifyHttpProxyOptions = {
    upstream: upstream.origin,
    prefix: '/v2',
    rewritePrefix: '/v2',
    httpMethods: METHODS,
    // Given so the plugin's reply-from creates no connection pool of its own.
    undici: upstream.pool as never,
    disableRequestLogging: true,
    handler: (request, reply) => seam(request, reply),
  }
  await app.register(httpProxy, proxyOptions)
}

/**
 * fastify answers 415 itself, before any parser, to a Content-Type it cannot read (empty,
 * `foo`, a type with characters RFC 9110 does not allow), where distribution takes the body
 * whatever its type. So while fastify chooses a parser it sees a neutral type, and the
 * client's own header is put back before any handler, the forwarder or a log reads it.
 */
function installContentTypeShield(app: FastifyInstance): void {
  app.addHook('preParsing', (request, _reply, payload, done) => {
    const raw = request.raw as Held
    if (raw.headers['content-type'] !== undefined) {
      raw[clientContentType] = raw.headers['content-type']
      raw.headers['content-type'] = NEUTRAL_CONTENT_TYPE
    }
    done(null, payload)
  })
  app.addHook('preValidation', (request, _reply, done) => {
    restoreContentType(request.raw)
    done()
  })
  // A request refused while parsing never reaches preValidation; its logs see the original.
  app.addHook('onError', (request, _reply, _error, done) => {
    restoreContentType(request.raw)
    done()
  })
}

function restoreContentType(req: IncomingMessage): void {
  const raw = req as Held
  if (!(clientContentType in raw)) return
  raw.headers['content-type'] = raw[clientContentType]
  delete raw[clientContentType]
}
