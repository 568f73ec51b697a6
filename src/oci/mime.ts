import { GO_LOWER_RUNS, GO_SPACES } from './go-unicode-tables.js'

// Go 1.19's mime.ParseMediaType, ported line for line, because that is how the registry
// (distribution 2.8.2) reads a manifest PUT's Content-Type to pick its handler. It lower-cases
// with unicode.ToLower and trims with unicode.IsSpace, so `applİcation/…` (U+0130) or a type
// followed by U+00A0 reads as a plain manifest-list type there, while JavaScript's
// toLowerCase/trim read something else. Strings here are Go strings: bytes, one per char code
// (0-255), exactly as Node hands over a header value (latin1); UTF-8 is decoded the way Go's
// unicode/utf8 does (each invalid byte is one U+FFFD).

export type GoMediaTypeReading =
  | { readonly mediaType: string; readonly params: Readonly<Record<string, string>> }
  /** Go returns the media type with ErrInvalidMediaParameter, and '' with the other errors. */
  | { readonly mediaType: string; readonly error: string }

const RUNE_ERROR = 0xfffd
const SPACES: ReadonlySet<number> = new Set(GO_SPACES)

/** utf8.DecodeRuneInString(s[i:]): the rune and its width in bytes. */
export function decodeRune(s: string, i: number): [number, number] {
  const n = s.length - i
  if (n < 1) return [RUNE_ERROR, 0]
  const s0 = s.charCodeAt(i)
  if (s0 < 0x80) return [s0, 1]
  let size: number
  let lo = 0x80
  let hi = 0xbf
  if (s0 >= 0xc2 && s0 <= 0xdf) size = 2
  else if (s0 >= 0xe0 && s0 <= 0xef) {
    size = 3
    if (s0 === 0xe0) lo = 0xa0
    else if (s0 === 0xed) hi = 0x9f
  } else if (s0 >= 0xf0 && s0 <= 0xf4) {
    size = 4
    if (s0 === 0xf0) lo = 0x90
    else if (s0 === 0xf4) hi = 0x8f
  } else return [RUNE_ERROR, 1]
  if (n < size) return [RUNE_ERROR, 1]
  const s1 = s.charCodeAt(i + 1)
  if (s1 < lo || hi < s1) return [RUNE_ERROR, 1]
  if (size === 2) return [((s0 & 0x1f) << 6) | (s1 & 0x3f), 2]
  const s2 = s.charCodeAt(i + 2)
  if (s2 < 0x80 || 0xbf < s2) return [RUNE_ERROR, 1]
  if (size === 3) return [((s0 & 0x0f) << 12) | ((s1 & 0x3f) << 6) | (s2 & 0x3f), 3]
  const s3 = s.charCodeAt(i + 3)
  if (s3 < 0x80 || 0xbf < s3) return [RUNE_ERROR, 1]
  return [((s0 & 0x07) << 18) | ((s1 & 0x3f) << 12) | ((s2 & 0x3f) << 6) | (s3 & 0x3f), 4]
}

/** utf8.DecodeLastRuneInString(s[:end]). */
function decodeLastRune(s: string, end: number): [number, number] {
  if (end === 0) return [RUNE_ERROR, 0]
  let start = end - 1
  const r = s.charCodeAt(start)
  if (r < 0x80) return [r, 1]
  const lim = Math.max(0, end - 4)
  for (start--; start >= lim; start--) if ((s.charCodeAt(start) & 0xc0) !== 0x80) break
  if (start < 0) start = 0
  const [rune, size] = decodeRune(s.slice(0, end), start)
  return start + size !== end ? [RUNE_ERROR, 1] : [rune, size]
}

/** utf8.EncodeRune, as a Go string. */
function encodeRune(r: number): string {
  if (r < 0x80) return String.fromCharCode(r)
  if (r < 0x800) return String.fromCharCode(0xc0 | (r >> 6), 0x80 | (r & 0x3f))
  if (r < 0x10000) return String.fromCharCode(0xe0 | (r >> 12), 0x80 | ((r >> 6) & 0x3f), 0x80 | (r & 0x3f))
  return String.fromCharCode(0xf0 | (r >> 18), 0x80 | ((r >> 12) & 0x3f), 0x80 | ((r >> 6) & 0x3f), 0x80 | (r & 0x3f))
}

