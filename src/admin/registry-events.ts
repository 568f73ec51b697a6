import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { readSecret } from '../config/load.js'
import type { LookupContext } from '../oci/content-lookup.js'
import { type Digest, isDigest } from '../oci/digest.js'
import { RegistryError } from '../oci/error-code.js'
import { isIndex, isManifest } from '../oci/media-type.js'
import { isRepositoryName, isTag } from '../oci/reference.js'
import { sendRegistryError } from '../proxy/error-mapper.js'
import type { Services } from '../proxy/services.js'
import { limiter } from '../validate/limiter.js'

/** Notified lists read at once for the delete guard, so a burst of notifications stays a trickle. */
const INDEXING_CONCURRENCY = 2
/** Children read per notified list. */
const MAX_CHILDREN_READ = 500

// POST /_guard/v1/events: CNCF distribution's notifications (configuration `notifications:
// endpoints:`), so pushes that bypass the proxy (internal CI pushing straight to the
// registry) still feed the ledger. Off until registryEvents.token is set; the
// registry sends it as `Authorization: Bearer …` (the endpoint's `headers`). At least once:
// a batch the ledger could not take is answered 503, and distribution sends it again
// (its endpoint `threshold`/`backoff`) until it is taken.

export const EVENTS_MEDIA_TYPE = 'application/vnd.docker.distribution.events.v1+json'
/** distribution batches events; a batch is small, but bounded all the same. */
const MAX_EVENTS_BYTES = 4 << 20

interface RegistryEvent {
  readonly action?: unknown
  readonly timestamp?: unknown
  readonly target?: { readonly mediaType?: unknown; readonly digest?: unknown; readonly repository?: unknown; readonly tag?: unknown; readonly size?: unknown; readonly length?: unknown }
  readonly actor?: { readonly name?: unknown }
}

export function registerRegistryEvents(app: FastifyInstance, services: Services, path: string): void {
  const token = readSecret(services.config.registryEvents.token, services.config.registryEvents.tokenFile)
  if (token === undefined) return
  const expected = Buffer.from(`Bearer ${token}`)
  const { metrics, ledger, logger } = services
  const indexing = limiter(INDEXING_CONCURRENCY)
  const lookup = services.config.lookupCredentials
  const credentials = lookup.username === undefined ? {} : { username: lookup.username, password: readSecret(lookup.password, lookup.passwordFile) ?? '' }
  /**
   * Reads the list and its children (the proxy's lookup credentials; bodies go through the
   * manifest cache) in the background: the registry's notification is answered at once.
   */
  function indexList(repository: string, tag: string, digest: Digest): void {
    if (!services.config.deleteGuard.enabled || services.listIndex.has(repository, digest, tag)) return
    void indexing(async () => {
      const ctx: LookupContext = { authorization: undefined, credentials, signal: AbortSignal.timeout(services.config.validation.timeoutMs) }
      const found = await services.source.manifest(repository, digest, ctx)
      if (found.status !== 'found' || found.value.manifest?.kind !== 'index') return
      for (const child of found.value.manifest.manifests.slice(0, MAX_CHILDREN_READ)) await services.source.manifest(repository, child.digest, ctx)
      services.listIndex.recordList(repository, tag, digest, found.value.manifest, (d) => services.cache.body(d))
    }).catch((err: unknown) => logger.warn({ err, repository, digest }, 'reading a notified list for the delete guard failed'))
  }

  app.register(async (scope) => {
    scope.addContentTypeParser([EVENTS_MEDIA_TYPE, 'application/json'], { parseAs: 'string', bodyLimit: MAX_EVENTS_BYTES }, (_req, body, done) => {
      try {
        done(null, JSON.parse(body as string))
      } catch {
        done(RegistryError.of('UNSUPPORTED', 'the notification body is not JSON'), undefined)
      }
    })
    scope.post(path, async (request, reply) => {
      const given = Buffer.from(request.headers.authorization ?? '')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        metrics.registryEvents.inc({ outcome: 'rejected' })
        return sendRegistryError(reply, RegistryError.of('UNAUTHORIZED', 'registry notifications need the shared token'))
      }
      const events = (request.body as { events?: unknown } | undefined)?.events
      if (!Array.isArray(events)) return sendRegistryError(reply, RegistryError.of('UNSUPPORTED', 'expected {"events": [...]}'))
      let recorded = 0
      let failed: string | undefined
      for (const e of events as RegistryEvent[]) {
        const t = e.target
        const repository = t?.repository
        const digest = t?.digest
        if (typeof repository !== 'string' || !isRepositoryName(repository) || !isDigest(digest)) {
          metrics.registryEvents.inc({ outcome: 'ignored' })
          continue
        }
        const mediaType = typeof t?.mediaType === 'string' ? t.mediaType : undefined
        if (e.action === 'push' && isManifest(mediaType)) {
          const at = typeof e.timestamp === 'string' && !Number.isNaN(Date.parse(e.timestamp)) ? Date.parse(e.timestamp) : Date.now()
          const tag = typeof t?.tag === 'string' && isTag(t.tag) ? t.tag : undefined
          const actor = typeof e.actor?.name === 'string' && e.actor.name !== '' ? e.actor.name : undefined
          // Written now or not at all: the registry sends the batch again on a 5xx, and a record
          // written twice is one (the same push at the same time; histories are ordered by it).
          try {
            await ledger.recordNow({ repository, tag, digest, mediaType, at, identity: actor, source: 'registry-event' })
          } catch (err) {
            failed ??= (err as Error).message
            metrics.registryEvents.inc({ outcome: 'failed' })
            continue
          }
          recorded++
          metrics.registryEvents.inc({ outcome: 'recorded' })
          // A tagged list pushed straight to the registry: the delete guard learns what it names.
          if (tag !== undefined && isIndex(mediaType)) indexList(repository, tag, digest)
        } else {
          // Blob pushes, mounts and deletions teach nothing: existence is asked at every push.
          metrics.registryEvents.inc({ outcome: 'ignored' })
        }
      }
      if (failed !== undefined) {
        logger.warn({ event: 'registry-events.failed', received: events.length, recordedManifests: recorded, reason: failed }, 'registry notifications not recorded: answered 503 so the registry sends them again')
        return sendRegistryError(reply, RegistryError.of('UNAVAILABLE', `manifest-guard could not record these notifications (${failed}); send them again`, undefined, 503))
      }
      return { received: events.length, recordedManifests: recorded }
    })
  })
}
