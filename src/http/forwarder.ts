import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { RegistryError } from '../oci/error-code.js'
import { type ClientOrigin, clientOrigin } from './client-origin.js'
import type { Exchange } from './exchange.js'
import { CLIENT_CLOSED, writeRegistryError } from './error-mapper.js'
import { stopWatching, watchResponseBody } from './idle-timeout.js'
import { countRequest } from './request-metrics.js'
import type { Services } from './services.js'
import type { ResponseObserver } from './traffic-observer.js'

// The pass-through itself: one undici dispatch per request, streaming the client's body up
// and the registry's body down with backpressure both ways, headers copied in a single pass.
// @fastify/http-proxy routes the requests and hands bodies over as streams; this replaces
// @fastify/reply-from's per-request machinery (a Readable, header copies, retries, reply
// hooks), which the profile showed as most of the proxy's cost per small request.

/** An answer the seam wants to see whole before the client does (a list PUT, docker's mounts). */
export interface BufferedResponse {
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** Decides what the client gets: the registry's answer (`pass`) or an error instead. */
export type ResponseInterceptor = (response: BufferedResponse) => Promise<RegistryError | 'pass'>

export type Forward = (exchange: Exchange, res: ServerResponse, intercept?: ResponseInterceptor) => void

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection. `expect` too: Node has
// already answered the client's 100-continue, and undici refuses the header (docs/passthrough.md).
const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'expect', 'host'])
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'transfer-encoding'])
/** Responses the forwarder owns (counted on finish), as opposed to answers of the app's own. */
export const forwarded = new WeakSet<ServerResponse>()

/** Largest registry answer the seam reads whole (error bodies, empty 201/202s). */
const MAX_INTERCEPTED_BYTES = 64 << 10

export function createForwarder(services: Services, observe: ResponseObserver): Forward {
  const { config, metrics } = services
  const upstreamHost = new URL(config.upstream).host
  const upstreamPrefix = `${config.upstream}/`
  const trust = config.trustForwardedHeaders
  const tls = config.tls.cert !== undefined
  const idleMs = config.server.bodyIdleTimeoutMs
  const writers = new WriterCount(config.server.maxUploadsPerClient)

  return function forward(request, res, intercept) {
    forwarded.add(res)
    const origin = clientOrigin(request, trust, tls)
    const method = request.method
    const isRead = method === 'GET' || method === 'HEAD'
    const body = isRead ? null : request.body instanceof Readable ? request.body : request.raw
    // Reads have a pool of their own, so they never queue behind uploads that stall.
    const dispatcher = isRead ? services.passthroughReads : services.passthrough
    const writer = isRead ? undefined : clientAddress(request, trust)
    if (writer !== undefined && !writers.enter(writer)) {
      countRequest(metrics, method, 429, request.raw.socket)
      closeIfUnread(request, res)
      writeRegistryError(res, tooManyWrites(config.server.maxUploadsPerClient))
      return
    }
    let controller: Dispatcher.DispatchController | undefined
    let done = false

    // The client went away: stop the upstream request too (an upload left half-sent is
    // refused by the registry on its digest check; a download is simply cut).
    const onClientGone = (): void => {
      if (!done && controller !== undefined && !controller.aborted) controller.abort(new Error('the client closed the connection'))
    }
    res.once('close', onClientGone)

    // Every way a forwarded request ends comes through here once: count it then, rather
    // than with one more listener per response.
    const finish = (): void => {
      done = true
      res.off('close', onClientGone)
      if (writer !== undefined) writers.leave(writer)
      stopWatching(res)
      // A client that left before its answer was sent is not an answer of the proxy's.
      countRequest(metrics, method, res.writableFinished || res.headersSent ? res.statusCode : CLIENT_CLOSED, request.raw.socket)
    }

    const chunks: Buffer[] = []
    let buffered = 0
    let status = 0
    let upstreamHeaders: IncomingHttpHeaders = {}

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c
        if (res.destroyed) c.abort(new Error('the client closed the connection'))
      },
      onResponseStart(c, statusCode, headers) {
        status = statusCode
        upstreamHeaders = headers
        if (intercept !== undefined) return
        observe(request, statusCode, headers)
        closeIfUnread(request, res)
        res.writeHead(statusCode, responseHeaders(headers, upstreamPrefix, origin))
        if (method === 'HEAD') return
        watchResponseBody(res, idleMs)
        res.on('drain', () => c.resume())
      },
      onResponseData(c, chunk) {
        if (intercept !== undefined) {
          buffered += chunk.length
          if (buffered > MAX_INTERCEPTED_BYTES) c.abort(new Error('registry answer too large to inspect'))
          else chunks.push(chunk)
          return
        }
        if (!res.write(chunk)) c.pause()
      },
      onResponseEnd() {
        if (intercept === undefined) {
          res.end()
          finish()
          return
        }
        const response = { statusCode: status, headers: upstreamHeaders, body: Buffer.concat(chunks, buffered) }
        intercept(response).then(
          (verdict) => {
            closeIfUnread(request, res)
            if (verdict === 'pass') {
              observe(request, status, upstreamHeaders)
              res.writeHead(status, responseHeaders(upstreamHeaders, upstreamPrefix, origin))
              res.end(method === 'HEAD' ? undefined : response.body)
            } else {
              writeRegistryError(res, verdict)
            }
            finish()
          },
          (err: unknown) => {
            request.log.error({ err }, 'inspecting the registry answer failed')
            writeRegistryError(res, RegistryError.of('UNKNOWN', `manifest-guard internal error (request ${request.id})`, undefined, 500))
            finish()
          },
        )
      },
      onResponseError(_c, err) {
        if (done) return
        if (res.headersSent) {
          // Mid-body: the only honest signal left is to cut the connection.
          res.destroy(err)
        } else if (!res.destroyed) {
          closeIfUnread(request, res)
          writeRegistryError(res, upstreamFailure(config.upstream, err))
        }
        finish()
      },
    }

    dispatcher.dispatch(
      {
        method: method as Dispatcher.HttpMethod,
        path: request.url,
        headers: requestHeaders(request, upstreamHost, origin, trust),
        body,
        // undici closes the socket after every HEAD (nodejs/undici#258); registries send no
        // body with HEAD, and clients HEAD every blob before pushing it.
        ...(method === 'HEAD' ? { reset: false } : {}),
      },
      handler,
    )
  }
}

