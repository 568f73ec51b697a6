import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LRUCache } from 'lru-cache'
import type { PushRecord } from '../ledger/push-record.js'
import { type Digest, isDigest } from '../oci/digest.js'
import { parseManifest } from '../oci/manifest.js'
import { mediaTypeOf } from '../oci/media-type.js'
import { identityLabel, identityOf } from './identity.js'
import type { Services } from './services.js'

// Learns from the traffic that passes: every manifest push goes into the ledger, and every
// answer that proves a repository holds a digest goes into the existence cache. It runs as
// the reply goes out, before the client can act on it, and never changes the reply.

/** Open upload sessions remembered, for the size of chunked uploads. */
const MAX_UPLOAD_SESSIONS = 10_000
const UPLOAD_SESSION_TTL_MS = 24 * 3600 * 1000

export function installTrafficObserver(app: FastifyInstance, services: Services): void {
  // Bytes received so far per upload session, from the Range of each PATCH answer.
  const uploads = new LRUCache<string, number>({ max: MAX_UPLOAD_SESSIONS, ttl: UPLOAD_SESSION_TTL_MS })
  app.addHook('onSend', (request, reply, payload, done) => {
    try {
      observe(request, reply, services, uploads)
    } catch (err) {
      request.log.warn({ err }, 'traffic observer failed; the reply is unaffected')
    }
    done(null, payload)
  })
}

function observe(request: FastifyRequest, reply: FastifyReply, services: Services, uploads: LRUCache<string, number>): void {
  const path = request.registryPath
  if (path === null) return
  const { cache } = services
  const status = reply.statusCode
  const method = request.method
  switch (path.kind) {
    case 'manifest': {
      const digest = headerDigest(reply)
      if (method === 'PUT' && status === 201 && digest !== undefined) {
        recordManifestPush(request, services, path.name, path.reference.kind === 'tag' ? path.reference.tag : undefined, digest)
      } else if ((method === 'GET' || method === 'HEAD') && status === 200 && path.reference.kind === 'digest') {
        cache.rememberManifest(path.name, path.reference.digest, mediaTypeOf(header(reply, 'content-type')), contentLength(reply))
      } else if (method === 'DELETE' && status === 202 && path.reference.kind === 'digest') {
        cache.forget(path.name, path.reference.digest)
      }
      return
    }
    case 'blob':
      if ((method === 'GET' || method === 'HEAD') && status === 200) cache.rememberBlob(path.name, path.digest, contentLength(reply))
      else if (method === 'DELETE' && status === 202) cache.forget(path.name, path.digest)
      return
    case 'upload':
      observeUpload(request, reply, services, uploads, path.name, path.session)
      return
    default:
      return
  }
}

function observeUpload(request: FastifyRequest, reply: FastifyReply, services: Services, uploads: LRUCache<string, number>, repository: string, session: string | undefined): void {
  const status = reply.statusCode
  const query = request.query as Record<string, string | undefined>
  if (status === 202 && session !== undefined) {
    // distribution reports the bytes held so far as `Range: 0-<last>`.
    const range = /^0-(\d+)$/.exec(header(reply, 'range') ?? '')
    if (range !== null) uploads.set(session, Number(range[1]) + 1)
    return
  }
  if (status === 202 && request.method === 'POST' && query['mount'] !== undefined) {
    request.log.info(
      { event: 'mount.refused', repository, from: query['from'], digest: query['mount'] },
      'cross-repository mount refused: the source repository does not hold that blob (deleted, or never there); the client uploads it instead or, like docker, gives up',
    )
    return
  }
  if (status !== 201) return
  const digest = headerDigest(reply)
  if (digest === undefined) return
  let size: number | undefined
  if (request.method === 'POST' && query['mount'] !== undefined && query['from'] !== undefined) {
    size = services.cache.get(query['from'], digest)?.size
  } else {
    const sent = Number(request.headers['content-length'] ?? '0')
    const before = session === undefined ? 0 : uploads.get(session) ?? 0
    // A final PUT streamed without Content-Length leaves the size unknown (the walk HEADs it).
    size = Number.isSafeInteger(sent) && (request.headers['content-length'] !== undefined || request.headers['transfer-encoding'] === undefined) ? before + sent : undefined
    if (session !== undefined) uploads.delete(session)
  }
  services.cache.rememberBlob(repository, digest, size)
}

function recordManifestPush(request: FastifyRequest, services: Services, repository: string, tag: string | undefined, digest: Digest): void {
  const pushed = request.pushedManifest
  const raw = pushed?.copy()
  const parsed = pushed?.parsed ?? (raw === undefined ? undefined : parsedOrUndefined(raw, mediaTypeOf(request.headers['content-type'])))
  const mediaType = parsed?.mediaType ?? mediaTypeOf(request.headers['content-type'])
  services.cache.rememberManifest(repository, digest, mediaType, raw?.length, parsed)
  const record: PushRecord = {
    repository,
    tag,
    digest,
    mediaType,
    at: Date.now(),
    identity: identityLabel(identityOf(request.headers.authorization)),
    source: 'proxy',
  }
  services.ledger.record(record).catch((err: unknown) => request.log.warn({ err, repository, digest }, 'ledger write failed; the push went through'))
}

function parsedOrUndefined(raw: Buffer, contentType: string | undefined) {
  const parsed = parseManifest(raw, contentType)
  return 'problem' in parsed ? undefined : parsed
}

function header(reply: FastifyReply, name: string): string | undefined {
  const v = reply.getHeader(name)
  return Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v)
}

function headerDigest(reply: FastifyReply): Digest | undefined {
  const d = header(reply, 'docker-content-digest')
  return isDigest(d) ? d : undefined
}

function contentLength(reply: FastifyReply): number | undefined {
  const n = Number(header(reply, 'content-length'))
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}
