import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { RegistryError } from '../oci/error-code.js'
import { type ClientOrigin, clientOrigin } from './client-origin.js'
import { ClientSlots } from './client-slots.js'
import type { Exchange } from './exchange.js'
import { CLIENT_CLOSED, writeRegistryError } from './error-mapper.js'
import { stopWatching, watchResponseBody } from './idle-timeout.js'
import { countRequest } from './request-metrics.js'
import type { Services } from './services.js'
import type { CarryRead, Forward, ResponseInterceptor, ResponseObserver } from './contracts.js'

// The pass-through itself: one undici dispatch per request, streaming the client's body up
// and the registry's body down with backpressure both ways, headers copied in a single pass.
// @fastify/http-proxy routes the requests and hands bodies over as streams; this replaces
// @fastify/reply-from's per-request machinery (a Readable, header copies, retries, reply
// hooks), which the profile showed as most of the proxy's cost per small request.

// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection. `expect` too: Node has
// already answered the client's 100-continue, and undici refuses the header (docs/passthrough.md).
const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'upgrade', 'transfer-encoding', 'expect', 'host'])
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'upgrade', 'transfer-encoding'])
/** Responses the forwarder owns (counted on finish), as opposed to answers of the app's own. */
export const forwarded = new WeakSet<ServerResponse>()

/**
 * Requests whose writer slot the list push took before reading the body (list-push.ts): it
 * gives the slot back when the response closes, so the forwarder neither takes nor frees one.
 */
export const writeSlotHeld = new WeakSet<IncomingMessage>()
const HELD: Pick<ClientSlots, 'leave'> = { leave: () => {} }

/** Largest registry answer the seam reads whole (error bodies, empty 201/202s). */
const MAX_INTERCEPTED_BYTES = 64 << 10

