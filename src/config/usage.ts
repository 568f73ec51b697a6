import { envName, flagName, hasFlag } from './load.js'
import { FIELDS } from './schema.js'

// `manifest-guard --help`, from the settings table so it cannot drift from what is parsed.

export function usage(): string {
  const lines = [
    'manifest-guard: a registry proxy that stops broken multi-platform pushes',
    '',
    'usage: manifest-guard [--upstream URL] [--listen HOST:PORT] [--config FILE] [flags]',
    '       manifest-guard check [--all-tags] [--json] REGISTRY/NAME[:TAG]   (see check --help)',
    '',
    'Every setting comes from a flag, else its environment variable, else the config file',
    '(YAML or JSON, --config or MANIFEST_GUARD_CONFIG), else its default.',
    '',
  ]
  for (const f of FIELDS) {
    const flag = hasFlag(f) ? `--${flagName(f.key)} <${f.type.describe}>` : f.secret === true ? `(secret: ${envName(f.key)}, or --${flagName(`${f.key}File`)})` : `(config file: ${f.key})`
    lines.push(`  ${flag}`)
    lines.push(`      ${f.doc}`)
    const def = f.default === undefined || f.secret === true ? 'unset' : JSON.stringify(f.default)
    lines.push(`      default ${def}${f.fileOnly === true ? '' : `; env ${envName(f.key)}`}`)
  }
  return lines.join('\n') + '\n'
}
