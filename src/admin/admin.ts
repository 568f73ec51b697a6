import Fastify, { type FastifyInstance, LogController } from 'fastify'
import { readSecret } from '../config/load.js'
import { checkList, judgedBy } from '../inspect/check-list.js'
import { RegistryError } from '../oci/error-code.js'
import { isRepositoryName, parseReference } from '../oci/reference.js'
import { adminTokenHook } from './admin-auth.js'
import { hostGuard } from './host-guard.js'
import { parseDecisionFilter, registerDecisionsPage } from './decisions-page.js'
import { installErrorMapper, sendRegistryError } from '../proxy/error-mapper.js'
import { registerRegistryEvents } from './registry-events.js'
import { policyResolver } from '../proxy/policy.js'
import { type Services, walkLimitsOf } from '../proxy/services.js'

// The admin listeners, never the proxy port: /metrics for Prometheus, and the /_guard/v1 API
// (recent decisions, checks of lists already in the registry, registry notifications) with
// the decisions page /_guard/ for people, behind the admin token when one is configured
// (admin-auth.ts). With admin.apiListen the API and the page get a listener
// of its own, so metrics can be published (a Service, a scraper) without the API, which shows
// who pushed what and can make the proxy read repositories with its lookup credentials.

export const ADMIN_PREFIX = '/_guard/v1'
/** Most decisions one API call lists. */
const MAX_DECISIONS_LISTED = 10_000

export interface AdminApps {
  /** /metrics, and the API too unless it has its own listener. */
  readonly admin: FastifyInstance
  /** The API on admin.apiListen, when set. */
  readonly api: FastifyInstance | null
}

function listenerApp(services: Services, listener: string, listenHost: string): FastifyInstance {
  const app = Fastify({ loggerInstance: services.logger.child({ listener }), logController: new LogController({ disableRequestLogging: true }) }) as unknown as FastifyInstance
  installErrorMapper(app)
  // Every route, /metrics and unknown paths included, before the token is even asked for.
  app.addHook('onRequest', hostGuard(listenHost, services.config.admin.allowedHosts))
  return app
}

export async function buildAdminApps(services: Services): Promise<AdminApps> {
  const admin = listenerApp(services, 'admin', services.config.admin.listen.host)
  admin.get('/metrics', async (_request, reply) => {
    reply.header('content-type', services.metrics.registry.contentType)
    return services.metrics.registry.metrics()
  })
  const apiListen = services.config.admin.apiListen
  if (apiListen === undefined) {
    await registerApi(admin, services)
    return { admin, api: null }
  }
  const api = listenerApp(services, 'admin-api', apiListen.host)
  await registerApi(api, services)
  return { admin, api }
}

async function registerApi(app: FastifyInstance, services: Services): Promise<void> {
  const { config } = services
  const requireToken = adminTokenHook(readSecret(config.admin.token, config.admin.tokenFile))
  const resolvePolicy = policyResolver(config)
  registerRegistryEvents(app, services, `${ADMIN_PREFIX}/events`)

  await app.register(async (people) => {
    people.addHook('onRequest', requireToken)
    registerDecisionsPage(people, services.decisions, config.admin.recentDecisions)
  })

  await app.register(
    async (api) => {
      api.addHook('onRequest', requireToken)

      api.get('/decisions', async (request, reply) => {
        const filter = parseDecisionFilter(request.query as Record<string, unknown>, reply, MAX_DECISIONS_LISTED)
        if (filter === undefined) return reply
        const { repository, result, limit } = filter
        return { decisions: services.decisions.list({ ...(repository === undefined ? {} : { repository }), ...(result === undefined ? {} : { result }), limit }) }
      })

      // GET /_guard/v1/check/<name>/<tag or digest>: the push-time check of a list already there.
      api.get('/check/*', async (request, reply) => {
        const rest = (request.params as { '*': string })['*']
        const slash = rest.lastIndexOf('/')
        const repository = rest.slice(0, slash)
        const reference = rest.slice(slash + 1)
        if (slash === -1 || !isRepositoryName(repository) || parseReference(reference) === undefined) {
          return sendRegistryError(reply, RegistryError.of('NAME_INVALID', `expected ${ADMIN_PREFIX}/check/<name>/<tag or digest>, got ${rest}`))
        }
        const password = readSecret(config.lookupCredentials.password, config.lookupCredentials.passwordFile)
        const credentials = config.lookupCredentials.username === undefined ? {} : { username: config.lookupCredentials.username, password: password ?? '' }
        const result = await checkList({
          source: services.source,
          ledger: services.ledger,
          repository,
          reference,
          limits: walkLimitsOf(config),
          candidatePatterns: config.validation.candidateRepositories,
          ctx: { authorization: undefined, credentials },
          registryHost: new URL(config.upstream).host,
          // Judged as a push to this repository is: its settings after the rules.
          ...judgedBy(resolvePolicy(repository)),
        })
        return reply.code(result.status === 'unchecked' ? 502 : 200).send(result)
      })
    },
    { prefix: ADMIN_PREFIX },
  )
}
