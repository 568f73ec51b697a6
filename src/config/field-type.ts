// Parsers for config values. Each takes what a source gave (a string from a flag or the
// environment, any JSON/YAML value from a file) and returns the typed value or a phrase
// saying what was expected.

export type Parsed<T> = { value: T } | { expected: string }

export interface FieldType<T> {
  /** For the docs: what a value looks like. */
  readonly describe: string
  parse(raw: unknown): Parsed<T>
  /** The JSON Schema of a value as a YAML file holds it (the chart's values.schema.json); none: anything. */
  readonly jsonSchema?: Readonly<Record<string, unknown>>
}

export interface HostPort {
  readonly host: string
  readonly port: number
}

function fromString(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw.trim()
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw)
  return undefined
}

export const text: FieldType<string> = {
  describe: 'string',
  jsonSchema: { type: ['string', 'number', 'boolean'] },
  parse(raw) {
    const s = fromString(raw)
    return s === undefined ? { expected: 'a string' } : { value: s }
  },
}

/** A DNS host name as a Host header carries it (no port, no scheme), kept lower-case. */
export const hostName: FieldType<string> = {
  describe: 'host name',
  parse(raw) {
    const s = fromString(raw)?.trim().toLowerCase()
    if (s === undefined || !/^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?$/.test(s)) {
      return { expected: 'a host name such as guard.registry.svc (no port, no scheme)' }
    }
    return { value: s }
  },
}

/** A string that may be left empty (unset). */
function optionalString(describe: string): FieldType<string | undefined> {
  return {
    describe,
    jsonSchema: { type: ['string', 'number', 'boolean'] },
    parse(raw) {
      const s = fromString(raw)
      if (s === undefined) return { expected: `a ${describe}` }
      return { value: s === '' ? undefined : s }
    },
  }
}

export const optionalText: FieldType<string | undefined> = optionalString('string')
export const optionalPath: FieldType<string | undefined> = optionalString('file path')

export function integer(min: number, max: number): FieldType<number> {
  return {
    describe: `integer ${min}–${max}`,
    jsonSchema: { type: 'integer', minimum: min, maximum: max },
    parse(raw) {
      const s = fromString(raw)
      const n = s !== undefined && /^-?\d+$/.test(s) ? Number(s) : Number.NaN
      if (!Number.isSafeInteger(n) || n < min || n > max) return { expected: `an integer from ${min} to ${max}` }
      return { value: n }
    },
  }
}

export const boolean: FieldType<boolean> = {
  describe: 'true | false',
  jsonSchema: { type: 'boolean' },
  parse(raw) {
    if (typeof raw === 'boolean') return { value: raw }
    const s = fromString(raw)?.toLowerCase()
    if (s === 'true' || s === '1' || s === 'yes') return { value: true }
    if (s === 'false' || s === '0' || s === 'no') return { value: false }
    return { expected: 'true or false' }
  },
}

export function oneOf<const T extends string>(values: readonly T[]): FieldType<T> {
  return {
    describe: values.join(' | '),
    jsonSchema: { enum: [...values] },
    parse(raw) {
      const s = fromString(raw)
      return s !== undefined && (values as readonly string[]).includes(s)
        ? { value: s as T }
        : { expected: `one of ${values.join(', ')}` }
    },
  }
}

const HOST_PORT_PATTERN = '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s/]+):[0-9]{1,5}$'

export const hostPort: FieldType<HostPort> = {
  describe: 'HOST:PORT',
  jsonSchema: { type: 'string', pattern: HOST_PORT_PATTERN },
  parse(raw) {
    const s = fromString(raw)
    const m = s === undefined ? null : /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s/]+)):(\d{1,5})$/.exec(s)
    const port = m === null ? Number.NaN : Number(m[3])
    if (m === null || port > 65535) return { expected: 'HOST:PORT, e.g. 127.0.0.1:5001 or [::1]:5001' }
    return { value: { host: (m[1] ?? m[2]) as string, port } }
  },
}

/** HOST:PORT, or unset when empty. */
export const optionalHostPort: FieldType<HostPort | undefined> = {
  describe: 'HOST:PORT or empty',
  jsonSchema: { type: 'string', pattern: `^$|${HOST_PORT_PATTERN}` },
  parse(raw) {
    const s = fromString(raw)
    if (s === '') return { value: undefined }
    return hostPort.parse(raw)
  },
}

export const httpUrl: FieldType<string> = {
  describe: 'http(s) URL',
  jsonSchema: { type: 'string', pattern: '^https?://[^\\s]+$' },
  parse(raw) {
    const s = fromString(raw)
    let url: URL
    try {
      url = new URL(s ?? '')
    } catch {
      return { expected: 'an http:// or https:// URL' }
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
      return { expected: 'an http:// or https:// URL without credentials' }
    }
    if (url.search !== '' || url.hash !== '') return { expected: 'a URL without query or fragment' }
    return { value: url.origin + url.pathname.replace(/\/+$/, '') }
  },
}

export const optionalHttpUrl: FieldType<string | undefined> = {
  describe: 'http(s) URL, or empty',
  jsonSchema: { type: ['string', 'null'], pattern: '^(https?://[^\\s]+)?$' },
  parse(raw) {
    if (raw === '' || raw === null) return { value: undefined }
    return httpUrl.parse(raw)
  },
}

/** A list: an array in a file, comma-separated from a flag or the environment. */
export function listOf(item: FieldType<string>): FieldType<readonly string[]> {
  return {
    describe: `comma-separated list of ${item.describe}`,
    jsonSchema: { anyOf: [{ type: 'array', items: item.jsonSchema ?? {} }, { type: 'string' }] },
    parse(raw) {
      const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : undefined
      if (items === undefined) return { expected: `a list of ${item.describe}` }
      const out: string[] = []
      for (const entry of items) {
        const parsed = item.parse(entry)
        if ('expected' in parsed) return { expected: `a list whose items are each ${parsed.expected}` }
        out.push(parsed.value)
      }
      return { value: out }
    },
  }
}

/** A platform as docker and buildx write it: `os/arch` or `os/arch/variant`. */
const platformName: FieldType<string> = {
  describe: 'os/arch[/variant]',
  parse(raw) {
    const s = fromString(raw)
    if (s === undefined || !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)?$/.test(s)) return { expected: 'os/arch or os/arch/variant (linux/arm64, linux/arm/v7)' }
    return { value: s }
  },
}

/** A list of platforms (`linux/amd64,linux/arm64`). */
export const platformSpec: FieldType<readonly string[]> = listOf(platformName)
