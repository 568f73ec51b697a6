import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pseudoRandom } from './oci-builder.js'
import { run, type RunOptions, type RunResult, stopProcess, waitFor } from './tools.js'

// A real Docker engine for the tests: Debian's docker.io (20.10) dockerd, started by the test
// itself with its own socket, data root, exec root and pid file, all in one temp directory that
// is removed at stop. No systemd, no bridge and no iptables (containers use --network host).
// Storage is vfs, which works on any filesystem, or overlay2 where the kernel allows it: vfs
// copies the whole filesystem at every layer, which for the project's image build (a 400 MB
// node_modules) took 11 minutes and 5 GB against overlay2's 3 minutes (2-core machine, loaded). The CLI is docker.io's own /usr/bin/docker, the same
// version as the daemon: /usr/local/bin/docker (a newer CLI, first on PATH) serves the daemon-free
// `docker manifest` tests and is never used here. DOCKERD_BIN and DOCKER_ENGINE_CLI override
// the two binaries.

export const DOCKERD_BIN = process.env['DOCKERD_BIN'] ?? '/usr/sbin/dockerd'
export const DOCKER_ENGINE_CLI = process.env['DOCKER_ENGINE_CLI'] ?? '/usr/bin/docker'

const INSTALL = 'apt-get install -y docker.io (Debian\'s engine: /usr/sbin/dockerd and its CLI /usr/bin/docker; bash scripts/setup.sh does it)'

/** The daemon's readiness on a loaded 2-core machine: ~1–8 s is usual. */
const READY_TIMEOUT_MS = 90_000

export type StorageDriver = 'vfs' | 'overlay2'

export interface DockerdOptions {
  /** `auto` tries overlay2, then vfs. DOCKERD_STORAGE_DRIVER overrides. Default vfs. */
  readonly storageDriver?: StorageDriver | 'auto'
}

export interface DockerEngine {
  /** `unix://…/docker.sock`, for DOCKER_HOST. */
  readonly host: string
  readonly dir: string
  readonly storageDriver: StorageDriver
  /** The CLI against this daemon, with a DOCKER_CONFIG of its own (logins stay here). */
  docker(args: readonly string[], options?: RunOptions): Promise<RunResult>
  /** The daemon's own log, for failure messages. */
  logs(): string
  stop(): Promise<void>
}

function requireBinary(path: string, what: string): void {
  try {
    accessSync(path, constants.X_OK)
  } catch {
    throw new Error(`this test needs ${what} at ${path}, which is missing: ${INSTALL}`)
  }
}

/** What the failure messages name: which binaries, which versions. */
function describeBinaries(): string {
  const version = (bin: string, args: string[]): string => {
    const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 })
    return (r.stdout ?? '').trim() || `(${bin} ${args.join(' ')} failed: ${(r.stderr ?? r.error?.message ?? '').trim()})`
  }
  return `daemon ${DOCKERD_BIN} (${version(DOCKERD_BIN, ['--version'])}), CLI ${DOCKER_ENGINE_CLI} (${version(DOCKER_ENGINE_CLI, ['--version'])})`
}

/** GET /_ping on the daemon's socket. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => {
      req.destroy()
      resolve(false)
    })
    req.end()
  })
}

/** Unmounts whatever the daemon left mounted under `dir` (deepest first), so it can be removed. */
function unmountUnder(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const point of mounts) spawnSync('umount', ['-l', point], { stdio: 'ignore' })
}

export async function startDockerd(options: DockerdOptions = {}): Promise<DockerEngine> {
  requireBinary(DOCKERD_BIN, "Debian's docker engine (dockerd)")
  requireBinary(DOCKER_ENGINE_CLI, "docker.io's docker CLI")
  if (process.getuid?.() !== 0) throw new Error(`this test starts a docker engine (${DOCKERD_BIN}), which needs root; run the tests as root`)
  const wanted = (process.env['DOCKERD_STORAGE_DRIVER'] as StorageDriver | undefined) ?? options.storageDriver ?? 'vfs'
  if (wanted !== 'auto') return launch(wanted)
  try {
    return await launch('overlay2')
  } catch {
    // overlay2 needs kernel support and a backing filesystem it can stack on; vfs needs neither.
    return launch('vfs')
  }
}

