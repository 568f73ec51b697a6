import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { ROOT } from './root.js'
import type { FastifyInstance } from 'fastify'
import { Agent, request } from 'undici'
import { loadConfig } from '../../src/config/load.js'
import type { Config } from '../../src/config/schema.js'
import { buildApp, listen, type AppOptions } from '../../src/app.js'
import { createLogger } from '../../src/observability/logger.js'
import { freePort, stopProcess, waitFor } from './tools.js'

// The proxy under test: in-process (build, listen on port 0, read its log records), or as
// the real CLI in a child process (for memory and restart tests).

export class LogSink {
  readonly records: Record<string, unknown>[] = []
  readonly raw: string[] = []
  write(line: string): void {
    this.raw.push(line)
    try {
      this.records.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      // pino writes one JSON object per line; anything else is kept in raw only.
    }
  }
  find(predicate: (r: Record<string, unknown>) => boolean): Record<string, unknown>[] {
    return this.records.filter(predicate)
  }
}

export interface RunningProxy {
  /** The admin listener (metrics, /_guard/v1), on a port of its own. */
  readonly adminUrl: string
  /** The /_guard/v1 API's own listener, when admin.apiListen is set. */
  readonly apiUrl: string | undefined
  readonly url: string
  readonly host: string
  readonly app: FastifyInstance
  readonly config: Config
  readonly logs: LogSink
  close(): Promise<void>
}

export async function startProxy(upstream: string, values: Record<string, unknown> = {}, options: AppOptions = {}): Promise<RunningProxy> {
  const config = loadConfig({ values: merge({ upstream, listen: '127.0.0.1:0', logLevel: 'info', admin: { listen: '127.0.0.1:0' } }, values) })
  const logs = new LogSink()
  const app = await buildApp(config, { logger: createLogger(config.logLevel, logs), ...options })
  await listen(app, config)
  const port = (app.server.address() as AddressInfo).port
  const adminPort = app.admin === null ? 0 : (app.admin.server.address() as AddressInfo).port
  const apiUrl = app.adminApi === null ? undefined : `http://127.0.0.1:${(app.adminApi.server.address() as AddressInfo).port}`
  const scheme = config.tls.cert === undefined ? 'http' : 'https'
  return { url: `${scheme}://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}`, apiUrl, host: `127.0.0.1:${port}`, app, config, logs, close: () => app.close() }
}

/** Nested config values, the second winning. */
export function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const prior = out[k]
    out[k] = isPlain(prior) && isPlain(v) ? merge(prior, v) : v
  }
  return out
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// This file runs from test/helpers (tap) or dist/test/helpers (compiled scripts).
export const CLI = `${ROOT}dist/src/cli.js`

export interface ProxyProcess {
  readonly adminUrl: string
  readonly url: string
  readonly host: string
  readonly child: ChildProcess
  output(): string
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss(): number
  stop(): Promise<void>
  /** SIGKILL: a proxy that dies mid-request. */
  kill(): void
}

/** Runs the built CLI (`npm run build` first; `npm test` does). */
export async function spawnProxy(args: readonly string[], env: Record<string, string> = {}, fixedPort?: number, scheme: 'http' | 'https' = 'http', nodeArgs: readonly string[] = []): Promise<ProxyProcess> {
  const port = fixedPort ?? (await freePort())
  const adminPort = await freePort()
  // No drain delay unless a test asks for one: stop() gives a process five seconds.
  const drainDelay = args.some((a) => a.startsWith('--shutdown-drain-delay-ms')) ? [] : ['--shutdown-drain-delay-ms', '0']
  const child = spawn(process.execPath, [...nodeArgs, CLI, '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`, ...drainDelay, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()))
  const url = `${scheme}://127.0.0.1:${port}`
  // A test's self-signed certificate is not what this wait is about.
  const insecure = new Agent({ connect: { rejectUnauthorized: false } })
  // Generous: a Node start on a loaded 2-core machine can take many seconds. A proxy that
  // never comes up is stopped, or its open pipes would keep the test file from ending.
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`proxy exited with ${child.exitCode}: ${out}`)
    const res = await request(`${url}/healthz`, { dispatcher: insecure }).catch(() => undefined)
    await res?.body.dump()
    return res?.statusCode === 200
  }, 60_000, 'the proxy to start')
    .catch(async (err: unknown) => {
      await stopProcess(child)
      throw err
    })
    .finally(() => insecure.close())
  return {
    url,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    host: `127.0.0.1:${port}`,
    child,
    output: () => out,
    peakRss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      const m = /VmHWM:\s+(\d+) kB/.exec(status)
      return m === null ? 0 : Number(m[1]) * 1024
    },
    kill: () => void child.kill('SIGKILL'),
    stop: () => stopProcess(child),
  }
}
