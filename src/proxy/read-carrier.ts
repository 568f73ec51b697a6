import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Exchange } from './exchange.js'
import { CLIENT_CLOSED, writeRegistryError } from './error-mapper.js'
import type { CarryRead, ResponseObserver } from './contracts.js'
import { closeIfUnread, failureCode, requestHeaders, responseHeaders, upstreamFailure } from './forwarder.js'
import { clientOrigin, type ClientOrigin } from './client-origin.js'
import { stopWatching, watchResponseBody } from './idle-timeout.js'
import { countRequest } from './request-metrics.js'
import type { Services } from './services.js'
import { ChunkedBody } from '../upstream/chunked-body.js'
import { readResponseHead, type ResponseHead } from '../upstream/response-head.js'
import { type ConnectionOwner, type PooledConnection, SocketPool, UpstreamError } from '../upstream/socket-pool.js'

// The read carrier: how the fast lane's reads (GET and HEAD the seam forwards untouched) reach
// the registry. One request per kept-alive raw connection: the request head is written in one
// piece, the response head is read off the connection's own read buffer, handed to the
// traffic observer and written to the client through Node's ServerResponse (so keep-alive,
// TLS, the metrics and the idle timeout work as for every other answer), and then a
// Content-Length body goes from the registry's socket to the client's socket in large reads,
// each written once, without a parser, a handler call or an allocation per chunk.
//
// A chunked body (distribution's large listings) is decoded as it comes and written through
// the ServerResponse, which chunks it again for the client. An answer delimited by the
// connection's close, which distribution does not send, is handed to the undici forwarder
// before the client sees a byte: the carrier drops its connection and the forwarder asks again
// (GET and HEAD are safe to repeat, RFC 9110 §9.2.1). See docs/passthrough.md. The forwarder
// admits each read first (a client's share of read connections, client-slots.ts), so the
// carrier's connections are capped per client as the undici pools are.

export interface ReadCarrier {
  readonly carry: CarryRead
  /** The carrier's registry connections (tests count them). */
  readonly pool: SocketPool
  close(): Promise<void>
}

/** Each registry connection's read buffer: large reads, few wake-ups per blob. */
const READ_BUFFER_BYTES = 256 << 10
/** Registry connections of the carrier (the undici pools allow as many). */
const CONNECTIONS = 128
/** Idle registry connections close after this long (as the undici pools). */
const IDLE_MS = 30_000

interface Context {
  readonly pool: SocketPool
  readonly services: Services
  readonly observe: ResponseObserver
  readonly upstreamHost: string
  readonly upstreamPrefix: string
  readonly trust: boolean
  readonly tls: boolean
  readonly idleMs: number
  readonly headersMs: number
  readonly bodyMs: number
}

/** A carrier for a plain-HTTP registry; an HTTPS registry keeps the undici path (null). */
export function createReadCarrier(services: Services, observe: ResponseObserver): ReadCarrier | null {
  const { config } = services
  const upstream = new URL(config.upstream)
  if (upstream.protocol !== 'http:') return null
  const pool = new SocketPool({
    host: upstream.hostname.replace(/^\[|\]$/g, ''),
    port: upstream.port === '' ? 80 : Number(upstream.port),
    connections: CONNECTIONS,
    connectTimeoutMs: config.upstreamTimeouts.connectMs,
    idleTimeoutMs: IDLE_MS,
    readBufferBytes: READ_BUFFER_BYTES,
  })
  const ctx: Context = {
    pool,
    services,
    observe,
    upstreamHost: upstream.host,
    upstreamPrefix: `${config.upstream}/`,
    trust: config.trustForwardedHeaders,
    tls: config.tls.cert !== undefined,
    idleMs: config.server.bodyIdleTimeoutMs,
    headersMs: config.upstreamTimeouts.headersMs,
    bodyMs: config.upstreamTimeouts.bodyMs,
  }
  return {
    carry: (request, res, done, fallback) => new ReadTransfer(ctx, request, res, done, fallback).start(),
    pool,
    close: () => pool.close(),
  }
}

type Phase = 'connecting' | 'head' | 'body' | 'handed-over' | 'done'

