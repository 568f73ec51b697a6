import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fromRoot } from './root.js'
import { requireTool } from './tools.js'

// The registry's own reading of a body: test/go/decode-index decodes documents with Go's
// encoding/json into the structs the registry and the Go clients use. Built once per run.

const SOURCE = fromRoot('test/go/decode-index')

export type GoReading = { readonly ok: unknown } | { readonly error: string }

let binary: string | undefined

function build(): string {
  if (binary !== undefined) return binary
  requireTool('go', 'apt-get install -y golang-go (Go 1.19, the version distribution 2.8 is built with)')
  const out = join(mkdtempSync(join(tmpdir(), 'mg-go-')), 'decode-index')
  const r = spawnSync('go', ['build', '-o', out, '.'], { cwd: SOURCE, encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' } })
  if (r.status !== 0) throw new Error(`go build of ${SOURCE} failed: ${r.stderr}`)
  binary = out
  return out
}

/** Decodes each document with Go, as an index or an image manifest; one reading per document, in order. */
export function goReadings(documents: readonly Buffer[], kind: 'index' | 'image' = 'index'): GoReading[] {
  const r = spawnSync(build(), [], { input: documents.map((d) => `${kind} ${d.toString('base64')}`).join('\n') + '\n', encoding: 'utf8', maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`decode-index failed: ${r.stderr}`)
  return r.stdout.trim().split('\n').map((line) => JSON.parse(line) as GoReading)
}
