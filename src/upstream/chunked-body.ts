// The body of a chunked HTTP/1.1 response (RFC 9112 §7.1), read off a raw registry connection
// by the read carrier (src/proxy/read-carrier.ts). distribution sends its listings this way
// once they outgrow Go's 2 KiB response buffer (`tags/list`, `_catalog`). The decoder hands on
// each run of payload bytes as it arrives, in place (a view of the caller's buffer), and says
// where the body ends so the connection can carry the next request. Trailer fields are read
// and dropped: the proxy passes none on, as undici's path passed none.

/** Longest chunk-size line or trailer line (Node's parser allows as much for a header line). */
const MAX_LINE_BYTES = 16 << 10
/** Longest chunk size, in hex digits: 15 stays within a safe integer. */
const SIZE = /^([0-9a-fA-F]{1,15})[ \t]*(?:;.*)?$/

type State = 'size' | 'data' | 'data-end' | 'trailer' | 'done'

export class ChunkedBody {
  #state: State = 'size'
  /** The line read so far (chunk size or trailer), latin1. */
  #line = ''
  /** Payload bytes left in the current chunk. */
  #remaining = 0
  /** Bytes of the CRLF after a chunk's payload seen so far. */
  #crlf = 0

  get done(): boolean {
    return this.#state === 'done'
  }

  /**
   * Reads `data`, calling `payload` with each run of body bytes (views of `data`). Returns
   * 'more' while the body goes on, the number of bytes of `data` the body took when it ended
   * (anything after belongs to no answer), or 'invalid' when the framing is broken.
   */
  feed(data: Buffer, payload: (bytes: Buffer) => void): 'more' | 'invalid' | number {
    let at = 0
    while (at < data.length) {
      switch (this.#state) {
        case 'size':
        case 'trailer': {
          const end = data.indexOf(10, at)
          const piece = data.toString('latin1', at, end === -1 ? data.length : end + 1)
          if (this.#line.length + piece.length > MAX_LINE_BYTES) return 'invalid'
          this.#line += piece
          if (end === -1) return 'more'
          at = end + 1
          if (!this.#line.endsWith('\r\n')) return 'invalid'
          const line = this.#line.slice(0, -2)
          this.#line = ''
          if (this.#state === 'trailer') {
            if (line === '') {
              this.#state = 'done'
              return at
            }
            continue
          }
          const size = SIZE.exec(line)
          if (size === null) return 'invalid'
          this.#remaining = Number.parseInt(size[1] as string, 16)
          this.#state = this.#remaining === 0 ? 'trailer' : 'data'
          continue
        }
        case 'data': {
          const n = Math.min(this.#remaining, data.length - at)
          payload(data.subarray(at, at + n))
          at += n
          this.#remaining -= n
          if (this.#remaining === 0) this.#state = 'data-end'
          continue
        }
        case 'data-end': {
          const expected = this.#crlf === 0 ? 13 : 10
          if (data[at] !== expected) return 'invalid'
          at++
          this.#crlf++
          if (this.#crlf === 2) {
            this.#crlf = 0
            this.#state = 'size'
          }
          continue
        }
        case 'done':
          return at
      }
    }
    return 'more'
  }
}
