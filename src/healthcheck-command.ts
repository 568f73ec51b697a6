import { Agent, request } from 'undici'
import { loadConfig } from './config/load.js'

// `manifest-guard healthcheck`: GET /healthz of the proxy this config describes, for the
// container HEALTHCHECK (it follows MANIFEST_GUARD_LISTEN and TLS, which a fixed URL would not).
// It asks the process beside it over loopback, whose certificate names the registry's public
// host (or is self-signed), not 127.0.0.1: verifying it would fail every TLS container and
// prove nothing about liveness, so it is not verified. Why a check failed goes to stderr.

export async function runHealthcheck(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  const config = loadConfig({ argv, env })
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host
  const tls = config.tls.cert !== undefined
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}/healthz`
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false }, headersTimeout: 3_000, bodyTimeout: 3_000 })
  try {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(5_000) })
    await res.body.dump()
    if (res.statusCode === 200) return 0
    process.stderr.write(`manifest-guard healthcheck: ${url} answered ${res.statusCode}\n`)
    return 1
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string }; message?: string }
    process.stderr.write(`manifest-guard healthcheck: ${url} failed: ${e.code ?? e.cause?.code ?? ''} ${e.message ?? ''}\n`.replace(/ +/g, ' '))
    return 1
  } finally {
    await dispatcher.close()
  }
}
