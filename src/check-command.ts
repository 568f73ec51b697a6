import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { ConfigError, loadConfig } from './config/load.js'
import { type Config, FIELDS } from './config/schema.js'
import { policyResolver } from './proxy/policy.js'
import { GuardedLedger } from './ledger/guarded-ledger.js'
import { createLedger, trustedCas, walkLimitsOf } from './proxy/services.js'
import { type CheckResult, checkList, judgedBy } from './inspect/check-list.js'
import type { LookupContext } from './oci/content-lookup.js'
import { isIndex } from './oci/media-type.js'
import { isRepositoryName, parseReference } from './oci/reference.js'
import { limiter } from './validate/limiter.js'
import { CachedSource } from './upstream/cached-source.js'
import { ManifestCache } from './upstream/manifest-cache.js'
import { RegistryClient } from './upstream/registry-client.js'

// `manifest-guard check REGISTRY/NAME[:TAG|@DIGEST]`: the push-time walk and diagnosis for a
// list already in a registry. Exit 0 sound, 1 broken, 3 could not check, 2 bad usage. It reads
// the proxy's own settings (flags, MANIFEST_GUARD_* variables, --config file) for its limits,
// candidate repositories and ledger, so a check and a push reach the same verdict — and, with
// the Redis ledger, can name stale and deleted children the same way.

/** Lists checked at once by --all-repositories (each walk has validation.concurrency lookups of its own). */
const SWEEP_CONCURRENCY = 4
/** Repositories whose tags are listed at once. */
const SWEEP_REPOSITORIES = 2

export const CHECK_USAGE = `usage: manifest-guard check [options] REGISTRY/NAME[:TAG|@DIGEST]
       manifest-guard check [options] --all-repositories REGISTRY

Checks a list, index or image already in a registry: every child manifest and every blob,
in its own repository. Exit code 0 when sound (warnings are printed), 1 when broken, 3 when
it could not be checked, 2 for bad usage.

  --all-tags            check every tag of the repository (a progress line on a terminal)
  --all-repositories    check every list of every repository in the registry's catalog
                        (paginated; ${SWEEP_CONCURRENCY} lists at a time; prints the broken and warned ones)
  --json                one JSON document on stdout instead of text
  --plain-http          talk HTTP, not HTTPS (the default for localhost and 127.0.0.0/8)
  --username USER       registry credentials (Basic, or for the token flow)
  --password-stdin      read the password from standard input
                        (or MANIFEST_GUARD_CHECK_PASSWORD; never on the command line)
  --token-stdin         read a bearer token to send as is from standard input
                        (or MANIFEST_GUARD_CHECK_TOKEN; never on the command line)
  --timeout-ms MS       time budget per list (the setting validation.timeoutMs)

Every setting of the proxy is read as the proxy reads it (flags, MANIFEST_GUARD_* variables,
--config FILE): validation.maxDepth, maxDescriptors, concurrency, candidateRepositories,
staleChild and rules, and the ledger (ledger.store: redis with ledger.redisUrl shares the
proxy's push history: only with it can stale and deleted children be named).
`

export class UsageError extends Error {}

interface Target {
  readonly host: string
  readonly repository: string
  readonly reference: string | undefined
}

export function parseTarget(value: string): Target {
  const slash = value.indexOf('/')
  const host = slash === -1 ? '' : value.slice(0, slash)
  if (slash === -1 || !(host.includes('.') || host.includes(':') || host === 'localhost')) {
    throw new UsageError(`name the registry too: REGISTRY/NAME:TAG (got "${value}")`)
  }
  let rest = value.slice(slash + 1)
  let reference: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    reference = rest.slice(at + 1)
    rest = rest.slice(0, at)
  } else {
    const colon = rest.lastIndexOf(':')
    if (colon > rest.lastIndexOf('/')) {
      reference = rest.slice(colon + 1)
      rest = rest.slice(0, colon)
    }
  }
  if (!isRepositoryName(rest)) throw new UsageError(`"${rest}" is not a valid repository name`)
  if (reference !== undefined && parseReference(reference) === undefined) throw new UsageError(`"${reference}" is neither a tag nor a digest`)
  return { host, repository: rest, reference }
}

