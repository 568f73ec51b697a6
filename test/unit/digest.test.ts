import t from 'tap'
import { digestOf, parseDigest, shortDigest } from '../../src/oci/digest.js'

const HEX = 'a'.repeat(64)

t.test('parseDigest', async (t) => {
  const cases: { name: string; input: unknown; expect: string }[] = [
    { name: 'sha256', input: `sha256:${HEX}`, expect: 'digest' },
    { name: 'sha512', input: `sha512:${'b'.repeat(128)}`, expect: 'digest' },
    { name: 'upper case hex', input: `sha256:${HEX.toUpperCase()}`, expect: 'bad-encoding' },
    { name: 'short', input: 'sha256:abc', expect: 'bad-encoding' },
    { name: 'unknown algorithm', input: `md5:${HEX}`, expect: 'unsupported-algorithm' },
    { name: 'no colon', input: HEX, expect: 'malformed' },
    { name: 'not a string', input: 42, expect: 'malformed' },
    { name: 'upper case algorithm', input: `SHA256:${HEX}`, expect: 'malformed' },
    { name: 'empty', input: '', expect: 'malformed' },
  ]
  for (const c of cases) {
    const r = parseDigest(c.input)
    t.equal('digest' in r ? 'digest' : r.problem, c.expect, c.name)
  }
})

t.test('digestOf hashes exactly the bytes', async (t) => {
  t.equal(digestOf(Buffer.from('')), 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  t.equal(shortDigest(`sha256:${HEX}`), `sha256:${'a'.repeat(12)}`)
})
