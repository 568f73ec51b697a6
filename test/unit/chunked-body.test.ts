import fc from 'fast-check'
import t from 'tap'
import { ChunkedBody } from '../../src/upstream/chunked-body.js'

// The chunked-body decoder of the read carrier: whatever the chunk sizes, extensions and
// trailers, and however the bytes are split across reads, the payload comes out whole and the
// end of the body is found exactly; broken framing is refused.

/** Feeds `wire` in pieces cut at `cuts`; returns the payload, where the body ended, or 'invalid'. */
function decode(wire: Buffer, cuts: readonly number[]): { payload: Buffer; end: number | 'more' | 'invalid' } {
  const body = new ChunkedBody()
  const out: Buffer[] = []
  const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b)
  let from = 0
  for (const to of [...points, wire.length]) {
    if (to < from) continue
    // Each piece lives in a buffer the caller reuses: the decoder must not keep views of it.
    const piece = Buffer.from(wire.subarray(from, to))
    const r = body.feed(piece, (bytes) => out.push(Buffer.from(bytes)))
    piece.fill(0)
    if (r === 'invalid') return { payload: Buffer.concat(out), end: 'invalid' }
    if (r !== 'more') return { payload: Buffer.concat(out), end: from + r }
    from = to
  }
  return { payload: Buffer.concat(out), end: 'more' }
}

function chunked(payload: Buffer, sizes: readonly number[], extension: string, trailers: readonly string[]): Buffer {
  const parts: Buffer[] = []
  let at = 0
  for (const size of sizes) {
    if (at >= payload.length) break
    const n = Math.min(Math.max(1, size), payload.length - at)
    parts.push(Buffer.from(`${n.toString(16)}${extension}\r\n`, 'latin1'), payload.subarray(at, at + n), Buffer.from('\r\n'))
    at += n
  }
  if (at < payload.length) parts.push(Buffer.from(`${(payload.length - at).toString(16)}\r\n`), payload.subarray(at), Buffer.from('\r\n'))
  parts.push(Buffer.from(`0${extension}\r\n${trailers.map((l) => `${l}\r\n`).join('')}\r\n`, 'latin1'))
  return Buffer.concat(parts)
}

t.test('any chunking, any split across reads: the payload whole, the end exact', async (t) => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 3000 }),
      fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 20 }),
      fc.constantFrom('', ';x=1', ' ;name="v"', '\t'),
      fc.array(fc.constantFrom('X-Trailer: 1', 'Digest: sha-256=abc'), { maxLength: 2 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.constantFrom('', 'HTTP/1.1 200 OK\r\n'),
      (bytes, sizes, extension, trailers, cuts, after) => {
        const payload = Buffer.from(bytes)
        const wire = chunked(payload, sizes, extension, trailers)
        const r = decode(Buffer.concat([wire, Buffer.from(after)]), cuts)
        return r.end === wire.length && r.payload.equals(payload)
      },
    ),
    { numRuns: 500 },
  )
  t.pass('whole and exact')
})

t.test('a body cut short is not ended', async (t) => {
  const wire = chunked(Buffer.from('hello world'), [5], '', [])
  for (let cut = 0; cut < wire.length; cut++) t.equal(decode(wire.subarray(0, cut), []).end, 'more', `cut at ${cut}`)
})

t.test('broken framing is refused', async (t) => {
  for (const wire of ['zz\r\nhello\r\n0\r\n\r\n', '5\r\nhelloXY0\r\n\r\n', '5\nhello\r\n0\r\n\r\n', '-5\r\nhello\r\n0\r\n\r\n', '1234567890abcdef0\r\n', `${'1'.repeat(20_000)}\r\n`, '0\r\nX: 1\n\r\n']) {
    t.equal(decode(Buffer.from(wire, 'latin1'), []).end, 'invalid', JSON.stringify(wire.slice(0, 30)))
  }
})