export function createForwarder(services: Services, observe: ResponseObserver, carryRead?: CarryRead): Forward {
  const { config, metrics } = services
  const upstreamHost = new URL(config.upstream).host
  const upstreamPrefix = `${config.upstream}/`
  const trust = config.trustForwardedHeaders
  const tls = config.tls.cert !== undefined
  const idleMs = config.server.bodyIdleTimeoutMs
  const writers = services.writeSlots
  const readers = new ClientSlots(config.server.maxReadsPerClient)

  const forward: Forward = (request, res, intercept) => {
    forwarded.add(res)
    const method = request.method
    const client = clientAddress(request, trust)
    if (method !== 'GET' && method !== 'HEAD') {
      if (writeSlotHeld.has(request.raw)) return send(request, res, intercept, HELD, client)
      if (writers.tryEnter(client)) return send(request, res, intercept, writers, client)
      countRequest(metrics, method, 429, request.raw.socket)
      closeIfUnread(request, res)
      writeRegistryError(res, tooManyWrites(writers.max))
      return
    }
    const read = (): void => {
      if (carryRead === undefined || intercept !== undefined) return send(request, res, intercept, readers, client)
      carryRead(
        request,
        res,
        () => readers.leave(client),
        () => send(request, res, undefined, readers, client),
      )
    }
    if (readers.tryEnter(client)) return read()
    // Past its share of read connections: wait for one of its own reads to finish.
    const start = (): void => {
      res.off('close', goneWhileWaiting)
      read()
    }
    const goneWhileWaiting = (): void => {
      if (readers.withdraw(client, start)) countRequest(metrics, method, CLIENT_CLOSED, request.raw.socket)
    }
    res.once('close', goneWhileWaiting)
    readers.wait(client, start)
  }
  return forward

  /** Sends one request upstream and its answer back, holding one of `client`'s `slots` meanwhile. */
  function send(request: Exchange, res: ServerResponse, intercept: ResponseInterceptor | undefined, slots: Pick<ClientSlots, 'leave'>, client: string): void {
    const origin = clientOrigin(request, trust, tls)
    const method = request.method
    const isRead = method === 'GET' || method === 'HEAD'
    const body = isRead ? null : request.body instanceof Readable ? request.body : request.raw
    // Reads have a pool of their own, so they never queue behind uploads that stall.
    const dispatcher = isRead ? services.passthroughReads : services.passthrough
    let controller: Dispatcher.DispatchController | undefined
    let done = false
    let gone = false

    // The client went away: stop the upstream request too (an upload left half-sent is
    // refused by the registry on its digest check; a download is simply cut). Its doing,
    // not the proxy's: noted at info when it left mid-upload, never logged as a failure.
    const noteGone = (): void => {
      if (gone) return
      gone = true
      if (!request.raw.complete) logLeftMidBody(request, method)
    }
    const onClientGone = (): void => {
      if (done) return
      noteGone()
      if (controller !== undefined && !controller.aborted) controller.abort(new Error('the client closed the connection'))
    }
    // A response queued behind another on a pipelining client's connection hears nothing when
    // that connection goes (Node emits 'close' only on its request): a paused download would
    // hold its registry connection, and the proxy's shutdown, for ever.
    const onRequestClose = (): void => {
      if (request.raw.socket?.destroyed === true) onClientGone()
    }
    res.once('close', onClientGone)
    request.raw.once('close', onRequestClose)

    // Every way a forwarded request ends comes through here once: count it then, rather
    // than with one more listener per response.
    const finish = (): void => {
      done = true
      res.off('close', onClientGone)
      request.raw.off('close', onRequestClose)
      slots.leave(client)
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
          async (verdict) => {
            if (verdict === 'pass') {
              // Held until the observer has learned from it (a manifest push's ledger record).
              await observe(request, status, upstreamHeaders)
              closeIfUnread(request, res)
              res.writeHead(status, responseHeaders(upstreamHeaders, upstreamPrefix, origin))
              res.end(method === 'HEAD' ? undefined : response.body)
            } else {
              closeIfUnread(request, res)
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
        // The client's body failing as it leaves reaches undici before the response's close.
        if (res.destroyed || leftMidBody(request.raw)) noteGone()
        // The registry's address goes to the log, for operators; never to the client.
        else request.log.warn({ event: 'upstream.failed', upstream: config.upstream, method, code: failureCode(err) }, 'the request to the registry failed')
        if (res.headersSent) {
          // Mid-body: the only honest signal left is to cut the connection.
          res.destroy(err)
        } else if (!res.destroyed) {
          closeIfUnread(request, res)
          writeRegistryError(res, upstreamFailure(err))
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
  // A read's body is never sent on (distribution ignores it; Node discards it once the answer
  // is out), so its length must not be either: the registry would wait for bytes that never come.
  const read = request.method === 'GET' || request.method === 'HEAD'
  for (const name in given) {
    if (DROP_REQUEST.has(name) || (!trust && name === 'forwarded') || (read && name === 'content-length')) continue
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

/** Whether the client's connection closed while its request body was still arriving. */
function leftMidBody(req: IncomingMessage): boolean {
  return !req.complete && (req.destroyed || req.socket?.destroyed === true)
}

/**
 * A client that closes its connection before its request body is complete (a cancelled push,
 * a CI job killed, a socket let go after server.bodyIdleTimeoutMs of silence): one info line,
 * the same event a list push cut half-way logs.
 */
function logLeftMidBody(request: Exchange, method: string): void {
  const path = request.registryPath
  request.log.info(
    { event: 'client.closed', method, repository: path !== null && 'name' in path ? path.name : undefined },
    'the client closed the connection before sending the whole body; the registry request was cancelled',
  )
}

/**
 * An answer that comes before the client finished sending its body (the registry refused an
 * upload early, or died) ends the connection: the rest of the body has nowhere to go, and a
 * connection left half-read would hold the server open until its keep-alive timeout.
 */
export function closeIfUnread(request: Exchange, res: ServerResponse): void {
  if (!request.raw.complete && !res.headersSent) res.setHeader('connection', 'close')
}

/**
 * The client's address: the socket's or, behind a trusted ingress, the last X-Forwarded-For
 * entry, the one the ingress itself appended. The entries before it are whatever the client
 * sent, so counting by the first would let one client pass as many.
 */
export function clientAddress(request: Exchange, trust: boolean): string {
  const forwardedFor = trust ? request.headers['x-forwarded-for'] : undefined
  const last = (Array.isArray(forwardedFor) ? forwardedFor.at(-1) : forwardedFor)?.split(',').at(-1)?.trim()
  return last !== undefined && last !== '' ? last : (request.raw.socket.remoteAddress ?? '')
}

export function tooManyWrites(max: number): RegistryError {
  return new RegistryError(
    429,
    [{ code: 'TOOMANYREQUESTS', message: `manifest-guard: this client already has ${max} uploads in flight (server.maxUploadsPerClient); retry when some finish` }],
    { 'retry-after': '1' },
  )
}

/** A failed pass-through as a prompt OCI error: 504 for timeouts, 502 otherwise. */
export function upstreamFailure(error: Error & { code?: string; cause?: unknown }): RegistryError {
  const code = failureCode(error)
  const timedOut = /TIMEOUT/.test(code)
  // Clients learn what went wrong, not where the registry lives (the log names it).
  const what = code === 'ECONNREFUSED' ? 'refused the connection' : timedOut ? 'did not answer in time' : `failed (${code || 'unknown'})`
  return RegistryError.of('UNAVAILABLE', `manifest-guard: the registry ${what}`, undefined, timedOut ? 504 : 502)
}

/** The error code of a failed upstream request (undici's, or the socket's underneath). */
export function failureCode(error: Error & { code?: string; cause?: unknown }): string {
  const cause = (error.cause ?? error) as { code?: string }
  if (cause.code === 'ECONNREFUSED') return 'ECONNREFUSED'
  return error.code ?? cause.code ?? ''
}
