import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, envName, flagName, loadConfig } from '../../src/config/load.js'
import { FIELDS } from '../../src/config/schema.js'

const dir = mkdtempSync(join(tmpdir(), 'mg-config-'))
const file = (name: string, text: string): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

t.test('defaults', async (t) => {
  const c = loadConfig()
  t.same(c.listen, { host: '127.0.0.1', port: 5001 })
  t.equal(c.upstream, 'http://127.0.0.1:5000')
  t.equal(c.validation.mode, 'enforce')
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.validation), 'config is frozen')
})

t.test('precedence: flags > environment > file > defaults', async (t) => {
  const cfg = file('p.yaml', 'upstream: http://file:5000\nvalidation:\n  mode: warn\n  maxDepth: 3\nlogLevel: debug\n')
  const c = loadConfig({
    argv: ['--config', cfg, '--upstream', 'http://flag:5000'],
    env: { MANIFEST_GUARD_UPSTREAM: 'http://env:5000', MANIFEST_GUARD_VALIDATION_MODE: 'off' },
  })
  t.equal(c.upstream, 'http://flag:5000', 'flag wins')
  t.equal(c.validation.mode, 'off', 'env beats file')
  t.equal(c.validation.maxDepth, 3, 'file beats default')
  t.equal(c.logLevel, 'debug')
  t.equal(c.validation.concurrency, 16, 'default fills the rest')
})

t.test('the config file may be named by the environment, and may be JSON', async (t) => {
  const cfg = file('c.json', JSON.stringify({ listen: '0.0.0.0:8443', validation: { rules: [{ match: 'team/**', mode: 'warn' }] } }))
  const c = loadConfig({ env: { MANIFEST_GUARD_CONFIG: cfg } })
  t.same(c.listen, { host: '0.0.0.0', port: 8443 })
  t.same(c.validation.rules, [{ match: 'team/**', mode: 'warn' }])
})

t.test('bad values: one line naming the key, the source and what was expected', async (t) => {
  const cases: { name: string; sources: Parameters<typeof loadConfig>[0]; message: RegExp }[] = [
    { name: 'bad enum flag', sources: { argv: ['--validation-mode', 'strict'] }, message: /validation\.mode \(flag --validation-mode\): expected one of enforce, warn, off, got "strict"/ },
    { name: 'bad port env', sources: { env: { MANIFEST_GUARD_LISTEN: '127.0.0.1:99999' } }, message: /listen \(environment MANIFEST_GUARD_LISTEN\): expected HOST:PORT/ },
    { name: 'upstream with credentials', sources: { argv: ['--upstream', 'http://u:p@host:5000'] }, message: /upstream .*without credentials/ },
    { name: 'upstream with path', sources: { argv: ['--upstream', 'http://host:5000/registry'] }, message: /upstream .*no path/ },
    { name: 'not a URL', sources: { argv: ['--upstream', 'localhost:5000'] }, message: /upstream \(flag --upstream\): expected an http/ },
    { name: 'integer out of range', sources: { argv: ['--validation-concurrency', '0'] }, message: /validation\.concurrency .*from 1 to 256, got "0"/ },
    { name: 'unknown flag', sources: { argv: ['--upstreem', 'x'] }, message: /invalid flags: Unknown option '--upstreem'/ },
    { name: 'unknown file key', sources: { argv: ['--config', file('u.yaml', 'validation:\n  mood: warn\n')] }, message: /unknown key "validation\.mood"/ },
    { name: 'missing file', sources: { argv: ['--config', join(dir, 'nope.yaml')] }, message: /cannot read it \(ENOENT\)/ },
    { name: 'bad YAML', sources: { argv: ['--config', file('b.yaml', 'a: [\n')] }, message: /not valid YAML or JSON/ },
    { name: 'bad rule', sources: { values: { validation: { rules: [{ match: 'x', mode: 'loud' }] } } }, message: /validation\.rules .*rule 0 mode to be one of enforce, warn, off/ },
    { name: 'tls half set', sources: { argv: ['--tls-cert', file('c.pem', 'x')] }, message: /tls\.key: tls\.cert and tls\.key go together/ },
    { name: 'tls unreadable', sources: { argv: ['--tls-cert', join(dir, 'no.pem'), '--tls-key', join(dir, 'no.key')] }, message: /tls\.cert: cannot read/ },
  ]
  for (const c of cases) {
    const err = t.throws(() => loadConfig(c.sources), c.name) as Error
    t.ok(err instanceof ConfigError, `${c.name}: a ConfigError`)
    t.match(err.message, c.message, c.name)
    t.notMatch(err.message, /\n/, `${c.name}: one line`)
  }
})

