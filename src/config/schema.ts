import {
  optionalHttpUrl,
  optionalText,
  boolean,
  type FieldType,
  hostPort,
  optionalHostPort,
  type HostPort,
  httpUrl,
  hostName,
  integer,
  listOf,
  oneOf,
  optionalPath,
  platformSpec,
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
export const REPAIR_POLICIES = ['off', 'copy-children'] as const
export type RepairPolicy = (typeof REPAIR_POLICIES)[number]
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export interface Config {
  readonly listen: HostPort
  readonly upstream: string
  readonly caFile: string | undefined
  readonly tls: { readonly cert: string | undefined; readonly key: string | undefined }
  readonly trustForwardedHeaders: boolean
  readonly shutdown: {
    readonly drainDelayMs: number
    readonly timeoutMs: number
  }
  readonly logLevel: (typeof LOG_LEVELS)[number]
  readonly server: {
    readonly headersTimeoutMs: number
    readonly bodyIdleTimeoutMs: number
    readonly keepAliveTimeoutMs: number
    readonly maxConnections: number
    readonly maxUploadsPerClient: number
    readonly maxReadsPerClient: number
    readonly maxBufferedListBytes: number
  }
  readonly upstreamTimeouts: {
    readonly connectMs: number
    readonly headersMs: number
    readonly bodyMs: number
  }
  readonly validation: {
    readonly mode: Mode
    readonly staleChild: StalePolicy
    readonly onLookupFailure: LookupFailurePolicy
    readonly onLedgerFailure: LookupFailurePolicy
    readonly repair: RepairPolicy
    readonly repairTimeoutMs: number
    readonly retryAfterSeconds: number
    readonly maxDepth: number
    readonly maxDescriptors: number
    readonly concurrency: number
    readonly timeoutMs: number
    readonly candidateRepositories: readonly string[]
    readonly rules: readonly RepositoryRule[]
    readonly platformMismatch: StalePolicy
    readonly requiredPlatforms: readonly string[]
  }
  readonly cache: {
    readonly maxManifestBytes: number
  }
  readonly deleteGuard: {
    readonly enabled: boolean
    readonly maxLists: number
  }
  readonly ledger: {
    readonly store: 'memory' | 'redis'
    readonly maxRecords: number
    readonly redisUrl: string | undefined
    readonly redisPassword: string | undefined
    readonly redisPasswordFile: string | undefined
    readonly redisKeyPrefix: string
    readonly redisTimeoutMs: number
    readonly redisSentinels: readonly string[]
    readonly redisSentinelMaster: string
    readonly maxPending: number
    readonly ttlSeconds: number
    readonly maxTagsPerRepository: number
  }
  readonly registryEvents: {
    readonly token: string | undefined
    readonly tokenFile: string | undefined
  }
  readonly admin: {
    readonly enabled: boolean
    readonly listen: HostPort
    readonly apiListen: HostPort | undefined
    readonly token: string | undefined
    readonly tokenFile: string | undefined
    readonly recentDecisions: number
    readonly allowedHosts: readonly string[]
  }
  readonly audit: {
    readonly include: readonly string[]
    readonly file: string | undefined
    readonly fileMaxBytes: number
    readonly fileKeep: number
    readonly webhookUrl: string | undefined
    readonly webhookToken: string | undefined
    readonly webhookTokenFile: string | undefined
    readonly webhookTimeoutMs: number
    readonly webhookRetries: number
    readonly queueSize: number
  }
  readonly lookupCredentials: {
    readonly username: string | undefined
    readonly password: string | undefined
    readonly passwordFile: string | undefined
  }
}

export interface Field {
  /** Never echoed back in an error message or --help. */
  readonly secret?: boolean
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

const secret = (key: string, doc: string): Field => ({ ...field(key, optionalText, undefined, doc), secret: true })

const VERDICTS = ['accepted', 'rejected', 'warned', 'repaired', 'unverified', 'deferred'] as const

export const FIELDS: readonly Field[] = [
  field('listen', hostPort, '127.0.0.1:5001', 'Address the proxy listens on.'),
  field('upstream', upstreamUrl(), 'http://127.0.0.1:5000', 'The registry behind the proxy (origin only, no path).'),
  field(
    'caFile',
    optionalPath,
    undefined,
    'PEM file of CA certificates trusted, on top of the system ones, for every TLS connection the proxy makes: the registry (upstream) and its token server, a rediss:// ledger, the audit webhook. For a registry or Redis behind a private CA.',
  ),
  field('tls.cert', optionalPath, undefined, 'PEM certificate file; with tls.key the proxy serves HTTPS (docker refuses plain HTTP off loopback).'),
  field('tls.key', optionalPath, undefined, 'PEM private key file for tls.cert.'),
  field(
    'trustForwardedHeaders',
    boolean,
    false,
    'Take X-Forwarded-Host/-Proto from clients (set when behind an ingress or load balancer that sets them); otherwise they are overwritten.',
  ),
  field(
    'shutdown.drainDelayMs',
    integer(0, 600_000),
    5_000,
    'On SIGTERM, how long the proxy goes on accepting new requests while /readyz answers 503, so load balancers stop sending before the listener closes (SIGINT skips it).',
  ),
  field(
    'shutdown.timeoutMs',
    integer(0, 86_400_000),
    60_000,
    'Once the listener is closed, longest the requests in flight (uploads) may take to finish; then their connections are cut, queued audit records are flushed and the process exits.',
  ),
  field('logLevel', oneOf(LOG_LEVELS), 'info', 'pino log level.'),
  field('server.headersTimeoutMs', integer(1_000, 600_000), 30_000, 'Longest a client may take to send the headers of a request, on every listener; then 408 and the connection is closed.'),
  field(
    'server.bodyIdleTimeoutMs',
    integer(1_000, 3_600_000),
    60_000,
    'Longest pause while a request body arrives or a response body is taken, either way; then the connection is closed (a stalled upload is dropped, never forwarded half). On the admin listeners, the longest a whole request may take to arrive.',
  ),
  field('server.keepAliveTimeoutMs', integer(1_000, 600_000), 65_000, 'How long an idle client connection is kept open between requests, on every listener (longer than load balancers keep theirs).'),
  field('server.maxConnections', integer(1, 1_000_000), 4_096, 'Most client connections each listener (the proxy port, admin.listen, admin.apiListen) holds at once; more are closed on arrival, unanswered.'),
  field(
    'server.maxUploadsPerClient',
    integer(1, 100_000),
    32,
    'Most writes (uploads, manifest pushes) one client address may have in flight to the registry, each holding a registry connection; more get 429 and Retry-After. With trustForwardedHeaders the address is the last X-Forwarded-For entry (the one the ingress added); without it, behind an ingress, every client shares the ingress address.',
  ),
  field(
    'server.maxReadsPerClient',
    integer(1, 100_000),
    64,
    'Most reads (GET, HEAD) one client address may have in flight to the registry, each holding one of its 128 read connections; more wait for one of that client\'s own to finish (never refused). Counted by address like server.maxUploadsPerClient.',
  ),
  field(
    'server.maxBufferedListBytes',
    integer(4 << 20, 1 << 30),
    64 << 20,
    'Most bytes of list and index bodies held in memory while they arrive and are checked, for all clients together; one client address may hold a quarter of it (at least one 4 MiB list). A list push beyond either bound gets 429 and Retry-After before its body is read.',
  ),
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
  field(
    'validation.onLedgerFailure',
    oneOf(LOOKUP_FAILURE_POLICIES),
    'reject',
    'When the push ledger (Redis) cannot be read, or a tag\'s history has a gap, the stale check cannot run: reject list pushes with 503 + Retry-After, or forward them with a warning (push.warned, cause ledger-unavailable).',
  ),
  field(
    'validation.repair',
    oneOf(REPAIR_POLICIES),
    'off',
    'copy-children: when every problem of a list is a child left in another repository the client can read, copy those children (blobs mounted or streamed, manifests by digest) into the target with the client\'s own credentials, then forward the list unchanged.',
  ),
  field('validation.repairTimeoutMs', integer(1_000, 3_600_000), 600_000, 'Time budget for one repair (copying blobs can take a while).'),
  field('validation.retryAfterSeconds', integer(1, 3600), 5, 'Retry-After sent with a 503 when lookups failed.'),
  field('validation.maxDepth', integer(1, 16), 4, 'Deepest nesting of indexes walked (the pushed list is depth 1).'),
  field('validation.maxDescriptors', integer(1, 100_000), 5_000, 'Most distinct objects (child manifests and blobs) one push may reference; an object named twice counts once.'),
  field('validation.concurrency', integer(1, 256), 16, 'Upstream lookups in flight per push.'),
  field('validation.timeoutMs', integer(100, 600_000), 20_000, 'Time budget for validating one push.'),
  field(
    'validation.candidateRepositories',
    listOf(text),
    ['{name}/{arch}', '{name}-{arch}', '{name}/{os}-{arch}'],
    'Where to look for a child missing from the target repository ({name}, {os}, {arch}, {variant}).',
  ),
  // After the push: lists are what they claim (part 17).
  field(
    'validation.platformMismatch',
    oneOf(STALE_POLICIES),
    'reject',
    "An entry whose platform is not its image's (os, architecture, variant, Windows build as the config says): reject, or forward with a warning (mirrors of mislabelled upstream images).",
  ),
  field(
    'validation.requiredPlatforms',
    platformSpec,
    [],
    'Platforms every list must have an entry for (linux/amd64,linux/arm64; a platform without variant takes any); a list without one is refused, naming it. Attestations do not count.',
  ),
  field(
    'deleteGuard.enabled',
    boolean,
    true,
    'Refuse DELETE of a manifest a tagged list of its repository names, or of a config or layer such a manifest needs (in validation.mode enforce; logged only in warn). Lists are known from the pushes the proxy sees.',
  ),
  field('deleteGuard.maxLists', integer(1, 10_000_000), 50_000, 'Tagged lists the delete guard remembers (which digests each names); the least recently pushed are forgotten first.'),
  field('validation.rules', rulesType, [], 'Per-repository overrides: [{match: "team/**", mode: warn, staleChild: warn, onLookupFailure: forward, repair: copy-children}]; first match wins.', true),
  field('cache.maxManifestBytes', integer(0, 1 << 30), 64 << 20, 'Bytes of manifest bodies remembered (content-addressed, never stale), so a child seen before costs a HEAD instead of a GET; 0 disables.'),
  field('ledger.store', oneOf(['memory', 'redis'] as const), 'memory', 'Where push records live: this process, or Redis shared by every replica.'),
  field('ledger.maxRecords', integer(1, 10_000_000), 200_000, 'Push records kept in memory (oldest dropped first).'),
  field('ledger.redisUrl', optionalText, undefined, 'redis://[USER@]HOST:PORT/DB of the shared ledger (ledger.store: redis); USER is a Redis ACL user, its password goes in ledger.redisPassword; rediss:// for TLS (caFile for a private CA).'),
  secret('ledger.redisPassword', 'Redis password.'),
  field('ledger.redisPasswordFile', optionalPath, undefined, 'File holding ledger.redisPassword.'),
  field('ledger.redisKeyPrefix', text, 'manifest-guard:', 'Prefix of every Redis key.'),
  field('ledger.redisTimeoutMs', integer(10, 60_000), 500, "Longest a Redis command may take; the push path never waits longer (a manifest push's answer waits for its record at most this long)."),
  field('ledger.redisSentinels', listOf(text), [], 'HOST:PORT of Redis Sentinels; when set, the master is found through them (ledger.redisSentinelMaster) and followed across failovers, and ledger.redisUrl is not needed.'),
  field('ledger.redisSentinelMaster', text, 'mymaster', 'Name of the master the sentinels monitor.'),
  field('ledger.maxPending', integer(1, 10_000_000), 10_000, 'Push records kept in memory while Redis cannot be written, written when it answers again; past this the oldest are dropped and their tags marked as having a gap (unknown to the stale rule until pushed again).'),
  field('ledger.ttlSeconds', integer(60, 10 * 365 * 86_400), 30 * 86_400, 'How long a push record is kept in Redis.'),
  field('ledger.maxTagsPerRepository', integer(1, 10_000_000), 10_000, 'Tags with history kept per repository in Redis (oldest dropped).'),
  secret('registryEvents.token', "Bearer token the registry's notifications must carry (POST /_guard/v1/events is off until set)."),
  field('registryEvents.tokenFile', optionalPath, undefined, 'File holding registryEvents.token.'),
  field('admin.enabled', boolean, true, 'Serve /metrics, the /_guard/v1 API and the decisions page /_guard/ on admin.listen.'),
  field('admin.listen', hostPort, '127.0.0.1:9464', 'Address of the admin listener (never the proxy port).'),
  field(
    'admin.apiListen',
    optionalHostPort,
    undefined,
    'A listener of its own for the /_guard/v1 API (decisions, checks, registry events) and the decisions page /_guard/; admin.listen then serves /metrics only, so a Service can publish metrics without the API.',
  ),
  secret('admin.token', 'Token the /_guard/v1 API and the /_guard/ page require, as `Authorization: Bearer` or as the password of HTTP Basic auth (/metrics stays open for scrapers).'),
  field('admin.tokenFile', optionalPath, undefined, 'File holding admin.token (a mounted Secret).'),
  field('admin.recentDecisions', integer(0, 1_000_000), 1000, 'Decisions kept for GET /_guard/v1/decisions.'),
  field(
    'admin.allowedHosts',
    listOf(hostName),
    [],
    'Host names the admin listeners answer to besides their listen address, localhost and IP addresses (e.g. the Service name registry notifications use); any other Host header gets 421, the guard against DNS rebinding.',
  ),
  field('audit.include', listOf(oneOf(VERDICTS)), ['rejected', 'warned', 'repaired'], 'Which decisions go to the audit file and webhook.'),
  field('audit.file', optionalPath, undefined, 'Append decisions as JSON Lines to this file.'),
  field('audit.fileMaxBytes', integer(1024, 2 ** 40), 100 << 20, 'Rotate the audit file past this size.'),
  field('audit.fileKeep', integer(0, 1000), 5, 'Rotated audit files kept (file.1 … file.N).'),
  field('audit.webhookUrl', optionalHttpUrl, undefined, 'POST decisions here as CloudEvents (JSON).'),
  secret('audit.webhookToken', 'Bearer token sent to the webhook.'),
  field('audit.webhookTokenFile', optionalPath, undefined, 'File holding audit.webhookToken.'),
  field('audit.webhookTimeoutMs', integer(100, 600_000), 5_000, 'Time limit of one webhook delivery attempt.'),
  field('audit.webhookRetries', integer(0, 20), 3, 'Retries after a failed delivery (exponential backoff).'),
  field('audit.queueSize', integer(1, 1_000_000), 10_000, 'Audit records waiting per sink before new ones are dropped (and counted).'),
  field('lookupCredentials.username', optionalText, undefined, "Registry user for the admin check endpoint (the proxy's own lookups always use the client's credentials)."),
  secret('lookupCredentials.password', 'Password of lookupCredentials.username.'),
  field('lookupCredentials.passwordFile', optionalPath, undefined, 'File holding lookupCredentials.password.'),
]

/**
 * Keys of earlier versions that a config file may still carry: accepted and ignored, with why.
 * (Flags and environment variables of retired keys are not read at all.)
 */
export const RETIRED_KEYS: Readonly<Record<string, string>> = {
  'cache.ttlSeconds': 'existence is now asked of the registry at every push; only manifest bodies are cached (cache.maxManifestBytes)',
  'cache.maxEntries': 'existence is now asked of the registry at every push; only manifest bodies are cached (cache.maxManifestBytes)',
}

function upstreamUrl(): FieldType<string> {
  return {
    describe: 'http(s) URL',
    jsonSchema: { type: 'string', pattern: '^https?://[^/\\s?#@]+/?$' },
    parse(raw) {
      const parsed = httpUrl.parse(raw)
      if ('expected' in parsed) return parsed
      if (new URL(parsed.value).pathname !== '/') return { expected: 'an http(s) URL with no path (the registry API lives at /v2/)' }
      return { value: new URL(parsed.value).origin }
    },
  }
}
