import { Agent, get, type IncomingMessage } from 'node:http'
import { createServer, type AddressInfo, type Server } from 'node:net'
import fc from 'fast-check'
import t from 'tap'
import { ChunkedBody } from '../../src/upstream/chunked-body.js'
import { readResponseHead } from '../../src/upstream/response-head.js'

// The read carrier's response-head reader against Node's own parser (llhttp, which undici's
// forwarder uses too): generated heads with every framing header a registry or a broken
// middlebox could send are served on a raw socket and read both ways. Both must agree on what
// is refused and on the body the client gets; the carrier reuses a connection only where Node would.

type Reading = { readonly refused: true } | { readonly refused: false; readonly status: number; readonly body: string; readonly keepAlive: boolean | null }

const HEADERS: readonly (readonly [string, readonly string[]])[] = [
  ['Content-Length', ['5', ' 5 ', '05', '+5', '5, 5', '-1', 'abc', '11', '4', '6', '']],
  ['Transfer-Encoding', ['chunked', 'Chunked', 'gzip', 'gzip, chunked', 'chunked, gzip', 'identity', ' chunked ', 'chunked, chunked']],
  ['Connection', ['close', 'keep-alive', 'Keep-Alive', 'x, close']],
  ['Docker-Distribution-Api-Version', ['registry/2.0']],
]
const BODIES = { plain: 'hello world', chunked: '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n', 'cut chunked': '5\r\nhel' }

const head = fc.record({
  version: fc.constantFrom('1.1', '1.0'),
  status: fc.constantFrom(200, 404, 401),
  headers: fc.array(fc.constantFrom(...HEADERS).chain(([name, values]) => fc.tuple(fc.constant(name), fc.constantFrom(...values))), { maxLength: 4 }),
  body: fc.constantFrom(...(Object.keys(BODIES) as (keyof typeof BODIES)[])),
})

type Head = typeof head extends fc.Arbitrary<infer T> ? T : never

function rawResponse(h: Head): Buffer {
  const lines = [`HTTP/${h.version} ${h.status} X`, ...h.headers.map(([n, v]) => `${n}: ${v}`)]
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${BODIES[h.body]}`, 'latin1')
}

/** What the read carrier would hand the client for this response. */
function ours(raw: Buffer): Reading {
  const h = readResponseHead(raw)
  if (h === 'incomplete' || h === 'invalid') return { refused: true }
  const rest = raw.subarray(h.size)
  if (h.framing.kind === 'close') return { refused: false, status: h.status, body: rest.toString('latin1'), keepAlive: null }
  if (h.framing.kind === 'length') {
    // A body shorter than its length is cut when the registry closes: the client sees an error.
    if (rest.length < h.framing.length) return { refused: true }
    return { refused: false, status: h.status, body: rest.subarray(0, h.framing.length).toString('latin1'), keepAlive: h.keepAlive }
  }
  let body = ''
  const ended = new ChunkedBody().feed(rest, (bytes) => (body += bytes.toString('latin1')))
  if (typeof ended !== 'number') return { refused: true }
  return { refused: false, status: h.status, body, keepAlive: h.keepAlive }
}

/** What Node's own HTTP client makes of the same bytes, served and then closed. */
function node(server: Server, raw: Buffer): Promise<Reading> {
  server.removeAllListeners('connection')
  server.on('connection', (s) => {
    s.on('error', () => {})
    s.once('data', () => {
      s.write(raw)
      setTimeout(() => s.end(), 20)
    })
  })
  const { port } = server.address() as AddressInfo
  return new Promise((resolve) => {
    const agent = new Agent({ keepAlive: true })
    const done = (r: Reading) => {
      agent.destroy()
      resolve(r)
    }
    let response: IncomingMessage | undefined
    let body = ''
    const answered = () => done({ refused: false, status: response!.statusCode ?? 0, body, keepAlive: req.shouldKeepAlive })
    const req = get({ host: '127.0.0.1', port, agent }, (res) => {
      response = res
      res.setEncoding('latin1')
      res.on('data', (d: string) => (body += d))
      res.on('end', answered)
      res.on('error', () => done({ refused: true }))
    })
    // Bytes past the end of a complete response are an error of the connection, not of the
    // response the client already has (the carrier, too, answers and drops the connection).
    req.on('error', () => (response?.complete === true ? setImmediate(answered) : done({ refused: true })))
  })
}

t.test('the read carrier reads a response head as Node does', async (t) => {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  let compared = 0
  let refused = 0
  await fc.assert(
    fc.asyncProperty(head, async (h) => {
      const raw = rawResponse(h)
      const expected = await node(server, raw)
      const actual = ours(raw)
      compared++
      if (expected.refused) refused++
      // Keep-alive: the carrier may close where Node would reuse (an HTTP/1.0 answer saying
      // keep-alive: closing is always safe), never the other way. Node decides it for a
      // close-delimited body too; the carrier hands those to the forwarder.
      const keepAlive = (a: boolean | null, n: boolean | null): boolean | null => (a === null ? null : a === false && n === true ? false : n)
      const comparable = actual.refused || expected.refused ? expected : { ...expected, keepAlive: keepAlive(actual.keepAlive, expected.keepAlive) }
      if (JSON.stringify(actual) !== JSON.stringify(comparable)) throw new Error(`${JSON.stringify(raw.toString('latin1'))}: ours ${JSON.stringify(actual)}, Node's ${JSON.stringify(comparable)}`)
    }),
    { numRuns: 400, seed: Number(process.env['PROPERTY_SEED'] ?? 20261202) },
  )
  t.ok(refused > 20 && compared - refused > 100, `${compared} heads compared, ${refused} refused by both`)
})

t.test('regressions: Transfer-Encoding that is not chunked, and both framings at once', async (t) => {
  const gzip = readResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc'))
  t.match(gzip, { framing: { kind: 'close' } }, 'gzip as the final coding: read to the end of the connection, not as chunks')
  t.equal(readResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n')), 'invalid', 'Content-Length with Transfer-Encoding is refused')
  t.equal(readResponseHead(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc')), 'invalid', 'a repeated Content-Length is refused, as Node refuses it')
})
