import type { IncomingHttpHeaders } from 'node:http'
import type { PushRecord } from '../ledger/push-record.js'
import { type Digest, isDigest } from '../oci/digest.js'
import { readManifestPutContentType } from '../oci/manifest-handler.js'
import { parseManifest } from '../oci/manifest.js'
import { identityLabel, identityOf } from './identity.js'
import type { Exchange } from './exchange.js'
import type { ResponseObserver } from './contracts.js'
import type { Services } from './services.js'

/** What the observer writes to: the manifest body cache, the push ledger and the delete guard's list index. */
type Memory = Pick<Services, 'cache' | 'ledger'> & Partial<Pick<Services, 'listIndex'>>

// Learns from the traffic that passes: every manifest push goes into the ledger, and its
// body into the manifest cache. The forwarder calls it with each registry answer before
// passing it on, so the client cannot act on an answer before the proxy has learned from it
// (a manifest push's answer waits for its ledger record); it never changes the answer. Blob uploads, mounts and deletions teach it nothing on
// purpose: whether a repository holds something is asked of the registry at every push, so
// no size or existence the proxy saw (or half saw, as with an upload split across replicas)
// can ever stand in for the registry's word.

export function createResponseObserver(memory: Memory): ResponseObserver {
  return (request, status, headers) => {
    const failed = (err: unknown): void => void request.log.warn({ err }, 'traffic observer failed; the reply is unaffected')
    try {
      // The forwarder awaits what it learns: a failure there, too, must not hold or lose the
      // client's answer (a rejection would leave the response unwritten).
      return observe(request, status, headers, memory)?.catch(failed)
    } catch (err) {
      failed(err)
      return undefined
    }
  }
}

function observe(request: Exchange, status: number, headers: IncomingHttpHeaders, memory: Memory): Promise<void> | undefined {
  const path = request.registryPath
  if (path === null) return
  if (path.kind === 'manifest' && request.method === 'PUT' && status === 201) {
    const digest = headerDigest(headers)
    if (digest !== undefined) return recordManifestPush(request, memory, path.name, path.reference.kind === 'tag' ? path.reference.tag : undefined, digest)
    return undefined
  }
  // A list deleted through the proxy protects nothing any more.
  if (path.kind === 'manifest' && request.method === 'DELETE' && status === 202 && path.reference.kind === 'digest') {
    memory.listIndex?.forget(path.name, path.reference.digest)
    return
  }
  if (path.kind === 'upload' && request.method === 'POST' && status === 202 && (request.query as Record<string, string | undefined>)['mount'] !== undefined) {
    const query = request.query as Record<string, string | undefined>
    request.log.info(
      { event: 'mount.refused', repository: path.name, from: query['from'], digest: query['mount'] },
      'cross-repository mount refused: the source repository does not hold that blob (deleted, or never there); the client uploads it instead or, like docker, gives up',
    )
  }
  return undefined
}

function recordManifestPush(request: Exchange, memory: Memory, repository: string, tag: string | undefined, digest: Digest): Promise<void> {
  const pushed = request.pushedManifest
  const raw = pushed?.copy()
  // Bytes only, under the digest the registry answered (the cache checks they hash to it):
  // what they are is read from them at each use, never from the client's Content-Type.
  if (raw !== undefined) memory.cache.remember(digest, raw)
  // A tagged list: the delete guard learns what it names (its children's bodies are in the
  // cache, read by the push's own validation).
  if (tag !== undefined && raw !== undefined && memory.listIndex !== undefined) {
    const list = pushed?.parsed ?? parseManifest(raw, undefined)
    if (!('problem' in list) && list.kind === 'index') memory.listIndex.recordList(repository, tag, digest, list, (d) => memory.cache.body(d))
  }
  // The ledger notes the type the registry stored it as: the proxy's reading of a list, else
  // the registry's reading of the header.
  const reading = readManifestPutContentType(request.headers['content-type'])
  const mediaType = pushed?.parsed?.mediaType ?? (reading.kind === 'odd' || reading.mediaType === '' ? undefined : reading.mediaType)
  const record: PushRecord = {
    repository,
    tag,
    digest,
    mediaType,
    at: Date.now(),
    // The registry answered 201 to a request carrying these credentials: accepted.
    identity: identityLabel(identityOf(request.headers.authorization, true)),
    source: 'proxy',
  }
  // Written before the client hears the answer, within ledger.redisTimeoutMs; what cannot be
  // written is kept and written once the ledger answers again (guarded-ledger.ts).
  return memory.ledger.write(record).then(
    (outcome) => {
      if (outcome === 'kept') request.log.warn({ event: 'ledger.kept', repository, tag, digest }, 'the ledger could not be written in time; the record is kept and written when it answers again')
    },
    (err: unknown) => request.log.warn({ err, repository, digest }, 'ledger write failed; the push went through'),
  )
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

function headerDigest(headers: IncomingHttpHeaders): Digest | undefined {
  const d = header(headers, 'docker-content-digest')
  return isDigest(d) ? d : undefined
}
