import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { Agent, request } from 'undici'
import { DeliveryQueue } from './delivery-queue.js'
import type { Metrics } from './metrics.js'

// Decisions POSTed to a webhook as CloudEvents 1.0 (structured JSON). A bounded queue with
// its own workers and retries with backoff: a receiver that is down or slow never delays a
// push; every failure is logged and counted.

export interface WebhookOptions {
  readonly url: string
  readonly token: string | undefined
  readonly timeoutMs: number
  readonly retries: number
  readonly queueSize: number
  /** First retry delay; doubled each time. */
  readonly backoffMs?: number
  /** CA certificates an https:// receiver's certificate may chain to (default: the system's). */
  readonly ca?: readonly string[] | undefined
}

export interface CloudEvent {
  readonly specversion: '1.0'
  readonly id: string
  readonly source: string
  readonly type: string
  readonly time: string
  readonly subject: string
  readonly datacontenttype: 'application/json'
  readonly data: unknown
}

const CONCURRENCY = 2

export class Webhook {
  readonly #options: WebhookOptions
  readonly #queue: DeliveryQueue<CloudEvent>
  readonly #metrics: Metrics
  readonly #logger: Logger
  readonly #dispatcher: Agent | undefined

  constructor(options: WebhookOptions, metrics: Metrics, logger: Logger) {
    this.#options = options
    this.#dispatcher = options.ca === undefined ? undefined : new Agent({ connect: { ca: [...options.ca] } })
    this.#metrics = metrics
    this.#logger = logger
    this.#queue = new DeliveryQueue<CloudEvent>({
      max: options.queueSize,
      concurrency: CONCURRENCY,
      deliver: (event) => this.#deliver(event),
      onDrop: (event) => {
        metrics.auditDeliveries.inc({ sink: 'webhook', outcome: 'dropped' })
        logger.error({ eventId: event.id, type: event.type }, 'webhook queue full; an audit event was dropped')
      },
    })
  }

  send(type: string, subject: string, data: unknown): void {
    this.#queue.push({
      specversion: '1.0',
      id: randomUUID(),
      source: 'manifest-guard',
      type: `io.manifest-guard.${type}`,
      time: new Date().toISOString(),
      subject,
      datacontenttype: 'application/json',
      data,
    })
  }

  drained(): Promise<void> {
    return this.#queue.drained()
  }

  async #deliver(event: CloudEvent): Promise<void> {
    const body = JSON.stringify(event)
    let lastError = ''
    for (let attempt = 0; attempt <= this.#options.retries; attempt++) {
      if (attempt > 0) {
        this.#metrics.auditDeliveries.inc({ sink: 'webhook', outcome: 'retried' })
        await new Promise((r) => setTimeout(r, (this.#options.backoffMs ?? 250) * 2 ** (attempt - 1)))
      }
      try {
        const res = await request(this.#options.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/cloudevents+json',
            ...(this.#options.token === undefined ? {} : { authorization: `Bearer ${this.#options.token}` }),
          },
          body,
          headersTimeout: this.#options.timeoutMs,
          bodyTimeout: this.#options.timeoutMs,
          signal: AbortSignal.timeout(this.#options.timeoutMs),
          ...(this.#dispatcher === undefined ? {} : { dispatcher: this.#dispatcher }),
        })
        await res.body.dump()
        if (res.statusCode >= 200 && res.statusCode < 300) {
          this.#metrics.auditDeliveries.inc({ sink: 'webhook', outcome: 'delivered' })
          return
        }
        lastError = `answered ${res.statusCode}`
        // A 4xx other than 408/429 will not get better by asking again.
        if (res.statusCode < 500 && res.statusCode !== 408 && res.statusCode !== 429) break
      } catch (err) {
        lastError = (err as Error).message
      }
    }
    this.#metrics.auditDeliveries.inc({ sink: 'webhook', outcome: 'failed' })
    this.#logger.error({ eventId: event.id, type: event.type, url: this.#options.url, reason: lastError }, 'webhook delivery failed; the event is logged here instead')
  }
}
