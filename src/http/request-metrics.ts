import type { Socket } from 'node:net'
import { Metrics } from '../observability/metrics.js'

// Requests by method and status class, and bytes each way. Bytes are read off the socket,
// so a keep-alive connection's traffic is shared out between its requests.

const socketBytes = new WeakMap<Socket, { read: number; written: number }>()

export function countRequest(metrics: Metrics, method: string, status: number, socket: Socket | null): void {
  metrics.proxiedRequests.inc({ method, status_class: Metrics.statusClass(status) })
  if (socket === null) return
  const before = socketBytes.get(socket) ?? { read: 0, written: 0 }
  const now = { read: socket.bytesRead, written: socket.bytesWritten }
  metrics.proxiedBytes.inc({ direction: 'in' }, Math.max(0, now.read - before.read))
  metrics.proxiedBytes.inc({ direction: 'out' }, Math.max(0, now.written - before.written))
  socketBytes.set(socket, now)
}
