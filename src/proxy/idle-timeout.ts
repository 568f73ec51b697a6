import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

// The body idle timeout, both ways. A client that stops sending an upload half-way, or stops
// taking a download, would otherwise hold its connection and the registry connection behind it
// for ever (128 such uploads once held every connection of the pass-through pool). The clock
// runs only while a body is moving: not while the registry takes its time to answer (a large
// blob commit can take minutes; upstreamTimeouts.headersMs bounds that), and not between
// requests (the keep-alive timeout does). When it fires the client's connection is closed, and
// the forwarder then aborts the registry request (an upload never reaches it half).
//
// One clock for the process, not socket.setTimeout(): a socket timeout is re-armed on every
// read and write, which cost a third of upload throughput (512 MiB PUTs: 110 MB/s with it,
// 175 without, against 185 straight to the registry). The clock instead looks every TICK_MS at
// how many bytes each watched connection has moved, and closes one that moved none for its
// whole idle time; it fires between idleMs and idleMs + TICK_MS after the last byte.

/** How often the clock looks; also how late a timeout may fire. */
const TICK_MS = 250

interface Watch {
  readonly idleMs: number
  /** Bytes read and written on the connection when last looked at. */
  moved: number
  /** When they last changed (or the watch began). */
  since: number
}

const watched = new Map<Socket, Watch>()
let clock: NodeJS.Timeout | undefined

function moved(socket: Socket): number {
  return socket.bytesRead + socket.bytesWritten
}

function look(): void {
  const now = performance.now()
  for (const [socket, w] of watched) {
    if (socket.destroyed) {
      watched.delete(socket)
      continue
    }
    const m = moved(socket)
    if (m !== w.moved) {
      w.moved = m
      w.since = now
    } else if (now - w.since >= w.idleMs) {
      watched.delete(socket)
      socket.destroy()
    }
  }
  if (watched.size === 0) {
    clearInterval(clock)
    clock = undefined
  }
}

function watch(socket: Socket | null, idleMs: number): void {
  if (socket === null || idleMs === 0) return
  watched.set(socket, { idleMs, moved: moved(socket), since: performance.now() })
  if (clock === undefined) {
    clock = setInterval(look, TICK_MS)
    // Watching never keeps the process alive by itself.
    clock.unref()
  }
}

function unwatch(socket: Socket | null): void {
  if (socket !== null) watched.delete(socket)
}

/** Whether the request carries a body the client is still sending. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined
}

/** Starts the clock for the request body, and stops it once the body has arrived whole. */
export function watchRequestBody(req: IncomingMessage, idleMs: number): void {
  if (!hasBody(req) || req.complete) return
  const socket = req.socket
  watch(socket, idleMs)
  req.once('end', () => {
    // The response may already be streaming (the registry answered early): it keeps its clock.
    if (!(socket as { _httpMessage?: ServerResponse })._httpMessage?.headersSent) unwatch(socket)
  })
}

/** Starts the clock for a response body streaming to the client. */
export function watchResponseBody(res: ServerResponse, idleMs: number): void {
  watch(res.socket, idleMs)
}

/** The response is done: idle time is the keep-alive timeout's business again. */
export function stopWatching(res: ServerResponse): void {
  unwatch(res.socket)
}
