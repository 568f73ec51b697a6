import { Agent, request } from 'undici'

// The registry token flow (distribution token auth spec): on a 401 with
// `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, ask the realm for a token with the
// configured credentials (or anonymously) and retry. Used only where the proxy acts on its
// own behalf (`check`, the admin check endpoint), never for client pushes, which carry the
// client's own token.

export interface Credentials {
  readonly username?: string
  readonly password?: string
}

export interface Challenge {
  readonly scheme: string
  readonly params: Readonly<Record<string, string>>
}

/** Parses one challenge (`Bearer realm="…",service="…"`). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header)
  if (m === null) return undefined
  const params: Record<string, string> = {}
  for (const p of (m[2] ?? '').matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[(p[1] as string).toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1')
  }
  return { scheme: (m[1] as string).toLowerCase(), params }
}

const TOKEN_TIMEOUT_MS = 15_000
/** Tokens without expires_in: the spec's default lifetime is 60 s. */
const DEFAULT_TOKEN_SECONDS = 60

/**
 * How a challenge was answered: an Authorization value, nothing to answer it with (the
 * registry's refusal stands), or a token server that failed — which is not a refusal of the
 * credentials, and is said as such.
 */
export type Authorization = { readonly value: string } | { readonly unanswered: true } | { readonly failed: string }

export class TokenAuthorizer {
  readonly #tokens = new Map<string, { value: string; until: number }>()
  /** With caFile: a token server behind the same private CA as the registry (Harbor's realm). */
  readonly #dispatcher: Agent | undefined

  constructor(ca?: readonly string[]) {
    this.#dispatcher = ca === undefined ? undefined : new Agent({ connect: { ca: [...ca] } })
  }

  /** `signal`: the caller's deadline (a check's time budget) also bounds the token request. */
  async authorize(challengeHeader: string | undefined, credentials: Credentials, signal?: AbortSignal): Promise<Authorization> {
    const challenge = parseChallenge(challengeHeader)
    const basic = credentials.username === undefined ? undefined : `Basic ${Buffer.from(`${credentials.username}:${credentials.password ?? ''}`).toString('base64')}`
    if (challenge?.scheme === 'basic') return basic === undefined ? { unanswered: true } : { value: basic }
    if (challenge?.scheme !== 'bearer' || challenge.params['realm'] === undefined) return { unanswered: true }
    const key = JSON.stringify([challenge.params, credentials.username])
    const cached = this.#tokens.get(key)
    if (cached !== undefined && cached.until > Date.now()) return { value: cached.value }
    let url: URL
    try {
      url = new URL(challenge.params['realm'])
    } catch {
      return { failed: `the registry named a token server that is not a URL (${challenge.params['realm']})` }
    }
    for (const name of ['service', 'scope']) {
      const v = challenge.params[name]
      if (v !== undefined) url.searchParams.set(name, v)
    }
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(url, { headers: basic === undefined ? {} : { authorization: basic }, headersTimeout: TOKEN_TIMEOUT_MS, bodyTimeout: TOKEN_TIMEOUT_MS, signal: signal ?? null, ...(this.#dispatcher === undefined ? {} : { dispatcher: this.#dispatcher }) })
    } catch (err) {
      if (signal?.aborted === true) return { failed: `the token server ${url.origin} did not answer within the time limit` }
      const e = err as { code?: string; cause?: { code?: string }; message?: string }
      return { failed: `the token server ${url.origin} could not be reached (${e.code ?? e.cause?.code ?? e.message ?? 'error'})` }
    }
    const body = (await res.body.json().catch(() => ({}))) as { token?: string; access_token?: string; expires_in?: number }
    const token = body.token ?? body.access_token
    if (res.statusCode === 401 || res.statusCode === 403) return { unanswered: true }
    if (res.statusCode !== 200 || token === undefined) return { failed: `the token server ${url.origin} answered ${res.statusCode}${token === undefined && res.statusCode === 200 ? ' without a token' : ''}` }
    const value = `Bearer ${token}`
    this.#tokens.set(key, { value, until: Date.now() + Math.max(0, (body.expires_in ?? DEFAULT_TOKEN_SECONDS) - 5) * 1000 })
    return { value }
  }
}
