import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, requireTool, stopProcess, waitFor } from './tools.js'

// A real redis-server (Debian's), on a free loopback port: nothing persisted unless asked
// (`persist`: an append-only file in a directory of its own, as an operator would run it).
// The tests hang it with SIGSTOP/SIGCONT (Redis 7 refuses DEBUG SLEEP), stop it and start it
// again on the same port. And Redis Sentinel (Debian's redis-sentinel) for failovers.

export interface RedisOptions {
  readonly persist?: boolean
  /** Starts as a replica of this port. */
  readonly replicaOf?: number
}

export interface RedisServer {
  readonly url: string
  readonly port: number
  readonly pid: number | undefined
  /** SIGSTOP: the server keeps its connections open and answers nothing. */
  pause(): void
  /** SIGCONT. */
  resume(): void
  stop(): Promise<void>
  /** SIGKILL: a master that dies mid-workload. */
  kill(): Promise<void>
  /** Starts it again on the same port (and files). */
  start(): Promise<void>
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  requireTool('redis-server', 'apt-get install -y redis-server')
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'mg-redis-'))
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--protected-mode', 'yes', '--dir', dir,
    '--save', '',
    ...(options.persist === true ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ...(options.replicaOf === undefined ? [] : ['--replicaof', '127.0.0.1', String(options.replicaOf)]),
  ]
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    child = spawn('redis-server', args, { stdio: 'ignore' })
    await waitFor(() => listening(port), 10_000, 'redis-server')
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    get pid() {
      return child?.pid
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    stop: async () => {
      if (child === undefined) return
      child.kill('SIGCONT')
      await stopProcess(child)
    },
    kill: async () => {
      if (child !== undefined) await stopProcess(child, 'SIGKILL')
    },
    start,
  }
}

export interface Sentinel {
  readonly port: number
  readonly address: string
  stop(): Promise<void>
  /** The address the sentinel names as the master right now. */
  master(): Promise<number | undefined>
}

/** One redis-sentinel watching `masterPort` as `name`, quorum 1, quick to act (loopback tests). */
export async function startSentinel(masterPort: number, name = 'mymaster'): Promise<Sentinel> {
  requireTool('redis-sentinel', 'apt-get install -y redis-sentinel')
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'mg-sentinel-'))
  const config = join(dir, 'sentinel.conf')
  writeFileSync(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
      `sentinel parallel-syncs ${name} 1`,
    ].join('\n') + '\n',
  )
  const child = spawn('redis-sentinel', [config], { stdio: 'ignore' })
  await waitFor(() => listening(port), 10_000, 'redis-sentinel')
  return {
    port,
    address: `127.0.0.1:${port}`,
    stop: async () => {
      await stopProcess(child)
      rmSync(dir, { recursive: true, force: true })
    },
    master: async () => {
      const reply = await command(port, ['SENTINEL', 'get-master-addr-by-name', name])
      const m = /\r\n(\d+)\r\n$/.exec(reply)
      return m === null ? undefined : Number(m[1])
    },
  }
}

/** One command in RESP over a fresh connection; the raw reply. */
export function command(port: number, parts: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(reply)
    }, 2_000)
    socket.once('connect', () => socket.write(`*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`))
    socket.on('data', (d: Buffer) => {
      reply += d.toString()
      // A reply is complete once it ends a line and holds as many bulk strings as it announces.
      if (reply.endsWith('\r\n') && complete(reply)) {
        clearTimeout(timer)
        socket.destroy()
        resolve(reply)
      }
    })
    socket.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

function complete(reply: string): boolean {
  if (!reply.startsWith('*')) return true
  const count = Number(/^\*(-?\d+)/.exec(reply)?.[1] ?? 0)
  if (count <= 0) return true
  // Each bulk string: its $length line, then its bytes and CRLF.
  const bulks = [...reply.matchAll(/\$(\d+)\r\n/g)]
  const last = bulks.at(-1)
  return bulks.length >= count && last !== undefined && reply.length >= (last.index ?? 0) + last[0].length + Number(last[1]) + 2
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
