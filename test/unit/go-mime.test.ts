import { readFileSync } from 'node:fs'
import t from 'tap'
import { readManifestPutContentType } from '../../src/oci/manifest-handler.js'
import { MediaType } from '../../src/oci/media-type.js'
import { goIsSpace, goToLowerRune, parseMediaType } from '../../src/oci/mime.js'
import { goMediaTypes, goUnicodeTables } from '../helpers/go-decoder.js'
import { prng } from '../helpers/prng.js'
import { fromRoot } from '../helpers/root.js'

// The registry reads a manifest PUT's Content-Type with Go 1.19's mime.ParseMediaType: the
// port in src/oci/mime.ts must read every header value exactly as Go does (media type,
// parameters, and whether it is an error). Values are generated (seeded), fed to Go's own
// function (test/go/parse-media-type) and to the port, and compared.

/** Strings are Go strings: bytes as latin1 chars. */
const utf8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')

const TYPES = [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest, 'application/json', 'text/plain', '*/*', 'a']
/** Pieces a hostile or careless client might put anywhere in the value. */
const PIECES = [
  ...'aAzZ09-+.*/;=" \t\\\'%()<>@,:[]?{}'.split(''),
  utf8('\u0130'), // İ → i
  utf8('\u212a'), // Kelvin sign → k
  utf8('\u017f'), // ſ (ToLower keeps it)
  utf8('\u00a0'),
  utf8('\u3000'),
  utf8('\u0085'),
  utf8('\u2028'),
  utf8('\u1680'),
  utf8('\ufeff'), // not a space to Go
  utf8('\u00c9'),
  utf8('\u0391'),
  utf8('\u0410'),
  utf8('\u1e9e'),
  utf8('\u2c2f'), // Unicode 14: no lower case in Go 1.19
  utf8('\ua7c0'),
  utf8('\u{10400}'),
  utf8('\u{1f600}'),
  '\x80', // invalid UTF-8: a lone continuation byte
  '\xc3', // a truncated sequence
  '\xe2\x80', // another
  '\xed\xa0\x80', // an encoded surrogate
  '\xf4\x90\x80\x80', // past U+10FFFF
  '\xff',
  '\x00',
  '\x0b',
  '\x0c',
  '\r',
  '\n',
  '\x7f',
  '%41',
  '%4',
  "utf-8''",
  "us-ascii'en'",
  'x*0=',
  'x*1*=',
  'x*=',
]

function generate(random: () => number, count: number): string[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!
  const noise = (n: number): string => Array.from({ length: n }, () => pick(PIECES)).join('')
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const type = pick(TYPES)
    switch (i % 5) {
      case 0:
        out.push(noise(Math.floor(random() * 12)))
        break
      case 1: {
        // A real type with one character replaced or wrapped.
        const at = Math.floor(random() * type.length)
        out.push(random() < 0.5 ? `${type.slice(0, at)}${pick(PIECES)}${type.slice(at + 1)}` : `${noise(1)}${type}${noise(2)}`)
        break
      }
      case 2:
        out.push(`${type}${noise(1)};${noise(1)}${pick(['charset', 'x', 'X*', 'x*0', 'x*1', 'x*0*', 'a'])}${noise(1)}=${pick(['"v"', 'v', '"a\\"b"', '"\\a"', "utf-8''%41", '"unterminated', ''])}${noise(Math.floor(random() * 3))}`)
        break
      case 3:
        out.push(`${type}; a=1; b="2"${pick(['', ';', '; ', ';;', '; a=3', '; A=3', '; x*0=a; x*1=b', "; x*=utf-8''%e2%82", '; x*0*=us-ascii\'\'a%20; x*1*=%zz'])}${noise(Math.floor(random() * 2))}`)
        break
      default:
        out.push(type.toUpperCase().replace(/I/g, () => (random() < 0.5 ? utf8('\u0130') : 'I')).replace(/K/g, () => (random() < 0.5 ? utf8('\u212a') : 'K')) + noise(Math.floor(random() * 2)))
    }
  }
  return out
}

