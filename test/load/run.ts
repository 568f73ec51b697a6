import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent, request, setGlobalDispatcher } from 'undici'
import { type Blob, type BuiltImage, buildImage, buildIndex, pseudoRandom, blob as makeBlob, MT } from '../helpers/oci-builder.js'
import { spawnProxy } from '../helpers/proxy.js'
import { startRegistry } from '../helpers/registry.js'
import { putManifest } from '../helpers/registry-http.js'

// npm run test:load: WORKERS concurrent clients push multi-platform images through the proxy
// into a real registry for LOAD_SECONDS: valid lists, stale lists, lists naming children
// that were never pushed, and large blobs. Every blob and manifest is read back and hashed;
// every broken list must be rejected and every valid one accepted; the proxy's memory is
// sampled. Prints a summary table; exits 1 on any lost or corrupted byte or unexpected answer.

const WORKERS = Number(process.env['LOAD_WORKERS'] ?? 32)
const SECONDS = Number(process.env['LOAD_SECONDS'] ?? 60)
const LARGE = Number(process.env['LOAD_LARGE_MIB'] ?? 8) << 20
const MiB = 1 << 20

setGlobalDispatcher(new Agent({ connections: WORKERS * 2, headersTimeout: 120_000, bodyTimeout: 120_000 }))

const counts = {
  iterations: 0,
  blobsPushed: 0,
  bytesPushed: 0,
  blobsVerified: 0,
  blobsCorrupt: 0,
  manifestsVerified: 0,
  manifestsCorrupt: 0,
  validLists: 0,
  validAccepted: 0,
  staleLists: 0,
  staleRejected: 0,
  missingLists: 0,
  missingRejected: 0,
  unexpected: 0,
}
const unexpected: string[] = []
const latencies: Record<string, number[]> = { blob: [], manifest: [], 'valid list': [], 'stale list': [], 'missing list': [] }

function fail(what: string): void {
  counts.unexpected++
  if (unexpected.length < 20) unexpected.push(what)
}

async function timed<T>(kind: string, run: () => Promise<T>): Promise<T> {
  const started = performance.now()
  try {
    return await run()
  } finally {
    latencies[kind]?.push(performance.now() - started)
  }
}

async function pushBlobChecked(base: string, repo: string, b: Blob): Promise<void> {
  await timed('blob', async () => {
    const start = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
    await start.body.dump()
    if (start.statusCode !== 202) return fail(`upload start ${repo}: ${start.statusCode}`)
    const location = new URL(String(start.headers['location']), base)
    location.searchParams.set('digest', b.digest)
    const put = await request(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(b.bytes.length) }, body: b.bytes })
    const text = await put.body.text()
    if (put.statusCode !== 201) return fail(`blob PUT ${repo}: ${put.statusCode} ${text.slice(0, 100)}`)
    counts.blobsPushed++
    counts.bytesPushed += b.bytes.length
  })
}

async function pushImageChecked(base: string, repo: string, image: BuiltImage, tag: string): Promise<void> {
  for (const b of [image.config, ...image.layers]) await pushBlobChecked(base, repo, b)
  const res = await timed('manifest', () => putManifest(base, repo, tag, image.manifest))
  const text = await res.text()
  if (res.status !== 201) fail(`manifest ${repo}:${tag}: ${res.status} ${text.slice(0, 100)}`)
}

async function verifyBlob(base: string, repo: string, b: Blob): Promise<void> {
  const res = await request(`${base}/v2/${repo}/blobs/${b.digest}`)
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of res.body) {
    hash.update(chunk as Buffer)
    bytes += (chunk as Buffer).length
  }
  if (res.statusCode !== 200 || `sha256:${hash.digest('hex')}` !== b.digest || bytes !== b.bytes.length) {
    counts.blobsCorrupt++
    fail(`blob ${repo}@${b.digest.slice(0, 19)} read back ${res.statusCode}, ${bytes} bytes`)
  } else counts.blobsVerified++
}

async function verify(base: string, repo: string, images: readonly BuiltImage[]): Promise<void> {
  for (const image of images) {
    for (const b of [image.config, ...image.layers]) await verifyBlob(base, repo, b)
    const m = await request(`${base}/v2/${repo}/manifests/${image.manifest.digest}`, { headers: { accept: [MT.ociManifest, MT.dockerManifest].join(', ') } })
    const body = Buffer.from(await m.body.arrayBuffer())
    if (m.statusCode !== 200 || !body.equals(image.manifest.bytes)) {
      counts.manifestsCorrupt++
      fail(`manifest ${repo}@${image.manifest.digest.slice(0, 19)} read back ${m.statusCode}`)
    } else counts.manifestsVerified++
  }
}

