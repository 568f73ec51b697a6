import type { Readable } from 'node:stream'

/**
 * Reads a body into memory up to `maxBytes`. Returns undefined (and destroys the stream, so
 * the connection is not left half-read) when it is larger.
 */
export async function readBounded(body: Readable, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of body) {
    const buf = chunk as Buffer
    total += buf.length
    if (total > maxBytes) {
      body.destroy()
      return undefined
    }
    chunks.push(buf)
  }
  return Buffer.concat(chunks, total)
}
