import { readFileSync } from 'node:fs'
import t from 'tap'
import { fromRoot } from '../helpers/root.js'

// The README's stale-rule table and the tests, row for row: every row names at least one test
// (`file.test.ts` "words of its name", `…` between words that need not touch), and every name
// is a test of that file.

const read = (path: string) => readFileSync(fromRoot(path), 'utf8')

t.test('every row of "When is a child stale?" is a test, and every test it names exists', async (t) => {
  const readme = read('README.md')
  const section = readme.slice(readme.indexOf('### When is a child stale?'), readme.indexOf('### What the registry stores'))
  const rows = section.split('\n').filter((line) => line.startsWith('| **'))
  t.ok(rows.length >= 9, `${rows.length} rows`)
  for (const row of rows) {
    const refs = [...row.matchAll(/`([\w-]+\.test\.ts)` "([^"]+)"/g)]
    t.ok(refs.length > 0, `the row names a test: ${row.slice(0, 60)}`)
    for (const [, file, name] of refs) {
      const names = [...read(`test/integration/${file}`).matchAll(/t\.test\((['"`])(.*?)\1/g)].map((m) => m[2]!)
      const parts = name!.split('…').map((p) => p.trim()).filter((p) => p !== '')
      const found = names.some((n) => {
        let from = 0
        for (const part of parts) {
          const at = n.indexOf(part, from)
          if (at === -1) return false
          from = at + part.length
        }
        return true
      })
      t.ok(found, `${file} has a test "${name}"`)
    }
  }
})