/** unicode.ToLower (simple case mapping, Unicode 13: İ U+0130 → i, K U+212A → k). */
export function goToLowerRune(r: number): number {
  if (r < 0x80) return r >= 0x41 && r <= 0x5a ? r + 32 : r
  for (let i = 0; i < GO_LOWER_RUNS.length; i += 4) {
    const lo = GO_LOWER_RUNS[i]!
    if (r < lo) break
    if (r <= GO_LOWER_RUNS[i + 1]! && (r - lo) % GO_LOWER_RUNS[i + 2]! === 0) return r + GO_LOWER_RUNS[i + 3]!
  }
  return r
}

export function goIsSpace(r: number): boolean {
  return SPACES.has(r)
}

/** strings.ToLower: ASCII fast path, else strings.Map(unicode.ToLower), which re-encodes invalid bytes as U+FFFD. */
export function goToLower(s: string): string {
  let ascii = true
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false
      break
    }
  }
  if (ascii) return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32))
  let out = ''
  for (let i = 0; i < s.length; ) {
    const [r, w] = decodeRune(s, i)
    out += encodeRune(goToLowerRune(r))
    i += w
  }
  return out
}

/** strings.IndexFunc. */
function indexFunc(s: string, f: (r: number) => boolean, truth = true): number {
  for (let i = 0; i < s.length; ) {
    const [r, w] = decodeRune(s, i)
    if (f(r) === truth) return i
    i += w
  }
  return -1
}

/** strings.TrimLeftFunc(s, unicode.IsSpace). */
function trimLeftSpace(s: string): string {
  const i = indexFunc(s, goIsSpace, false)
  return i === -1 ? '' : s.slice(i)
}

/** strings.TrimRightFunc(s, unicode.IsSpace). */
function trimRightSpace(s: string): string {
  let end = s.length
  while (end > 0) {
    const [r, w] = decodeLastRune(s, end)
    if (!goIsSpace(r)) break
    end -= w
  }
  if (end === 0) return ''
  // lastIndexFunc found the rune ending at `end`; Go re-decodes it forwards from its start.
  const [, w] = decodeLastRune(s, end)
  const i = end - w
  if (s.charCodeAt(i) >= 0x80) return s.slice(0, i + decodeRune(s, i)[1])
  return s.slice(0, i + 1)
}

const ASCII_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20])

/** strings.TrimSpace: an ASCII fast path that falls back to TrimFunc(unicode.IsSpace). */
export function goTrimSpace(s: string): string {
  let start = 0
  for (; start < s.length; start++) {
    const c = s.charCodeAt(start)
    if (c >= 0x80) return trimRightSpace(trimLeftSpace(s.slice(start)))
    if (!ASCII_SPACE.has(c)) break
  }
  let stop = s.length
  for (; stop > start; stop--) {
    const c = s.charCodeAt(stop - 1)
    if (c >= 0x80) return trimRightSpace(trimLeftSpace(s.slice(start, stop)))
    if (!ASCII_SPACE.has(c)) break
  }
  return s.slice(start, stop)
}

const TSPECIALS = '()<>@,;:\\"/[]?='

function isTSpecial(r: number): boolean {
  return r < 0x80 && TSPECIALS.includes(String.fromCharCode(r))
}

function isTokenChar(r: number): boolean {
  return r > 0x20 && r < 0x7f && !isTSpecial(r)
}

function consumeToken(v: string): [string, string] {
  const notPos = indexFunc(v, isTokenChar, false)
  if (notPos === -1) return [v, '']
  if (notPos === 0) return ['', v]
  return [v.slice(0, notPos), v.slice(notPos)]
}

function consumeValue(v: string): [string, string] {
  if (v === '') return ['', '']
  if (v[0] !== '"') return consumeToken(v)
  let buffer = ''
  for (let i = 1; i < v.length; i++) {
    const r = v[i]!
    if (r === '"') return [buffer, v.slice(i + 1)]
    // Go takes an unneeded backslash escape as a literal backslash (MSIE file paths).
    if (r === '\\' && i + 1 < v.length && isTSpecial(v.charCodeAt(i + 1))) {
      buffer += v[i + 1]
      i++
      continue
    }
    if (r === '\r' || r === '\n') return ['', v]
    buffer += r
  }
  return ['', v]
}