function isLoopback(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]
  return name === 'localhost' || name === '[::1]' || /^127\./.test(name ?? '')
}

export interface CheckIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean }
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean }
  readonly env: Readonly<Record<string, string | undefined>>
  readonly readStdin: () => string
}

/** Flags of the check itself; the rest are settings, parsed as the proxy parses them. */
const CHECK_FLAGS = {
  'all-tags': { type: 'boolean' },
  'all-repositories': { type: 'boolean' },
  json: { type: 'boolean' },
  'plain-http': { type: 'boolean' },
  username: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  'token-stdin': { type: 'boolean' },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

/** Splits argv into the check's own flags and positionals, and the settings flags. */
function splitArgs(argv: readonly string[]): { own: string[]; settings: string[] } {
  const own: string[] = []
  const settings: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const name = arg.startsWith('--') ? arg.slice(2).split('=')[0]! : undefined
    if (name === undefined || name in CHECK_FLAGS || arg === '-h') {
      own.push(arg)
      const takesValue = name !== undefined && !arg.includes('=') && (CHECK_FLAGS as Record<string, { type: string }>)[name]?.type === 'string'
      if (takesValue && i + 1 < argv.length) own.push(argv[++i] as string)
    } else {
      settings.push(arg)
      if (!arg.includes('=') && i + 1 < argv.length) settings.push(argv[++i] as string)
    }
  }
  return { own, settings }
}

