import { Transform, type Readable, type TransformCallback } from 'node:stream'

// Reading a client's request body: bounded, and never destroying the socket on overflow, so
// the client still gets a 413 it can read.

export type BodyRead = { readonly bytes: Buffer } | { readonly tooLarge: true }

export async function readRequestBody(body: Readable, maxBytes: number): Promise<BodyRead> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const onData = (chunk: Buffer): void => {
      total += chunk.length
      if (total > maxBytes) {
        cleanup()
        // Stop reading; the reply goes out with Connection: close and Node drops the rest.
        body.pause()
        resolve({ tooLarge: true })
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resolve({ bytes: Buffer.concat(chunks, total) })
    }
    const onError = (err: Error): void => {
      cleanup()
      reject(err)
    }
    const cleanup = (): void => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
    }
    body.on('data', onData)
    body.on('end', onEnd)
    body.on('error', onError)
  })
}

/**
 * Passes a body through unchanged while keeping a copy of its first `maxBytes`, for bodies
 * that must stream but are worth remembering (image manifests, for the existence cache).
 */
export class BodyCopy extends Transform {
  readonly #max: number
  readonly #chunks: Buffer[] = []
  #total = 0

  constructor(maxBytes: number) {
    super()
    this.#max = maxBytes
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#total += chunk.length
    if (this.#total <= this.#max) this.#chunks.push(chunk)
    callback(null, chunk)
  }

  /** The whole body, or undefined if it was larger than the bound. */
  copy(): Buffer | undefined {
    return this.#total <= this.#max ? Buffer.concat(this.#chunks, this.#total) : undefined
  }
}