async function launch(storageDriver: StorageDriver): Promise<DockerEngine> {
  // Short paths: the daemon's and containerd's unix sockets must fit in 108 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'mg-dockerd-'))
  const socket = join(dir, 'docker.sock')
  const config = join(dir, 'cli')
  mkdirSync(config)
  writeFileSync(join(config, 'config.json'), JSON.stringify({ auths: {} }))
  const args = [
    `--storage-driver=${storageDriver}`,
    '--iptables=false',
    '--ip-masq=false',
    '--bridge=none',
    `--host=unix://${socket}`,
    `--data-root=${join(dir, 'root')}`,
    `--exec-root=${join(dir, 'exec')}`,
    `--pidfile=${join(dir, 'pid')}`,
    // A daemon.json elsewhere on the machine must not change what the tests get.
    `--config-file=${join(dir, 'daemon.json')}`,
  ]
  writeFileSync(join(dir, 'daemon.json'), '{}')
  let log = ''
  const child: ChildProcess = spawn(DOCKERD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()))
  // A test process that dies must not leave a daemon behind.
  const killOnExit = (): void => void child.kill('SIGKILL')
  process.once('exit', killOnExit)
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject))

  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit)
    // SIGTERM stops the containers and the daemon's own containerd; give it time to.
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 20_000))])
    }
    await stopProcess(child, 'SIGKILL')
    unmountUnder(dir)
    // Gigabytes of image layers on a busy disk can take minutes: not on the event loop.
    await rm(dir, { recursive: true, force: true, maxRetries: 3 })
  }

  try {
    await Promise.race([
      spawnFailed,
      waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}`)
        return ping(socket)
      }, READY_TIMEOUT_MS, `the docker engine on ${socket}`),
    ])
  } catch (err) {
    await stop()
    throw new Error(`${(err as Error).message} (storage driver ${storageDriver})\n${describeBinaries()}\n--- dockerd log (last 3000 chars) ---\n${log.slice(-3_000)}`)
  }

  const env = { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: config, DOCKER_BUILDKIT: '0', DOCKER_CLI_HINTS: 'false' }
  return {
    host: `unix://${socket}`,
    dir,
    storageDriver,
    docker: (cmdArgs, options = {}) => run(DOCKER_ENGINE_CLI, cmdArgs, { ...options, env: { ...env, ...options.env } }),
    logs: () => log,
    stop,
  }
}

/** Throws with the command, its output and the binaries used when `r` failed. */
export function assertEngineOk(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}) using ${describeBinaries()}:\n${r.stderr}\n${r.stdout}`)
  return r
}

/** A two-layer image built FROM scratch with the classic builder, tagged as `tags`. */
export async function buildScratchImage(docker: DockerEngine, seed: string, tags: readonly string[]): Promise<string> {
  const context = mkdtempSync(join(tmpdir(), 'mg-engine-ctx-'))
  try {
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY base.bin /base.bin\nCOPY app.bin /app.bin\nLABEL org.opencontainers.image.title=manifest-guard-engine-test\n')
    writeFileSync(join(context, 'base.bin'), pseudoRandom(`${seed}-base`, 64 * 1024))
    writeFileSync(join(context, 'app.bin'), pseudoRandom(`${seed}-app`, 16 * 1024))
    assertEngineOk(await docker.docker(['build', '--quiet', ...tags.flatMap((tag) => ['-t', tag]), context]), `docker build ${tags.join(' ')}`)
    const id = assertEngineOk(await docker.docker(['image', 'inspect', '--format', '{{.Id}}', tags[0]!]), 'docker image inspect').stdout.trim()
    return id
  } finally {
    rmSync(context, { recursive: true, force: true })
  }
}
