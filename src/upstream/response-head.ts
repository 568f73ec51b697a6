import type { IncomingHttpHeaders } from 'node:http'

// The head of an HTTP/1.1 response, read off a raw registry connection by the read carrier
// (src/proxy/read-carrier.ts). Only what a proxy needs: the status, the headers as undici hands them
// to the forwarder (lower-case names, a repeated header as an array, so every
// WWW-Authenticate line reaches the client), and how the body is framed. Anything the reader
// does not understand makes the head 'invalid'; the carrier then answers 502, as undici does
// for a response it cannot parse.

export interface ResponseHead {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** Bytes the head took, the blank line included. */
  readonly size: number
  /** HTTP/1.1 without `Connection: close`: the connection can carry the next request. */
  readonly keepAlive: boolean
  /** The body's framing: a length, `chunked` (the final coding), or `close` (read to the end). */
  readonly framing: { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' }
}

/** Longest head read (distribution's are a few hundred bytes; Node's server allows 16 KiB). */
export const MAX_HEAD_BYTES = 64 << 10

const CRLFCRLF = Buffer.from('\r\n\r\n')
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const DIGITS = /^\d{1,15}$/

/** The head at the start of `data`, 'incomplete' when its end has not arrived yet, or 'invalid'. */
export function readResponseHead(data: Buffer): ResponseHead | 'incomplete' | 'invalid' {
  const end = data.indexOf(CRLFCRLF)
  if (end === -1) return data.length > MAX_HEAD_BYTES ? 'invalid' : 'incomplete'
  if (end > MAX_HEAD_BYTES) return 'invalid'
  const lines = data.toString('latin1', 0, end).split('\r\n')
  const status = STATUS_LINE.exec(lines[0] as string)
  if (status === null) return 'invalid'
  const headers: IncomingHttpHeaders = {}
  const store = headers as Record<string, string | string[]>
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string
    const colon = line.indexOf(':')
    if (colon <= 0) return 'invalid'
    const name = line.slice(0, colon)
    // A space before the colon is how response splitting hides (RFC 9112 §5.1).
    if (!TOKEN.test(name)) return 'invalid'
    const key = name.toLowerCase()
    const value = line.slice(colon + 1).trim()
    const prior = store[key]
    if (prior === undefined) store[key] = value
    else if (Array.isArray(prior)) prior.push(value)
    else store[key] = [prior, value]
  }
  const http11 = status[1] === '1'
  const connection = headerList(store['connection'])
  // An HTTP/1.0 answer's connection is not reused, whatever it says.
  const keepAlive = http11 && !connection.includes('close')
  const framing = framingOf(store)
  if (framing === 'invalid') return 'invalid'
  return { status: Number(status[2]), headers, size: end + 4, keepAlive, framing }
}

function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return (Array.isArray(value) ? value.join(',') : value)
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
}

function framingOf(headers: Record<string, string | string[]>): ResponseHead['framing'] | 'invalid' {
  const codings = headers['transfer-encoding']
  const length = headers['content-length']
  if (codings !== undefined) {
    // Both framings at once is how request smuggling and response splitting hide (RFC 9112
    // §6.3 item 3); Node's parser refuses such a response, and so does undici's forwarder.
    if (length !== undefined) return 'invalid'
    // Chunked only when it is the final coding (RFC 9112 §6.3 item 4); otherwise the body runs
    // to the end of the connection, as Node reads it (`Transfer-Encoding: gzip`).
    return headerList(codings).at(-1) === 'chunked' ? { kind: 'chunked' } : { kind: 'close' }
  }
  if (length === undefined) return { kind: 'close' }
  // One Content-Length of digits only: Node's parser refuses a repeated one even when the values
  // agree, and a list (`5, 5`), a sign or any other character.
  if (Array.isArray(length) || !DIGITS.test(length)) return 'invalid'
  return { kind: 'length', length: Number(length) }
}