function consumeMediaParam(v: string): [string, string, string] {
  let rest = trimLeftSpace(v)
  if (!rest.startsWith(';')) return ['', '', v]
  rest = trimLeftSpace(rest.slice(1))
  let param: string
  ;[param, rest] = consumeToken(rest)
  param = goToLower(param)
  if (param === '') return ['', '', v]
  rest = trimLeftSpace(rest)
  if (!rest.startsWith('=')) return ['', '', v]
  rest = trimLeftSpace(rest.slice(1))
  const [value, rest2] = consumeValue(rest)
  if (value === '' && rest2 === rest) return ['', '', v]
  return [param, value, rest2]
}

function checkMediaTypeDisposition(s: string): string | undefined {
  const [typ, rest] = consumeToken(s)
  if (typ === '') return 'mime: no media type'
  if (rest === '') return undefined
  if (!rest.startsWith('/')) return 'mime: expected slash after first token'
  const [subtype, after] = consumeToken(rest.slice(1))
  if (subtype === '') return 'mime: expected token after slash'
  if (after !== '') return 'mime: unexpected content after media subtype'
  return undefined
}

const isHex = (c: string): boolean => /^[0-9a-fA-F]$/.test(c)

function percentHexUnescape(s: string): string | undefined {
  let percents = 0
  for (let i = 0; i < s.length; ) {
    if (s[i] !== '%') {
      i++
      continue
    }
    percents++
    if (i + 2 >= s.length || !isHex(s[i + 1]!) || !isHex(s[i + 2]!)) return undefined
    i += 3
  }
  if (percents === 0) return s
  let t = ''
  for (let i = 0; i < s.length; ) {
    if (s[i] === '%') {
      t += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16))
      i += 3
    } else t += s[i++]
  }
  return t
}

function decode2231Enc(v: string): string | undefined {
  // strings.SplitN(v, "'", 3)
  const first = v.indexOf("'")
  if (first === -1) return undefined
  const second = v.indexOf("'", first + 1)
  if (second === -1) return undefined
  const charset = goToLower(v.slice(0, first))
  if (charset === '' || (charset !== 'us-ascii' && charset !== 'utf-8')) return undefined
  return percentHexUnescape(v.slice(second + 1))
}

/** mime.ParseMediaType of Go 1.19. */
export function parseMediaType(v: string): GoMediaTypeReading {
  const semi = v.indexOf(';')
  const base = semi === -1 ? v : v.slice(0, semi)
  const mediaType = goTrimSpace(goToLower(base))
  const bad = checkMediaTypeDisposition(mediaType)
  if (bad !== undefined) return { mediaType: '', error: bad }

  const params: Record<string, string> = Object.create(null) as Record<string, string>
  const continuation = new Map<string, Map<string, string>>()
  let rest = v.slice(base.length)
  while (rest.length > 0) {
    rest = trimLeftSpace(rest)
    if (rest.length === 0) break
    const [key, value, after] = consumeMediaParam(rest)
    if (key === '') {
      // Trailing semicolons are not an error.
      if (goTrimSpace(after) === ';') break
      return { mediaType, error: 'mime: invalid media parameter' }
    }
    const star = key.indexOf('*')
    let pmap: Map<string, string> | undefined
    if (star !== -1) {
      const baseName = key.slice(0, star)
      pmap = continuation.get(baseName)
      if (pmap === undefined) continuation.set(baseName, (pmap = new Map()))
    }
    if (pmap === undefined ? Object.hasOwn(params, key) : pmap.has(key)) return { mediaType: '', error: 'mime: duplicate parameter name' }
    if (pmap === undefined) params[key] = value
    else pmap.set(key, value)
    rest = after
  }
  // RFC 2231 continuations ("foo*0", "foo*").
  for (const [key, pieces] of continuation) {
    const single = pieces.get(`${key}*`)
    if (single !== undefined) {
      const decoded = decode2231Enc(single)
      if (decoded !== undefined) params[key] = decoded
      continue
    }
    let buf = ''
    let valid = false
    for (let n = 0; ; n++) {
      const simple = pieces.get(`${key}*${n}`)
      if (simple !== undefined) {
        valid = true
        buf += simple
        continue
      }
      const encoded = pieces.get(`${key}*${n}*`)
      if (encoded === undefined) break
      valid = true
      if (n === 0) buf += decode2231Enc(encoded) ?? ''
      else buf += percentHexUnescape(encoded) ?? ''
    }
    if (valid) params[key] = buf
  }
  return { mediaType, params }
}
