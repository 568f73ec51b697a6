import { envName, flagName, hasFlag } from './load.js'
import { type Field, FIELDS, RETIRED_KEYS } from './schema.js'

// config/README.md, generated from the settings table (npm run docs); a test fails when the
// committed file and the table differ, so the reference cannot drift.

/** A setting's default as the docs write it (a list joined with commas); undefined when unset. */
export function formatDefault(f: Field): string | undefined {
  if (f.default === undefined) return undefined
  if (!Array.isArray(f.default)) return String(f.default)
  return f.default.length === 0 ? '[]' : f.default.join(',')
}

export function configReference(): string {
  const lines = [
    '# manifest-guard configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs`. Do not edit by hand. -->',
    '',
    'Every setting comes from its flag, else its environment variable, else the config file',
    '(YAML or JSON, named by `--config FILE` or `MANIFEST_GUARD_CONFIG`), else its default.',
    'A bad value stops the process with one line naming the key. Secrets are never echoed; give',
    'them as files (`…File` keys) in production. `manifest-guard.yaml` beside this file is a',
    'commented example.',
    '',
    '| key | type | default | flag | environment | meaning |',
    '| --- | --- | --- | --- | --- | --- |',
  ]
  for (const f of FIELDS) {
    const def = f.default === undefined ? 'unset' : `\`${formatDefault(f)}\``
    const flag = hasFlag(f) ? `\`--${flagName(f.key)}\`` : f.secret === true ? '(no flag: a secret)' : '(file only)'
    const env = f.fileOnly === true ? '' : `\`${envName(f.key)}\``
    lines.push(`| \`${f.key}\` | ${f.type.describe.replaceAll('|', '\\|')} | ${def} | ${flag} | ${env} | ${f.doc.replaceAll('|', '\\|')}${f.secret === true ? ' (secret)' : ''} |`)
  }
  lines.push('', 'Retired keys, still accepted in a config file and ignored:', '')
  for (const [key, why] of Object.entries(RETIRED_KEYS)) lines.push(`- \`${key}\`: ${why}.`)
  return `${lines.join('\n')}\n`
}
