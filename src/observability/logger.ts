import { pino, type DestinationStream, type Logger } from 'pino'

// Structured logs. Credentials never reach a log: the header paths below are censored
// wherever a request or response is serialised, and the proxy's own records carry the
// identity (a user name or a claimed token subject), never the header itself.

export const REDACTED_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'headers["set-cookie"]',
  'authorization',
  'cookie',
]

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'manifest-guard' },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

export type { Logger }
