import { appendFile, rename, rm, stat } from 'node:fs/promises'
import type { Logger } from 'pino'
import { DeliveryQueue } from './delivery-queue.js'
import type { Metrics } from './metrics.js'

// Rejected and warned decisions as JSON Lines, rotated by size (`file`, `file.1`, … `file.N`).
// Writes happen on the queue's worker, one at a time, off the push path.

export interface AuditFileOptions {
  readonly path: string
  readonly maxBytes: number
  readonly keep: number
  readonly queueSize: number
}

export class AuditFile {
  readonly #options: AuditFileOptions
  readonly #queue: DeliveryQueue<string>
  #size: number | undefined

  constructor(options: AuditFileOptions, metrics: Metrics, logger: Logger) {
    this.#options = options
    this.#queue = new DeliveryQueue<string>({
      max: options.queueSize,
      concurrency: 1,
      deliver: async (line) => {
        try {
          await this.#write(line)
          metrics.auditDeliveries.inc({ sink: 'file', outcome: 'delivered' })
        } catch (err) {
          metrics.auditDeliveries.inc({ sink: 'file', outcome: 'failed' })
          logger.error({ err, path: options.path }, 'audit file write failed; the record is lost')
        }
      },
      onDrop: () => {
        metrics.auditDeliveries.inc({ sink: 'file', outcome: 'dropped' })
        logger.error({ path: options.path }, 'audit file queue full; a record was dropped')
      },
    })
  }

  append(record: unknown): void {
    this.#queue.push(`${JSON.stringify(record)}\n`)
  }

  drained(): Promise<void> {
    return this.#queue.drained()
  }

  async #write(line: string): Promise<void> {
    const bytes = Buffer.byteLength(line)
    if (this.#size === undefined) this.#size = await stat(this.#options.path).then((s) => s.size, () => 0)
    if (this.#size > 0 && this.#size + bytes > this.#options.maxBytes) await this.#rotate()
    await appendFile(this.#options.path, line, { mode: 0o640 })
    this.#size += bytes
  }

  async #rotate(): Promise<void> {
    const { path, keep } = this.#options
    await rm(`${path}.${keep}`, { force: true })
    for (let i = keep - 1; i >= 1; i--) await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(() => {})
    if (keep >= 1) await rename(path, `${path}.1`)
    else await rm(path, { force: true })
    this.#size = 0
  }
}
