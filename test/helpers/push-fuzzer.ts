import { blob, buildImage, buildIndex, type BuiltImage, type BuiltIndex, MT } from './oci-builder.js'
import { rawRequest } from './raw-http.js'
import { json } from './real-world.js'
import { getManifest, pushBlob, pushImage, putManifest } from './registry-http.js'
import { prng } from './prng.js'

// A differential fuzzer with the registry as the oracle. Both registries are seeded with the
// same content (sound images, images that lost a layer, a nested index, blobs of a BuildKit
// cache); then each generated manifest PUT goes straight to one registry and through the proxy
// to the other. Whatever the registry stores while a child or blob is missing, the proxy must
// have refused; whatever it stores sound, the proxy must have passed, with the same digest.
// Seeded and reproducible: the same seed gives the same cases.

export const REPO = 'fuzz/app'

/** Something an entry can name, and whether everything it needs is in the repository. */
interface Target {
  readonly name: string
  readonly digest: string
  readonly size: number
  /** The media type the registry states for it (a blob's own for blobs). */
  readonly mediaType: string
  readonly kind: 'manifest' | 'blob'
  readonly sound: boolean
  readonly platform?: { os: string; architecture: string }
}

export interface Pool {
  readonly targets: readonly Target[]
}

const platforms = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64' },
  { os: 'linux', architecture: 's390x' },
  { os: 'windows', architecture: 'amd64' },
]

function imageTarget(name: string, image: BuiltImage, sound: boolean): Target {
  return { name, digest: image.manifest.digest, size: image.manifest.bytes.length, mediaType: image.manifest.mediaType, kind: 'manifest', sound, platform: { ...image.platform } }
}

function indexTarget(name: string, index: BuiltIndex, sound: boolean): Target {
  return { name, digest: index.manifest.digest, size: index.manifest.bytes.length, mediaType: index.manifest.mediaType, kind: 'manifest', sound }
}

/** The content both registries hold before the first case, pushed straight to `base`. */
export async function seedRegistry(base: string): Promise<Pool> {
  const targets: Target[] = []
  const sound = platforms.map((p, i) => buildImage({ platform: p, seed: `fuzz-sound-${i}`, format: i === 3 ? 'docker' : 'oci', layerCount: 2 }))
  for (const [i, image] of sound.entries()) {
    await pushImage(base, REPO, image)
    targets.push(imageTarget(`sound${i}`, image, true))
  }
  // An image manifest without a mediaType field: only the Content-Type it was pushed with said what it is.
  const bare = buildImage({ platform: platforms[0]!, seed: 'fuzz-bare' })
  for (const b of [bare.config, ...bare.layers]) await pushBlob(base, REPO, b)
  const bareDoc = JSON.parse(bare.manifest.bytes.toString()) as Record<string, unknown>
  delete bareDoc['mediaType']
  const bareManifest = json(bareDoc, MT.ociManifest)
  await expectStatus(await putManifest(base, REPO, bareManifest.digest, bareManifest), 201, 'bare manifest')
  targets.push({ name: 'bare', digest: bareManifest.digest, size: bareManifest.bytes.length, mediaType: MT.ociManifest, kind: 'manifest', sound: true, platform: { ...platforms[0]! } })

  // Images that lost a layer since (GC, retention, an admin's DELETE).
  const broken = platforms.slice(0, 2).map((p, i) => buildImage({ platform: p, seed: `fuzz-broken-${i}`, layerCount: 2 }))
  for (const [i, image] of broken.entries()) {
    await pushImage(base, REPO, image)
    await expectStatus(await fetch(`${base}/v2/${REPO}/blobs/${image.layers[i]!.digest}`, { method: 'DELETE' }), 202, 'layer delete')
    targets.push(imageTarget(`broken${i}`, image, false))
  }
  // Never pushed.
  for (const i of [0, 1]) targets.push(imageTarget(`absent${i}`, buildImage({ platform: platforms[i]!, seed: `fuzz-absent-${i}` }), false))

  // Nested indexes: a sound one, a Docker list, and one naming a broken image (the registry takes it).
  const nestedSound = buildIndex([sound[0]!, sound[1]!])
  const nestedDocker = buildIndex([sound[3]!], { format: 'docker' })
  const nestedBroken = buildIndex([sound[0]!, broken[1]!])
  for (const [name, index, ok] of [['nested-sound', nestedSound, true], ['nested-docker', nestedDocker, true], ['nested-broken', nestedBroken, false]] as const) {
    await expectStatus(await putManifest(base, REPO, index.manifest.digest, index.manifest), 201, name)
    targets.push(indexTarget(name, index, ok))
  }
  // A BuildKit cache's blobs, and a blob that is not there.
  const cacheConfig = blob(Buffer.from('{"layers":[],"records":[]}'), 'application/vnd.buildkit.cacheconfig.v0')
  await pushBlob(base, REPO, cacheConfig)
  targets.push({ name: 'cacheconfig', digest: cacheConfig.digest, size: cacheConfig.bytes.length, mediaType: cacheConfig.mediaType, kind: 'blob', sound: true })
  const layer = sound[2]!.layers[0]!
  targets.push({ name: 'layer', digest: layer.digest, size: layer.bytes.length, mediaType: layer.mediaType, kind: 'blob', sound: true })
  const gone = blob(Buffer.from('a blob nobody pushed'), MT.ociLayer)
  targets.push({ name: 'no-blob', digest: gone.digest, size: gone.bytes.length, mediaType: gone.mediaType, kind: 'blob', sound: false })
  return { targets }
}

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  const body = await res.text()
  if (res.status !== status) throw new Error(`seeding ${what}: ${res.status} ${body}`)
}