async function worker(base: string, id: number, deadline: number): Promise<void> {
  for (let i = 0; Date.now() < deadline; i++) {
    counts.iterations++
    // Some workers share a repository, so pushes to one repository also race each other.
    const repo = id % 4 === 0 ? 'load/shared' : `load/w${id}`
    const seed = `w${id}-i${i}`
    const large = i % 5 === 4
    const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed, layerCount: 2, layerBytes: 16 << 10 })
    const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed, layerCount: 2, layerBytes: 16 << 10 })
    const tag = `w${id}-${i}`
    await pushImageChecked(base, repo, amd, `${tag}-amd64`)
    await pushImageChecked(base, repo, arm, `${tag}-arm64`)
    if (large) {
      const big = makeBlob(pseudoRandom(`${seed}-large`, LARGE), 'application/octet-stream')
      await pushBlobChecked(base, repo, big)
      await verifyBlob(base, repo, big)
    }

    counts.validLists++
    const valid = await timed('valid list', () => putManifest(base, repo, tag, buildIndex([amd, arm]).manifest))
    const validText = await valid.text()
    if (valid.status === 201) counts.validAccepted++
    else fail(`valid list ${repo}:${tag}: ${valid.status} ${validText.slice(0, 160)}`)

    if (i % 3 === 0) {
      // The amd64 image is rebuilt and re-pushed; a list still naming the old build is stale.
      const rebuilt = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: `${seed}-rebuilt`, layerCount: 2, layerBytes: 16 << 10 })
      await pushImageChecked(base, repo, rebuilt, `${tag}-amd64`)
      counts.staleLists++
      const stale = await timed('stale list', () => putManifest(base, repo, `${tag}-stale`, buildIndex([amd, arm], { format: 'docker' }).manifest))
      const text = await stale.text()
      if (stale.status === 400 && text.includes('stale child')) counts.staleRejected++
      else fail(`stale list ${repo}:${tag}: ${stale.status} ${text.slice(0, 160)}`)
      await verify(base, repo, [rebuilt])
    }
    if (i % 4 === 1) {
      const never = buildImage({ platform: { os: 'linux', architecture: 's390x' }, seed: `${seed}-never` })
      counts.missingLists++
      const res = await timed('missing list', () => putManifest(base, repo, `${tag}-missing`, buildIndex([amd, never]).manifest))
      const text = await res.text()
      if (res.status === 400 && text.includes(never.manifest.digest)) counts.missingRejected++
      else fail(`list with a never-pushed child ${repo}:${tag}: ${res.status} ${text.slice(0, 160)}`)
    }
    await verify(base, repo, [amd, arm])
  }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number)
}

async function main(): Promise<void> {
  const registry = await startRegistry()
  const proxy = await spawnProxy(['--upstream', registry.url, '--log-level', 'warn'])
  let maxRss = 0
  const sampler = setInterval(() => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proxy.child.pid}/status`, 'utf8'))
    maxRss = Math.max(maxRss, Number(m?.[1] ?? 0) * 1024)
  }, 250)
  const started = Date.now()
  try {
    await Promise.all(Array.from({ length: WORKERS }, (_, id) => worker(proxy.url, id, started + SECONDS * 1000)))
  } finally {
    clearInterval(sampler)
  }
  const seconds = (Date.now() - started) / 1000
  const peak = proxy.peakRss()
  await proxy.stop()
  await registry.stop()

  const lines = [
    `manifest-guard load run: ${WORKERS} clients, ${seconds.toFixed(0)} s, ${new Date().toISOString()}`,
    '',
    '| what | count |',
    '| --- | --- |',
    ...Object.entries(counts).map(([k, v]) => `| ${k} | ${k === 'bytesPushed' ? `${(v / MiB).toFixed(0)} MiB` : v} |`),
    `| proxy peak RSS (VmHWM) | ${(peak / MiB).toFixed(0)} MiB |`,
    `| proxy max sampled RSS | ${(maxRss / MiB).toFixed(0)} MiB |`,
    '',
    '| operation | n | p50 ms | p99 ms |',
    '| --- | --- | --- | --- |',
    ...Object.entries(latencies).map(([k, xs]) => `| ${k} | ${xs.length} | ${pct(xs, 50).toFixed(1)} | ${pct(xs, 99).toFixed(1)} |`),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  const ok =
    counts.unexpected === 0 &&
    counts.blobsVerified === counts.blobsPushed &&
    counts.blobsCorrupt === 0 &&
    counts.manifestsCorrupt === 0 &&
    counts.validAccepted === counts.validLists &&
    counts.staleRejected === counts.staleLists &&
    counts.missingRejected === counts.missingLists &&
    peak < 300 * MiB
  if (!ok) {
    process.stdout.write(`\nFAILED:\n${unexpected.map((u) => `  ${u}`).join('\n')}\n`)
    process.exit(1)
  }
  process.stdout.write('\nPASSED: nothing lost or corrupted, every broken list rejected, every valid one accepted.\n')
}

main().catch((err: unknown) => {
  process.stderr.write(`load run failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