export async function runCheck(argv: readonly string[], io: CheckIo): Promise<number> {
  // A token is a secret: refused as a flag for the reason the proxy refuses its secret flags.
  if (argv.some((a) => a === '--token' || a.startsWith('--token='))) {
    io.stderr.write("manifest-guard check: --token: a secret is never taken as a flag (every user of the machine can read flags in ps); use --token-stdin or set MANIFEST_GUARD_CHECK_TOKEN\n")
    return 2
  }
  const { own, settings } = splitArgs(argv)
  let parsed
  try {
    parsed = parseArgs({ args: own, allowPositionals: true, strict: true, options: CHECK_FLAGS })
  } catch (err) {
    io.stderr.write(`manifest-guard check: ${(err as Error).message}\n\n${CHECK_USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help === true) {
    io.stdout.write(CHECK_USAGE)
    return 0
  }
  let target: Target
  let config: Config
  let timeoutMs: number
  try {
    if (positionals.length !== 1) throw new UsageError(values['all-repositories'] === true ? 'give exactly one REGISTRY' : 'give exactly one REGISTRY/NAME[:TAG]')
    if (values['all-repositories'] === true && values['all-tags'] === true) throw new UsageError('--all-repositories checks every tag already; leave out --all-tags')
    target = values['all-repositories'] === true ? parseRegistry(positionals[0] as string) : parseTarget(positionals[0] as string)
    if (values['all-tags'] === true && target.reference !== undefined) throw new UsageError('--all-tags takes REGISTRY/NAME without a tag')
    if (values['password-stdin'] === true && values['token-stdin'] === true) throw new UsageError('standard input holds a password or a token, not both')
    config = loadConfig({ argv: settings, env: io.env })
    timeoutMs = values['timeout-ms'] === undefined ? config.validation.timeoutMs : timeoutFlag(values['timeout-ms'])
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof ConfigError)) throw err
    io.stderr.write(`manifest-guard check: ${err.message}\n\n${CHECK_USAGE}`)
    return 2
  }
  const stdin = values['password-stdin'] === true || values['token-stdin'] === true ? io.readStdin().replace(/\r?\n$/, '') : undefined
  const password = values['password-stdin'] === true ? stdin : io.env['MANIFEST_GUARD_CHECK_PASSWORD']
  const token = values['token-stdin'] === true ? stdin : io.env['MANIFEST_GUARD_CHECK_TOKEN']
  const scheme = values['plain-http'] === true || isLoopback(target.host) ? 'http' : 'https'
  const client = new RegistryClient({ origin: `${scheme}://${target.host}`, connections: config.validation.concurrency, connectTimeoutMs: config.upstreamTimeouts.connectMs, headersTimeoutMs: timeoutMs, bodyTimeoutMs: timeoutMs, ca: trustedCas(config) })
  const source = new CachedSource(client, new ManifestCache(config.cache.maxManifestBytes))
  // Read as the proxies read it: gap markers make a tag unknown, a failing Redis says so.
  const ledger = new GuardedLedger(createLedger(config), { timeoutMs: config.ledger.redisTimeoutMs, maxPending: config.ledger.maxPending })
  const limits = { ...walkLimitsOf(config), timeoutMs }
  // Judged as a push to this repository would be: validation.staleChild and its rules.
  const judged = judgedBy(policyResolver(config)(target.repository))
  const ctx: LookupContext =
    token !== undefined && token !== '' && values.username === undefined
      ? { authorization: `Bearer ${token}` }
      : { authorization: undefined, credentials: { ...(values.username === undefined ? {} : { username: values.username, password: password ?? '' }) } }
  try {
    if (values['all-repositories'] === true) {
      const resolve = policyResolver(config)
      return await sweep({ client, source, ctx, io, json: values.json === true, host: target.host, check: (repository, reference) => {
        const policy = resolve(repository)
        return checkList({ source, ledger, repository, reference, limits, candidatePatterns: config.validation.candidateRepositories, ...judgedBy(policy), ctx, registryHost: target.host })
      } })
    }
    let references = target.reference === undefined ? ['latest'] : [target.reference]
    if (values['all-tags'] === true) {
      const tags = await client.listTags(target.repository, ctx)
      if (tags.status !== 'found') {
        io.stderr.write(`manifest-guard check: cannot list the tags of ${target.repository}: ${tags.status === 'failed' ? tags.reason : tags.status}\n`)
        return 3
      }
      references = tags.value
    }
    const results: CheckResult[] = []
    const progress = values['all-tags'] === true && io.stderr.isTTY === true && values.json !== true
    for (const [i, reference] of references.entries()) {
      if (progress) io.stderr.write(`\r\x1b[K[${i + 1}/${references.length}] checking ${target.repository}:${reference}`)
      const result = await checkList({
        source,
        ledger,
        repository: target.repository,
        reference,
        limits,
        candidatePatterns: config.validation.candidateRepositories,
        ...judged,
        ctx,
        registryHost: target.host,
      })
      results.push(result)
      if (values.json !== true) io.stdout.write(`${progress ? '\r\x1b[K' : ''}${formatResult(result)}`)
    }
    if (progress) io.stderr.write('\r\x1b[K')
    const broken = results.filter((r) => r.status === 'broken').length
    const unchecked = results.filter((r) => r.status === 'unchecked').length
    if (values.json === true) {
      io.stdout.write(`${JSON.stringify(values['all-tags'] === true ? { repository: target.repository, results, broken, unchecked } : results[0], null, 2)}\n`)
    } else {
      if (values['all-tags'] === true) io.stdout.write(`\n${results.length} checked: ${results.length - broken - unchecked} sound, ${broken} broken, ${unchecked} not checked\n`)
      if (broken > 0 && config.ledger.store === 'memory') {
        // A check is a process of its own: its memory ledger is empty.
        io.stderr.write('manifest-guard check: note: no push ledger (ledger.store is memory), so a stale or deleted child reads as never pushed; set ledger.store: redis and ledger.redisUrl to the ledger the proxies share\n')
      }
    }
    return broken > 0 ? 1 : unchecked > 0 ? 3 : 0
  } finally {
    await Promise.allSettled([client.close(), ledger.close()])
  }
}

/** `REGISTRY` for --all-repositories: a host, as in REGISTRY/NAME. */
function parseRegistry(value: string): Target {
  const host = value.replace(/\/+$/, '')
  if (host.includes('/') || !(host.includes('.') || host.includes(':') || host === 'localhost')) throw new UsageError(`--all-repositories takes a registry host such as registry.example:5000 (got "${value}")`)
  return { host, repository: '', reference: undefined }
}

interface SweepInput {
  readonly client: RegistryClient
  readonly source: CachedSource
  readonly ctx: LookupContext
  readonly io: CheckIo
  readonly json: boolean
  readonly host: string
  readonly check: (repository: string, reference: string) => Promise<CheckResult>
}

/**
 * Every list of every repository: the catalog (paginated), each repository's tags, a HEAD of
 * each tag to keep only lists and indexes, and the push-time check of each. Exit 1 when any
 * list is broken, 3 when something could not be checked, else 0.
 */
async function sweep(s: SweepInput): Promise<number> {
  const { io } = s
  const catalog = await s.client.listRepositories(s.ctx)
  if (catalog.status !== 'found') {
    io.stderr.write(`manifest-guard check: cannot read the catalog of ${s.host}: ${catalog.status === 'failed' ? catalog.reason : catalog.status}\n`)
    return 3
  }
  const progress = io.stderr.isTTY === true && !s.json
  const results: CheckResult[] = []
  const failures: { repository: string; reason: string }[] = []
  let images = 0
  let done = 0
  const perRepository = limiter(SWEEP_REPOSITORIES)
  const perList = limiter(SWEEP_CONCURRENCY)
  const show = (what: string): void => void (progress && io.stderr.write(`\r\x1b[K[${done} checked, ${results.filter((r) => r.status === 'broken').length} broken] ${what}`))
  await Promise.all(
    catalog.value.map((repository) =>
      perRepository(async () => {
        const tags = await s.client.listTags(repository, s.ctx)
        if (tags.status !== 'found') {
          failures.push({ repository, reason: tags.status === 'failed' ? tags.reason : tags.status })
          return
        }
        await Promise.all(
          tags.value.map((tag) =>
            perList(async () => {
            const head = await s.source.resolveTag(repository, tag, s.ctx)
            if (head.status === 'found' && !isIndex(head.value.mediaType)) {
              images++
              return
            }
            show(`${repository}:${tag}`)
            const result = await s.check(repository, tag)
            done++
            results.push(result)
            if (!s.json && result.status !== 'sound') io.stdout.write(`${progress ? '\r\x1b[K' : ''}${formatResult(result)}`)
            }),
          ),
        )
      }),
    ),
  )
  if (progress) io.stderr.write('\r\x1b[K')
  const broken = results.filter((r) => r.status === 'broken').length
  const unchecked = results.filter((r) => r.status === 'unchecked').length + failures.length
  if (s.json) {
    io.stdout.write(`${JSON.stringify({ registry: s.host, repositories: catalog.value.length, lists: results.length, images, broken, unchecked, results, failures }, null, 2)}\n`)
  } else {
    for (const f of failures) io.stdout.write(`${f.repository}  NOT CHECKED: cannot list its tags: ${f.reason}\n`)
    io.stdout.write(`\n${catalog.value.length} repositories, ${results.length} lists checked: ${results.length - broken - results.filter((r) => r.status === 'unchecked').length} sound, ${broken} broken, ${unchecked} not checked (${images} image tags skipped)\n`)
  }
  return broken > 0 ? 1 : unchecked > 0 ? 3 : 0
}

/** --timeout-ms, validated as the setting it stands for (validation.timeoutMs). */
function timeoutFlag(flag: string): number {
  const parsed = FIELDS.find((f) => f.key === 'validation.timeoutMs')!.type.parse(flag)
  if ('expected' in parsed) throw new UsageError(`--timeout-ms: expected ${parsed.expected}, got ${JSON.stringify(flag)}`)
  return parsed.value as number
}

function formatResult(r: CheckResult): string {
  const head = `${r.repository}:${r.reference}${r.digest === undefined ? '' : `  ${r.digest}`}`
  if (r.status === 'sound') return `${head}  ${r.kind}: sound (${r.children} children, ${r.blobs} blobs checked)\n`
  if (r.status === 'unchecked') return `${head}  NOT CHECKED: ${r.reason}\n`
  const lines = r.errors.map((e) => `  - ${e.code.toLowerCase().replaceAll('_', ' ')}: ${e.message}`)
  if (r.ledgerError !== undefined) lines.push(`  (the push ledger could not be read: ${r.ledgerError}; stale and deleted children may read as never pushed)`)
  const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`
  const verdict = r.status === 'warned' ? `sound, with ${count(r.errors.length, 'warning')}` : `BROKEN, ${count(r.errors.length, 'problem')}`
  return `${head}  ${r.kind}: ${verdict}\n${lines.join('\n')}\n`
}

export function readStdinSync(): string {
  return readFileSync(0, 'utf8')
}
