// A bounded queue with its own workers: producers never wait, and when the queue is full
// the newest item is dropped and reported, so a slow or dead consumer can neither block nor
// grow the process.

export class DeliveryQueue<T> {
  readonly #items: T[] = []
  readonly #max: number
  readonly #concurrency: number
  readonly #deliver: (item: T) => Promise<void>
  readonly #onDrop: (item: T) => void
  #active = 0
  #idle: (() => void)[] = []

  constructor(options: { max: number; concurrency: number; deliver: (item: T) => Promise<void>; onDrop: (item: T) => void }) {
    this.#max = options.max
    this.#concurrency = options.concurrency
    this.#deliver = options.deliver
    this.#onDrop = options.onDrop
  }

  /** Never waits, never throws. */
  push(item: T): void {
    if (this.#items.length >= this.#max) {
      this.#onDrop(item)
      return
    }
    this.#items.push(item)
    this.#pump()
  }

  get pending(): number {
    return this.#items.length + this.#active
  }

  /** Resolves when everything queued so far has been handled (for shutdown and tests). */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #pump(): void {
    while (this.#active < this.#concurrency && this.#items.length > 0) {
      const item = this.#items.shift() as T
      this.#active++
      this.#deliver(item)
        .catch(() => {
          // deliver() reports its own failures; a throw here must not stop the workers.
        })
        .finally(() => {
          this.#active--
          this.#pump()
          if (this.pending === 0) for (const resolve of this.#idle.splice(0)) resolve()
        })
    }
  }
}