t.test('every setting has a flag or file key, an env name, a default and docs', async (t) => {
  for (const f of FIELDS) {
    t.ok(f.doc.length > 10, `${f.key} documented`)
    t.ok(f.default === undefined || 'value' in f.type.parse(f.default), `${f.key}: its default passes its own type`)
    t.match(envName(f.key), /^MANIFEST_GUARD_[A-Z_]+$/)
    t.match(flagName(f.key), /^[a-z-]+$/)
  }
})

t.test('retired keys in a config file are accepted and ignored; their flags are gone', async (t) => {
  const config = loadConfig({ argv: ['--config', file('retired.yaml', 'cache:\n  ttlSeconds: 0\n  maxEntries: 5\n  maxManifestBytes: 1024\n')] })
  t.equal(config.cache.maxManifestBytes, 1024)
  t.same(Object.keys(config.cache), ['maxManifestBytes'], 'nothing of the retired keys is kept')
  t.throws(() => loadConfig({ argv: ['--cache-ttl-seconds', '5'] }), /cache-ttl-seconds/)
})

t.test('secrets are never taken as flags: one line names the environment variable and the file key', async (t) => {
  const secrets = FIELDS.filter((f) => f.secret === true)
  t.same(secrets.map((f) => f.key).sort(), ['admin.token', 'audit.webhookToken', 'ledger.redisPassword', 'lookupCredentials.password', 'registryEvents.token'])
  for (const f of secrets) {
    for (const argv of [[`--${flagName(f.key)}`, 's3cret'], [`--${flagName(f.key)}=s3cret`]]) {
      let message = ''
      try {
        loadConfig({ argv })
      } catch (err) {
        t.ok(err instanceof ConfigError, `${argv.join(' ')}: a config error`)
        message = (err as Error).message
      }
      t.match(message, `--${flagName(f.key)}: a secret is never taken as a flag`, `${f.key} refused`)
      t.match(message, envName(f.key), 'names the environment variable')
      t.match(message, `${f.key}File`, 'and the file key')
      t.notMatch(message, 's3cret', 'without echoing the value')
      t.notMatch(message, '\n', 'on one line')
    }
    const fromEnv = loadConfig({ argv: [], env: { [envName(f.key)]: 'from-env' } }) as unknown as Record<string, unknown>
    const value = f.key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], fromEnv)
    t.equal(value, 'from-env', `${f.key} is read from ${envName(f.key)}`)
  }
})

t.test('ledger: Sentinel instead of a URL, and the fault settings', async (t) => {
  const c = loadConfig({ values: { ledger: { store: 'redis', redisSentinels: ['127.0.0.1:26379', 'sentinel-1.redis:26379'], redisSentinelMaster: 'ledger' } } })
  t.same(c.ledger.redisSentinels, ['127.0.0.1:26379', 'sentinel-1.redis:26379'], 'sentinels stand in for ledger.redisUrl')
  t.equal(c.ledger.redisSentinelMaster, 'ledger')
  t.equal(c.validation.onLedgerFailure, 'reject', 'fail closed by default')
  t.equal(c.ledger.maxPending, 10_000)
  t.throws(() => loadConfig({ values: { ledger: { store: 'redis', redisSentinels: ['no-port'] } } }), /ledger.redisSentinels: expected HOST:PORT/)
  t.throws(() => loadConfig({ values: { ledger: { store: 'redis' } } }), /ledger.redisUrl: required when ledger.store is redis \(or ledger.redisSentinels\)/)
  t.equal(loadConfig({ argv: ['--validation-on-ledger-failure', 'forward'] }).validation.onLedgerFailure, 'forward')
})
