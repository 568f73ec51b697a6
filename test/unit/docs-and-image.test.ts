import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'
import { configReference } from '../../src/config/reference.js'
import { FIELDS } from '../../src/config/schema.js'

// Documents and build files that must not drift from the code.

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')

t.test('config/README.md is generated from the schema (npm run docs)', async (t) => {
  t.equal(read('config/README.md'), configReference())
})

t.test('the README documents every non-secret setting and the two commands', async (t) => {
  const readme = read('README.md')
  const lines = readme.split('\n')
  t.equal(lines[0], '# manifest-guard')
  t.match(lines.slice(0, 6).join('\n'), 'bash scripts/run-local.sh')
  t.match(lines.slice(0, 6).join('\n'), 'npm test')
  t.match(read('.ci/run'), 'npm test', 'CI runs the README test command')
  for (const f of FIELDS) t.match(readme + read('config/README.md'), f.key, `${f.key} documented`)
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
    for (const s of sources) t.ok(existsSync(new URL(`../../${s}`, import.meta.url)), `COPY ${s} exists`)
  }
  t.ok(existsSync(new URL('../../dist/src/cli.js', import.meta.url)), 'the build produces dist/src/cli.js, which the runtime stage copies')
  t.match(read('README.md'), 'node dist/src/cli.js', 'the README documents the same start command')
  const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> }
  t.equal(pkg.bin['manifest-guard'], 'dist/src/cli.js')
})

t.test('the project stands alone: code cites its own docs, and every cited page exists', async (t) => {
  const { readdirSync, statSync } = await import('node:fs')
  const root = new URL('../../', import.meta.url)
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
      t.ok(existsSync(new URL(`../../docs/${m[1]}`, import.meta.url)), `${file} cites docs/${m[1]}, which exists`)
    }
  }
  t.ok(cited >= 3, `${cited} citations of docs/ pages`)
})
