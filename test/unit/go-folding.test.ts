import fc from 'fast-check'
import t, { type Test } from 'tap'
import { decodeStruct, type FieldType, GoDecodeProblem, type GoStruct, type GoValue, type Schema } from '../../src/oci/go-struct.js'
import { parseJsonTree } from '../../src/oci/json-tree.js'
import { IMAGE_SCHEMA, INDEX_SCHEMA } from '../../src/oci/manifest.js'
import { goReadings } from '../helpers/go-decoder.js'

// The proxy must read a list exactly as the registry's Go decoder does, or refuse it. Go's
// encoding/json (the real one, Go 1.19 like distribution 2.8.2) decodes generated documents
// full of keys in other cases, with U+017F and U+212A, repeated, null and of the wrong type;
// manifest-guard's reading must equal Go's whenever it reads a document, and it may refuse
// only what Go refuses or what Go reads by keeping the last of two keys.

/** A decoded struct in the shape Go's json.Marshal prints it (no omitempty, nil is null). */
function printed(value: GoValue | undefined, type: FieldType): unknown {
  switch (type.kind) {
    case 'string':
      return value ?? ''
    case 'int64':
      return value === undefined ? 0 : Number(value as bigint)
    case 'strings':
    case 'map':
      return value ?? null
    case 'struct':
      return value === undefined ? null : printStruct(value as GoStruct, type.fields)
    case 'structs':
      return value === undefined ? null : (value as GoStruct[]).map((v) => printStruct(v, type.fields))
    case 'any':
      return value !== undefined
  }
}

function printStruct(s: GoStruct, schema: Schema): Record<string, unknown> {
  return Object.fromEntries(Object.entries(schema).map(([name, type]) => [name, printed(s[name], type)]))
}

type Reading = { ok: unknown } | { refused: string; collision: boolean }

function proxyReading(doc: Buffer, schema: Schema): Reading {
  const tree = parseJsonTree(doc)
  if ('problem' in tree) return { refused: tree.problem, collision: false }
  try {
    return { ok: printStruct(decodeStruct(tree.value, schema, ''), schema) }
  } catch (err) {
    if (!(err instanceof GoDecodeProblem)) throw err
    return { refused: err.message, collision: / twice$|reads as the same field/.test(err.message) }
  }
}

// Keys: every field name as written, in other cases, with ſ for s and K for k, and near misses.
function spellings(name: string): string[] {
  return [name, name.toUpperCase(), name[0]!.toUpperCase() + name.slice(1), name.replaceAll('s', '\u017f'), name.toUpperCase().replaceAll('S', '\u017f'), name.replaceAll('k', '\u212a'), `${name}x`, name.slice(1)]
}
const key = (schema: Schema): fc.Arbitrary<string> => fc.constantFrom(...Object.keys(schema).flatMap(spellings), 'x', 'MediaTypes', '\u212aind')

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.string({ maxLength: 6 }),
  fc.integer({ min: -5, max: 1 << 30 }).map((n) => ({ raw: String(n) })),
  fc.constantFrom({ raw: '1.5' }, { raw: '2e3' }, { raw: '-0' }, { raw: '9223372036854775808' }),
)

/** A JSON value shaped (or misshaped) for `type`, as text. */
function valueFor(type: FieldType, depth: number): fc.Arbitrary<string> {
  const any = scalar.map(text)
  const strings = fc.array(fc.oneof(fc.string({ maxLength: 5 }), fc.constant(null)), { maxLength: 3 }).map((a) => JSON.stringify(a))
  switch (type.kind) {
    case 'string':
      return fc.oneof(fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)), any)
    case 'int64':
      return fc.oneof(fc.integer({ min: 0, max: 1 << 30 }).map(String), any)
    case 'strings':
      return fc.oneof(strings, any)
    case 'map':
      return fc.oneof(fc.array(fc.tuple(fc.constantFrom('a', 'A', 'b'), fc.oneof(fc.string({ maxLength: 4 }).map((s) => JSON.stringify(s)), fc.constant('null'), fc.constant('1'))), { maxLength: 3 }).map(members), any)
    case 'struct':
      return depth > 2 ? any : fc.oneof({ weight: 3, arbitrary: objectFor(type.fields, depth + 1) }, { weight: 1, arbitrary: any })
    case 'structs':
      return depth > 2 ? any : fc.oneof({ weight: 3, arbitrary: fc.array(fc.oneof(objectFor(type.fields, depth + 1), fc.constant('null')), { maxLength: 3 }).map((a) => `[${a.join(',')}]`) }, { weight: 1, arbitrary: any })
    case 'any':
      return fc.oneof(any, fc.constant('{"x":1}'), fc.constant('[]'))
  }
}

