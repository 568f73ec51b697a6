import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { decide, type Decision, isBlocking } from '../diagnose/decision.js'
import { clientKind, type MessageContext, repairFailedMessage } from '../diagnose/message.js'
import type { Cause } from '../diagnose/problem.js'
import { newLookupStats } from '../oci/content-lookup.js'
import { algorithmOf, digestOf, isDigest } from '../oci/digest.js'
import { RegistryError } from '../oci/error-code.js'
import { type IndexManifest, parseManifest } from '../oci/manifest.js'
import { readManifestPutContentType } from '../oci/manifest-handler.js'
import { MAX_MANIFEST_BYTES } from '../upstream/registry-client.js'
import { examine } from '../inspect/examine.js'
import { copyChildren, type RepairReport } from '../repair/copy-children.js'
import { clientOrigin } from './client-origin.js'
import { CLIENT_CLOSED, sendRegistryError } from './error-mapper.js'
import { clientAddress, closeIfUnread, tooManyWrites, writeSlotHeld } from './forwarder.js'
import { countRequest } from './request-metrics.js'
import { policyResolver, type RepositoryPolicy } from './policy.js'
import { BodyCopy, readRequestBody } from './request-body.js'
import type { Exchange } from './exchange.js'
import type { DecisionListener, DecisionRecord, ManifestPutHandler, ResponseInterceptor } from './contracts.js'
import { type Services, walkLimitsOf } from './services.js'

// PUT /v2/<name>/manifests/<ref>. A list or index is read (4 MiB at most), its whole graph
// checked in <name>, and then either exactly the received bytes go upstream or the client
// gets one error per problem. Any other manifest streams through, with a copy kept for the
// cache. The outcome of every list push is one decision record.

declare module 'fastify' {
  interface FastifyRequest {
    pushedManifest: Exchange['pushedManifest']
  }
}

/** Registry operations of one repair at once (a streamed blob holds two connections). */
const REPAIR_CONCURRENCY = 8

/** A rejection the repair can mend: every problem that blocks is a child left in another repository. */
function repairable(decision: Decision, policy: RepositoryPolicy): boolean {
  const blocking = decision.problems.filter((p) => isBlocking(p, policy))
  return decision.verdict === 'rejected' && decision.omitted === 0 && blocking.length > 0 && blocking.every((p) => p.cause === 'wrong-repository' && p.foundIn !== undefined && p.digest !== undefined)
}

/** `2 children from team/app/amd64, team/app/arm64`. */
function repairedHeader(report: RepairReport): string {
  const from = [...new Set(report.children.map((c) => c.from))]
  return `${report.children.length} ${report.children.length === 1 ? 'child' : 'children'} from ${from.join(', ')}`
}

/** Retry-After of a list push refused for the budget of list bodies: stalled bodies go within server.bodyIdleTimeoutMs. */
const LIST_BODIES_RETRY_AFTER_SECONDS = 5

/**
 * 429, not 503: clients print the message of a 4xx and drop that of a 5xx, and the person
 * whose push waits should read why; Retry-After tells tools when to try again.
 */
function listBodiesBusy(max: number): RegistryError {
  return new RegistryError(
    429,
    [{ code: 'TOOMANYREQUESTS', message: `manifest-guard: too many list bodies are arriving at once (server.maxBufferedListBytes: ${max >> 20} MiB for all clients, a quarter of it for one); retry shortly` }],
    { 'retry-after': String(LIST_BODIES_RETRY_AFTER_SECONDS) },
  )
}

/** Problems found in the pushed body itself, which say nothing about the repository. */
const BODY_ONLY: ReadonlySet<Cause> = new Set<Cause>(['too-many', 'duplicate-entry'])

