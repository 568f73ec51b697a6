import { request } from 'node:http'
import { connect } from 'node:net'

// HTTP with the path sent exactly as written: URL-parsing clients normalise `%2e%2e` and `..`
// away before they send, which would hide the very tricks a test is about.

export interface RawResponse {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: Buffer
}

export function rawRequest(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<RawResponse> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} timed out`)))
    req.end(body)
  })
}

/**
 * What one connection answers to `text`, sent whole as it is (pipelined requests, bodies a
 * client library would refuse to send); the client ends its side after `waitMs`, or at once
 * with `halfClose` (it sends, says it is done, and still reads).
 */
export function exchange(url: string, text: string, waitMs: number, options: { halfClose?: boolean } = {}): Promise<string> {
  const { port, hostname } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ port: Number(port), host: hostname, allowHalfOpen: true })
    let out = ''
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')))
    socket.on('error', () => {})
    socket.on('close', () => resolve(out))
    socket.write(text)
    if (options.halfClose === true) socket.end()
    setTimeout(() => socket.destroy(), waitMs)
  })
}

/** Status lines and bodies of every answer on a connection, without the headers that differ by hop. */
export function answers(wire: string): string[] {
  return wire
    .split(/(?=HTTP\/1\.1 \d{3} )/)
    .filter((a) => a !== '')
    .map((a) => {
      const [head = '', body = ''] = a.split('\r\n\r\n')
      return `${head.split('\r\n', 1)[0]} ${body}`
    })
}
