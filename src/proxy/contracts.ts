import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Decision } from '../diagnose/decision.js'
import type { RegistryError } from '../oci/error-code.js'
import type { IndexManifest } from '../oci/manifest.js'
import type { RegistryPath } from '../oci/reference.js'
import type { RepairReport } from '../repair/copy-children.js'
import type { Exchange } from './exchange.js'
import type { Identity } from './identity.js'

// The contracts between the proxy's parts, in one place: how a request is forwarded and its
// answer seen (the seam, the forwarder, the read carrier, the traffic observer), how a list
// push is handled, and what one list push decision records (for the log, the audit sinks,
// the decisions API and page). Types only: every part imports these, and none of them the
// others' code for them, so the parts never import one another in a circle.

/** An answer the seam wants to see whole before the client does (a list PUT, docker's mounts). */
export interface BufferedResponse {
  readonly statusCode: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** Decides what the client gets: the registry's answer (`pass`) or an error instead. */
export type ResponseInterceptor = (response: BufferedResponse) => Promise<RegistryError | 'pass'>

export type Forward = (exchange: Exchange, res: ServerResponse, intercept?: ResponseInterceptor) => void

/**
 * Another way to carry a read the seam does not inspect (the read carrier, read-carrier.ts).
 * It calls `done` when the read is over, or `fallback` instead, before the client has seen a
 * byte, to have the undici path carry it; the read keeps its client's slot either way.
 */
export type CarryRead = (exchange: Exchange, res: ServerResponse, done: () => void, fallback: () => void) => void

/**
 * Sees every registry answer the proxy passes on, before the client does. An answer the seam
 * intercepts (every manifest PUT's) waits for the promise it may return (the ledger write).
 */
export type ResponseObserver = (request: Exchange, status: number, headers: IncomingHttpHeaders) => void | Promise<void>

/** Handles a manifest PUT: validates a list, then forwards it or answers itself. */
export type ManifestPutHandler = (
  request: FastifyRequest,
  reply: FastifyReply,
  path: Extract<RegistryPath, { kind: 'manifest' }>,
  /** Sends the request upstream; an interceptor sees the registry's answer first. */
  forward: (intercept?: ResponseInterceptor) => void,
) => unknown

/** Handles a DELETE of a manifest or blob: forwards it, or refuses one that would break a tagged list. */
export type DeleteHandler = (
  request: FastifyRequest,
  reply: FastifyReply,
  path: Extract<RegistryPath, { kind: 'manifest' | 'blob' }>,
  forward: () => void,
) => unknown

export interface DecisionRecord {
  readonly decision: Decision
  readonly index: IndexManifest
  readonly repository: string
  readonly reference: string
  readonly stats: {
    readonly children: number
    readonly blobs: number
    readonly upstreamRequests: number
    readonly cacheHits: number
    readonly cacheMisses: number
    /** The registry answered lookups carrying the client's credentials without refusing them. */
    readonly credentialsAccepted: boolean
  }
  readonly latencyMs: number
  readonly ledgerError: string | undefined
  /** Set when the registry refused a list the proxy had passed, and the proxy checked again. */
  readonly recheck?: true
  /** What validation.repair copied (or tried to). */
  readonly repair?: RepairReport
  /** What the registry answered to a forwarded list. */
  readonly upstreamStatus?: number
}

export type DecisionListener = (request: FastifyRequest, record: DecisionRecord) => void

/** One list push decision as it is logged, audited and listed (decision-log.ts builds it). */
export interface DecisionEvent {
  readonly event: string
  readonly requestId: string
  readonly identity: Identity
  readonly clientAddress: string | undefined
  readonly userAgent: string | undefined
  readonly repository: string
  readonly reference: string
  readonly digest: string
  readonly mediaType: string
  readonly action: 'forwarded' | 'rejected'
  readonly status: number | undefined
  readonly children: number
  readonly blobs: number
  readonly upstreamRequests: number
  readonly cacheHits: number
  readonly time: string
  readonly latencyMs: number
  readonly ledgerError?: string
  readonly upstreamStatus?: number
  readonly recheck?: true
  readonly problems: readonly Record<string, unknown>[]
  /** What the proxy answered the client, when it answered itself (rejected, or a 503). */
  readonly messages?: readonly string[]
  /** Problems beyond the first ones kept (the answer and this record stay small). */
  readonly problemsOmitted?: number
  /** What validation.repair copied, from where, and how (or why it stopped). */
  readonly repair?: {
    readonly children: readonly { readonly digest: string; readonly from: string }[]
    readonly blobsMounted: number
    readonly blobsStreamed: number
    readonly bytesStreamed: number
    readonly ms: number
    readonly failed?: string
  }
}
