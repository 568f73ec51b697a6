import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import Fastify, { type FastifyInstance, LogController } from 'fastify'
import type { Config } from './config/schema.js'
import { createLogger, type Logger } from './observability/logger.js'
import { clientErrorHandler, installErrorMapper, rawPathRefusal } from './proxy/error-mapper.js'
import { registerAdminHealth, registerHealth } from './admin/health.js'
import { registerPassthrough } from './proxy/passthrough.js'
import { buildAdminApps } from './admin/admin.js'
import { decisionRecorder } from './proxy/decisions.js'
import { createDeleteGuard } from './proxy/delete-guard.js'
import { createListPushHandler } from './proxy/list-push.js'
import { createSeam } from './proxy/seam.js'
import { createResponseObserver } from './proxy/traffic-observer.js'
import { createFastLane } from './proxy/fast-lane.js'
import { createForwarder, forwarded } from './proxy/forwarder.js'
import { watchCertificate } from './proxy/certificate-watch.js'
import { createReadCarrier, type ReadCarrier } from './proxy/read-carrier.js'
import { countRequest } from './proxy/request-metrics.js'
import { watchRequestBody } from './proxy/idle-timeout.js'
import { closeServices, createServices, type ServiceOverrides, type Services } from './proxy/services.js'

// Builds the proxy; never listens, so tests build, inject and tear down.

declare module 'fastify' {
  interface FastifyInstance {
    guard: Services
    /** The admin listener's app (metrics, and /_guard/v1 unless it has its own); listened on next to the proxy. */
    admin: FastifyInstance | null
    /** The /_guard/v1 API's own app, when admin.apiListen is set. */
    adminApi: FastifyInstance | null
    /** How fast-lane reads reach a plain-HTTP registry (null: by undici, as everything else). */
    readCarrier: ReadCarrier | null
  }
}

export interface AppOptions extends ServiceOverrides {
  readonly logger?: Logger
  /** How often the TLS certificate files are compared with what is served (tests shorten it). */
  readonly certificateCheckMs?: number
}

/**
 * Short ids people can quote from an error message: a random prefix per process (so replicas
 * differ) and a counter. A random id per request showed in the profile as sync crypto work.
 */
