// JSON as the registry will read it. JSON.parse keeps the last of duplicate keys, and Go's
// encoding/json (distribution) also matches keys case-insensitively ("Manifests" fills
// Manifests). A body with such keys could show the proxy one list and the registry another,
// so those bodies are refused before anything is validated.

export const MAX_JSON_DEPTH = 64

const utf8 = new TextDecoder('utf-8', { fatal: true })

export type StrictJsonResult = { value: unknown } | { problem: string }

/** Decodes UTF-8 strictly and parses JSON, refusing duplicate keys and deep nesting. */
export function parseStrictJson(raw: Uint8Array): StrictJsonResult {
  let text: string
  try {
    text = utf8.decode(raw)
  } catch {
    return { problem: 'body is not valid UTF-8' }
  }
  // Scan first: it bounds the depth before JSON.parse recurses, and it only needs to
  // understand valid JSON because anything else fails JSON.parse below.
  const structural = findStructuralProblem(text)
  if (structural?.startsWith('JSON nested')) return { problem: structural }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    return { problem: `body is not valid JSON (${(err as Error).message})` }
  }
  if (structural !== undefined) return { problem: structural }
  return { value }
}

interface Frame {
  readonly isObject: boolean
  readonly keys: Set<string> | undefined
  readonly folded: Set<string> | undefined
  // Annotation and label maps keep their keys as written (Go maps are case-sensitive).
  readonly caseSensitive: boolean
  expectKey: boolean
}

function findStructuralProblem(text: string): string | undefined {
  const stack: Frame[] = []
  let pendingKey: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      const end = endOfString(text, i)
      if (end === -1) return undefined // JSON.parse reports it
      const top = stack[stack.length - 1]
      if (top !== undefined && top.isObject && top.expectKey) {
        const literal = text.slice(i, end + 1)
        const key = literal.includes('\\') ? safeParseString(literal) : literal.slice(1, -1)
        if (key === undefined) return undefined
        if (top.keys!.has(key)) return `duplicate key "${key}" in a JSON object`
        top.keys!.add(key)
        if (!top.caseSensitive) {
          const fold = key.toLowerCase()
          if (top.folded!.has(fold)) return `keys differing only in case ("${key}") in a JSON object`
          top.folded!.add(fold)
        }
        top.expectKey = false
        pendingKey = key
      }
      i = end
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) return `JSON nested deeper than ${MAX_JSON_DEPTH} levels`
      const parent = stack[stack.length - 1]
      const isObject = c === 0x7b
      const caseSensitive = parent !== undefined && parent.isObject && (pendingKey === 'annotations' || pendingKey === 'Labels')
      stack.push({
        isObject,
        keys: isObject ? new Set() : undefined,
        folded: isObject ? new Set() : undefined,
        caseSensitive,
        expectKey: isObject,
      })
      pendingKey = undefined
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop()
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1]
      if (top !== undefined && top.isObject) top.expectKey = true
    }
  }
  return undefined
}

function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x5c /* \ */) i++
    else if (c === 0x22) return i
  }
  return -1
}

function safeParseString(literal: string): string | undefined {
  try {
    return JSON.parse(literal) as string
  } catch {
    return undefined
  }
}
