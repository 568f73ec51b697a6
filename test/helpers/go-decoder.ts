import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromRoot } from './root.js'
import { requireTool } from './tools.js'

// The registry's own reading of a body and of a Content-Type: test/go/decode-index decodes
// documents with Go's encoding/json into the structs the registry and the Go clients use;
// test/go/parse-media-type reads header values with Go's mime.ParseMediaType. Built once per run.

const sourceOf = (program: string): string => fromRoot(`test/go/${program}`)

export type GoReading = { readonly ok: unknown } | { readonly error: string }

const binaries = new Map<string, string>()

/** Builds (once) and returns the path of the Go program test/go/<program>. */
export function goProgram(program: string): string {
  const known = binaries.get(program)
  if (known !== undefined) return known
  requireTool('go', 'apt-get install -y golang-go (Go 1.19, the version distribution 2.8 is built with)')
  const source = sourceOf(program)
  const out = join(mkdtempSync(join(tmpdir(), 'mg-go-')), program)
  const r = spawnSync('go', ['build', '-o', out, '.'], { cwd: source, encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' } })
  if (r.status !== 0) throw new Error(`go build of ${source} failed: ${r.stderr}`)
  binaries.set(program, out)
  return out
}

const build = (): string => goProgram('decode-index')

/** Decodes each document with Go, as an index or an image manifest; one reading per document, in order. */
export function goReadings(documents: readonly Buffer[], kind: 'index' | 'image' = 'index'): GoReading[] {
  const r = spawnSync(build(), [], { input: documents.map((d) => `${kind} ${d.toString('base64')}`).join('\n') + '\n', encoding: 'utf8', maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`decode-index failed: ${r.stderr}`)
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line) as GoReading)
}

/** Go's mime.ParseMediaType of each value (bytes as latin1 strings, as Node hands headers over). */
export interface GoMediaType {
  readonly mediaType: string
  readonly params: readonly (readonly [string, string])[]
  readonly error?: string
}

export function goMediaTypes(values: readonly string[]): GoMediaType[] {
  const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex')
  const unhex = (h: string): string => Buffer.from(h, 'hex').toString('latin1')
  const r = spawnSync(goProgram('parse-media-type'), [], { input: values.map(hex).join('\n') + '\n', encoding: 'utf8', maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`parse-media-type failed: ${r.stderr}`)
  return r.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const g = JSON.parse(line) as { mediaType: string; params: [string, string][]; error?: string }
      return { mediaType: unhex(g.mediaType), params: g.params.map(([k, v]) => [unhex(k), unhex(v)] as const), ...(g.error === undefined ? {} : { error: g.error }) }
    })
}

/** test/go/unicode-tables's output: what src/oci/go-unicode-tables.ts must hold. */
export function goUnicodeTables(): string {
  const r = spawnSync(goProgram('unicode-tables'), [], { encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`unicode-tables failed: ${r.stderr}`)
  return r.stdout
}
