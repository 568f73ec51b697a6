import { isJsonNumber, isJsonObject, type JsonObject, type JsonValue } from './json-tree.js'

// Reading a JSON object the way Go's encoding/json decodes it into a struct, which is how
// the registry (distribution), containerd, docker and the containers/image tools read every
// manifest:
// - a key fills a field when it equals the field's name, or else equals it under Unicode
//   simple case folding: ASCII letters in either case, and also U+017F "ſ" for s and U+212A
//   "K" (Kelvin) for k. Every field name here is ASCII, so these are the only folds there are.
// - unknown keys are ignored; `null` leaves a field at its zero value (an empty slice or map);
//   a value of the wrong JSON type fails the whole decode (the registry answers 400).
// - when two keys fill the same field Go keeps the last one (and merges objects). A proxy that
//   read the first one would check one list while the registry stores another, so such an
//   object is refused here instead: it is the one strictness that protects the verdict.
// Map fields (annotations) keep their keys exactly, as Go maps do.

export type FieldType =
  | { readonly kind: 'string' }
  | { readonly kind: 'int64' }
  | { readonly kind: 'strings' }
  | { readonly kind: 'map' }
  | { readonly kind: 'struct'; readonly fields: Schema }
  | { readonly kind: 'structs'; readonly fields: Schema }
  /** interface{}: any JSON value; only whether it is non-null is kept. */
  | { readonly kind: 'any' }

export type Schema = Readonly<Record<string, FieldType>>

export const STRING: FieldType = { kind: 'string' }
export const INT64: FieldType = { kind: 'int64' }
export const STRINGS: FieldType = { kind: 'strings' }
export const MAP: FieldType = { kind: 'map' }
export const ANY: FieldType = { kind: 'any' }
export const struct = (fields: Schema): FieldType => ({ kind: 'struct', fields })
export const structs = (fields: Schema): FieldType => ({ kind: 'structs', fields })

/** A decoded struct: only the fields that a non-null value filled are present. */
export interface GoStruct {
  readonly [field: string]: GoValue
}
export type GoValue = string | bigint | readonly string[] | Readonly<Record<string, string>> | GoStruct | readonly GoStruct[] | true

export class GoDecodeProblem extends Error {}

/** Go's folding of a key, for keys compared with ASCII field names. */
export function foldKey(key: string): string {
  let out = ''
  for (const ch of key) {
    if (ch === '\u017f') out += 's'
    else if (ch === '\u212a') out += 'k'
    else out += ch.length === 1 && ch >= 'A' && ch <= 'Z' ? ch.toLowerCase() : ch
  }
  return out
}

/** Decodes `value` into a struct of `schema`, as Go's json.Unmarshal would; throws GoDecodeProblem. */
export function decodeStruct(value: JsonValue, schema: Schema, where: string): GoStruct {
  if (!isJsonObject(value)) throw new GoDecodeProblem(`${where} is not a JSON object`)
  return decodeObject(value, schema, where)
}

function decodeObject(object: JsonObject, schema: Schema, path: string): GoStruct {
  const where = path === '' ? 'the body' : path
  const out: Record<string, GoValue> = {}
  const filledBy = new Map<string, string>()
  for (const [key, value] of object.members) {
    const field = fieldFor(key, schema)
    if (field === undefined) continue
    const earlier = filledBy.get(field)
    if (earlier !== undefined) {
      throw new GoDecodeProblem(
        earlier === key
          ? `${where} has the key "${key}" twice`
          : `${where} has the keys "${earlier}" and "${key}", which the registry reads as the same field "${field}"`,
      )
    }
    filledBy.set(field, key)
    const decoded = decodeField(value, schema[field]!, path === '' ? field : `${path}.${field}`)
    if (decoded !== undefined) out[field] = decoded
  }
  return out
}

function fieldFor(key: string, schema: Schema): string | undefined {
  if (Object.hasOwn(schema, key)) return key
  const folded = foldKey(key)
  for (const name in schema) if (name.toLowerCase() === folded) return name
  return undefined
}

function decodeField(value: JsonValue, type: FieldType, where: string): GoValue | undefined {
  if (value === null) return undefined
  switch (type.kind) {
    case 'string':
      if (typeof value !== 'string') throw wrongType(where, 'a string')
      return value
    case 'int64':
      return int64(value, where)
    case 'strings':
      if (!Array.isArray(value)) throw wrongType(where, 'an array of strings')
      return value.map((v, i) => {
        if (v === null) return ''
        if (typeof v !== 'string') throw wrongType(`${where}[${i}]`, 'a string')
        return v
      })
    case 'map': {
      if (!isJsonObject(value)) throw wrongType(where, 'an object of strings')
      const map: Record<string, string> = Object.create(null) as Record<string, string>
      for (const [k, v] of value.members) {
        if (v !== null && typeof v !== 'string') throw wrongType(`${where}["${k}"]`, 'a string')
        map[k] = v ?? ''
      }
      return map
    }
    case 'struct':
      if (!isJsonObject(value)) throw wrongType(where, 'an object')
      return decodeObject(value, type.fields, where)
    case 'structs':
      if (!Array.isArray(value)) throw wrongType(where, 'an array of objects')
      return value.map((v, i) => {
        if (v === null) return {}
        if (!isJsonObject(v)) throw wrongType(`${where}[${i}]`, 'an object')
        return decodeObject(v, type.fields, `${where}[${i}]`)
      })
    case 'any':
      return true
  }
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

function int64(value: JsonValue, where: string): bigint {
  // Go parses the literal itself: 12.0 and 1e3 are not integers to it.
  if (!isJsonNumber(value) || !/^-?\d+$/.test(value.literal)) throw wrongType(where, 'an integer')
  const n = BigInt(value.literal)
  if (n < INT64_MIN || n > INT64_MAX) throw wrongType(where, 'an integer that fits in 64 bits')
  return n
}

function wrongType(where: string, expected: string): GoDecodeProblem {
  return new GoDecodeProblem(`${where} must be ${expected}`)
}
