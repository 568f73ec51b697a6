import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { freePort, requireTool, run, stopProcess, waitFor } from './tools.js'

// A real CNCF distribution registry (Debian's docker-registry), on a free loopback port with
// its own storage and config. DOCKER_REGISTRY_BIN overrides the binary.

export interface RegistryOptions {
  /** htpasswd users (user → password); enables basic auth. */
  readonly users?: Readonly<Record<string, string>>
  /** Bearer token auth: the realm URL, service, issuer and the PEM cert the tokens are signed with. */
  readonly token?: { readonly realm: string; readonly service: string; readonly issuer: string; readonly rootCertPath: string }
  /** Notification endpoint (distribution's `notifications.endpoints`). */
  readonly notify?: { readonly url: string; readonly token?: string }
  /** Serve HTTPS with this certificate and key (PEM files). */
  readonly tls?: { readonly cert: string; readonly key: string }
}

export interface Registry {
  readonly url: string
  readonly host: string
  readonly port: number
  readonly dir: string
  readonly storage: string
  readonly configPath: string
  stop(): Promise<void>
  start(): Promise<void>
  /** SIGKILL, storage kept: a registry that dies mid-request. */
  kill(): Promise<void>
  /** Stops the registry, runs `garbage-collect`, starts it again. */
  garbageCollect(options?: { deleteUntagged?: boolean }): Promise<string>
  logs(): string
}

export const REGISTRY_BIN = process.env['DOCKER_REGISTRY_BIN'] ?? 'docker-registry'

export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  requireTool(REGISTRY_BIN, 'apt-get install -y docker-registry (or set DOCKER_REGISTRY_BIN)')
  const dir = mkdtempSync(join(tmpdir(), 'mg-registry-'))
  const storage = join(dir, 'data')
  const port = await freePort()
  const configPath = join(dir, 'config.yml')
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    // No cache.blobdescriptor: the in-memory cache hides deletions (docs/passthrough.md).
    // Foreign / non-distributable layers name URLs; distribution refuses them unless allowed.
    'validation:',
    '  manifests:',
    '    urls:',
    '      allow:',
    "        - '^https?://'",
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: manifest-guard-tests',
    ...(options.tls === undefined ? [] : ['  tls:', `    certificate: ${options.tls.cert}`, `    key: ${options.tls.key}`]),
  ]
  if (options.users !== undefined) {
    requireTool('htpasswd', 'apt-get install -y apache2-utils')
    const htpasswd = join(dir, 'htpasswd')
    writeFileSync(htpasswd, '')
    for (const [user, password] of Object.entries(options.users)) {
      const r = await run('htpasswd', ['-B', '-b', htpasswd, user, password])
      if (r.code !== 0) throw new Error(`htpasswd failed: ${r.stderr}`)
    }
    lines.push('auth:', '  htpasswd:', '    realm: manifest-guard-tests', `    path: ${htpasswd}`)
  }
  if (options.token !== undefined) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${options.token.realm}`,
      `    service: ${options.token.service}`,
      `    issuer: ${options.token.issuer}`,
      `    rootcertbundle: ${options.token.rootCertPath}`,
    )
  }
  if (options.notify !== undefined) {
    lines.push(
      'notifications:',
      '  endpoints:',
      '    - name: manifest-guard',
      `      url: ${options.notify.url}`,
      '      timeout: 2s',
      '      threshold: 5',
      '      backoff: 1s',
      ...(options.notify.token === undefined ? [] : ['      headers:', '        Authorization: [' + JSON.stringify(`Bearer ${options.notify.token}`) + ']']),
    )
  }
  writeFileSync(configPath, lines.join('\n') + '\n')

  let child: ChildProcess | undefined
  let log = ''
  const url = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`
  // Up is up, whoever signed its certificate.
  const insecure = new Agent({ connect: { rejectUnauthorized: false } })
  const start = async (): Promise<void> => {
    child = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()))
    const exited = new Promise<never>((_, reject) => child?.once('exit', (code) => reject(new Error(`registry exited (${code}): ${log}`))))
    await Promise.race([
      waitFor(async () => {
        const res = await request(`${url}/v2/`, { dispatcher: insecure }).catch(() => undefined)
        await res?.body.dump()
        return res !== undefined && (res.statusCode === 200 || res.statusCode === 401)
      }, 10_000, `registry on ${url}`),
      exited,
    ])
    exited.catch(() => {})
  }
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const c = child
    child = undefined
    if (c !== undefined) await stopProcess(c, signal)
  }
  await start()
  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    dir,
    storage,
    configPath,
    start,
    kill: () => stop('SIGKILL'),
    async stop() {
      await stop()
      rmSync(dir, { recursive: true, force: true })
    },
    async garbageCollect(gc = {}) {
      await stop()
      const r = await run(REGISTRY_BIN, ['garbage-collect', ...(gc.deleteUntagged === true ? ['--delete-untagged'] : []), configPath])
      await start()
      if (r.code !== 0) throw new Error(`garbage-collect failed: ${r.stderr}`)
      return r.stdout
    },
    logs: () => log,
  }
}
