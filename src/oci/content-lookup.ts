import type { Digest } from './digest.js'
import type { Manifest } from './manifest.js'

// What a registry answers when asked whether a repository holds a piece of content. Shared
// by the upstream client (which produces it) and the validation walk (which reads it), so
// neither has to import the other.

export type ContentLookup<T> =
  | { readonly status: 'found'; readonly value: T }
  | { readonly status: 'missing' }
  /** 401/403: the caller's credentials do not reach it. */
  | { readonly status: 'denied'; readonly httpStatus: number }
  /** The registry could not say (5xx, 429, timeout, network, oversized or corrupt answer). */
  | { readonly status: 'failed'; readonly reason: string; readonly httpStatus?: number }

export interface ManifestContent {
  readonly digest: Digest
  readonly mediaType: string
  readonly size: number
  /** Parsed body; undefined with `problem` set when the stored body does not parse. */
  readonly manifest: Manifest | undefined
  readonly problem?: string
}

export interface BlobContent {
  /** Undefined when the registry did not say (a redirect without Content-Length). */
  readonly size: number | undefined
}

/** Counters one push's lookups add to, for the decision log and the metrics. */
export interface LookupStats {
  upstreamRequests: number
  cacheHits: number
  cacheMisses: number
  /** Upstream answers that were not 401/403: the client's credentials do read the repository. */
  authorizedAnswers: number
}

export interface LookupContext {
  /** The client's own Authorization header: lookups never use anything broader. */
  readonly authorization: string | undefined
  readonly signal?: AbortSignal
  readonly stats?: LookupStats
  /**
   * The proxy's own credentials, for the admin check: when set, a 401 challenge is answered
   * (Basic, or the token flow) instead of reported. Never set for client pushes.
   */
  readonly credentials?: { readonly username?: string; readonly password?: string }
}

export function newLookupStats(): LookupStats {
  return { upstreamRequests: 0, cacheHits: 0, cacheMisses: 0, authorizedAnswers: 0 }
}
