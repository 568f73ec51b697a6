#!/usr/bin/env node
import { ConfigError, loadConfig } from './config/load.js'
import { usage } from './config/usage.js'

// The only process entry: load config, build the app, listen, close gracefully. Each command
// loads only what it runs: `healthcheck` (every 15 s in the image) and `check` never load
// fastify, the proxy, its metrics or its drain (hundreds of milliseconds on a loaded machine).

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'check') {
    const { readStdinSync, runCheck } = await import('./check-command.js')
    return runCheck(argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env, readStdin: readStdinSync })
  }
  if (argv[0] === 'healthcheck') return (await import('./healthcheck-command.js')).runHealthcheck(argv.slice(1), process.env)
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage())
    return 0
  }
  let config
  try {
    config = loadConfig({ argv, env: process.env })
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`manifest-guard: ${err.message}\n`)
      return 2
    }
    throw err
  }
  const { buildApp, listen } = await import('./app.js')
  const { drain } = await import('./drain.js')
  const app = await buildApp(config)
  try {
    await listen(app, config)
  } catch (err) {
    const address = !app.server.listening ? config.listen : app.admin?.server.listening !== true ? config.admin.listen : (config.admin.apiListen ?? config.admin.listen)
    process.stderr.write(`manifest-guard: cannot listen on ${address.host}:${address.port}: ${(err as Error).message}\n`)
    await app.close()
    return 1
  }
  app.log.info(
    {
      upstream: config.upstream,
      listen: `${config.listen.host}:${config.listen.port}`,
      admin: config.admin.enabled ? `${config.admin.listen.host}:${config.admin.listen.port}` : 'off',
      ...(config.admin.enabled && config.admin.apiListen !== undefined ? { adminApi: `${config.admin.apiListen.host}:${config.admin.apiListen.port}` } : {}),
      mode: config.validation.mode,
    },
    'manifest-guard is up',
  )
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      process.removeAllListeners('SIGTERM').removeAllListeners('SIGINT')
      app.log.info({ signal }, 'shutting down')
      // SIGTERM is an orchestrator's (Kubernetes, docker stop): drain first. SIGINT is a person's.
      const delayMs = signal === 'SIGTERM' ? config.shutdown.drainDelayMs : 0
      drain(app, { delayMs, timeoutMs: config.shutdown.timeoutMs }).then(resolve, resolve)
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
  return 0
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`manifest-guard: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