/** Why the proxy may refuse a list the registry stores sound (its documented refusals). */
type ByDesign = 'odd-content-type' | 'ambiguous-keys' | 'mislabelled'

export interface FuzzCase {
  readonly index: number
  /** Header bytes as latin1 (what goes on the wire), undefined for no header. */
  readonly contentType: string | undefined
  readonly body: Buffer
  /** Every entry's target, recursively, is in the repository with all it needs. */
  readonly sound: boolean
  readonly byDesign: ByDesign | undefined
  readonly summary: string
}

const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

const LIST_TYPES = [MT.ociIndex, MT.dockerList] as const

/** Content-Type spellings of a list type: plain, as Go reads it (ASCII), and Go-folded (non-ASCII). */
function contentTypeFor(random: () => number, bodyType: string): { value: string | undefined; odd: boolean } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  const type = bodyType === '' ? pick(LIST_TYPES) : bodyType
  const roll = random()
  if (roll < 0.35) return { value: type, odd: false }
  if (roll < 0.6) return { value: pick([type.toUpperCase(), `${type}; charset=utf-8`, `\t${type} ;`, ` ${type};a="b;c"`, `${type.slice(0, 12).toUpperCase()}${type.slice(12)}`]), odd: false }
  if (roll < 0.8) {
    const folded = pick([
      type.replace('i', '\u0130'),
      type.replace(/k/g, '\u212a'),
      `${type}\u00a0`,
      `${type}\u3000`,
      `\u0085${type}`,
      `${type}\u2003`,
      type.toUpperCase().replace(/K/g, '\u212a'),
    ])
    const value = utf8(folded)
    return { value, odd: /[^\t\x20-\x7e]/.test(value) }
  }
  // Not a list to the registry: image types, generic, none, unparseable.
  return { value: pick([MT.ociManifest, MT.dockerManifest, 'application/json', undefined, '', 'text/plain', `${type}; charset`, `${type} x`, `${type};;`]), odd: false }
}

/** A key spelled as the client chooses: Go matches it case-insensitively, ſ and K folded. */
function spell(random: () => number, key: string): string {
  const roll = random()
  if (roll < 0.6) return key
  if (roll < 0.7) return key.toUpperCase()
  if (roll < 0.8) return key[0]!.toUpperCase() + key.slice(1)
  // A JSON escape: the same key to every reader.
  if (roll < 0.9) return `\\u${key.charCodeAt(0).toString(16).padStart(4, '0')}${key.slice(1)}`
  if (key.includes('s')) return key.replace('s', '\u017f')
  if (key.includes('k')) return key.replace('k', '\u212a')
  return key
}

