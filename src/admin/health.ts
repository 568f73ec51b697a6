import type { FastifyInstance } from 'fastify'
import type { RegistryClient } from '../upstream/registry-client.js'

/** Readiness asks the registry; a slow registry must not hang the probe. */
const READY_TIMEOUT_MS = 3_000

export function registerHealth(app: FastifyInstance, client: RegistryClient): void {
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const result = await client.ping(AbortSignal.timeout(READY_TIMEOUT_MS))
    // Anyone can reach the proxy port: the registry's address stays out of the answer.
    return reply.code(result.ok ? 200 : 503).send({ status: result.ok ? 'ready' : 'unready', detail: result.detail })
  })
}
