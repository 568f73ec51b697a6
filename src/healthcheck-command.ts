import { Agent, request } from 'undici'
import { ConfigError, loadConfig } from './config/load.js'

// `manifest-guard healthcheck`: GET /healthz of the proxy this config describes, for the
// container HEALTHCHECK (it follows MANIFEST_GUARD_LISTEN and TLS, which a fixed URL would not).
// It asks the process beside it over loopback, whose certificate names the registry's public
// host (or is self-signed), not 127.0.0.1: verifying it would fail every TLS container and
// prove nothing about liveness, so it is not verified. Why a check failed goes to stderr.

/** Docker's HEALTHCHECK reads 0 healthy, 1 unhealthy; 2 is reserved, so never used here. */
const UNHEALTHY = 1
/**
 * For the request alone, well under the image's HEALTHCHECK --timeout (10 s), which also pays
 * for starting Node: the reason is printed before Docker gives up. /healthz answers in ms.
 */
const TIMEOUT_MS = 4_000

export async function runHealthcheck(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  let config
  try {
    config = loadConfig({ argv, env })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`manifest-guard healthcheck: ${err.message}\n`)
    return UNHEALTHY
  }
  const host = config.listen.host === '0.0.0.0' || config.listen.host === '::' ? '127.0.0.1' : config.listen.host
  const tls = config.tls.cert !== undefined
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.listen.port}/healthz`
  const dispatcher = new Agent({ connect: { rejectUnauthorized: false }, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS })
  try {
    const res = await request(url, { dispatcher, signal: AbortSignal.timeout(TIMEOUT_MS) })
    await res.body.dump()
    if (res.statusCode === 200) return 0
    process.stderr.write(`manifest-guard healthcheck: ${url} answered ${res.statusCode}\n`)
    return UNHEALTHY
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string }; message?: string }
    // OpenSSL's messages run over several lines and name source files; say what they mean.
    const message = /wrong version number/.test(e.message ?? '')
      ? 'the listener does not speak TLS (tls.cert is set here: does the proxy serve TLS?)'
      : (e.message ?? '').split('\n')[0]
    process.stderr.write(`manifest-guard healthcheck: ${url} failed: ${e.code ?? e.cause?.code ?? ''} ${message}\n`.replace(/ +/g, ' '))
    return UNHEALTHY
  } finally {
    await dispatcher.close()
  }
}