const printable = (s: string): string => JSON.stringify(s).replace(/[\u0080-\u00ff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`)

t.test('src/oci/go-unicode-tables.ts is what Go 1.19 says', async (t) => {
  const committed = readFileSync(fromRoot('src/oci/go-unicode-tables.ts'), 'utf8')
  t.equal(committed, goUnicodeTables(), 'regenerate with: cd test/go/unicode-tables && go run . > ../../../src/oci/go-unicode-tables.ts')
  t.equal(goToLowerRune(0x130), 0x69, 'İ lowers to i')
  t.equal(goToLowerRune(0x212a), 0x6b, 'the Kelvin sign lowers to k')
  t.equal(goToLowerRune(0x100), 0x101, 'Ā → ā (an alternating run)')
  t.equal(goToLowerRune(0x101), 0x101, 'ā stays')
  t.equal(goToLowerRune(0x10400), 0x10428, 'Deseret')
  t.equal(goToLowerRune(0x2c2f), 0x2c2f, 'Unicode 14 additions are not lowered by Go 1.19')
  t.ok(goIsSpace(0x85) && goIsSpace(0xa0) && goIsSpace(0x3000), 'U+0085, U+00A0, U+3000 are spaces to Go')
  t.notOk(goIsSpace(0xfeff), 'U+FEFF is not (JavaScript trims it)')
})

t.test('mime.ParseMediaType: the port reads every value as Go 1.19 does', async (t) => {
  const seed = Number(process.env['MIME_SEED'] ?? Date.now() % 1_000_000)
  const fixed = [
    '',
    ' ',
    'application/json',
    utf8(`appl\u0130cation/vnd.oci.image.index.v1+json`),
    utf8(`application/vnd.doc\u212aer.distribution.manifest.list.v2+json`),
    utf8(`${MediaType.OciIndex}\u00a0`),
    utf8(`${MediaType.OciIndex}\u3000`),
    utf8(`\u0085${MediaType.OciIndex}`),
    `${MediaType.OciIndex};`,
    `${MediaType.OciIndex} ; ;`,
    `${MediaType.OciIndex}; charset`,
    `${MediaType.OciIndex}; a=1; a=2`,
    `${MediaType.OciIndex}; a*=1; a*=2`,
    `text/plain;;`,
    'a/b/c',
    '/json',
    'application/',
    '\xff\xfe',
  ]
  const values = [...fixed, ...generate(prng(seed), 4000)]
  const go = goMediaTypes(values)
  let differ = 0
  for (const [i, v] of values.entries()) {
    const ours = parseMediaType(v)
    const theirs = go[i]!
    const same =
      ours.mediaType === theirs.mediaType &&
      ('error' in ours) === (theirs.error !== undefined) &&
      ('error' in ours ? ours.error === theirs.error : JSON.stringify(Object.entries(ours.params).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) === JSON.stringify(theirs.params))
    if (!same && differ++ < 10) t.fail(`seed ${seed}: ${printable(v)}: Go ${printable(JSON.stringify(theirs))}, port ${printable(JSON.stringify(ours))}`)
  }
  t.equal(differ, 0, `${values.length} values (seed ${seed}, MIME_SEED=${seed} repeats them) read alike`)
})

t.test("distribution's handler for a manifest PUT", async (t) => {
  const cases: [string | undefined, string, string][] = [
    [MediaType.OciIndex, 'index', MediaType.OciIndex],
    [`${MediaType.DockerManifestList}; charset=utf-8`, 'index', MediaType.DockerManifestList],
    [' Application/VND.OCI.image.index.v1+JSON ', 'index', MediaType.OciIndex],
    [`\t${MediaType.OciIndex}\t;\t`, 'index', MediaType.OciIndex],
    [MediaType.OciManifest, 'image', MediaType.OciManifest],
    [undefined, 'fallback', ''],
    ['', 'fallback', ''],
    ['application/json', 'fallback', 'application/json'],
    [MediaType.DockerManifestV1Signed, 'fallback', MediaType.DockerManifestV1Signed],
    ['foo', 'fallback', 'foo'],
    [`${MediaType.OciIndex}; charset`, 'fallback', MediaType.OciIndex],
  ]
  for (const [header, kind, mediaType] of cases) t.match(readManifestPutContentType(header), { kind, mediaType }, JSON.stringify(header))
  for (const odd of [utf8(`appl\u0130cation/vnd.oci.image.index.v1+json`), `${MediaType.OciIndex}\x0b`, `${MediaType.OciIndex}\x7f`, '\x00', utf8(`${MediaType.OciIndex}\u00a0`)]) {
    const r = readManifestPutContentType(odd)
    t.equal(r.kind, 'odd', `${printable(odd)} is refused`)
    if (r.kind === 'odd') t.notMatch(r.reason, /[^\x20-\x7e]/, 'and the reason is printable ASCII')
  }
  const r = readManifestPutContentType(utf8(`appl\u0130cation/vnd.oci.image.index.v1+json`))
  t.match(r, { reason: /byte 0xc4 at offset 4.*the registry would read it as "application\/vnd\.oci\.image\.index\.v1\+json"/ }, 'the reason says what the registry would make of it')
})
