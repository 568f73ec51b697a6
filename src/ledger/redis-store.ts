import { Redis } from 'ioredis'
import type { Digest } from '../oci/digest.js'
import { HISTORY_PER_KEY, type LedgerStore, type PushRecord } from './push-record.js'

// The ledger shared by every replica behind one Service. Each record goes into two sorted
// sets scored by time (per digest, per repository:tag), trimmed to the newest few and given
// a TTL; a per-repository set of tags bounds how many tags one repository can hold here.
// Commands time out fast; what a failure means (a list push not checked, a record kept for
// later) is decided by the caller (guarded-ledger.ts). With Sentinel, ioredis asks the
// sentinels where the master is at every (re)connection and follows a failover.

export interface RedisLedgerOptions {
  /** redis://HOST:PORT/DB; unused with sentinels. */
  readonly url: string | undefined
  /** HOST:PORT of Redis Sentinels; when set, the master named `sentinelMaster` is used. */
  readonly sentinels?: readonly string[]
  readonly sentinelMaster?: string
  readonly password: string | undefined
  readonly keyPrefix: string
  readonly ttlSeconds: number
  readonly maxTagsPerRepository: number
  readonly commandTimeoutMs: number
  /** CA certificates a rediss:// server's certificate may chain to (default: the system's). */
  readonly ca?: readonly string[] | undefined
}

export class RedisLedgerStore implements LedgerStore {
  readonly #redis: Redis
  readonly #o: RedisLedgerOptions

  constructor(options: RedisLedgerOptions) {
    this.#o = options
    // The ACL user comes from the URL, the password from its own setting: ioredis would take
    // the URL's empty password over the option, so the user is passed as an option too.
    const url = options.url === undefined ? undefined : new URL(options.url)
    const username = url === undefined ? '' : decodeURIComponent(url.username)
    if (url !== undefined) url.username = ''
    const common = {
      ...(username === '' ? {} : { username }),
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.ca !== undefined && options.url?.startsWith('rediss:') === true ? { tls: { ca: [...options.ca] } } : {}),
      keyPrefix: options.keyPrefix,
      lazyConnect: false,
      // Commands issued while (re)connecting wait in the queue, but never longer than
      // commandTimeout: with Redis away every call fails within that bound.
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: options.commandTimeoutMs * 4,
      // Reconnect soon: until it does, list pushes are refused (or warned) and records kept.
      retryStrategy: (times: number) => Math.min(times * 100, 1_000),
      // A master demoted to replica answers writes with READONLY: reconnect, and so find
      // (through the sentinels) the one promoted in its place.
      reconnectOnError: (err: Error) => err.message.startsWith('READONLY'),
    }
    this.#redis =
      options.sentinels !== undefined && options.sentinels.length > 0
        ? new Redis({
            ...common,
            sentinels: options.sentinels.map(hostPort),
            name: options.sentinelMaster ?? 'mymaster',
            sentinelRetryStrategy: (times: number) => Math.min(times * 100, 1_000),
            // Subscribes to the sentinels' +switch-master: a promoted replica is used at once.
            failoverDetector: true,
          })
        : new Redis(String(url), common)
    // Reconnection errors are expected while Redis is down; each failed command is reported
    // by its caller, so the connection's own error events are not logged twice.
    this.#redis.on('error', () => {})
  }

  async record(record: PushRecord): Promise<void> {
    const value = JSON.stringify(record)
    const keys = [digestKey(record.digest), ...(record.tag === undefined ? [] : [tagKey(record.repository, record.tag)])]
    const latest = await Promise.all(keys.map((k) => this.#redis.zrange(k, -1, -1)))
    const multi = this.#redis.multi()
    for (const [i, key] of keys.entries()) {
      // A repeat of the newest record (a registry event for a push the proxy saw) adds nothing.
      if (sameRecord(latest[i]?.[0], record)) continue
      multi.zadd(key, record.at, value)
      multi.zremrangebyrank(key, 0, -HISTORY_PER_KEY - 1)
      multi.expire(key, this.#o.ttlSeconds)
    }
    if (record.tag !== undefined) {
      const tags = repositoryKey(record.repository)
      multi.zadd(tags, record.at, record.tag)
      multi.expire(tags, this.#o.ttlSeconds)
    }
    await multi.exec()
    if (record.tag !== undefined) await this.#boundRepository(record.repository)
  }

  async pushesOf(digest: Digest): Promise<readonly PushRecord[]> {
    return parseAll(await this.#redis.zrevrange(digestKey(digest), 0, -1))
  }

  async tagHistory(repository: string, tag: string): Promise<readonly PushRecord[]> {
    return parseAll(await this.#redis.zrevrange(tagKey(repository, tag), 0, -1))
  }

  async ping(): Promise<void> {
    await this.#redis.ping()
  }

  async close(): Promise<void> {
    this.#redis.disconnect()
  }

  /** Drops the oldest tags of a repository past the bound, with their histories. */
  async #boundRepository(repository: string): Promise<void> {
    const key = repositoryKey(repository)
    const excess = (await this.#redis.zcard(key)) - this.#o.maxTagsPerRepository
    if (excess <= 0) return
    const oldest = await this.#redis.zrange(key, 0, excess - 1)
    const multi = this.#redis.multi()
    for (const tag of oldest) multi.del(tagKey(repository, tag))
    multi.zrem(key, ...oldest)
    await multi.exec()
  }
}

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':')
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) }
}

function digestKey(digest: string): string {
  return `d:${digest}`
}

function tagKey(repository: string, tag: string): string {
  return `t:${repository}:${tag}`
}

function repositoryKey(repository: string): string {
  return `r:${repository}`
}

function sameRecord(stored: string | undefined, record: PushRecord): boolean {
  if (stored === undefined) return false
  const s = JSON.parse(stored) as PushRecord
  return s.repository === record.repository && s.tag === record.tag && s.digest === record.digest
}

function parseAll(values: readonly string[]): PushRecord[] {
  const out: PushRecord[] = []
  for (const v of values) {
    try {
      out.push(JSON.parse(v) as PushRecord)
    } catch {
      // A value another version wrote and this one cannot read is skipped, not fatal.
    }
  }
  return out
}
