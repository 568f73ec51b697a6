import type { FastifyInstance } from 'fastify'
import type { RegistryClient } from '../upstream/registry-client.js'

/** Readiness asks the registry; a slow registry must not hang the probe. */
const READY_TIMEOUT_MS = 3_000

/** Where the process is in its life: set once SIGTERM starts the drain. */
export interface Lifecycle {
  draining: boolean
}

const DRAINING = { status: 'draining', detail: 'shutting down: finishing the requests in flight' }

/** On the proxy port: /readyz says whether the registry answers, and fails from SIGTERM on. */
export function registerHealth(app: FastifyInstance, client: RegistryClient, lifecycle: Lifecycle): void {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    if (lifecycle.draining) return reply.code(503).send(DRAINING)
    const result = await client.ping(AbortSignal.timeout(READY_TIMEOUT_MS))
    // Anyone can reach the proxy port: the registry's address stays out of the answer.
    return reply.code(result.ok ? 200 : 503).send({ status: result.ok ? 'ready' : 'unready', detail: result.detail })
  })
}

/**
 * On the admin listener, for Kubernetes probes: it never drops a probe for want of a proxy
 * connection slot (server.maxConnections), and readiness leaves the registry out: every
 * replica shares the registry, so a registry hiccup that failed readiness would empty the
 * Service at once. /readyz fails only while the process drains.
 */
export function registerAdminHealth(app: FastifyInstance, lifecycle: Lifecycle): void {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => (lifecycle.draining ? reply.code(503).send(DRAINING) : { status: 'ready' }))
}
