import { connect, type Socket } from 'node:net'

// Kept-alive raw TCP connections to the registry, for the read carrier (src/proxy/read-carrier.ts).
// Each connection reads into one buffer of its own, reused for every read (Node's `onread`
// option), instead of a fresh 64 KiB allocation per read: a blob then crosses the proxy in
// large reads with no per-chunk allocation, which is most of what separated the undici path
// from nginx on downloads (README, "Performance"). Whoever holds a connection gets each read
// as (bytes, buffer) and must be done with the buffer before it lets the socket read again
// (docs/passthrough.md, "Reused read buffers").

/** The holder of a connection: gets its reads, and hears when it closes or stalls. */
export interface ConnectionOwner {
  /** Bytes 0..n of `buffer` arrived. Return false to pause reading (resume with socket.resume()). */
  onRead(n: number, buffer: Buffer): boolean
  /** The connection closed while held; `error` says why when it was not a plain close. */
  onClose(error: Error | undefined): void
  /** No byte came for the time the owner gave watch(). */
  onTimeout(): void
}

export interface PooledConnection {
  readonly socket: Socket
  /** Requests this connection carried before the current one: > 0 means it sat idle in the pool. */
  readonly carried: number
  owner: ConnectionOwner | null
}

export interface SocketPoolOptions {
  readonly host: string
  readonly port: number
  readonly connections: number
  readonly connectTimeoutMs: number
  /** Idle connections close after this long. */
  readonly idleTimeoutMs: number
  /** Size of each connection's read buffer. */
  readonly readBufferBytes: number
}

export type Acquired = (error: Error | null, connection: PooledConnection | null) => void

/** An error whose code the forwarder's upstreamFailure() reads (504 for timeouts). */
export class UpstreamError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
  }
}

class Connection implements PooledConnection {
  readonly socket: Socket
  carried = 0
  owner: ConnectionOwner | null = null
  error: Error | undefined
  closed = false
  connected = false
  /** The pool's clock at the last byte read (or when the limit was set). */
  lastActive = 0
  /** Ticks without a byte read before the timeout fires; 0: none. */
  limit = 0

  constructor(socket: Socket) {
    this.socket = socket
  }
}

/**
 * Timeouts run on one clock per pool, checked every TICK_MS, rather than a timer per socket
 * re-armed several times per request (socket.setTimeout showed in the profile of small reads).
 */
const TICK_MS = 250

export class SocketPool {
  readonly #options: SocketPoolOptions
  readonly #connections = new Set<Connection>()
  #tick = 0
  readonly #clock: NodeJS.Timeout
  /** Idle connections, most recently used last (reused first: its buffer is warm). */
  readonly #idle: Connection[] = []
  readonly #waiting: Acquired[] = []
  #open = 0
  #closing = false

  constructor(options: SocketPoolOptions) {
    this.#options = options
    this.#clock = setInterval(() => this.#sweep(), TICK_MS)
    this.#clock.unref()
  }

  /** Times the connection out after `ms` without a byte read from it (0: never). */
  watch(connection: PooledConnection, ms: number): void {
    const c = connection as Connection
    // One tick more than the time asked: the timeout never fires early.
    c.limit = ms === 0 ? 0 : Math.ceil(ms / TICK_MS) + 1
    c.lastActive = this.#tick
  }

  #sweep(): void {
    const now = ++this.#tick
    for (const c of this.#connections) {
      if (c.limit === 0 || now - c.lastActive < c.limit) continue
      c.limit = 0
      if (!c.connected) c.socket.destroy(new UpstreamError(`connecting to the registry timed out after ${this.#options.connectTimeoutMs} ms`, 'UND_ERR_CONNECT_TIMEOUT'))
      else if (c.owner !== null) c.owner.onTimeout()
      // Idle too long.
      else c.socket.destroy()
    }
  }

  /** Connections open (held, idle or connecting): a test counts them for leaks. */
  get open(): number {
    return this.#open
  }

  get idle(): number {
    return this.#idle.length
  }

  /** Hands over an idle connection, a new one, or the next one released. */
  acquire(done: Acquired): void {
    if (this.#closing) return done(new UpstreamError('the proxy is shutting down', 'UND_ERR_DESTROYED'), null)
    const idle = this.#idle.pop()
    if (idle !== undefined) {
      idle.limit = 0
      return done(null, idle)
    }
    if (this.#open < this.#options.connections) return this.#connect(done)
    this.#waiting.push(done)
  }

  /** Gives a connection back; one that cannot carry another request is closed. */
  release(connection: PooledConnection, reusable: boolean): void {
    const c = connection as Connection
    c.owner = null
    if (!reusable || c.closed || this.#closing || c.socket.destroyed) {
      c.socket.destroy()
      return
    }
    c.carried++
    // Its last owner may have paused reading (a body write still in flight); the next reads again.
    c.socket.resume()
    const next = this.#waiting.shift()
    if (next !== undefined) return next(null, c)
    this.watch(c, this.#options.idleTimeoutMs)
    this.#idle.push(c)
  }

  /** Closes every connection, idle or held; waiting requests fail. */
  async close(): Promise<void> {
    this.#closing = true
    clearInterval(this.#clock)
    for (const w of this.#waiting.splice(0)) w(new UpstreamError('the proxy is shutting down', 'UND_ERR_DESTROYED'), null)
    const sockets: Socket[] = []
    for (const c of this.#idle.splice(0)) sockets.push(c.socket)
    for (const c of this.#connections) sockets.push(c.socket)
    await Promise.all(
      [...new Set(sockets)].map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.closed) return resolve()
            s.once('close', () => resolve())
            s.destroy()
          }),
      ),
    )
  }

  #connect(done: Acquired): void {
    this.#open++
    const buffer = Buffer.allocUnsafeSlow(this.#options.readBufferBytes)
    let c: Connection
    const socket = connect({
      host: this.#options.host,
      port: this.#options.port,
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array) => {
          c.lastActive = this.#tick
          const owner = c.owner
          if (owner !== null) return owner.onRead(n, buf as Buffer)
          // An idle connection has nothing to say; a registry that talks anyway is not trusted.
          socket.destroy()
          return false
        },
      },
    })
    c = new Connection(socket)
    this.#connections.add(c)
    socket.setNoDelay(true)
    this.watch(c, this.#options.connectTimeoutMs)
    socket.once('connect', () => {
      c.connected = true
      c.limit = 0
      socket.setKeepAlive(true, 60_000)
      done(null, c)
    })
    socket.on('error', (err) => {
      c.error = err
    })
    // The registry closed its side: this connection carries nothing more.
    socket.on('end', () => {
      c.closed = true
    })
    socket.once('close', () => {
      c.closed = true
      this.#open--
      this.#connections.delete(c)
      const at = this.#idle.indexOf(c)
      if (at !== -1) this.#idle.splice(at, 1)
      if (!c.connected) done(c.error ?? new UpstreamError('the registry closed the connection', 'ECONNRESET'), null)
      else if (c.owner !== null) {
        const owner = c.owner
        c.owner = null
        owner.onClose(c.error)
      }
      // A slot is free: connect for the next one waiting.
      const next = this.#closing ? undefined : this.#waiting.shift()
      if (next !== undefined) this.#connect(next)
    })
  }
}
