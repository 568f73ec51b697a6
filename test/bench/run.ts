import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { Pool, request } from 'undici'
import { buildImage, buildIndex, type BuiltIndex, pseudoRandom } from '../helpers/oci-builder.js'
import { spawnProxy, type ProxyProcess } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'
import { pushBlob, pushChildren, putManifest } from '../helpers/registry-http.js'
import { abHead, cpuSeconds, startNginx, treeCpuSeconds, wrk } from './servers.js'

// npm run bench: the direct registry, nginx (two configurations) and manifest-guard, all on
// loopback, each workload against each in turn, interleaved, several rounds. Prints medians
// with min–max and the ratios the targets are stated in, and writes the same as JSON.
// Bounded: ROUNDS rounds, fixed sizes, fixed durations.

const MiB = 1 << 20
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3)
const BIG = Number(process.env['BENCH_BIG_MIB'] ?? 512) * MiB
/** Download sizes (issue 12 states the target for both). */
const DOWNLOADS = [256 * MiB, BIG]
const SMALL_SECONDS = Number(process.env['BENCH_SECONDS'] ?? 5)
const CONCURRENCY = 32
/** BENCH_ONLY=uploads,downloads,small,ceiling,validation,rss runs just those parts (for profiling); the default runs all. */
const ONLY = new Set((process.env['BENCH_ONLY'] ?? 'uploads,downloads,small,ceiling,validation,rss').split(','))
const CHUNK = 128 * MiB

type Target = { name: string; url: string }
type Sample = Record<string, number>
const samples = new Map<string, Sample[]>()
const record = (workload: string, target: string, sample: Sample): void => {
  const key = `${workload}|${target}`
  samples.set(key, [...(samples.get(key) ?? []), sample])
}

function bigBody(size: number): Readable {
  const block = pseudoRandom('bench-block', MiB)
  let sent = 0
  return new Readable({
    read() {
      if (sent >= size) return void this.push(null)
      const n = Math.min(MiB, size - sent)
      sent += n
      this.push(n === MiB ? block : block.subarray(0, n))
    },
  })
}

function bigDigest(size: number): string {
  const block = pseudoRandom('bench-block', MiB)
  const hash = createHash('sha256')
  for (let sent = 0; sent < size; sent += MiB) hash.update(size - sent >= MiB ? block : block.subarray(0, size - sent))
  return `sha256:${hash.digest('hex')}`
}

