import { request } from 'undici'
import { loadConfig } from './config/load.js'

// `manifest-guard healthcheck`: GET /healthz of the proxy this config describes, for the
// container HEALTHCHECK (it follows MANIFEST_GUARD_LISTEN and TLS, which a fixed URL would not).

export async function runHealthcheck(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const config = loadConfig({ argv, env })
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host
  const scheme = config.tls.cert === undefined ? 'http' : 'https'
  const url = `${scheme}://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}/healthz`
  try {
    const res = await request(url, { headersTimeout: 3_000, bodyTimeout: 3_000, signal: AbortSignal.timeout(5_000) })
    await res.body.dump()
    return res.statusCode === 200 ? 0 : 1
  } catch {
    return 1
  }
}
