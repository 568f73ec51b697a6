// The heap, measured after a full garbage collection: without one, a heap check measures
// whatever garbage happens to be waiting and can neither see a leak nor rule one out.

/** heapUsed after collecting garbage. Needs node --expose-gc (.taprc passes it to every test). */
export function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (typeof gc !== 'function') throw new Error('this heap check needs node --expose-gc: run it with tap (.taprc sets node-arg), or node --expose-gc')
  // Twice: the first pass can leave objects that only become unreachable once finalizers ran.
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
