import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import type { Config } from '../config/schema.js'
import { createLogger, type Logger } from '../observability/logger.js'
import { installErrorMapper, rawPathRefusal } from './error-mapper.js'
import { registerHealth } from './health.js'
import { registerPassthrough } from './passthrough.js'
import { Metrics } from '../observability/metrics.js'
import { buildAdminApp } from './admin.js'
import { decisionRecorder } from './decisions.js'
import { createListPushHandler } from './list-push.js'
import { createSeam } from './seam.js'
import { installTrafficObserver } from './traffic-observer.js'
import { closeServices, createServices, type ServiceOverrides, type Services } from './services.js'

// Builds the proxy; never listens, so tests build, inject and tear down.

declare module 'fastify' {
  interface FastifyInstance {
    guard: Services
    /** The admin listener's app (metrics, /_guard/v1); listened on by the CLI next to the proxy. */
    admin: FastifyInstance | null
  }
}

export interface AppOptions extends ServiceOverrides {
  readonly logger?: Logger
}

/** Short ids people can quote from an error message. */
const requestId = (): string => randomBytes(6).toString('hex')

export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? createLogger(config.logLevel)
  const tls = config.tls.cert !== undefined && config.tls.key !== undefined ? { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } : null
  const app = Fastify({
    loggerInstance: logger,
    // Per-request lines would double the registry's own access log; decisions are logged.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestId,
    // Client-supplied ids are not trusted into logs.
    requestIdHeader: false,
    // Blob uploads run for as long as they run; idle sockets are timed out by Node.
    requestTimeout: 0,
    keepAliveTimeout: 65_000,
    forceCloseConnections: 'idle',
    https: tls,
    routerOptions: {
      onBadUrl: rawPathRefusal('the request path is not validly percent-encoded'),
      onMaxParamLength: rawPathRefusal('the request path is too long'),
      maxParamLength: 1024,
    },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  const services = createServices(config, logger, options)
  app.decorate('guard', services)
  app.decorateRequest('registryPath', null)
  app.decorateRequest('pushedManifest', null)
  installErrorMapper(app)
  installTrafficObserver(app, services)
  registerHealth(app, services)
  installRequestMetrics(app, services)
  const listPush = createListPushHandler(services, decisionRecorder(services))
  await registerPassthrough(app, services, createSeam(services, listPush))
  const admin = config.admin.enabled ? await buildAdminApp(services) : null
  app.decorate('admin', admin)
  app.addHook('onClose', async () => {
    await admin?.close()
    await closeServices(services)
  })
  return app
}

/** Listens on the proxy address and, when enabled, the admin address. */
export async function listen(app: FastifyInstance, config: Config): Promise<void> {
  await app.listen({ host: config.listen.host, port: config.listen.port })
  if (app.admin !== null) await app.admin.listen({ host: config.admin.listen.host, port: config.admin.listen.port })
}

/** Requests by method and status class, and bytes each way, counted per socket. */
function installRequestMetrics(app: FastifyInstance, services: Services): void {
  const { metrics } = services
  const seen = new WeakMap<object, { read: number; written: number }>()
  app.addHook('onResponse', (request, reply, done) => {
    if (request.registryPath !== null) metrics.proxiedRequests.inc({ method: request.method, status_class: Metrics.statusClass(reply.statusCode) })
    const socket = request.raw.socket
    if (socket !== null) {
      const before = seen.get(socket) ?? { read: 0, written: 0 }
      const now = { read: socket.bytesRead, written: socket.bytesWritten }
      metrics.proxiedBytes.inc({ direction: 'in' }, Math.max(0, now.read - before.read))
      metrics.proxiedBytes.inc({ direction: 'out' }, Math.max(0, now.written - before.written))
      seen.set(socket, now)
    }
    done()
  })
}