/** One read, from acquiring a registry connection to giving it back. */
class ReadTransfer implements ConnectionOwner {
  readonly #ctx: Context
  readonly #request: Exchange
  readonly #res: ServerResponse
  readonly #origin: ClientOrigin
  readonly #done: () => void
  readonly #fallback: () => void
  #phase: Phase = 'connecting'
  #connection: PooledConnection | null = null
  /** A head split across reads, copied out of the reused buffer. */
  #partial: Buffer | null = null
  #received = false
  #keepAlive = false
  /** Body bytes still to come. */
  #remaining = 0
  /** The decoder of a chunked body (null for a Content-Length one). */
  #chunked: ChunkedBody | null = null
  /** The client's socket, when the body is written to it directly. */
  #direct: Socket | null = null
  /** Writes handed to the client's socket whose callback has not come yet. */
  #writes = 0
  /** Reading is paused until every write so far is done (the read buffer is still being sent). */
  #waiting = false
  readonly #onClientClose = (): void => this.#clientGone()
  readonly #onRequestClose = (): void => {
    if (this.#request.raw.socket?.destroyed === true) this.#clientGone()
  }
  readonly #onWritten = (): void => this.#written()
  readonly #onDrain = (): void => this.#drained()
  readonly #onPayload = (bytes: Buffer): void => {
    // Copied: the connection's buffer is read into again once this read returns.
    if (!this.#res.write(Buffer.from(bytes))) this.#waiting = true
  }

  constructor(ctx: Context, request: Exchange, res: ServerResponse, done: () => void, fallback: () => void) {
    this.#ctx = ctx
    this.#request = request
    this.#res = res
    this.#done = done
    this.#fallback = fallback
    this.#origin = clientOrigin(request, ctx.trust, ctx.tls)
  }

