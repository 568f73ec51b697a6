import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { type CheckResult, checkList } from './inspect/check-list.js'
import { MemoryLedgerStore } from './ledger/memory-store.js'
import type { LookupContext } from './oci/content-lookup.js'
import { isRepositoryName, parseReference } from './oci/reference.js'
import { CachedSource } from './upstream/cached-source.js'
import { ManifestCache } from './upstream/manifest-cache.js'
import { RegistryClient } from './upstream/registry-client.js'

// `manifest-guard check REGISTRY/NAME[:TAG|@DIGEST]`: the push-time walk and diagnosis for a
// list already in a registry. Exit 0 sound, 1 broken, 3 could not check, 2 bad usage.

export const CHECK_USAGE = `usage: manifest-guard check [options] REGISTRY/NAME[:TAG|@DIGEST]

Checks a list, index or image already in a registry: every child manifest and every blob,
in its own repository. Exit code 0 when sound, 1 when broken, 3 when it could not be
checked, 2 for bad usage.

  --all-tags            check every tag of the repository (a progress line on a terminal)
  --json                one JSON document on stdout instead of text
  --plain-http          talk HTTP, not HTTPS (the default for localhost and 127.0.0.0/8)
  --username USER       registry credentials (Basic, or for the token flow)
  --password-stdin      read the password from standard input
                        (or MANIFEST_GUARD_CHECK_PASSWORD; never on the command line)
  --token TOKEN         a bearer token to send as is
  --timeout-ms MS       time budget per list (default 60000)
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

export async function runCheck(argv: readonly string[], io: CheckIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'all-tags': { type: 'boolean' },
        json: { type: 'boolean' },
        'plain-http': { type: 'boolean' },
        username: { type: 'string' },
        'password-stdin': { type: 'boolean' },
        token: { type: 'string' },
        'timeout-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    })
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
  try {
    if (positionals.length !== 1) throw new UsageError('give exactly one REGISTRY/NAME[:TAG]')
    target = parseTarget(positionals[0] as string)
    if (values['all-tags'] === true && target.reference !== undefined) throw new UsageError('--all-tags takes REGISTRY/NAME without a tag')
  } catch (err) {
    io.stderr.write(`manifest-guard check: ${(err as Error).message}\n\n${CHECK_USAGE}`)
    return 2
  }
  const timeoutMs = Number(values['timeout-ms'] ?? 60_000)
  const password = values['password-stdin'] === true ? io.readStdin().replace(/\r?\n$/, '') : io.env['MANIFEST_GUARD_CHECK_PASSWORD']
  const scheme = values['plain-http'] === true || isLoopback(target.host) ? 'http' : 'https'
  const client = new RegistryClient({ origin: `${scheme}://${target.host}`, connections: 16, connectTimeoutMs: 10_000, headersTimeoutMs: timeoutMs, bodyTimeoutMs: timeoutMs })
  const source = new CachedSource(client, new ManifestCache(64 << 20))
  const ctx: LookupContext =
    values.token !== undefined ? { authorization: `Bearer ${values.token}` } : { authorization: undefined, credentials: { ...(values.username === undefined ? {} : { username: values.username, password: password ?? '' }) } }
  try {
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
        ledger: new MemoryLedgerStore(1),
        repository: target.repository,
        reference,
        limits: { maxDepth: 8, maxDescriptors: 100_000, concurrency: 16, timeoutMs },
        candidatePatterns: ['{name}/{arch}', '{name}-{arch}'],
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
    } else if (values['all-tags'] === true) {
      io.stdout.write(`\n${results.length} checked: ${results.length - broken - unchecked} sound, ${broken} broken, ${unchecked} not checked\n`)
    }
    return broken > 0 ? 1 : unchecked > 0 ? 3 : 0
  } finally {
    await client.close()
  }
}

function formatResult(r: CheckResult): string {
  const head = `${r.repository}:${r.reference}${r.digest === undefined ? '' : `  ${r.digest}`}`
  if (r.status === 'sound') return `${head}  ${r.kind}: sound (${r.children} children, ${r.blobs} blobs checked)\n`
  if (r.status === 'unchecked') return `${head}  NOT CHECKED: ${r.reason}\n`
  const lines = r.errors.map((e) => `  - ${e.code.toLowerCase().replaceAll('_', ' ')}: ${e.message}`)
  return `${head}  ${r.kind}: BROKEN, ${r.errors.length} problem${r.errors.length === 1 ? '' : 's'}\n${lines.join('\n')}\n`
}

export function readStdinSync(): string {
  return readFileSync(0, 'utf8')
}
