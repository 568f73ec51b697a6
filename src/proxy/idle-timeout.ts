import type { IncomingMessage, ServerResponse } from 'node:http'

// The body idle timeout, both ways. A client that stops sending an upload half-way, or stops
// taking a download, would otherwise hold its connection and the registry connection behind it
// for ever (128 such uploads once held every connection of the pass-through pool). The clock
// runs only while a body is moving: not while the registry takes its time to answer (a large
// blob commit can take minutes; upstreamTimeouts.headersMs bounds that), and not between
// requests (the keep-alive timeout does). When it fires, Node's server closes the socket, and
// the forwarder then aborts the registry request (an upload never reaches it half).

/** Whether the request carries a body the client is still sending. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined
}

/** Starts the clock for the request body, and stops it once the body has arrived whole. */
export function watchRequestBody(req: IncomingMessage, idleMs: number): void {
  if (!hasBody(req) || req.complete) return
  const socket = req.socket
  socket.setTimeout(idleMs)
  req.once('end', () => {
    // The response may already be streaming (the registry answered early): it keeps its clock.
    if (!(socket as { _httpMessage?: ServerResponse })._httpMessage?.headersSent) socket.setTimeout(0)
  })
}

/** Starts the clock for a response body streaming to the client. */
export function watchResponseBody(res: ServerResponse, idleMs: number): void {
  res.socket?.setTimeout(idleMs)
}

/** The response is done: idle time is the keep-alive timeout's business again. */
export function stopWatching(res: ServerResponse): void {
  res.socket?.setTimeout(0)
}
