import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireTool, run, type RunResult } from './tools.js'

// The real clients, each in its own throw-away state directory.

export interface Creds {
  readonly user: string
  readonly password: string
}

function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, ...extra }
  // buildah/podman read DOCKER_CONFIG for credentials; tests choose theirs explicitly.
  delete env['DOCKER_CONFIG']
  delete env['REGISTRY_AUTH_FILE']
  return env
}

export async function skopeo(args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  requireTool('skopeo', 'apt-get install -y skopeo')
  return run('skopeo', ['--insecure-policy', ...args], { env: cleanEnv(), timeoutMs })
}

/** `skopeo copy --all` to `target` over plain HTTP; `v2s2` converts to Docker media types. */
export async function skopeoPush(layoutRef: string, target: string, options: { creds?: Creds; format?: 'oci' | 'v2s2' } = {}): Promise<RunResult> {
  const { creds, format } = options
  return skopeo([
    'copy',
    '--all',
    '--dest-tls-verify=false',
    ...(format === 'v2s2' ? ['--format', 'v2s2'] : []),
    ...(creds ? ['--dest-creds', `${creds.user}:${creds.password}`] : []),
    layoutRef,
    `docker://${target}`,
  ])
}

export async function skopeoPull(source: string, layoutRef: string, creds?: Creds): Promise<RunResult> {
  return skopeo(['copy', '--all', '--src-tls-verify=false', ...(creds ? ['--src-creds', `${creds.user}:${creds.password}`] : []), `docker://${source}`, layoutRef])
}

/** buildah or podman, as root, on vfs storage in a directory of their own. */
export class ContainersTool {
  readonly #tool: 'buildah' | 'podman'
  readonly #dir: string

  constructor(tool: 'buildah' | 'podman') {
    requireTool(tool, `apt-get install -y ${tool}`)
    this.#tool = tool
    this.#dir = mkdtempSync(join(tmpdir(), `mg-${tool}-`))
  }

  run(args: readonly string[], timeoutMs = 180_000): Promise<RunResult> {
    const storage = ['--storage-driver', 'vfs', '--root', join(this.#dir, 'root'), '--runroot', join(this.#dir, 'run')]
    const env = cleanEnv({ XDG_RUNTIME_DIR: join(this.#dir, 'xdg'), HOME: this.#dir })
    mkdirSync(join(this.#dir, 'xdg'), { recursive: true })
    const extra = this.#tool === 'podman' ? ['--cgroup-manager', 'cgroupfs', '--events-backend', 'none'] : []
    return run(this.#tool, [...storage, ...extra, ...args], { env, timeoutMs })
  }

  cleanup(): void {
    rmSync(this.#dir, { recursive: true, force: true })
  }
}

/** The docker CLI's daemon-free `manifest` commands, with a config dir of its own. */
export class DockerCli {
  readonly configDir: string

  constructor() {
    requireTool('docker', 'install the docker CLI (docker-ce-cli or docker.io)')
    this.configDir = mkdtempSync(join(tmpdir(), 'mg-docker-'))
    writeFileSync(join(this.configDir, 'config.json'), JSON.stringify({ auths: {} }))
  }

  /** docker has no daemon-free login: credentials are written as `docker login` would. */
  login(host: string, creds: Creds): void {
    const auth = Buffer.from(`${creds.user}:${creds.password}`).toString('base64')
    writeFileSync(join(this.configDir, 'config.json'), JSON.stringify({ auths: { [host]: { auth } } }))
  }

  run(args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
    return run('docker', args, { env: { ...process.env, DOCKER_CONFIG: this.configDir, DOCKER_CLI_HINTS: 'false' }, timeoutMs })
  }

  cleanup(): void {
    rmSync(this.configDir, { recursive: true, force: true })
  }
}

export function assertOk(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stderr}\n${r.stdout}`)
  return r
}
