// The bound on list bodies held in memory. A list push is read whole before it is checked (up
// to 4 MiB), and a client decides how slowly it sends: 120 connections each sending 4 MiB - 1
// byte and stalling once took the proxy from 88 to 575 MiB, held for as long as each trickled.
// So a body is read only against a reservation of its declared length (the most a list may
// be, when it declares none), taken before the first byte is read and returned when its
// request ends: at most `max` bytes for all clients, and at most a quarter of that for one
// client address, so one client cannot take it all from the others.

export class ListBodyBudget {
  readonly max: number
  readonly maxPerClient: number
  #used = 0
  readonly #byClient = new Map<string, number>()

  /** `oneBody`: the largest single body, which one client may always reserve when the budget is free. */
  constructor(max: number, oneBody: number) {
    this.max = max
    this.maxPerClient = Math.min(max, Math.max(oneBody, Math.floor(max / 4)))
  }

  get used(): number {
    return this.#used
  }

  /** Reserves `bytes` for `client`; returns the release, or undefined when that would pass a bound. */
  reserve(client: string, bytes: number): (() => void) | undefined {
    const held = this.#byClient.get(client) ?? 0
    if (this.#used + bytes > this.max || held + bytes > this.maxPerClient) return undefined
    this.#used += bytes
    this.#byClient.set(client, held + bytes)
    let released = false
    return () => {
      if (released) return
      released = true
      this.#used -= bytes
      const left = (this.#byClient.get(client) ?? bytes) - bytes
      if (left <= 0) this.#byClient.delete(client)
      else this.#byClient.set(client, left)
    }
  }
}