  start(): void {
    // A response queued behind another on a pipelining client's connection has no socket yet,
    // and Node never emits 'close' on it when that connection goes: only its request closes.
    // Without this, its registry connection (paused, as nothing takes the body) and the
    // client's read slot were held for ever.
    if (this.#request.raw.socket?.destroyed === true) return this.#clientGone()
    this.#res.once('close', this.#onClientClose)
    this.#request.raw.once('close', this.#onRequestClose)
    this.#ctx.pool.acquire((err, connection) => this.#acquired(err, connection))
  }

  #acquired(err: Error | null, connection: PooledConnection | null): void {
    if (this.#phase !== 'connecting') {
      // The client left while this request waited for a connection.
      if (connection !== null) this.#ctx.pool.release(connection, true)
      return
    }
    if (connection === null) return this.#fail(err ?? new UpstreamError('no connection', 'ECONNRESET'))
    this.#connection = connection
    connection.owner = this
    this.#phase = 'head'
    this.#ctx.pool.watch(connection, this.#ctx.headersMs)
    connection.socket.write(this.#head(), 'latin1')
  }

  /** The request head, as undici would send it: the forwarder's own header rules. */
  #head(): string {
    const request = this.#request
    const headers = requestHeaders(request, this.#ctx.upstreamHost, this.#origin, this.#ctx.trust)
    let head = `${request.method} ${request.url} HTTP/1.1\r\n`
    for (const name in headers) {
      const v = headers[name] as string | string[]
      if (typeof v === 'string') head += `${name}: ${v}\r\n`
      else for (const one of v) head += `${name}: ${one}\r\n`
    }
    return `${head}\r\n`
  }

  onRead(n: number, buffer: Buffer): boolean {
    if (this.#phase === 'body') return this.#chunked === null ? this.#body(buffer.subarray(0, n)) : this.#chunkedBody(buffer.subarray(0, n))
    if (this.#phase !== 'head') return false
    this.#received = true
    let data = this.#partial === null ? buffer.subarray(0, n) : Buffer.concat([this.#partial, buffer.subarray(0, n)])
    this.#partial = null
    for (;;) {
      const head = readResponseHead(data)
      if (head === 'incomplete') {
        this.#partial = Buffer.from(data)
        return true
      }
      if (head === 'invalid') {
        this.#fail(new UpstreamError('the registry sent a response head the proxy cannot read', 'UND_ERR_INVALID_RES'))
        return false
      }
      // 1xx answers are interim: the final one follows on the same connection.
      if (head.status >= 200) return this.#responseStart(head, data.subarray(head.size))
      data = data.subarray(head.size)
      if (data.length === 0) return true
    }
  }

  #responseStart(head: ResponseHead, rest: Buffer): boolean {
    const request = this.#request
    const res = this.#res
    const method = request.method
    const bodiless = method === 'HEAD' || head.status === 204 || head.status === 304
    if (!bodiless && head.framing.kind === 'close') return this.#handOver()
    const chunked = !bodiless && head.framing.kind === 'chunked'
    const length = bodiless || head.framing.kind !== 'length' ? 0 : head.framing.length
    this.#keepAlive = head.keepAlive
    this.#ctx.observe(request, head.status, head.headers)
    closeIfUnread(request, res)
    const headers = responseHeaders(head.headers, this.#ctx.upstreamPrefix, this.#origin)
    // Transfer-Encoding wins over a length (RFC 9112 §6.3): the client gets Node's chunking only.
    if (chunked) delete headers['content-length']
    try {
      res.writeHead(head.status, headers)
    } catch (err) {
      // A header value Node will not send (a control character): as undici would, 502.
      res.removeHeader('content-length')
      this.#fail(new UpstreamError(`the registry sent a header the proxy cannot pass on (${(err as Error).message})`, 'UND_ERR_INVALID_RES'))
      return false
    }
    if (chunked) {
      this.#phase = 'body'
      this.#chunked = new ChunkedBody()
      this.#ctx.pool.watch(this.#connection!, this.#ctx.bodyMs)
      watchResponseBody(res, this.#ctx.idleMs)
      res.on('drain', this.#onDrain)
      return rest.length === 0 ? true : this.#chunkedBody(rest)
    }
    if (rest.length >= length) {
      // The whole body came with the head (manifests, errors, every HEAD): one write, copied
      // out of the connection's buffer, which the next read overwrites.
      res.end(length === 0 ? undefined : Buffer.from(rest.subarray(0, length)))
      this.#complete(rest.length === length)
      return true
    }
    this.#phase = 'body'
    this.#remaining = length
    this.#ctx.pool.watch(this.#connection!, this.#ctx.bodyMs)
    watchResponseBody(res, this.#ctx.idleMs)
    const socket = res.socket
    // Written straight to the client's socket once the head is out, unless this response is
    // queued behind another on a pipelining client's connection.
    if (socket !== null && (socket as { _httpMessage?: unknown })._httpMessage === res) {
      this.#direct = socket
      res.flushHeaders()
    } else {
      res.on('drain', this.#onDrain)
    }
    return rest.length === 0 ? true : this.#body(rest)
  }

  /** A run of body bytes in the connection's buffer: written once, then the buffer is free again. */
  #body(chunk: Buffer): boolean {
    let piece = chunk
    let extra = false
    if (piece.length > this.#remaining) {
      // More bytes than the length said: the connection cannot be trusted with another request.
      piece = piece.subarray(0, this.#remaining)
      extra = true
    }
    this.#remaining -= piece.length
    const direct = this.#direct
    if (direct !== null) {
      this.#writes++
      direct.write(piece, this.#onWritten)
      // Written through to the kernel already, or still held by the socket.
      if (direct.writableLength > 0) this.#waiting = true
    } else if (!this.#res.write(Buffer.from(piece))) {
      this.#waiting = true
    }
    if (this.#remaining === 0) {
      this.#res.end()
      if (extra) this.#keepAlive = false
      // The last write may still hold the buffer: the connection goes back only after it.
      if (this.#waiting && direct !== null) return false
      this.#complete(!extra)
      return true
    }
    return !this.#waiting
  }

  /** A run of a chunked body: its payload written through the ServerResponse, the end found. */
  #chunkedBody(data: Buffer): boolean {
    const ended = this.#chunked!.feed(data, this.#onPayload)
    if (ended === 'invalid') {
      this.#fail(new UpstreamError('the registry sent a chunked body the proxy cannot read', 'UND_ERR_INVALID_RES'))
      return false
    }
    if (ended === 'more') return !this.#waiting
    this.#res.end()
    // Bytes after the body: the connection cannot be trusted with another request.
    this.#complete(ended === data.length)
    return true
  }

  #written(): void {
    this.#writes--
    if (!this.#waiting || this.#writes > 0 || this.#direct === null) return
    this.#waiting = false
    if (this.#phase !== 'body') return
    if (this.#remaining === 0) this.#complete(true)
    else this.#connection?.socket.resume()
  }

  #drained(): void {
    if (!this.#waiting || this.#phase !== 'body') return
    this.#waiting = false
    this.#connection?.socket.resume()
  }

  /** The answer went to the client whole: the connection goes back, the request is counted. */
  #complete(clean: boolean): void {
    const connection = this.#connection
    this.#connection = null
    this.#phase = 'done'
    if (connection !== null) this.#ctx.pool.release(connection, clean && this.#keepAlive)
    this.#finish()
  }

  /** Not a plain Content-Length answer: the undici forwarder asks again and carries it. */
  #handOver(): boolean {
    this.#phase = 'handed-over'
    this.#res.off('close', this.#onClientClose)
    this.#request.raw.off('close', this.#onRequestClose)
    const connection = this.#connection
    this.#connection = null
    if (connection !== null) this.#ctx.pool.release(connection, false)
    this.#fallback()
    return false
  }

  onClose(error: Error | undefined): void {
    const connection = this.#connection
    this.#connection = null
    if (this.#phase === 'head' && !this.#received && connection !== null && connection.carried > 0) {
      // A kept-alive connection the registry closed while it sat idle: ask on another one.
      this.#phase = 'connecting'
      this.#ctx.pool.acquire((err, next) => this.#acquired(err, next))
      return
    }
    if (this.#phase === 'head' || this.#phase === 'connecting') this.#fail(error ?? new UpstreamError('the registry closed the connection', 'ECONNRESET'))
    else if (this.#phase === 'body') this.#fail(error ?? new UpstreamError('the registry closed the connection mid-body', 'ECONNRESET'))
  }

  onTimeout(): void {
    if (this.#phase === 'head') this.#fail(new UpstreamError('the registry did not answer in time', 'UND_ERR_HEADERS_TIMEOUT'))
    else if (this.#phase !== 'body') return
    // A paused read is the client's doing (the client's own idle timeout watches that): the
    // registry's clock starts again.
    else if (this.#waiting) this.#ctx.pool.watch(this.#connection!, this.#ctx.bodyMs)
    else this.#fail(new UpstreamError('the registry stopped sending the body', 'UND_ERR_BODY_TIMEOUT'))
  }

  /** The registry failed: a prompt OCI error, or, mid-body, a cut connection. */
  #fail(error: Error): void {
    if (!this.#letGo()) return
    const res = this.#res
    const { upstream } = this.#ctx.services.config
    // The registry's address goes to the log, for operators; never to the client.
    this.#request.log.warn({ event: 'upstream.failed', upstream, method: this.#request.method, code: failureCode(error) }, 'the request to the registry failed')
    if (res.headersSent) res.destroy(error)
    else if (!res.destroyed) {
      closeIfUnread(this.#request, res)
      writeRegistryError(res, upstreamFailure(error))
    }
    this.#finish()
  }

  /** The client closed its connection before the answer was done: the registry's goes too. */
  #clientGone(): void {
    if (this.#letGo()) this.#finish()
  }

  /**
   * Ends the transfer early (the registry failed or the client left), closing its registry
   * connection: what is left of the answer on it has nowhere to go. False if already over.
   */
  #letGo(): boolean {
    if (this.#phase === 'done' || this.#phase === 'handed-over') return false
    this.#phase = 'done'
    const connection = this.#connection
    this.#connection = null
    if (connection !== null) {
      connection.owner = null
      this.#ctx.pool.release(connection, false)
    }
    return true
  }

  #finish(): void {
    const res = this.#res
    res.off('close', this.#onClientClose)
    this.#request.raw.off('close', this.#onRequestClose)
    if (this.#direct === null) res.off('drain', this.#onDrain)
    stopWatching(res)
    // The client's read slot (the forwarder's): every way a carried read ends comes here once.
    this.#done()
    const { metrics } = this.#ctx.services
    countRequest(metrics, this.#request.method, res.writableFinished || res.headersSent ? res.statusCode : CLIENT_CLOSED, this.#request.raw.socket)
  }
}
