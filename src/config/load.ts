import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { parseArgs } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { type Config, FIELDS, type Field, RETIRED_KEYS } from './schema.js'

// Config from flags > environment > file > defaults, validated in one pass. Every error is
// one line that names the key, where the value came from, and what was expected.

export const ENV_PREFIX = 'MANIFEST_GUARD_'

export class ConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ConfigError'
  }
}

/** `validation.maxDepth` → `MANIFEST_GUARD_VALIDATION_MAX_DEPTH`. */
export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/\./g, '_').toUpperCase()
}

/** `validation.maxDepth` → `validation-max-depth` (used as `--validation-max-depth`). */
export function flagName(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/\./g, '-').toLowerCase()
}

export interface ConfigSources {
  readonly argv?: readonly string[]
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Values as a config file would hold them, for embedding and tests. */
  readonly values?: Readonly<Record<string, unknown>>
}

type Origin = { label: string; raw: unknown }

/** Loads and validates. Throws ConfigError. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? {}
  const flags = parseFlags(sources.argv ?? [])
  const configPath = flags.get('config') ?? env[`${ENV_PREFIX}CONFIG`]
  const fileValues = new Map<string, Origin>()
  if (sources.values !== undefined) flatten(sources.values, '', 'embedded config', fileValues)
  if (configPath !== undefined && configPath !== '') flatten(readConfigFile(configPath), '', `config file ${configPath}`, fileValues)

  const out: Record<string, unknown> = {}
  for (const f of FIELDS) {
    const origin = pick(f, flags, env, fileValues) ?? { label: 'default', raw: f.default }
    const value = origin.raw === undefined ? undefined : parseField(f, origin)
    setPath(out, f.key, value)
  }
  const config = out as unknown as Config
  checkCrossField(config)
  return deepFreeze(config)
}

function pick(f: Field, flags: Map<string, string>, env: Readonly<Record<string, string | undefined>>, file: Map<string, Origin>): Origin | undefined {
  const flag = hasFlag(f) ? flags.get(flagName(f.key)) : undefined
  if (flag !== undefined) return { label: `flag --${flagName(f.key)}`, raw: flag }
  const fromEnv = f.fileOnly === true ? undefined : env[envName(f.key)]
  if (fromEnv !== undefined) return { label: `environment ${envName(f.key)}`, raw: fromEnv }
  return file.get(f.key)
}

function parseField(f: Field, origin: Origin): unknown {
  const parsed = f.type.parse(origin.raw)
  if ('expected' in parsed) {
    throw new ConfigError(`invalid config: ${f.key} (${origin.label}): expected ${parsed.expected}, got ${f.secret === true ? 'a value (not shown)' : show(origin.raw)}`)
  }
  return parsed.value
}

/** Whether a setting can be given as a flag: never a secret (flags show in `ps`), never a structure. */
export function hasFlag(f: Field): boolean {
  return f.fileOnly !== true && f.secret !== true
}

