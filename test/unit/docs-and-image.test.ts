import { existsSync, readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import t from 'tap'
import { configReference, formatDefault } from '../../src/config/reference.js'
import { FIELDS } from '../../src/config/schema.js'
import { fromRoot, ROOT } from '../helpers/root.js'

// Documents and build files that must not drift from the code.

const read = (path: string) => readFileSync(fromRoot(path), 'utf8')

t.test('config/README.md is generated from the schema (npm run docs)', async (t) => {
  t.equal(read('config/README.md'), configReference())
})

t.test('the README starts with the two commands, and CI runs every suite npm test runs', async (t) => {
  const lines = read('README.md').split('\n')
  t.equal(lines[0], '# manifest-guard')
  t.match(lines.slice(0, 8).join('\n'), 'bash scripts/run-local.sh')
  t.match(lines.slice(0, 8).join('\n'), /^npm test\b/m)
  t.match(read('.ci/run'), /^count test:all$/m, 'CI runs npm run test:all')
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
  const taprc = read('.taprc')
  const fastDirs = [...taprc.matchAll(/^ {2}- (dist\/test\/[a-z]+)\/\*\*\/\*\.test\.js$/gm)].map((m) => m[1] as string)
  t.same(fastDirs, ['dist/test/unit', 'dist/test/integration'], 'npm test runs the unit and integration suites')
  for (const dir of [...fastDirs, 'dist/test/slow']) t.match(pkg.scripts['test:all'], dir, `test:all runs ${dir}`)
})

t.test('every setting the README names exists, with the default the code has', async (t) => {
  const byKey = new Map(FIELDS.map((f) => [f.key, f]))
  let checked = 0
  // The README's settings tables: those whose header starts `| key |`.
  let inTable = false
  for (const line of read('README.md').split('\n')) {
    if (!line.startsWith('|')) {
      inTable = false
      continue
    }
    if (line.startsWith('| key |')) {
      inTable = true
      continue
    }
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim())
    if (!inTable || cells[0] === '---' || !/^[a-z][a-zA-Z]*(\.[a-zA-Z]+)*( \/ [a-z][a-zA-Z]*(\.[a-zA-Z]+)*)*$/.test(cells[0] as string)) continue
    const keys = (cells[0] as string).split(' / ')
    // The short table has a flag column before the default; the long one does not.
    const defaults = (cells[cells.length === 4 ? 2 : 1] as string).split(' / ')
    for (const [i, key] of keys.entries()) {
      const field = byKey.get(key)
      t.ok(field !== undefined, `the README's ${key} is a setting`)
      if (field === undefined || defaults.length !== keys.length) continue
      const shown = (defaults[i] as string).trim()
      const m = /^`([^`]*)`$/.exec(shown)
      if (m === null) continue
      // Sizes are written for people (`64 MiB`); the table holds bytes.
      const size = /^(\d+) (KiB|MiB|GiB)$/.exec(m[1] as string)
      const value = size === null ? m[1] : String(Number(size[1]) * 2 ** { KiB: 10, MiB: 20, GiB: 30 }[size[2] as 'KiB' | 'MiB' | 'GiB'])
      t.equal(value, formatDefault(field), `the README's default of ${key}`)
      checked++
    }
  }
  t.ok(checked >= 15, `${checked} defaults compared`)
})

t.test('the Dockerfile copies what exists and starts what the README documents', async (t) => {
  const dockerfile = read('Dockerfile')
  const stages = dockerfile.split(/^FROM /m).slice(1)
  t.equal(stages.length, 2, 'multi-stage: build, then runtime')
  const runtime = stages[1] as string
  t.match(runtime, /^node:22-[a-z]+-slim/, 'slim Node 22 runtime')
  // By number: Kubernetes can verify runAsNonRoot only for a numeric user (issue 23).
  t.match(runtime, /^USER 1000:1000$/m, 'non-root, by number')
  t.match(runtime, /org\.opencontainers\.image\.source=/, 'OCI image labels')
  t.match(runtime, /^HEALTHCHECK .*CMD \["node", "dist\/src\/cli\.js", "healthcheck"\]/m)
  t.match(runtime, /^ENTRYPOINT \["node", "dist\/src\/cli\.js"\]$/m, 'the CLI is the entry')
  t.notMatch(runtime, /npm (ci|install)/, 'no installs at runtime')
  t.match(runtime, /MANIFEST_GUARD_CONFIG=/)
  t.match(runtime, /MANIFEST_GUARD_LISTEN=0\.0\.0\.0:5000/)
  t.match(runtime, /MANIFEST_GUARD_ADMIN_LISTEN=0\.0\.0\.0:9464/, 'metrics published')
  t.match(runtime, /MANIFEST_GUARD_ADMIN_API_LISTEN=127\.0\.0\.1:9465/, 'the admin API and the decisions page inside the container only')
  for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+)$/gm)) {
    const sources = (m[1] as string).trim().split(/\s+/).slice(0, -1)
    for (const s of sources) t.ok(existsSync(fromRoot(s)), `COPY ${s} exists`)
  }
  t.ok(existsSync(fromRoot('dist/src/cli.js')), 'the build produces dist/src/cli.js, which the runtime stage copies')
  t.match(read('README.md'), 'node dist/src/cli.js', 'the README documents the same start command')
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> }
  t.equal(pkg.bin['manifest-guard'], 'dist/src/cli.js')
})

t.test('the project stands alone: code cites its own docs, and every cited page exists', async (t) => {
  const { readdirSync, statSync } = await import('node:fs')
  const root = pathToFileURL(ROOT)
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(new URL(dir, root))) {
      const path = `${dir}${name}`
      if (statSync(new URL(path, root)).isDirectory()) walk(`${path}/`)
      else if (/\.(ts|go|sh|md|yaml|tpl)$/.test(name)) files.push(path)
    }
  }
  for (const dir of ['src/', 'test/', 'scripts/', 'helm/', 'config/', 'docs/']) walk(dir)
  files.push('README.md', 'Dockerfile')
  let cited = 0
  for (const file of files) {
    const text = read(file)
    t.notMatch(text, /DESIGN\.md/, `${file} cites no document outside the repository`)
    for (const m of text.matchAll(/\bdocs\/([a-z-]+\.md)/g)) {
      cited++
      t.ok(existsSync(fromRoot(`docs/${m[1]}`)), `${file} cites docs/${m[1]}, which exists`)
    }
  }
  t.ok(cited >= 3, `${cited} citations of docs/ pages`)
})
