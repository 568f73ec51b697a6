import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { pseudoRandom } from './oci-builder.js'

// Large blobs for streaming tests, generated on the fly so the test itself holds no more
// than one chunk: a 1 MiB pseudo-random block, varied by its index.

const CHUNK = 1 << 20

export function chunkAt(base: Buffer, i: number): Buffer {
  const chunk = Buffer.from(base)
  chunk.writeUInt32BE(i, 0)
  return chunk
}

export function largeBlob(size: number, seed: string): { stream: () => Readable; digest: string } {
  const base = pseudoRandom(seed, CHUNK)
  const chunks = Math.ceil(size / CHUNK)
  const piece = (i: number): Buffer => {
    const c = chunkAt(base, i)
    return i === chunks - 1 && size % CHUNK !== 0 ? c.subarray(0, size % CHUNK) : c
  }
  const hash = createHash('sha256')
  for (let i = 0; i < chunks; i++) hash.update(piece(i))
  const digest = `sha256:${hash.digest('hex')}`
  return {
    digest,
    stream: () => {
      let i = 0
      return new Readable({
        read() {
          this.push(i < chunks ? piece(i++) : null)
        },
      })
    },
  }
}

/** Streams a GET body through sha256, holding nothing. */
export async function hashDownload(url: string, options: Parameters<typeof request>[1] = {}): Promise<{ status: number; digest: string; bytes: number; headers: Record<string, unknown> }> {
  const res = await request(url, options)
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }
  return { status: res.statusCode, digest: `sha256:${hash.digest('hex')}`, bytes, headers: res.headers }
}