interface Entry {
  readonly target: Target
  readonly mediaType: string
  readonly size: number
  readonly platform?: { os: string; architecture: string }
}

function renderEntry(random: () => number, e: Entry): string {
  const fields = [`"${spell(random, 'mediaType')}":${JSON.stringify(e.mediaType)}`, `"${spell(random, 'digest')}":"${e.target.digest}"`, `"${spell(random, 'size')}":${e.size}`]
  if (e.platform !== undefined) fields.push(`"${spell(random, 'platform')}":${JSON.stringify(e.platform)}`)
  if (e.mediaType === '') fields.shift()
  return `{${fields.join(',')}}`
}

/** One manifest PUT: a list of entries drawn from the pool, labelled, spelled and typed at random. */
export function generateCase(random: () => number, pool: Pool, index: number): FuzzCase {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  const entries: Entry[] = []
  let mislabelled = false
  const count = 1 + Math.floor(random() * 4)
  for (let i = 0; i < count; i++) {
    const target = pick(pool.targets)
    let mediaType = target.mediaType
    let size = target.size
    const roll = random()
    if (roll < 0.1) mediaType = ''
    else if (roll < 0.3) {
      mediaType = pick(['x', MT.ociLayer, 'application/vnd.oci.image.manifest.v1+JSON', MT.ociManifest, MT.dockerManifest, MT.ociIndex, MT.dockerList, MT.ociNondistributable])
      // An entry that says it is something else than what the registry holds is mislabelled
      // (refused by design); a blob may carry any non-manifest type (BuildKit caches do).
      const manifestTypes: readonly string[] = [MT.ociManifest, MT.dockerManifest, MT.ociIndex, MT.dockerList]
      if (target.kind === 'manifest' ? mediaType !== target.mediaType : manifestTypes.includes(mediaType)) mislabelled = true
    }
    if (random() < 0.05) {
      size += 1
      mislabelled = true
    }
    const platform = target.platform !== undefined && random() < 0.8 ? target.platform : undefined
    const entry: Entry = platform === undefined ? { target, mediaType, size } : { target, mediaType, size, platform }
    entries.push(entry)
    // Duplicate members: the same entry again.
    if (random() < 0.1) entries.push(entry)
  }
  const bodyType = pick([MT.ociIndex, MT.ociIndex, MT.dockerList, ''])
  const head = bodyType === '' ? [] : [`"${spell(random, 'mediaType')}":"${bodyType}"`]
  const manifestsKey = spell(random, 'manifests')
  const rendered = `[${entries.map((e) => renderEntry(random, e)).join(',')}]`
  let ambiguous = false
  let fields = [`"schemaVersion":2`, ...head, `"${manifestsKey}":${rendered}`]
  if (random() < 0.08) {
    // A decoy array under a folded spelling, before the one Go keeps (the last).
    ambiguous = true
    const decoy = pool.targets.find((t) => t.name === 'sound0')!
    fields = [`"schemaVersion":2`, ...head, `"MANIFESTS":[{"mediaType":"${decoy.mediaType}","digest":"${decoy.digest}","size":${decoy.size}}]`, `"${manifestsKey}":${rendered}`]
  }
  const body = Buffer.from(`{${fields.join(',')}}`)
  const ct = contentTypeFor(random, bodyType)
  const sound = entries.every((e) => e.target.sound || (e.target.kind === 'blob' && e.mediaType === MT.ociNondistributable && !e.target.sound))
  const byDesign: ByDesign | undefined = ct.odd ? 'odd-content-type' : ambiguous ? 'ambiguous-keys' : mislabelled ? 'mislabelled' : undefined
  const summary = `#${index} ct=${JSON.stringify(ct.value)} entries=[${entries.map((e) => `${e.target.name}:${e.mediaType || '-'}${e.size === e.target.size ? '' : ':size+1'}`).join(' ')}] sound=${sound}${byDesign === undefined ? '' : ` ${byDesign}`}`
  return { index, contentType: ct.value, body, sound, byDesign, summary }
}

