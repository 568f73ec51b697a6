import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { buildImage } from '../helpers/oci-builder.js'
import { spawnProxy } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'
import { pushBlob, putManifest } from '../helpers/registry-http.js'
import { largeBlob } from '../helpers/blob-stream.js'
import { abHead, wrk } from './servers.js'

// npm run profile -- small|download: the proxy under one workload with `node --cpu-prof`,
// then where its CPU went — by layer (Node's HTTP server, sockets and streams, the proxy's own
// code, GC, idle) and the functions with the most self time: the flame graph's summary, as the
// README's performance section quotes it. Bounded: one workload, fixed duration or size.

const MiB = 1 << 20
const workload = process.argv[2] ?? 'small'
const SECONDS = Number(process.env['PROFILE_SECONDS'] ?? 10)

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
}

/** Which layer a frame belongs to. */
function layer(frame: Node['callFrame']): string {
  const { url, functionName } = frame
  if (functionName === '(garbage collector)') return 'GC'
  if (functionName === '(idle)') return 'idle'
  if (functionName === '(program)') return 'native (libuv, V8, syscalls)'
  if (url.includes('/dist/src/')) return 'manifest-guard'
  if (url.includes('node_modules/undici')) return 'undici'
  if (url.includes('node_modules/fastify') || url.includes('node_modules/find-my-way') || url.includes('node_modules/@fastify')) return 'fastify'
  if (url.includes('node_modules/prom-client')) return 'metrics (prom-client)'
  if (url.includes('node_modules/')) return 'other dependencies'
  if (/node:_http|node:http/.test(url)) return "Node's HTTP (server, parser glue)"
  if (/node:net|node:internal\/stream_base|node:internal\/streams|node:stream|node:_tls|node:tls/.test(url)) return 'Node sockets and streams'
  if (/node:internal\/timers|node:timers/.test(url)) return 'timers'
  if (url.startsWith('node:')) return 'Node (other)'
  if (url === '') return 'native (libuv, V8, syscalls)'
  return 'other'
}

/** Summarizes the samples of the last `windowMs` (the workload, not the start-up). */
function summarize(file: string, windowMs: number): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  const span = profile.timeDeltas.reduce((a, b) => a + b, 0)
  let at = 0
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    if (at < span - windowMs * 1000) return
    self.set(id, (self.get(id) ?? 0) + dt)
    total += dt
  })
  const busy = total - [...self].filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)').reduce((s, [, t]) => s + t, 0)
  const layers = new Map<string, number>()
  const functions = new Map<string, number>()
  for (const [id, t] of self) {
    const frame = byId.get(id)!.callFrame
    const l = layer(frame)
    if (l === 'idle') continue
    layers.set(l, (layers.get(l) ?? 0) + t)
    const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(dist\/src|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`
    functions.set(name, (functions.get(name) ?? 0) + t)
  }
  const pct = (t: number): string => `${((100 * t) / busy).toFixed(1)} %`
  const lines = [`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s sampled`, '', '| layer | share of busy time |', '| --- | --- |']
  for (const [l, t] of [...layers].sort((a, b) => b[1] - a[1])) lines.push(`| ${l} | ${pct(t)} |`)
  lines.push('', '| function (self time) | share |', '| --- | --- |')
  for (const [f, t] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, 25)) lines.push(`| ${f} | ${pct(t)} |`)
  return lines.join('\n')
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mg-profile-'))
  const registry = await startRegistry()
  const proxy = await spawnProxy(['--upstream', registry.url, '--log-level', 'warn'], {}, undefined, 'http', ['--cpu-prof', `--cpu-prof-dir=${dir}`])
  let requests = 0
  let started = 0
  try {
    if (workload === 'download') {
      const size = 512 * MiB
      const blob = largeBlob(size, 'profile-download')
      const start = await request(`${registry.url}/v2/profile/big/blobs/uploads/`, { method: 'POST' })
      await start.body.dump()
      const location = new URL(String(start.headers['location']), registry.url)
      location.searchParams.set('digest', blob.digest)
      const put = await request(location, { method: 'PUT', headers: { 'content-length': String(size) }, body: blob.stream() })
      await put.body.dump()
      started = performance.now()
      for (let i = 0; i < 4; i++) {
        const res = await request(`${proxy.url}/v2/profile/big/blobs/${blob.digest}`, { bodyTimeout: 120_000 })
        for await (const _ of res.body) requests += 0
        requests++
      }
    } else {
      const small = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'profile-small' })
      for (const b of [small.config, ...small.layers]) await pushBlob(registry.url, 'profile/small', b)
      await putManifest(registry.url, 'profile/small', 'latest', small.manifest)
      started = performance.now()
      const head = await abHead(`${proxy.url}/v2/profile/small/blobs/${small.layers[0]!.digest}`, { connections: 32, seconds: SECONDS / 2 })
      const get = await wrk(`${proxy.url}/v2/profile/small/manifests/latest`, { method: 'GET', headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' }, connections: 32, seconds: SECONDS / 2 })
      requests = head.requests + get.requests
    }
  } finally {
    started = performance.now() - started
    await proxy.stop()
    await registry.stop()
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (file === undefined) throw new Error(`no profile written in ${dir}`)
  process.stdout.write(`${workload}: ${requests} requests in ${(started / 1000).toFixed(1)} s; profile ${join(dir, file)}\n\n${summarize(join(dir, file), started)}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`profile failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
