import {
  boolean,
  type FieldType,
  hostPort,
  type HostPort,
  httpUrl,
  integer,
  listOf,
  oneOf,
  optionalPath,
  text,
} from './field-type.js'
import { type RepositoryRule, rulesType } from './repository-rule.js'

// The one table of settings: key, type, default and meaning. The loader, the environment
// and flag names, the validation and the config reference in the docs all come from it.

export const MODES = ['enforce', 'warn', 'off'] as const
export type Mode = (typeof MODES)[number]
export const STALE_POLICIES = ['reject', 'warn'] as const
export type StalePolicy = (typeof STALE_POLICIES)[number]
export const LOOKUP_FAILURE_POLICIES = ['reject', 'forward'] as const
export type LookupFailurePolicy = (typeof LOOKUP_FAILURE_POLICIES)[number]
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export interface Config {
  readonly listen: HostPort
  readonly upstream: string
  readonly tls: { readonly cert: string | undefined; readonly key: string | undefined }
  readonly trustForwardedHeaders: boolean
  readonly logLevel: (typeof LOG_LEVELS)[number]
  readonly upstreamTimeouts: {
    readonly connectMs: number
    readonly headersMs: number
    readonly bodyMs: number
  }
  readonly validation: {
    readonly mode: Mode
    readonly staleChild: StalePolicy
    readonly onLookupFailure: LookupFailurePolicy
    readonly retryAfterSeconds: number
    readonly maxDepth: number
    readonly maxDescriptors: number
    readonly concurrency: number
    readonly timeoutMs: number
    readonly candidateRepositories: readonly string[]
    readonly rules: readonly RepositoryRule[]
  }
  readonly cache: {
    readonly ttlSeconds: number
    readonly maxEntries: number
    readonly maxManifestBytes: number
  }
  readonly ledger: {
    readonly maxRecords: number
  }
}

export interface Field {
  /** Dotted path into Config. */
  readonly key: string
  readonly type: FieldType<unknown>
  readonly default: unknown
  readonly doc: string
  /** Only settable from a config file (structured values). */
  readonly fileOnly?: boolean
}

/** Defaults are written as a user would write them, and parsed like any other value. */
const field = <T>(key: string, type: FieldType<T>, def: unknown, doc: string, fileOnly = false): Field => ({
  key,
  type: type as FieldType<unknown>,
  default: def,
  doc,
  fileOnly,
})

export const FIELDS: readonly Field[] = [
  field('listen', hostPort, '127.0.0.1:5001', 'Address the proxy listens on.'),
  field('upstream', upstreamUrl(), 'http://127.0.0.1:5000', 'The registry behind the proxy (origin only, no path).'),
  field('tls.cert', optionalPath, undefined, 'PEM certificate file; with tls.key the proxy serves HTTPS (docker refuses plain HTTP off loopback).'),
  field('tls.key', optionalPath, undefined, 'PEM private key file for tls.cert.'),
  field(
    'trustForwardedHeaders',
    boolean,
    false,
    'Take X-Forwarded-Host/-Proto from clients (set when behind an ingress or load balancer that sets them); otherwise they are overwritten.',
  ),
  field('logLevel', oneOf(LOG_LEVELS), 'info', 'pino log level.'),
  field('upstreamTimeouts.connectMs', integer(100, 600_000), 5_000, 'Connecting to the registry.'),
  field('upstreamTimeouts.headersMs', integer(100, 3_600_000), 300_000, 'Waiting for the registry to start answering (large blob commits can take a while).'),
  field('upstreamTimeouts.bodyMs', integer(100, 3_600_000), 300_000, 'Longest pause between two chunks of a body, either way.'),
  field('validation.mode', oneOf(MODES), 'enforce', 'enforce: reject broken list pushes; warn: forward and log; off: plain proxy.'),
  field(
    'validation.staleChild',
    oneOf(STALE_POLICIES),
    'reject',
    'A child that still exists but whose tag has since been re-pushed with another digest: reject, or forward with a warning.',
  ),
  field(
    'validation.onLookupFailure',
    oneOf(LOOKUP_FAILURE_POLICIES),
    'reject',
    'When lookups fail (registry 5xx, timeout): reject with 503 + Retry-After, or forward unverified.',
  ),
  field('validation.retryAfterSeconds', integer(1, 3600), 5, 'Retry-After sent with a 503 when lookups failed.'),
  field('validation.maxDepth', integer(1, 16), 4, 'Deepest nesting of indexes walked (the pushed list is depth 1).'),
  field('validation.maxDescriptors', integer(1, 100_000), 5_000, 'Most descriptors (children and blobs) one push may reference.'),
  field('validation.concurrency', integer(1, 256), 16, 'Upstream lookups in flight per push.'),
  field('validation.timeoutMs', integer(100, 600_000), 20_000, 'Time budget for validating one push.'),
  field(
    'validation.candidateRepositories',
    listOf(text),
    ['{name}/{arch}', '{name}-{arch}', '{name}/{os}-{arch}'],
    'Where to look for a child missing from the target repository ({name}, {os}, {arch}, {variant}).',
  ),
  field('validation.rules', rulesType, [], 'Per-repository overrides: [{match: "team/**", mode: warn, staleChild: warn, onLookupFailure: forward}]; first match wins.', true),
  field('cache.ttlSeconds', integer(0, 86_400), 300, 'How long "repository holds digest" is believed (deletions happen; 0 disables).'),
  field('cache.maxEntries', integer(0, 10_000_000), 100_000, 'Most repository+digest entries remembered.'),
  field('cache.maxManifestBytes', integer(0, 1 << 30), 64 << 20, 'Bytes of manifest bodies remembered, so children pushed through the proxy need no GET.'),
  field('ledger.maxRecords', integer(1, 10_000_000), 200_000, 'Push records kept in memory (oldest dropped first).'),
]

function upstreamUrl(): FieldType<string> {
  return {
    describe: 'http(s) URL',
    parse(raw) {
      const parsed = httpUrl.parse(raw)
      if ('expected' in parsed) return parsed
      if (new URL(parsed.value).pathname !== '/') return { expected: 'an http(s) URL with no path (the registry API lives at /v2/)' }
      return { value: new URL(parsed.value).origin }
    },
  }
}