export interface CaseOutcome {
  readonly fuzzCase: FuzzCase
  readonly direct: { status: number; digest: string | undefined }
  readonly proxied: { status: number; digest: string | undefined; held: string | undefined; code: string | undefined }
  /** Why the outcome breaks the promise, or undefined. */
  readonly violation: string | undefined
}

function codeOf(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString()) as { errors?: { code?: string }[] }).errors?.[0]?.code
  } catch {
    return undefined
  }
}

/** Sends one case straight to `direct` and through `proxy` (in front of `proxied`), and judges it. */
export async function runCase(c: FuzzCase, direct: string, proxy: string, proxied: string): Promise<CaseOutcome> {
  const tag = `c${c.index}`
  const headers: Record<string, string> = c.contentType === undefined ? {} : { 'content-type': c.contentType }
  const d = await rawRequest(direct, 'PUT', `/v2/${REPO}/manifests/${tag}`, headers, c.body)
  const p = await rawRequest(proxy, 'PUT', `/v2/${REPO}/manifests/${tag}`, headers, c.body)
  const held = await getManifest(proxied, REPO, tag)
  const dDigest = d.status === 201 ? String(d.headers['docker-content-digest']) : undefined
  const outcome = {
    direct: { status: d.status, digest: dDigest },
    proxied: { status: p.status, digest: p.status === 201 ? String(p.headers['docker-content-digest']) : undefined, held: held.status === 200 ? (held.digest ?? undefined) : undefined, code: codeOf(p.body) },
  }
  let violation: string | undefined
  if (d.status === 201 && !c.sound && outcome.proxied.held !== undefined) violation = 'the registry stored it broken, and so it did through the proxy'
  else if (d.status === 201 && c.sound && c.byDesign === undefined && (p.status !== 201 || outcome.proxied.held !== dDigest)) violation = `the registry stored it sound, the proxy answered ${p.status} ${outcome.proxied.code ?? ''}`
  else if (d.status !== 201 && outcome.proxied.held !== undefined) violation = `the registry refused it (${d.status}) but it was stored through the proxy`
  else if (c.byDesign === 'odd-content-type' && (p.status !== 400 || outcome.proxied.code !== 'MANIFEST_INVALID')) violation = `an odd Content-Type was answered ${p.status} ${outcome.proxied.code ?? ''}`
  else if (d.status >= 400 && d.status < 500 && !(p.status >= 400 && p.status < 500)) violation = `the registry answered ${d.status}, the proxy ${p.status}`
  return { fuzzCase: c, ...outcome, violation }
}

export interface FuzzReport {
  readonly seed: number
  readonly cases: number
  readonly storedDirect: number
  readonly storedBroken: number
  readonly storedSound: number
  readonly proxiedStored: number
  readonly violations: readonly CaseOutcome[]
  readonly ms: number
}

/** Seeds nothing itself: `pool` must describe what both registries already hold. */
export async function fuzz(options: { seed: number; cases: number; pool: Pool; direct: string; proxy: string; proxied: string; onCase?: (o: CaseOutcome) => void }): Promise<FuzzReport> {
  const started = performance.now()
  const random = prng(options.seed)
  const violations: CaseOutcome[] = []
  let storedDirect = 0
  let storedBroken = 0
  let storedSound = 0
  let proxiedStored = 0
  for (let i = 0; i < options.cases; i++) {
    const c = generateCase(random, options.pool, i)
    const o = await runCase(c, options.direct, options.proxy, options.proxied)
    options.onCase?.(o)
    if (o.direct.status === 201) {
      storedDirect++
      if (c.sound) storedSound++
      else storedBroken++
    }
    if (o.proxied.held !== undefined) proxiedStored++
    if (o.violation !== undefined) violations.push(o)
  }
  return { seed: options.seed, cases: options.cases, storedDirect, storedBroken, storedSound, proxiedStored, violations, ms: performance.now() - started }
}
