import type { Socket } from 'node:net'
import type { Counter } from 'prom-client'
import { Metrics } from '../observability/metrics.js'

// Requests by method and status class, and bytes each way. Bytes are read off the socket,
// so a keep-alive connection's traffic is shared out between its requests. Runs for every
// request: the labelled counters are looked up once, not hashed per call.

const socketBytes = new WeakMap<Socket, { read: number; written: number }>()
const children = new WeakMap<Metrics, { requests: Map<string, Counter.Internal>; bytesIn: Counter.Internal; bytesOut: Counter.Internal }>()

export function countRequest(metrics: Metrics, method: string, status: number, socket: Socket | null): void {
  let c = children.get(metrics)
  if (c === undefined) {
    c = { requests: new Map(), bytesIn: metrics.proxiedBytes.labels('in'), bytesOut: metrics.proxiedBytes.labels('out') }
    children.set(metrics, c)
  }
  const statusClass = Metrics.statusClass(status)
  const key = `${method} ${statusClass}`
  let counter = c.requests.get(key)
  if (counter === undefined) {
    counter = metrics.proxiedRequests.labels(method, statusClass)
    c.requests.set(key, counter)
  }
  counter.inc()
  if (socket === null) return
  const before = socketBytes.get(socket) ?? { read: 0, written: 0 }
  const now = { read: socket.bytesRead, written: socket.bytesWritten }
  c.bytesIn.inc(Math.max(0, now.read - before.read))
  c.bytesOut.inc(Math.max(0, now.written - before.written))
  socketBytes.set(socket, now)
}
