import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import picomatch from 'picomatch'
import { requireTool, run } from './tools.js'

// A registry token server for the tests (distribution's token authentication: a JWT signed
// with a key whose certificate the registry trusts, `access` claims per repository). Users
// get the actions their grants allow for each requested scope, and nothing else; anonymous
// requests get the anonymous grants.

export interface Grants {
  /** Repository glob → actions. */
  readonly [repository: string]: readonly ('pull' | 'push' | 'delete' | '*')[]
}

export interface TokenPolicy {
  readonly users: Readonly<Record<string, { readonly password: string; readonly grants: Grants }>>
  readonly anonymous?: Grants
}

export interface TokenServer {
  readonly realm: string
  readonly service: string
  readonly issuer: string
  readonly rootCertPath: string
  /** Tokens handed out: who, and what they may do. */
  readonly issued: { subject: string | undefined; access: { name: string; actions: string[] }[] }[]
  close(): Promise<void>
}

const SERVICE = 'manifest-guard-test-registry'
const ISSUER = 'manifest-guard-test-token-server'

export async function startTokenServer(policy: TokenPolicy): Promise<TokenServer> {
  requireTool('openssl', 'apt-get install -y openssl')
  const dir = mkdtempSync(join(tmpdir(), 'mg-token-'))
  const keyPath = join(dir, 'key.pem')
  const certPath = join(dir, 'cert.pem')
  const r = await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=manifest-guard test token issuer'])
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`)
  const key = createPrivateKey(readFileSync(keyPath))
  const certDer = new X509Certificate(readFileSync(certPath)).raw.toString('base64')
  const issued: TokenServer['issued'] = []

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://token')
    let subject: string | undefined
    let grants: Grants = policy.anonymous ?? {}
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    if (basic !== undefined) {
      const [user = '', password = ''] = Buffer.from(basic, 'base64').toString().split(/:(.*)/s)
      const known = policy.users[user]
      if (known === undefined || known.password !== password) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }))
        return
      }
      subject = user
      grants = known.grants
    }
    const access = url.searchParams.getAll('scope').flatMap((scope) => {
      const first = scope.indexOf(':')
      const last = scope.lastIndexOf(':')
      if (scope.slice(0, first) !== 'repository' || last <= first) return []
      const name = scope.slice(first + 1, last)
      const wanted = scope.slice(last + 1).split(',')
      const allowed = new Set(Object.entries(grants).flatMap(([glob, actions]) => (picomatch(glob)(name) ? actions : [])))
      const actions = wanted.filter((a) => allowed.has(a as 'pull') || allowed.has('*'))
      return actions.length === 0 ? [] : [{ type: 'repository', name, actions }]
    })
    issued.push({ subject, access: access.map(({ name, actions }) => ({ name, actions })) })
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer] }
    const claims = { iss: ISSUER, sub: subject ?? '', aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }
    const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
    const signingInput = `${encode(header)}.${encode(claims)}`
    const token = `${signingInput}.${sign('sha256', Buffer.from(signingInput), key).toString('base64url')}`
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service: SERVICE,
    issuer: ISSUER,
    rootCertPath: certPath,
    issued,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}