function objectFor(schema: Schema, depth: number): fc.Arbitrary<string> {
  return fc
    .array(key(schema), { maxLength: 6 })
    .chain((keys) => fc.tuple(...keys.map((k) => valueFor(typeOfKey(schema, k), depth).map((v) => [k, v] as [string, string]))))
    .map(members)
}

/** The field a key fills (by Go's folding), or an unknown key's type (anything). */
function typeOfKey(schema: Schema, key: string): FieldType {
  const folded = key.toLowerCase().replaceAll('\u017f', 's').replaceAll('\u212a', 'k')
  const name = Object.keys(schema).find((n) => n.toLowerCase() === folded)
  return name === undefined ? { kind: 'any' } : schema[name]!
}

function members(pairs: readonly (readonly [string, string])[]): string {
  return `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`
}

function text(v: unknown): string {
  return typeof v === 'object' && v !== null && 'raw' in v ? (v as { raw: string }).raw : JSON.stringify(v)
}

function compare(t: Test, documents: readonly Buffer[], schema: Schema, kind: 'index' | 'image'): void {
  const go = goReadings(documents, kind)
  let agreed = 0
  let collisions = 0
  let bothRefused = 0
  for (const [i, doc] of documents.entries()) {
    const ours = proxyReading(doc, schema)
    const theirs = go[i]!
    const where = `${kind} ${i}: ${doc.toString()}`
    if ('ok' in ours) {
      if (!('ok' in theirs)) {
        t.fail(`${where}: manifest-guard reads it, Go refuses it (${theirs.error})`)
        continue
      }
      t.same(ours.ok, theirs.ok, `${where}: same reading`)
      agreed++
    } else if (ours.collision) {
      collisions++
    } else {
      if ('ok' in theirs) t.fail(`${where}: manifest-guard refuses it (${ours.refused}), Go reads it`)
      else bothRefused++
    }
  }
  t.ok(agreed > 100, `${agreed} documents read alike`)
  t.ok(collisions > 50, `${collisions} documents with colliding keys refused`)
  t.ok(bothRefused > 50, `${bothRefused} documents both refuse`)
}

t.test('manifest-guard reads every generated list as Go does, or refuses what Go reads by a last-key-wins', async (t) => {
  const documents = fc.sample(objectFor(INDEX_SCHEMA, 0), { numRuns: 600, seed: 20261127 }).map((s) => Buffer.from(s))
  // Hand-written ones the generator might miss: the attack shapes of the issue.
  const good = '{"mediaType":"m","digest":"sha256:a","size":1}'
  documents.push(
    Buffer.from(`{"manifests":[${good}],"manife\u017fts":[${good},{"digest":"sha256:b"}]}`),
    Buffer.from(`{"manifests":[{"digest":"sha256:a","dige\u017ft":"sha256:b","size":1}]}`),
    Buffer.from(`{"MANIFESTS":[{"DIGEST":"sha256:a","\u017fIZE":2,"PLATFORM":{"O\u017f":"linux","ARCHITECTURE":"amd64"}}]}`),
    Buffer.from('{"manifests":null,"layers":null,"config":{}}'),
  )
  compare(t, documents, INDEX_SCHEMA, 'index')
})

t.test('manifest-guard reads every generated child manifest as Go does, or refuses it', async (t) => {
  const documents = fc.sample(objectFor(IMAGE_SCHEMA, 0), { numRuns: 600, seed: 20261128 }).map((s) => Buffer.from(s))
  const layer = '{"mediaType":"l","digest":"sha256:a","size":1}'
  documents.push(
    Buffer.from(`{"config":${layer},"layers":[${layer}],"layer\u017f":[${layer},{"digest":"sha256:gone"}]}`),
    Buffer.from(`{"Config":${layer},"CONFIG":{"digest":"sha256:b"}}`),
    Buffer.from('{"config":{"digest":"sha256:a"},"layers":null}'),
  )
  compare(t, documents, IMAGE_SCHEMA, 'image')
})