function requestIds(): () => string {
  const prefix = randomBytes(3).toString('hex')
  let next = 0
  return () => prefix + (next++ & 0xffffff).toString(16).padStart(6, '0')
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const logger = options.logger ?? createLogger(config.logLevel)
  const tls = config.tls.cert !== undefined && config.tls.key !== undefined ? { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } : null
  const services = createServices(config, logger, options)
  const limits = config.server
  const observe = createResponseObserver(services)
  // Reads the seam does not inspect go by the read carrier (raw registry connections); the rest by undici.
  const carrier = createReadCarrier(services, observe)
  const forward = createForwarder(services, observe, carrier?.carry)
  const nextId = requestIds()
  const lane = createFastLane(forward, logger, nextId)
  const app = Fastify({
    loggerInstance: logger,
    // Per-request lines would double the registry's own access log; decisions are logged.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: nextId,
    // Client-supplied ids are not trusted into logs.
    requestIdHeader: false,
    forceCloseConnections: 'idle',
    // A request that arrives on a live connection while the listener closes (drain.ts) is
    // served, not refused: a 503 would fail a push that was already under way.
    return503OnClosing: false,
    clientErrorHandler,
    // Reads take the fast lane; everything else, fastify's routing.
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
      const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
        // Once the listener has closed, every answer ends its connection.
        if (services.lifecycle.closing) res.shouldKeepAlive = false
        watchRequestBody(req, limits.bodyIdleTimeoutMs)
        if (!lane(req, res)) handler(req, res)
      }
      // A blob upload runs for as long as it runs (no request timeout), but never stalls for
      // longer than the body idle timeout; headers must arrive within their own timeout,
      // checked every second rather than Node's default 30.
      const options = { requestTimeout: 0, headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: CHECK_INTERVAL_MS }
      const server = tls === null ? createHttpServer(options, onRequest) : createHttpsServer({ ...tls, ...options }, onRequest)
      // A client that half-closes once its request is sent (shutdown(SHUT_WR)) still reads the
      // answer, as Go's server gives it; Node's default would drop its requests in flight.
      // Node's own switch for this; the connection closes once the last answer is out.
      Object.assign(server, { httpAllowHalfOpen: true })
      limitListener(server, limits, 0)
      return server
    },
    routerOptions: {
      onBadUrl: rawPathRefusal('the request path is not validly percent-encoded'),
      onMaxParamLength: rawPathRefusal('the request path is too long'),
      maxParamLength: 1024,
    },
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance
  app.decorate('guard', services)
  app.decorateRequest('registryPath', null)
  app.decorateRequest('pushedManifest', null)
  installErrorMapper(app)
  registerHealth(app, services.client, services.lifecycle)
  installRequestMetrics(app, services)
  const listPush = createListPushHandler(services, decisionRecorder({ ...services, audited: config.audit.include }))
  await registerPassthrough(app, { origin: config.upstream, pool: services.passthrough }, createSeam(services.client, forward, listPush, createDeleteGuard(services)))
  const admin = config.admin.enabled ? await buildAdminApps(services) : null
  // The admin listeners take only small requests (notifications, API calls): each must arrive
  // whole within the body idle timeout, on top of the same header, keep-alive and connection limits.
  for (const side of [admin?.admin, admin?.api]) {
    if (side === undefined || side === null) continue
    // Node reads this option back from the server when it starts listening (not yet).
    const server = side.server as HttpServer & { connectionsCheckingInterval: number }
    server.connectionsCheckingInterval = CHECK_INTERVAL_MS
    limitListener(server, limits, Math.max(limits.headersTimeoutMs, limits.bodyIdleTimeoutMs))
  }
  if (admin !== null) registerAdminHealth(admin.admin, services.lifecycle)
  app.decorate('admin', admin?.admin ?? null)
  app.decorate('adminApi', admin?.api ?? null)
  app.decorate('readCarrier', carrier)
  const stopWatching =
    tls === null || config.tls.cert === undefined || config.tls.key === undefined
      ? () => {}
      : watchCertificate(app.server as unknown as HttpsServer, { cert: config.tls.cert, key: config.tls.key }, tls, logger, options.certificateCheckMs)
  app.addHook('onClose', async () => {
    stopWatching()
    await admin?.admin.close()
    await admin?.api?.close()
    await carrier?.close()
    await closeServices(services)
  })
  return app
}

/** How often Node looks for connections past their header or request timeout (its default is 30 s). */
const CHECK_INTERVAL_MS = 1_000

/** The limits every listener keeps, so no socket is held open for ever. */
function limitListener(server: HttpServer, limits: Config['server'], requestTimeoutMs: number): void {
  server.headersTimeout = limits.headersTimeoutMs
  server.requestTimeout = requestTimeoutMs
  server.keepAliveTimeout = limits.keepAliveTimeoutMs
  server.maxConnections = limits.maxConnections
}

/** Listens on the proxy address and, when enabled, the admin address. */
export async function listen(app: FastifyInstance, config: Config): Promise<void> {
  await app.listen({ host: config.listen.host, port: config.listen.port })
  if (app.admin !== null) await app.admin.listen({ host: config.admin.listen.host, port: config.admin.listen.port })
  const api = config.admin.apiListen
  if (app.adminApi !== null && api !== undefined) await app.adminApi.listen({ host: api.host, port: api.port })
}

/** Answers of the app's own on the proxy port (refusals, errors); forwarded ones count themselves. */
function installRequestMetrics(app: FastifyInstance, services: Services): void {
  app.addHook('onResponse', (request, reply, done) => {
    if (request.registryPath !== null && !forwarded.has(reply.raw)) countRequest(services.metrics, request.method, reply.statusCode, request.raw.socket)
    done()
  })
}
