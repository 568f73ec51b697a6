// Registry connections held per client address. A client that stalls its requests (an
// upload that stops sending, a download it stops reading) holds a registry connection each
// until server.bodyIdleTimeoutMs; without a cap per client, one client could hold every
// connection of a pool and nothing else would be answered. Writes over the cap are refused
// (429, the client retries); reads over it wait for one of the same client's own to finish,
// so a busy puller is slowed, never refused, and other clients never wait behind it.

export class ClientSlots {
  readonly #held = new Map<string, number>()
  readonly #waiting = new Map<string, (() => void)[]>()
  readonly max: number

  constructor(max: number) {
    this.max = max
  }

  /** Takes one of the client's slots if it has one free. */
  tryEnter(client: string): boolean {
    const n = this.#held.get(client) ?? 0
    if (n >= this.max) return false
    this.#held.set(client, n + 1)
    return true
  }

  /** Runs `start` once one of the client's own slots frees (the slot passes to it whole). */
  wait(client: string, start: () => void): void {
    const queue = this.#waiting.get(client)
    if (queue === undefined) this.#waiting.set(client, [start])
    else queue.push(start)
  }

  /** Takes a waiting `start` back (its client went away); false if it already ran. */
  withdraw(client: string, start: () => void): boolean {
    const queue = this.#waiting.get(client)
    const at = queue?.indexOf(start) ?? -1
    if (queue === undefined || at === -1) return false
    queue.splice(at, 1)
    if (queue.length === 0) this.#waiting.delete(client)
    return true
  }

  /** Frees a slot, or hands it to the client's next waiting request. */
  leave(client: string): void {
    const queue = this.#waiting.get(client)
    const next = queue?.shift()
    if (next !== undefined) {
      if (queue!.length === 0) this.#waiting.delete(client)
      // Not from inside the finishing request's own callbacks.
      process.nextTick(next)
      return
    }
    const n = (this.#held.get(client) ?? 1) - 1
    if (n <= 0) this.#held.delete(client)
    else this.#held.set(client, n)
  }
}
