import type { Server } from 'node:http'
import type { FastifyInstance } from 'fastify'

// Graceful shutdown (issue 23). A rollout must fail no push: load balancers and ingress
// controllers take a few seconds to stop sending to a pod after it is told to go, and
// ingress-nginx does not retry a POST, PATCH or PUT that finds the port closed. So on
// SIGTERM: /readyz answers 503 at once, new requests are still served for shutdown.drainDelayMs,
// then the listener closes; requests in flight (a multi-GB layer upload) get
// shutdown.timeoutMs to finish, after which their connections are cut; queued audit records
// are flushed; the process exits.

/** How often connections that a finished request left idle are closed while draining. */
const REAP_INTERVAL_MS = 250
/** Longest the audit queues get to flush once the requests are done (the chart's grace period counts it). */
export const FLUSH_TIMEOUT_MS = 10_000

export interface DrainOptions {
  readonly delayMs: number
  readonly timeoutMs: number
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves once the app is closed, or the deadline and the flush budget have passed. */
export async function drain(app: FastifyInstance, options: DrainOptions): Promise<void> {
  const { lifecycle } = app.guard
  lifecycle.draining = true
  if (options.delayMs > 0) {
    app.log.info({ delayMs: options.delayMs }, 'draining: /readyz answers 503, new requests are still served until the listener closes')
    await sleep(options.delayMs)
  }
  lifecycle.closing = true
  const servers = [app.server, app.admin?.server, app.adminApi?.server].filter((s): s is Server => s !== undefined && s !== null)
  app.log.info({ connections: await connections(app.server), timeoutMs: options.timeoutMs }, 'listener closed: waiting for the requests in flight')
  // Node closes idle keep-alive connections once, when the listener closes; a connection whose
  // request finishes later would otherwise wait out server.keepAliveTimeoutMs.
  const reaper = setInterval(() => {
    for (const server of servers) server.closeIdleConnections()
  }, REAP_INTERVAL_MS)
  let cut = false
  const deadline = sleep(options.timeoutMs).then(async () => {
    cut = true
    app.log.warn({ connections: await connections(app.server) }, 'shutdown deadline reached: cutting the requests still in flight')
    for (const server of servers) server.closeAllConnections()
    await sleep(FLUSH_TIMEOUT_MS)
  })
  const closed = app.close().then(() => true)
  const done = await Promise.race([closed, deadline.then(() => false)])
  clearInterval(reaper)
  if (!done) app.log.error('shutdown: audit records or connections were still pending when the flush time ran out')
  else if (!cut) app.log.info('every request in flight finished')
}

function connections(server: Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((_err, count) => resolve(count ?? 0)))
}