function parseFlags(argv: readonly string[]): Map<string, string> {
  for (const f of FIELDS) {
    if (f.secret !== true) continue
    const flag = `--${flagName(f.key)}`
    if (argv.some((a) => a === flag || a.startsWith(`${flag}=`))) {
      throw new ConfigError(
        `invalid flags: ${flag}: a secret is never taken as a flag (every user of the machine can read flags in ps); set ${envName(f.key)}, or ${f.key}File (--${flagName(`${f.key}File`)}) naming a file that holds it`,
      )
    }
  }
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' } }
  for (const f of FIELDS) if (hasFlag(f)) options[flagName(f.key)] = { type: 'string' }
  let values: Record<string, unknown>
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values
  } catch (err) {
    throw new ConfigError(`invalid flags: ${(err as Error).message.split('\n')[0]}`)
  }
  return new Map(Object.entries(values).filter((e): e is [string, string] => typeof e[1] === 'string'))
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`invalid config: config file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new ConfigError(`invalid config: config file ${path}: not valid YAML or JSON (${(err as Error).message.split('\n')[0]})`)
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`invalid config: config file ${path}: expected a mapping of keys at the top level`)
  return doc as Record<string, unknown>
}

const KEYS = new Set(FIELDS.map((f) => f.key))
const PREFIXES = new Set(FIELDS.flatMap((f) => f.key.split('.').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('.'))))

function flatten(doc: Readonly<Record<string, unknown>>, prefix: string, label: string, out: Map<string, Origin>): void {
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix === '' ? k : `${prefix}.${k}`
    if (KEYS.has(key)) {
      out.set(key, { label, raw: v })
    } else if (Object.hasOwn(RETIRED_KEYS, key)) {
      continue
    } else if (PREFIXES.has(key) && typeof v === 'object' && v !== null && !Array.isArray(v)) {
      flatten(v as Record<string, unknown>, key, label, out)
    } else {
      throw new ConfigError(`invalid config: ${label}: unknown key "${key}"`)
    }
  }
}

function checkCrossField(config: Config): void {
  if ((config.tls.cert === undefined) !== (config.tls.key === undefined)) {
    throw new ConfigError(`invalid config: ${config.tls.cert === undefined ? 'tls.cert' : 'tls.key'}: tls.cert and tls.key go together; set both or neither`)
  }
  const files: [string, string | undefined][] = [
    ['caFile', config.caFile],
    ['tls.cert', config.tls.cert],
    ['tls.key', config.tls.key],
    ['admin.tokenFile', config.admin.tokenFile],
    ['audit.webhookTokenFile', config.audit.webhookTokenFile],
    ['lookupCredentials.passwordFile', config.lookupCredentials.passwordFile],
    ['ledger.redisPasswordFile', config.ledger.redisPasswordFile],
    ['registryEvents.tokenFile', config.registryEvents.tokenFile],
  ]
  for (const [key, path] of files) {
    if (path === undefined) continue
    try {
      readFileSync(path)
    } catch (err) {
      throw new ConfigError(`invalid config: ${key}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  for (const sentinel of config.ledger.redisSentinels) {
    if (!/^[^\s:/@]+:\d{1,5}$/.test(sentinel) && !/^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(sentinel)) throw new ConfigError(`invalid config: ledger.redisSentinels: expected HOST:PORT, got ${JSON.stringify(sentinel)}`)
  }
  if (config.ledger.store === 'redis' && config.ledger.redisUrl === undefined && config.ledger.redisSentinels.length === 0) {
    throw new ConfigError('invalid config: ledger.redisUrl: required when ledger.store is redis (or ledger.redisSentinels)')
  }
  if (config.ledger.redisUrl !== undefined && !/^rediss?:\/\/(?:[^/\s@:]+@)?[^/\s@]+(\/\d+)?$/.test(config.ledger.redisUrl)) {
    throw new ConfigError('invalid config: ledger.redisUrl: expected redis://[USER@]HOST:PORT[/DB] or rediss://… (the password goes in ledger.redisPassword)')
  }
  if (isOwnListener(config.upstream, config.listen)) {
    // The image's defaults would otherwise proxy to themselves (0.0.0.0:5000 in front of
    // 127.0.0.1:5000): every request loops until connections run out.
    throw new ConfigError(
      `invalid config: upstream: ${config.upstream} is the proxy's own listen address (${config.listen.host}:${config.listen.port}); set upstream (MANIFEST_GUARD_UPSTREAM or --upstream) to the registry's address`,
    )
  }
  if (config.admin.enabled && config.admin.listen.host === config.listen.host && config.admin.listen.port === config.listen.port && config.listen.port !== 0) {
    throw new ConfigError('invalid config: admin.listen: must differ from listen (the admin API is never on the proxy port)')
  }
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', ''])

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** Whether the upstream URL names the proxy's own listener (same port, and a host that reaches it). */
function isOwnListener(upstream: string, listen: { host: string; port: number }): boolean {
  if (listen.port === 0) return false
  const url = new URL(upstream)
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port)
  if (port !== listen.port) return false
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  const own = listen.host.toLowerCase()
  if (host === own) return true
  if (isLoopback(host) && isLoopback(own)) return true
  return WILDCARD_HOSTS.has(own) && (isLoopback(host) || WILDCARD_HOSTS.has(host) || host === hostname().toLowerCase())
}

/** A secret given inline or as a file (a mounted Secret): the file wins, trailing newline dropped. */
export function readSecret(inline: string | undefined, file: string | undefined): string | undefined {
  if (file !== undefined) return readFileSync(file, 'utf8').replace(/\r?\n$/, '')
  return inline
}

function setPath(target: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.')
  let node = target
  for (const part of parts.slice(0, -1)) {
    node[part] ??= {}
    node = node[part] as Record<string, unknown>
  }
  node[parts[parts.length - 1] as string] = value
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

function show(raw: unknown): string {
  const s = typeof raw === 'string' ? JSON.stringify(raw) : JSON.stringify(raw) ?? String(raw)
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