export function createListPushHandler(services: Services, onDecision: DecisionListener): ManifestPutHandler {
  const { config } = services
  const resolvePolicy = policyResolver(config)
  const tls = config.tls.cert !== undefined

  async function validate(request: FastifyRequest, index: IndexManifest, repository: string, reference: string, policy: RepositoryPolicy, recheck: boolean): Promise<DecisionRecord> {
    const started = performance.now()
    const stats = newLookupStats()
    const ctx = { authorization: request.headers.authorization, stats }
    const v = config.validation
    const { walk, investigation: found } = await examine({
      repository,
      index,
      tag: isDigest(reference) ? undefined : reference,
      source: services.source,
      ledger: services.ledger,
      limits: walkLimitsOf(config),
      candidatePatterns: v.candidateRepositories,
      ctx,
      requiredPlatforms: policy.requiredPlatforms,
    })
    const messageContext: MessageContext = {
      registryHost: clientOrigin(request, config.trustForwardedHeaders, tls).host,
      repository,
      reference,
      requestId: request.id,
      client: clientKind(request.headers['user-agent']),
      childTags: found.childTags,
    }
    let decision = decide(found.problems, { ...policy, mode: policy.mode === 'warn' ? 'warn' : 'enforce' }, messageContext)
    if (decision.verdict === 'rejected' && stats.authorizedAnswers === 0 && !decision.problems.every((p) => BODY_ONLY.has(p.cause))) {
      // No answer of the registry showed these credentials may read the repository: make
      // sure before telling them anything about it. (A flaw of the body alone tells nothing.)
      if ((await services.client.canRead(repository, ctx)) !== 'yes') decision = { verdict: 'deferred', forward: true, error: undefined, problems: [], omitted: 0 }
    }
    return {
      decision,
      index,
      repository,
      reference,
      stats: {
        children: walk.stats.manifestsChecked,
        blobs: walk.stats.blobsChecked,
        upstreamRequests: stats.upstreamRequests,
        cacheHits: stats.cacheHits,
        cacheMisses: stats.cacheMisses,
        credentialsAccepted: stats.authorizedAnswers > 0,
      },
      latencyMs: performance.now() - started,
      ledgerError: found.ledgerError,
      ...(recheck ? { recheck: true as const } : {}),
    }
  }

  return async function listPush(request, reply, path, forward) {
    const policy = resolvePolicy(path.name)
    // The registry's own reading of the Content-Type decides what the body is (manifest-handler.ts).
    const reading = readManifestPutContentType(request.headers['content-type'])
    if (policy.mode !== 'off' && reading.kind === 'odd') {
      // Bytes no client sends, that Go and JavaScript read differently: refused before the body is read.
      reply.header('connection', 'close')
      return sendRegistryError(reply, RegistryError.of('MANIFEST_INVALID', `manifest-guard: ${reading.reason}`))
    }
    if (policy.mode === 'off' || reading.kind === 'image') {
      // Not a list (or not ours to check): stream it, keeping a copy for the existence cache.
      if (request.body instanceof Readable) {
        const copy = new BodyCopy(MAX_MANIFEST_BYTES)
        request.body = request.body.pipe(copy)
        request.pushedManifest = { copy: () => copy.copy() }
      }
      return forward()
    }

    const declared = Number(request.headers['content-length'])
    const body = request.body instanceof Readable ? request.body : Readable.from([])
    const refused = declared > MAX_MANIFEST_BYTES ? undefined : admitBody(request, reply, declared)
    if (refused !== undefined) {
      closeIfUnread(request, reply.raw)
      return sendRegistryError(reply, refused)
    }
    let read: Awaited<ReturnType<typeof readRequestBody>>
    try {
      read = declared > MAX_MANIFEST_BYTES ? { tooLarge: true as const } : await readRequestBody(body, MAX_MANIFEST_BYTES)
    } catch (err) {
      if (!request.raw.destroyed) throw err
      // The client left half-way: nothing to check, nobody to answer, and not the proxy's fault.
      request.log.info({ event: 'client.closed', repository: path.name }, 'the client closed the connection before sending the whole manifest')
      countRequest(services.metrics, request.method, CLIENT_CLOSED, request.raw.socket)
      return reply.hijack()
    }
    if ('tooLarge' in read) {
      reply.header('connection', 'close')
      return sendRegistryError(reply, RegistryError.of('MANIFEST_INVALID', `manifest-guard: the manifest is larger than ${MAX_MANIFEST_BYTES} bytes, the most a registry accepts`, undefined, 413))
    }
    const raw = read.bytes
    // Exactly these bytes go upstream, under the client's own headers.
    request.body = Readable.from([raw])
    // A list type read from the header, else (no handler of its own) the body's mediaType or shape.
    const parsed = parseManifest(raw, reading.kind === 'index' ? reading.mediaType : undefined)
    if ('problem' in parsed) return sendRegistryError(reply, RegistryError.of('MANIFEST_INVALID', `manifest-guard: ${parsed.problem}`))
    request.pushedManifest = { copy: () => raw, parsed }
    if (parsed.kind !== 'index') return forward()

    const ref = path.reference
    if (ref.kind === 'digest') {
      const actual = digestOf(raw, algorithmOf(ref.digest))
      if (actual !== ref.digest) {
        return sendRegistryError(reply, RegistryError.of('DIGEST_INVALID', `manifest-guard: the body's digest is ${actual}, not ${ref.digest} as the URL says`, { expected: ref.digest, actual }))
      }
    }
    const reference = ref.kind === 'tag' ? ref.tag : ref.digest
    let record = await validate(request, parsed, path.name, reference, policy, false)
    if (!record.decision.forward && policy.repair === 'copy-children' && repairable(record.decision, policy)) {
      record = await repair(request, record, policy)
      if (record.decision.verdict === 'repaired') reply.raw.setHeader('x-manifest-guard-repaired', repairedHeader(record.repair!))
    }
    if (!record.decision.forward) {
      onDecision(request, record)
      return sendRegistryError(reply, record.decision.error as RegistryError)
    }
    // Forwarded: the record is written once the registry has answered, with its status.
    return forward(afterUpstream(request, record, policy))
  }

  /**
   * A list body is read only under the client's writer slot (server.maxUploadsPerClient, the
   * one the forwarder would take) and a reservation of its declared length from the budget of
   * list bodies in memory (list-body-budget.ts), both taken before its first byte is read and
   * held until the response closes, forwarded or not. Undefined when admitted; else the refusal.
   */
  function admitBody(request: FastifyRequest, reply: FastifyReply, declared: number): RegistryError | undefined {
    const client = clientAddress(request, config.trustForwardedHeaders)
    const slots = services.writeSlots
    if (!slots.tryEnter(client)) return tooManyWrites(slots.max)
    // No length declared (chunked): the most a list may be.
    const release = services.listBodies.reserve(client, Number.isInteger(declared) && declared >= 0 ? declared : MAX_MANIFEST_BYTES)
    if (release === undefined) {
      slots.leave(client)
      return listBodiesBusy(services.listBodies.max)
    }
    writeSlotHeld.add(request.raw)
    reply.raw.once('close', () => {
      release()
      slots.leave(client)
    })
    return undefined
  }

  /**
   * copy-children: the children the diagnosis found in other repositories are copied into the
   * target with the client's own credentials, then the list is checked again; it goes upstream
   * unchanged only if that check passes. A failed copy leaves the rejection as it was, with
   * what was tried added.
   */
  async function repair(request: FastifyRequest, record: DecisionRecord, policy: RepositoryPolicy): Promise<DecisionRecord> {
    const v = config.validation
    const children = record.decision.problems.filter((p) => p.cause === 'wrong-repository').map((p) => ({ digest: p.digest!, from: p.foundIn! }))
    const report = await copyChildren({
      repository: record.repository,
      children,
      source: services.client,
      // A streamed blob holds two registry connections (the GET and the PUT): stay well inside the pool.
      limits: { maxDepth: v.maxDepth, maxObjects: v.maxDescriptors, concurrency: Math.min(v.concurrency, REPAIR_CONCURRENCY), timeoutMs: v.repairTimeoutMs },
      ctx: { authorization: request.headers.authorization },
    })
    services.metrics.repairs.inc({ result: report.failed === undefined ? 'copied' : 'failed' })
    if (report.failed !== undefined) {
      const note = { code: record.decision.error!.errors[0]!.code, message: repairFailedMessage(report, request.id), detail: { repair: 'copy-children', failed: report.failed, copied: report.children } }
      const error = new RegistryError(record.decision.error!.status, [...record.decision.error!.errors, note], record.decision.error!.headers)
      return { ...record, decision: { ...record.decision, error }, repair: report }
    }
    const again = await validate(request, record.index, record.repository, record.reference, policy, false)
    if (!again.decision.forward) return { ...again, repair: report }
    return { ...again, decision: { ...again.decision, verdict: 'repaired', problems: record.decision.problems }, repair: report }
  }

  /**
   * Writes the decision record once the registry answered. And the safety net for a race: if
   * the registry refuses a list the proxy passed because a child is unknown (something was
   * deleted between the proxy's lookups and the registry's), look again and explain it,
   * rather than hand the client the bare registry error.
   */
  function afterUpstream(request: FastifyRequest, record: DecisionRecord, policy: RepositoryPolicy): ResponseInterceptor {
    return async (response) => {
      const refusedUnknown = response.statusCode === 400 && record.decision.verdict !== 'deferred' && response.body.includes('MANIFEST_BLOB_UNKNOWN')
      if (!refusedUnknown) {
        onDecision(request, { ...record, upstreamStatus: response.statusCode })
        return 'pass'
      }
      const again = await validate(request, record.index, record.repository, record.reference, policy, true)
      onDecision(request, again.decision.forward ? { ...again, upstreamStatus: response.statusCode } : again)
      return again.decision.forward ? 'pass' : (again.decision.error as RegistryError)
    }
  }
}
