import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import type { Config } from '../config/schema.js'
import { createLogger, type Logger } from '../observability/logger.js'
import { installErrorMapper, rawPathRefusal } from './error-mapper.js'
import { registerHealth } from './health.js'
import { registerPassthrough } from './passthrough.js'
import { decisionEvent, logDecision } from './decision-log.js'
import { createListPushHandler } from './list-push.js'
import { createSeam } from './seam.js'
import { installTrafficObserver } from './traffic-observer.js'
import { closeServices, createServices, type ServiceOverrides, type Services } from './services.js'

// Builds the proxy; never listens, so tests build, inject and tear down.

declare module 'fastify' {
  interface FastifyInstance {
    guard: Services
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
  const listPush = createListPushHandler(services, (request, record) => logDecision(request, decisionEvent(request, record)))
  await registerPassthrough(app, services, createSeam(services, listPush))
  app.addHook('onClose', async () => closeServices(services))
  return app
}