async function uploadMonolithic(base: string, size: number, digest: string): Promise<number> {
  const started = performance.now()
  const start = await request(`${base}/v2/bench/big/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  const location = new URL(String(start.headers['location']), base)
  location.searchParams.set('digest', digest)
  const put = await request(location, { method: 'PUT', headers: { 'content-length': String(size), 'content-type': 'application/octet-stream' }, body: bigBody(size), headersTimeout: 600_000, bodyTimeout: 600_000 })
  await put.body.dump()
  if (put.statusCode !== 201) throw new Error(`upload answered ${put.statusCode}`)
  return performance.now() - started
}

async function uploadChunked(base: string, size: number, digest: string): Promise<number> {
  const started = performance.now()
  const start = await request(`${base}/v2/bench/big/blobs/uploads/`, { method: 'POST' })
  await start.body.dump()
  let location = new URL(String(start.headers['location']), base)
  for (let offset = 0; offset < size; offset += CHUNK) {
    const n = Math.min(CHUNK, size - offset)
    const patch = await request(location, {
      method: 'PATCH',
      headers: { 'content-length': String(n), 'content-range': `${offset}-${offset + n - 1}`, 'content-type': 'application/octet-stream' },
      body: bigBody(n),
      headersTimeout: 600_000,
      bodyTimeout: 600_000,
    })
    await patch.body.dump()
    if (patch.statusCode !== 202) throw new Error(`PATCH answered ${patch.statusCode}`)
    location = new URL(String(patch.headers['location']), base)
  }
  location.searchParams.set('digest', digest)
  const put = await request(location, { method: 'PUT', headers: { 'content-length': '0' } })
  await put.body.dump()
  if (put.statusCode !== 201) throw new Error(`chunked PUT answered ${put.statusCode}: ${digest}`)
  return performance.now() - started
}

async function download(base: string, digest: string, size: number): Promise<number> {
  const started = performance.now()
  const res = await request(`${base}/v2/bench/big/blobs/${digest}`, { headersTimeout: 600_000, bodyTimeout: 600_000 })
  let bytes = 0
  for await (const chunk of res.body) bytes += (chunk as Buffer).length
  if (bytes !== size) throw new Error(`downloaded ${bytes} of ${size}`)
  return performance.now() - started
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function main(): Promise<void> {
  const startedAt = new Date()
  const t0 = performance.now()
  const log = (msg: string): void => void process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`)

  const registry = await startRegistry()
  const recommended = await startNginx('recommended', registry.port)
  const buffers = await startNginx('buffers-64k', registry.port)
  const proxy = await spawnProxy(['--upstream', registry.url, '--log-level', 'warn'])
  const floor = await startFloor(registry.url)
  const stops: (() => Promise<void>)[] = [() => proxy.stop(), () => floor.stop(), () => recommended.stop(), () => buffers.stop(), () => registry.stop()]
  try {
    const targets: Target[] = [
      { name: 'direct', url: registry.url },
      { name: 'nginx', url: recommended.url },
      { name: 'nginx-64k', url: buffers.url },
      { name: 'manifest-guard', url: proxy.url },
      { name: 'node+undici floor', url: floor.url },
    ]
    // Small objects for the request-rate workloads.
    const small = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'bench-small' })
    for (const b of [small.config, ...small.layers]) await pushBlob(registry.url, 'bench/small', b)
    await putManifest(registry.url, 'bench/small', 'latest', small.manifest)
    const blobDigest = small.layers[0]!.digest
    log(`hashing the ${BIG / MiB} MiB blob`)
    const digest = bigDigest(BIG)
    await uploadMonolithic(registry.url, BIG, digest)
    const downloads = DOWNLOADS.map((size) => ({ size, digest: size === BIG ? digest : bigDigest(size) }))
    for (const d of downloads) if (d.size !== BIG) await uploadMonolithic(registry.url, d.size, d.digest)

    // Warm every target up first (the JIT of the Node proxies above all), unrecorded.
    log('warm-up')
    for (const target of targets) {
      await download(target.url, digest, BIG)
      await abHead(`${target.url}/v2/bench/small/blobs/${blobDigest}`, { connections: CONCURRENCY, seconds: 2 })
      await wrk(`${target.url}/v2/bench/small/manifests/latest`, { method: 'GET', headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' }, connections: CONCURRENCY, seconds: 2 })
    }
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round}/${ROUNDS}: transfers`)
      for (const target of targets) {
        if (ONLY.has('uploads')) {
          record('upload 512 MiB monolithic', target.name, { mbps: BIG / MiB / ((await uploadMonolithic(target.url, BIG, digest)) / 1000) })
          record('upload 512 MiB chunked', target.name, { mbps: BIG / MiB / ((await uploadChunked(target.url, BIG, digest)) / 1000) })
        }
        if (!ONLY.has('downloads')) continue
        for (const d of downloads) record(`download ${d.size / MiB} MiB`, target.name, { mbps: d.size / MiB / ((await download(target.url, d.digest, d.size)) / 1000) })
      }
      log(`round ${round}/${ROUNDS}: small requests`)
      if (ONLY.has('small')) for (const [workload, path, method, headers] of [
        ['HEAD blob c=32', `/v2/bench/small/blobs/${blobDigest}`, 'HEAD', {}],
        ['GET manifest c=32', '/v2/bench/small/manifests/latest', 'GET', { Accept: 'application/vnd.oci.image.manifest.v1+json' }],
      ] as const) {
        for (const target of targets) {
          const pids: Record<string, number> = { 'manifest-guard': proxy.child.pid!, 'node+undici floor': floor.pid, nginx: recommended.pids()[0]!, 'nginx-64k': buffers.pids()[0]! }
          const pid = pids[target.name] ?? 0
          const cpuBefore = pid === 0 ? 0 : treeCpuSeconds(pid)
          const r =
            method === 'HEAD'
              ? await abHead(`${target.url}${path}`, { connections: CONCURRENCY, seconds: SMALL_SECONDS })
              : await wrk(`${target.url}${path}`, { method, headers, connections: CONCURRENCY, seconds: SMALL_SECONDS })
          const cpuUs = pid === 0 ? Number.NaN : ((treeCpuSeconds(pid) - cpuBefore) * 1e6) / r.requests
          record(workload, target.name, { rps: r.rps, p50ms: r.p50ms, p99ms: r.p99ms, errors: r.errors, ...(Number.isNaN(cpuUs) ? {} : { cpuUsPerRequest: cpuUs }) })
        }
      }
    }

    log('ceiling: a trivial upstream')
    if (ONLY.has('ceiling')) await ceiling(record, log)
    log('list validation')
    if (ONLY.has('validation')) await validation(registry.url, proxy, record, log)
    log('peak RSS')
    if (ONLY.has('rss')) await peakRss(registry.url, record, log)
  } finally {
    for (const stop of stops) await stop().catch(() => {})
  }
  report(startedAt, (performance.now() - t0) / 1000)
}

/** The reference column: a bare Node + undici forwarder (floor-proxy.ts) in its own process. */
async function startFloor(upstream: string): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./floor-proxy.js', import.meta.url)), upstream, '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(/listening (\d+)/.exec(d.toString())?.[1])))
    child.once('exit', (code) => reject(new Error(`floor proxy exited ${code}`)))
  })
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: async () => {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    },
  }
}

async function ceiling(rec: typeof record, log: (m: string) => void): Promise<void> {
  const trivial = await startNginx('trivial')
  const viaNginx = await startNginx('recommended', Number(new URL(trivial.url).port))
  const viaProxy = await spawnProxy(['--upstream', trivial.url, '--log-level', 'warn', '--validation-mode', 'off'])
  const viaFloor = await startFloor(trivial.url)
  try {
    for (const target of [viaNginx, viaProxy, viaFloor]) await wrk(`${target.url}/v2/x/manifests/latest`, { method: 'GET', connections: CONCURRENCY, seconds: 2 })
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, target] of [['nginx', viaNginx], ['manifest-guard', viaProxy], ['node+undici floor', viaFloor]] as const) {
        const pid = name === 'manifest-guard' ? (target as ProxyProcess).child.pid! : name === 'node+undici floor' ? (target as { pid: number }).pid : 0
        const before = pid === 0 ? 0 : cpuSeconds(pid)
        const r = await wrk(`${target.url}/v2/x/manifests/latest`, { method: 'GET', connections: CONCURRENCY, seconds: SMALL_SECONDS })
        rec('ceiling: GET c=32, trivial upstream', name, { rps: r.rps, p50ms: r.p50ms, p99ms: r.p99ms, errors: r.errors, ...(pid === 0 ? {} : { cpuUsPerRequest: ((cpuSeconds(pid) - before) * 1e6) / r.requests }) })
      }
    }
    log('ceiling done')
  } finally {
    await viaFloor.stop()
    await viaProxy.stop()
    await viaNginx.stop()
    await trivial.stop()
  }
}

/** The walk's concurrency (validation.concurrency's default). */
const LOOKUP_CONCURRENCY = 16

async function validation(registryUrl: string, proxy: ProxyProcess, rec: typeof record, log: (m: string) => void): Promise<void> {
  const REPEAT = 7
  // The registry alone answering the walk's requests, kept alive like the proxy's lookup pool.
  const warmPool = new Pool(registryUrl, { connections: 32 })
  try {
    for (const platforms of [2, 8, 32]) {
      const repo = `bench/val${platforms}`
      const images = Array.from({ length: platforms }, (_, i) => buildImage({ platform: { os: 'linux', architecture: `arch${i}` }, seed: `bench-val-${platforms}`, layerCount: 10 }))
      const index: BuiltIndex = buildIndex(images)
      // Warm: the children went through the proxy just before, as with every real push.
      await pushChildren(proxy.url, repo, index)
      const direct: number[] = []
      const warm: number[] = []
      const floorWarm: number[] = []
      for (let i = 0; i < REPEAT; i++) {
        direct.push(await timedPut(registryUrl, repo, `direct${i}`, index))
        warm.push(await timedPut(proxy.url, repo, `warm${i}`, index))
        floorWarm.push(await walkFloor(warmPool, repo, images, 'HEAD'))
      }
      const warmStats = await lastDecisionStats(proxy, repo)
      // Cold: a proxy that has seen nothing (just started), and a registry client as new.
      const cold: number[] = []
      const floorCold: number[] = []
      let coldStats = { upstreamRequests: Number.NaN, cacheHits: Number.NaN }
      for (let i = 0; i < 3; i++) {
        const fresh = await spawnProxy(['--upstream', registryUrl, '--log-level', 'warn'])
        try {
          cold.push(await timedPut(fresh.url, repo, `cold${i}`, index))
          coldStats = await lastDecisionStats(fresh, repo)
        } finally {
          await fresh.stop()
        }
        const coldPool = new Pool(registryUrl, { connections: 32 })
        floorCold.push(await walkFloor(coldPool, repo, images, 'GET'))
        await coldPool.close()
      }
      const d = median(direct)
      const w = `list validation ${platforms}×10`
      rec(w, 'direct', { ms: d })
      rec(w, 'warm', { ms: median(warm), addedMs: median(warm) - d, ...warmStats })
      rec(w, 'registry alone, warm walk', { ms: median(floorWarm), requests: platforms * 12 })
      rec(w, 'cold', { ms: median(cold), addedMs: median(cold) - d, ...coldStats })
      rec(w, 'registry alone, cold walk', { ms: median(floorCold), requests: platforms * 12 })
      log(`validation ${platforms} platforms done`)
    }
  } finally {
    await warmPool.close()
  }
}

/**
 * What the registry alone takes to answer the requests a walk makes, at the walk's
 * concurrency and in its order: each child (a GET when its body is unknown, else a HEAD),
 * then that child's config and layers (a HEAD each).
 */
async function walkFloor(pool: Pool, repo: string, images: readonly ReturnType<typeof buildImage>[], childMethod: 'GET' | 'HEAD'): Promise<number> {
  let active = 0
  const waiting: (() => void)[] = []
  const limited = async (method: 'GET' | 'HEAD', path: string, headers: Record<string, string>): Promise<void> => {
    if (active >= LOOKUP_CONCURRENCY) await new Promise<void>((r) => waiting.push(r))
    active++
    try {
      const res = await pool.request({ method, path, headers, ...(method === 'HEAD' ? { reset: false } : {}) })
      await res.body.dump()
      if (res.statusCode !== 200) throw new Error(`${method} ${path} answered ${res.statusCode}`)
    } finally {
      active--
      waiting.shift()?.()
    }
  }
  const accept = { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' }
  const started = performance.now()
  await Promise.all(
    images.map(async (image) => {
      await limited(childMethod, `/v2/${repo}/manifests/${image.manifest.digest}`, accept)
      await Promise.all([image.config, ...image.layers].map((b) => limited('HEAD', `/v2/${repo}/blobs/${b.digest}`, {})))
    }),
  )
  return performance.now() - started
}

async function timedPut(base: string, repo: string, tag: string, index: BuiltIndex): Promise<number> {
  const started = performance.now()
  const res = await putManifest(base, repo, tag, index.manifest)
  await res.arrayBuffer()
  if (res.status !== 201) throw new Error(`list PUT answered ${res.status}`)
  return performance.now() - started
}

async function lastDecisionStats(proxy: ProxyProcess, repository: string): Promise<{ upstreamRequests: number; cacheHits: number }> {
  const res = await fetch(`${proxy.adminUrl}/_guard/v1/decisions?repository=${encodeURIComponent(repository)}&limit=1`)
  const body = (await res.json()) as { decisions: { upstreamRequests?: number; cacheHits?: number }[] }
  const last = body.decisions[0]
  return { upstreamRequests: last?.upstreamRequests ?? Number.NaN, cacheHits: last?.cacheHits ?? Number.NaN }
}

async function peakRss(registryUrl: string, rec: typeof record, log: (m: string) => void): Promise<void> {
  for (const mib of [128, 512]) {
    const size = mib * MiB
    const digest = bigDigest(size)
    const fresh = await spawnProxy(['--upstream', registryUrl, '--log-level', 'warn'])
    try {
      const idle = fresh.peakRss()
      await uploadMonolithic(fresh.url, size, digest)
      await download(fresh.url, digest, size)
      rec('proxy peak RSS', `${mib} MiB transfer`, { idleMiB: idle / MiB, peakMiB: fresh.peakRss() / MiB })
    } finally {
      await fresh.stop()
    }
    log(`RSS ${mib} MiB done`)
  }
}

function report(startedAt: Date, seconds: number): void {
  const rows: { workload: string; target: string; metric: string; median: number; min: number; max: number }[] = []
  for (const [key, list] of samples) {
    const [workload, target] = key.split('|') as [string, string]
    for (const metric of Object.keys(list[0] ?? {})) {
      const values = list.map((s) => s[metric] as number).filter((v) => !Number.isNaN(v))
      if (values.length === 0) continue
      rows.push({ workload, target, metric, median: median(values), min: Math.min(...values), max: Math.max(...values) })
    }
  }
  const get = (workload: string, target: string, metric: string): number => rows.find((r) => r.workload === workload && r.target === target && r.metric === metric)?.median ?? Number.NaN
  const ratios: { name: string; value: number; target: string }[] = []
  const bestNginx = (w: string, m: string): number => Math.max(get(w, 'nginx', m), get(w, 'nginx-64k', m))
  // The targets of issue 12.
  for (const w of ['upload 512 MiB monolithic', 'upload 512 MiB chunked']) ratios.push({ name: `${w}: proxy/direct`, value: get(w, 'manifest-guard', 'mbps') / get(w, 'direct', 'mbps'), target: '≥ 0.95' })
  for (const size of DOWNLOADS) {
    const w = `download ${size / MiB} MiB`
    ratios.push({ name: `${w}: proxy/nginx-64k`, value: get(w, 'manifest-guard', 'mbps') / get(w, 'nginx-64k', 'mbps'), target: '≥ 1.0' })
  }
  for (const w of ['HEAD blob c=32', 'GET manifest c=32']) {
    ratios.push({ name: `${w}: proxy/best nginx req/s`, value: get(w, 'manifest-guard', 'rps') / bestNginx(w, 'rps'), target: '≥ 0.95' })
    const nginxP99 = Math.min(get(w, 'nginx', 'p99ms'), get(w, 'nginx-64k', 'p99ms'))
    ratios.push({ name: `${w}: proxy/nginx p99`, value: get(w, 'manifest-guard', 'p99ms') / nginxP99, target: '≤ 1.1' })
    ratios.push({ name: `${w}: proxy CPU µs/request`, value: get(w, 'manifest-guard', 'cpuUsPerRequest'), target: '≤ 120' })
  }
  const ceil = 'ceiling: GET c=32, trivial upstream'
  ratios.push({ name: 'ceiling: proxy/node+undici floor req/s', value: get(ceil, 'manifest-guard', 'rps') / get(ceil, 'node+undici floor', 'rps'), target: '≥ 1.0' })
  ratios.push({ name: 'peak RSS 128 MiB transfer (MiB)', value: get('proxy peak RSS', '128 MiB transfer', 'peakMiB'), target: '≤ 160' })
  ratios.push({ name: 'peak RSS 512 MiB transfer (MiB)', value: get('proxy peak RSS', '512 MiB transfer', 'peakMiB'), target: '≤ 160, flat' })
  const v = 'list validation 8×10'
  ratios.push({ name: 'validation 8×10 warm: upstream requests', value: get(v, 'warm', 'upstreamRequests'), target: '= 96 (8 children + 88 blobs)' })
  ratios.push({ name: 'validation 8×10 warm: bodies from the cache', value: get(v, 'warm', 'cacheHits'), target: '= 8 (no GET)' })
  ratios.push({ name: 'validation 8×10 cold: upstream requests', value: get(v, 'cold', 'upstreamRequests'), target: '= 96' })
  ratios.push({ name: 'validation 8×10 warm: added / registry alone', value: get(v, 'warm', 'addedMs') / get(v, 'registry alone, warm walk', 'ms'), target: '≤ 1.3' })
  ratios.push({ name: 'validation 8×10 cold: added / registry alone', value: get(v, 'cold', 'addedMs') / get(v, 'registry alone, cold walk', 'ms'), target: '≤ 1.3' })
  // For reference.
  for (const size of DOWNLOADS) {
    const w = `download ${size / MiB} MiB`
    ratios.push({ name: `${w}: proxy/node+undici floor`, value: get(w, 'manifest-guard', 'mbps') / get(w, 'node+undici floor', 'mbps'), target: '(reference)' })
  }
  for (const w of ['HEAD blob c=32', 'GET manifest c=32']) ratios.push({ name: `${w}: proxy/node+undici floor req/s`, value: get(w, 'manifest-guard', 'rps') / get(w, 'node+undici floor', 'rps'), target: '(reference)' })
  ratios.push({ name: 'ceiling: proxy CPU µs/request', value: get(ceil, 'manifest-guard', 'cpuUsPerRequest'), target: '(reference)' })
  ratios.push({ name: 'ceiling: proxy req/s', value: get(ceil, 'manifest-guard', 'rps'), target: '(reference)' })

  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`
  const fmt = (v: number): string => (Number.isNaN(v) ? '–' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2))
  const lines = [`manifest-guard benchmark, ${startedAt.toISOString()}, ${machine}, ${ROUNDS} rounds, ${seconds.toFixed(0)} s`, '']
  lines.push('| workload | target | metric | median | min–max |', '| --- | --- | --- | --- | --- |')
  for (const r of rows) lines.push(`| ${r.workload} | ${r.target} | ${r.metric} | ${fmt(r.median)} | ${fmt(r.min)}–${fmt(r.max)} |`)
  lines.push('', '| target | value | wanted |', '| --- | --- | --- |')
  for (const r of ratios) lines.push(`| ${r.name} | ${fmt(r.value)} | ${r.target} |`)
  const text = lines.join('\n')
  process.stdout.write(`${text}\n`)
  // A partial run (BENCH_ONLY) is for looking, not for the record.
  if (process.env['BENCH_ONLY'] !== undefined) return
  const dir = join(process.cwd(), 'test/bench/results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `bench-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify({ startedAt, machine, rounds: ROUNDS, seconds, rows, ratios }, null, 2))
  writeFileSync(join(dir, 'latest.md'), `${text}\n`)
  process.stderr.write(`written: ${file}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})

