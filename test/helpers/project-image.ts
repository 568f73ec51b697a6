import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { assertEngineOk, type DockerEngine } from './dockerd.js'
import { run } from './tools.js'

// The project's own image, built from its Dockerfile by a test docker engine on a machine that
// reaches neither Docker Hub nor, inside a build, the npm registry: the Dockerfile's base image
// is stood in for by a local one of the same tag, and the build stage gets an image whose npm
// cache holds the locked packages (the Dockerfile's BUILD_IMAGE argument). scripts/image-base.sh
// makes both on the host and keeps them between runs.

// This file runs from test/helpers (tap) or dist/test/helpers.
export const ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/test/') ? '../../../' : '../../', import.meta.url))

/** The first-time preparation downloads Debian and Node.js: minutes on a loaded machine. */
const PREPARE_TIMEOUT_MS = 20 * 60_000
const BUILD_TIMEOUT_MS = 20 * 60_000

export interface DockerfileFacts {
  /** The runtime stage's base (the last FROM). */
  readonly base: string
  /** The default of `ARG BUILD_IMAGE`, the build stage's base. */
  readonly buildImageDefault: string | undefined
  readonly user: string | undefined
}

export function readDockerfile(): DockerfileFacts {
  const text = readFileSync(`${ROOT}Dockerfile`, 'utf8')
  const froms = [...text.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!)
  const base = froms.at(-1)
  if (base === undefined) throw new Error('the Dockerfile has no FROM line')
  return {
    base,
    buildImageDefault: /^ARG\s+BUILD_IMAGE=(\S+)/m.exec(text)?.[1],
    user: [...text.matchAll(/^USER\s+(\S+)/gm)].at(-1)?.[1],
  }
}

export interface ProjectImage {
  readonly tag: string
  readonly base: string
  readonly nodeVersion: string
  /** Seconds spent: preparing on the host, importing, building. */
  readonly timings: Readonly<Record<'prepare' | 'import' | 'build', number>>
}

const BUILD_BASE_TAG = 'manifest-guard-test/build-offline:latest'

export async function buildProjectImage(engine: DockerEngine, tag: string): Promise<ProjectImage> {
  const { base } = readDockerfile()
  const seconds = (since: number): number => Math.round((Date.now() - since) / 100) / 10

  let since = Date.now()
  const prepared = await run('bash', [`${ROOT}scripts/image-base.sh`, base], { cwd: ROOT, timeoutMs: PREPARE_TIMEOUT_MS })
  if (prepared.code !== 0) throw new Error(`scripts/image-base.sh ${base} failed (exit ${prepared.code}):\n${prepared.stderr}\n${prepared.stdout}`)
  const facts = new Map(prepared.stdout.split('\n').flatMap((line) => {
    const m = /^([A-Z_]+)=(.*)$/.exec(line)
    return m === null ? [] : [[m[1]!, m[2]!] as const]
  }))
  const baseTar = facts.get('BASE_TAR')
  const npmCache = facts.get('NPM_CACHE')
  const nodeVersion = facts.get('NODE_VERSION') ?? ''
  if (baseTar === undefined || npmCache === undefined) throw new Error(`scripts/image-base.sh printed no BASE_TAR/NPM_CACHE:\n${prepared.stdout}\n${prepared.stderr}`)
  const prepare = seconds(since)

  since = Date.now()
  // What the official image sets that the program relies on: PATH to /usr/local/bin.
  assertEngineOk(
    await engine.docker(
      ['import', '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '--change', `ENV NODE_VERSION=${nodeVersion.replace(/^v/, '')}`, '--change', 'CMD ["node"]', baseTar, base],
      { timeoutMs: BUILD_TIMEOUT_MS },
    ),
    `docker import of the stand-in for ${base}`,
  )
  // The build stage's image: the stand-in plus the npm cache, offline.
  const buildBase = [`FROM ${base}`, 'COPY . /npm-cache', 'ENV npm_config_cache=/npm-cache npm_config_offline=true'].join('\n')
  assertEngineOk(await engine.docker(['build', '--quiet', '--network', 'host', '-t', BUILD_BASE_TAG, '-f', '-', npmCache], { input: buildBase, timeoutMs: BUILD_TIMEOUT_MS }), 'docker build of the offline build stage image')
  const imported = seconds(since)

  since = Date.now()
  assertEngineOk(
    await engine.docker(['build', '--network', 'host', '--build-arg', `BUILD_IMAGE=${BUILD_BASE_TAG}`, '-t', tag, ROOT], { timeoutMs: BUILD_TIMEOUT_MS }),
    `docker build -t ${tag} . (the project's Dockerfile)`,
  )
  return { tag, base, nodeVersion, timings: { prepare, import: imported, build: seconds(since) } }
}
