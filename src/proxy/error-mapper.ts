import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { type ErrorCodeName, RegistryError } from '../oci/error-code.js'
import { printableDeep } from '../oci/printable.js'

// The one place errors become responses. Everything leaves as an OCI error body
// (`{"errors":[…]}`) with application/json, which is the only form clients print.

export function sendRegistryError(reply: FastifyReply, error: RegistryError): FastifyReply {
  return reply
    .code(error.status)
    .headers(error.headers)
    .header('content-type', 'application/json; charset=utf-8')
    .send(wireBody(error))
}

/**
 * The body of an error on the wire. Clients print `message` to a terminal: whatever of the
 * request it quotes (a key or media type of a refused body, a Host) has its control and
 * bidi characters escaped (printable.ts), as the diagnosis already does for the facts of a push.
 */
function wireBody(error: RegistryError): string {
  return JSON.stringify(printableDeep(error.body()))
}

export function installErrorMapper(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | RegistryError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof RegistryError) return sendRegistryError(reply, err)
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (status >= 500) {
      request.log.error({ err }, 'request failed inside the proxy')
      return sendRegistryError(reply, RegistryError.of('UNKNOWN', `manifest-guard internal error (request ${request.id})`, undefined, 500))
    }
    return sendRegistryError(reply, RegistryError.of(codeForClientError(status, err), err.message, undefined, status))
  })
  app.setNotFoundHandler((request, reply) =>
    sendRegistryError(
      reply,
      RegistryError.of('UNSUPPORTED', `manifest-guard serves the registry API under /v2/, and /healthz and /readyz; not ${request.method} ${request.url.split('?')[0]}`, undefined, 404),
    ),
  )
}

/** nginx's "client closed request": what a request the client abandoned is counted as. */
export const CLIENT_CLOSED = 499

/**
 * For the router's own refusals (undecodable paths), which run before fastify's error
 * handling and only get the raw Node objects.
 */
export function rawPathRefusal(reason: string): (path: string, req: IncomingMessage, res: ServerResponse) => void {
  const error = RegistryError.of('NAME_INVALID', `manifest-guard: ${reason}`)
  return (_path, _req, res) => writeRegistryError(res, error)
}

/** The same OCI error body on a raw Node response, for answers written outside fastify's reply. */
export function writeRegistryError(res: ServerResponse, error: RegistryError): void {
  if (res.destroyed) return
  const body = wireBody(error)
  res.writeHead(error.status, { ...error.headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/**
 * Requests Node's parser refuses before any handler runs (headers over 16 KiB, malformed
 * HTTP, a client too slow to send its headers): still answered with an OCI error body.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  // Bytes after a request that said Connection: close: Go's server answers that request and
  // ignores the rest; Node's parser stops with this error, and the answer in flight still goes
  // out (the connection then closes), so leave the socket alone.
  if (err.code === 'ECONNRESET' || err.code === 'HPE_CLOSED_CONNECTION' || socket.destroyed) return
  const [status, error] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, RegistryError.of('UNSUPPORTED', 'manifest-guard: request headers larger than 16 KiB', undefined, 431)]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, RegistryError.of('UNSUPPORTED', 'manifest-guard: the request headers did not arrive in time', undefined, 408)]
        : [400, RegistryError.of('UNSUPPORTED', 'manifest-guard: malformed HTTP request', undefined, 400)]
  const body = JSON.stringify(error.body())
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

function codeForClientError(status: number, err: FastifyError): ErrorCodeName {
  if (status === 401) return 'UNAUTHORIZED'
  if (status === 403) return 'DENIED'
  if (status === 429) return 'TOOMANYREQUESTS'
  if (status === 413) return 'SIZE_INVALID'
  if (err.code === 'FST_ERR_BAD_URL' || /invalid characters/.test(err.message)) return 'NAME_INVALID'
  return 'UNSUPPORTED'
}
