import type { IndexedList } from '../ledger/list-index.js'
import { newLookupStats } from '../oci/content-lookup.js'
import type { Digest } from '../oci/digest.js'
import { RegistryError } from '../oci/error-code.js'
import { sendRegistryError } from './error-mapper.js'
import type { DeleteHandler } from './contracts.js'
import { identityOf } from './identity.js'
import { policyResolver } from './policy.js'
import type { Services } from './services.js'

// DELETE /v2/<name>/manifests/<digest> and /v2/<name>/blobs/<digest>. distribution deletes
// a child of a tagged list (202) and the list's pulls fail from then on. The list index says
// which lists of <name> may name the digest; for those only, the registry is asked whether
// the list's tag still points at it (one HEAD per list and tag, with the client's own
// credentials), and a delete that would break one is refused. A digest no known list names
// goes straight through: a cleanup of untagged images costs no extra request.

/** Lists named in the message; once that many are confirmed, the rest need not be asked about. */
const LISTS_NAMED = 4
/** Tag lookups per delete at most (a digest named by many lists whose tags all moved on). */
const MAX_LOOKUPS = 64

export function createDeleteGuard(services: Services): DeleteHandler {
  const { config } = services
  const resolvePolicy = policyResolver(config)

  return async function deleteGuard(request, reply, path, forward) {
    const mode = resolvePolicy(path.name).mode
    const digest = path.kind === 'blob' ? path.digest : path.reference.kind === 'digest' ? path.reference.digest : undefined
    if (!config.deleteGuard.enabled || mode === 'off' || digest === undefined) return forward()
    const candidates = services.listIndex.listsNaming(path.name, digest)
    if (candidates.length === 0) return forward()

    const started = performance.now()
    const stats = newLookupStats()
    const ctx = { authorization: request.headers.authorization, stats }
    const tagged: { list: IndexedList; tag: string }[] = []
    let unconfirmed = 0
    let asked = 0
    for (const list of candidates) {
      if (tagged.length >= LISTS_NAMED) break
      for (const tag of [...list.tags]) {
        if (asked++ >= MAX_LOOKUPS) {
          // Past the budget nothing is known of the remaining lists: the delete is unverified.
          unconfirmed++
          break
        }
        const now = await services.client.resolveTag(path.name, tag, ctx)
        if (now.status === 'found' && now.value.digest === list.digest) {
          tagged.push({ list, tag })
          break
        }
        if (now.status === 'found' || now.status === 'missing') services.listIndex.untag(list, tag)
        else unconfirmed++
      }
    }
    const object = path.kind === 'blob' ? 'blob' : 'manifest'
    const record = {
      event: tagged.length === 0 ? (unconfirmed > 0 ? 'delete.unverified' : 'delete.allowed') : mode === 'warn' ? 'delete.warned' : 'delete.refused',
      requestId: request.id,
      identity: identityOf(request.headers.authorization, stats.authorizedAnswers > 0),
      clientAddress: request.socket.remoteAddress,
      userAgent: request.headers['user-agent']?.slice(0, 256),
      repository: path.name,
      digest,
      object,
      lists: tagged.map(({ list, tag }) => ({ tag, digest: list.digest })),
      candidates: candidates.length,
      upstreamRequests: stats.upstreamRequests,
      latencyMs: Math.round((performance.now() - started) * 10) / 10,
    }
    if (tagged.length === 0) {
      // The index was out of date (the lists moved on) or the registry could not say: the
      // delete goes through as it would without the guard.
      request.log.info(record, `${record.event} ${path.name}@${digest}`)
      return forward()
    }
    const message = refusalMessage(path.name, digest, object, tagged, request.id)
    request.log.warn({ ...record, ...(mode === 'warn' ? {} : { messages: [message] }) }, `${record.event} ${path.name}@${digest}`)
    if (mode === 'warn') return forward()
    const detail = { repository: path.name, digest, lists: record.lists, requestId: request.id }
    return sendRegistryError(reply, RegistryError.of('DENIED', message, detail, 409))
  }
}

function refusalMessage(repository: string, digest: Digest, object: 'blob' | 'manifest', tagged: readonly { list: IndexedList; tag: string }[], requestId: string): string {
  const named = tagged.slice(0, LISTS_NAMED).map(({ list, tag }) => `${repository}:${tag} (${list.digest})`)
  const more = tagged.length > LISTS_NAMED ? ` and ${tagged.length - LISTS_NAMED} more` : ''
  const what = object === 'manifest' ? `manifest ${digest}: the tagged list${tagged.length === 1 ? '' : 's'} ${named.join(', ')}${more} name${tagged.length === 1 ? 's' : ''} it` : `blob ${digest}: an image of the tagged list${tagged.length === 1 ? '' : 's'} ${named.join(', ')}${more} needs it`
  return (
    `manifest-guard refused to delete ${what}, and ${tagged.length === 1 ? "that list's" : "those lists'"} pulls would fail. ` +
    `Fix: delete or re-point the list first (push the tag again without this image, or delete the list by its digest), then delete this; deleteGuard.enabled: false turns the guard off [manifest-guard request ${requestId}]`
  )
}
