// JSON parsed into a tree that keeps every object member in order, duplicates included.
// JSON.parse silently keeps the last of two equal keys and cannot tell "manifests" from
// "manifeſts" apart from the value it drops; the registry's Go decoder reads both (see
// go-struct.ts), so the proxy must see every member to read a body the way the registry does.
//
// The grammar is RFC 8259, as strict as Go's encoding/json: no BOM, no trailing data, no raw
// control characters in strings. Invalid UTF-8 inside strings is read as U+FFFD, as Go does.

export type JsonValue = null | boolean | JsonNumber | string | JsonValue[] | JsonObject

/** A number as written: Go decides by the literal (`12`, `12.0` and `1.2e1` are not alike). */
export interface JsonNumber {
  readonly kind: 'number'
  readonly literal: string
}

export interface JsonObject {
  readonly kind: 'object'
  /** Members in document order; a key may appear more than once. */
  readonly members: readonly (readonly [string, JsonValue])[]
}

/** Go's encoding/json refuses deeper nesting (maxNestingDepth). */
export const MAX_JSON_DEPTH = 10_000

// Not fatal: Go replaces invalid bytes in strings; outside strings U+FFFD is a syntax error
// below. ignoreBOM keeps a leading BOM, which Go (and so the registry) refuses.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true })
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
/** The run of a string's characters that need no attention. */
const PLAIN = /[^"\\\x00-\x1f]*/y

export type JsonTreeResult = { readonly value: JsonValue } | { readonly problem: string }

export function parseJsonTree(raw: Uint8Array): JsonTreeResult {
  const text = utf8.decode(raw)
  const parser = new Parser(text)
  try {
    parser.skipSpace()
    const value = parser.value()
    parser.skipSpace()
    if (parser.pos !== text.length) parser.fail('unexpected data after the JSON value')
    return { value }
  } catch (err) {
    if (err instanceof SyntaxProblem) return { problem: `body is not valid JSON (${err.message})` }
    throw err
  }
}

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && v.kind === 'object'
}

export function isJsonNumber(v: JsonValue | undefined): v is JsonNumber {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && v.kind === 'number'
}

class SyntaxProblem extends Error {}

type Container = { readonly array: JsonValue[] } | { readonly members: [string, JsonValue][]; key: string }

// Iterative, with an explicit stack: Go accepts 10 000 levels, more than JS recursion allows.
class Parser {
  pos = 0
  readonly #text: string

  constructor(text: string) {
    this.#text = text
  }

  fail(what: string): never {
    throw new SyntaxProblem(`${what} at offset ${this.pos}`)
  }

  skipSpace(): void {
    const t = this.#text
    let i = this.pos
    for (; i < t.length; i++) {
      const c = t.charCodeAt(i)
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
    }
    this.pos = i
  }

  value(): JsonValue {
    const t = this.#text
    const stack: Container[] = []
    for (;;) {
      // Read one value; a container opens and the loop reads its first member.
      let value: JsonValue
      const c = t.charCodeAt(this.pos)
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length + 1 > MAX_JSON_DEPTH) this.fail(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`)
        this.pos++
        this.skipSpace()
        const closing = c === 0x7b ? 0x7d : 0x5d
        if (t.charCodeAt(this.pos) === closing) {
          this.pos++
          value = c === 0x7b ? { kind: 'object', members: [] } : []
        } else {
          stack.push(c === 0x7b ? { members: [], key: this.#key() } : { array: [] })
          continue
        }
      } else if (c === 0x22 /* " */) value = this.#string()
      else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) value = this.#number()
      else if (t.startsWith('true', this.pos)) value = this.#literal(4, true)
      else if (t.startsWith('false', this.pos)) value = this.#literal(5, false)
      else if (t.startsWith('null', this.pos)) value = this.#literal(4, null)
      else return this.fail(this.pos >= t.length ? 'unexpected end of input' : 'unexpected character')

      // Place it, and close every container that ends after it.
      for (;;) {
        const top = stack[stack.length - 1]
        if (top === undefined) return value
        if ('array' in top) top.array.push(value)
        else top.members.push([top.key, value])
        this.skipSpace()
        const next = t.charCodeAt(this.pos)
        const closing = 'array' in top ? 0x5d : 0x7d
        if (next === 0x2c /* , */) {
          this.pos++
          this.skipSpace()
          if (!('array' in top)) top.key = this.#key()
          break
        }
        if (next !== closing) this.fail(`expected ',' or '${'array' in top ? ']' : '}'}'`)
        this.pos++
        stack.pop()
        value = 'array' in top ? top.array : { kind: 'object', members: top.members }
      }
    }
  }

  /** A member's key and its colon, leaving the position at the value. */
  #key(): string {
    if (this.#text.charCodeAt(this.pos) !== 0x22) this.fail('expected a string key')
    const key = this.#string()
    this.skipSpace()
    if (this.#text.charCodeAt(this.pos) !== 0x3a /* : */) this.fail("expected ':'")
    this.pos++
    this.skipSpace()
    return key
  }

  #literal<T>(length: number, value: T): T {
    this.pos += length
    return value
  }

  #string(): string {
    const t = this.#text
    const start = this.pos
    let i = start + 1
    for (;;) {
      PLAIN.lastIndex = i
      PLAIN.test(t)
      i = PLAIN.lastIndex
      const c = t.charCodeAt(i)
      if (c === 0x22 /* " */) break
      if (c === 0x5c /* \ */) {
        i += 2
        continue
      }
      this.pos = i
      return this.fail(i >= t.length ? 'unterminated string' : 'control character in a string')
    }
    this.pos = i + 1
    const literal = t.slice(start, i + 1)
    if (!literal.includes('\\')) return literal.slice(1, -1)
    try {
      // Escapes are JSON's own; JSON.parse of the literal decodes them exactly.
      return JSON.parse(literal) as string
    } catch {
      this.pos = start
      return this.fail('invalid escape in a string')
    }
  }

  #number(): JsonNumber {
    NUMBER.lastIndex = this.pos
    const m = NUMBER.exec(this.#text)
    if (m === null) return this.fail('invalid number')
    this.pos += m[0].length
    return { kind: 'number', literal: m[0] }
  }
}
