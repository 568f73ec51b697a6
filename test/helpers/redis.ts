import { type ChildProcess, spawn } from 'node:child_process'
import { connect } from 'node:net'
import { freePort, requireTool, stopProcess, waitFor } from './tools.js'

// A real redis-server (Debian's), on a free loopback port, nothing persisted.

export interface RedisServer {
  readonly url: string
  readonly port: number
  stop(): Promise<void>
}

export async function startRedis(): Promise<RedisServer> {
  requireTool('redis-server', 'apt-get install -y redis-server')
  const port = await freePort()
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
    stdio: 'ignore',
  })
  await waitFor(
    () =>
      new Promise((resolve) => {
        const socket = connect(port, '127.0.0.1')
        socket.once('connect', () => {
          socket.destroy()
          resolve(true)
        })
        socket.once('error', () => resolve(false))
      }),
    10_000,
    'redis-server',
  )
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    stop: () => stopProcess(child),
  }
}