export function requestHeaders(request: Exchange, upstreamHost: string, origin: ClientOrigin, trust: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  const given = request.headers
  for (const name in given) {
    if (DROP_REQUEST.has(name) || (!trust && name === 'forwarded')) continue
    const v = given[name]
    if (v !== undefined) out[name] = v
  }
  const connection = given.connection
  // Headers the client named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
  if (typeof connection === 'string' && connection !== 'keep-alive' && connection !== 'close') {
    for (const name of connection.toLowerCase().split(',')) delete out[name.trim()]
  }
  out['host'] = upstreamHost
  // distribution builds upload Locations from these, so they point back at the proxy.
  out['x-forwarded-host'] = origin.host
  out['x-forwarded-proto'] = origin.proto
  const peer = request.raw.socket.remoteAddress ?? ''
  const prior = trust ? given['x-forwarded-for'] : undefined
  out['x-forwarded-for'] = prior === undefined ? peer : `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}`
  return out
}

export function responseHeaders(headers: IncomingHttpHeaders, upstreamPrefix: string, origin: ClientOrigin): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) {
    if (DROP_RESPONSE.has(name)) continue
    const v = headers[name]
    if (v !== undefined) out[name] = v
  }
  const location = headers.location
  // A registry that ignores X-Forwarded-* still names itself: point the client back here.
  if (typeof location === 'string' && location.startsWith(upstreamPrefix)) {
    out['location'] = `${origin.proto}://${origin.host}${location.slice(upstreamPrefix.length - 1)}`
  }
  return out
}

/**
 * An answer that comes before the client finished sending its body (the registry refused an
 * upload early, or died) ends the connection: the rest of the body has nowhere to go, and a
 * connection left half-read would hold the server open until its keep-alive timeout.
 */
export function closeIfUnread(request: Exchange, res: ServerResponse): void {
  if (!request.raw.complete && !res.headersSent) res.setHeader('connection', 'close')
}

/** Writes in flight to the registry per client address, capped. */
class WriterCount {
  readonly #counts = new Map<string, number>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  enter(client: string): boolean {
    const n = this.#counts.get(client) ?? 0
    if (n >= this.#max) return false
    this.#counts.set(client, n + 1)
    return true
  }

  leave(client: string): void {
    const n = (this.#counts.get(client) ?? 1) - 1
    if (n <= 0) this.#counts.delete(client)
    else this.#counts.set(client, n)
  }
}

/** The client's address: the socket's, or the first hop an ingress reports when trusted. */
function clientAddress(request: Exchange, trust: boolean): string {
  const forwardedFor = trust ? request.headers['x-forwarded-for'] : undefined
  const first = (Array.isArray(forwardedFor) ? forwardedFor[0] : forwardedFor)?.split(',')[0]?.trim()
  return first !== undefined && first !== '' ? first : (request.raw.socket.remoteAddress ?? '')
}

function tooManyWrites(max: number): RegistryError {
  return new RegistryError(
    429,
    [{ code: 'TOOMANYREQUESTS', message: `manifest-guard: this client already has ${max} uploads in flight (server.maxUploadsPerClient); retry when some finish` }],
    { 'retry-after': '1' },
  )
}

/** A failed pass-through as a prompt OCI error: 504 for timeouts, 502 otherwise. */
export function upstreamFailure(upstream: string, error: Error & { code?: string; cause?: unknown }): RegistryError {
  const cause = (error.cause ?? error) as { code?: string; message?: string }
  const code = error.code ?? cause.code ?? ''
  const timedOut = /TIMEOUT/.test(code)
  const what = code === 'ECONNREFUSED' || cause.code === 'ECONNREFUSED' ? 'refused the connection' : timedOut ? 'did not answer in time' : `failed (${code || cause.message || 'unknown'})`
  return RegistryError.of('UNAVAILABLE', `manifest-guard: the registry at ${upstream} ${what}`, undefined, timedOut ? 504 : 502)
}
