/** Runs at most `concurrency` tasks at once; the rest wait in order. */
export function limiter(concurrency: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0
  const waiting: (() => void)[] = []
  return async <T>(task: () => Promise<T>): Promise<T> => {
    // A finishing task hands its slot straight to the next waiter, so a newcomer can never
    // slip in between and exceed the bound.
    if (active >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve))
    else active++
    try {
      return await task()
    } finally {
      const handOver = waiting.shift()
      if (handOver !== undefined) handOver()
      else active--
    }
  }
}
