import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Pool } from 'undici'

// An HTTP relay between the proxy and the registry that records every request the proxy
// makes (method, path, Authorization), to check what the proxy sends on whose behalf; and,
// with `beforeForward`, acts on the registry between the proxy's checks and its forwarding.

export interface RecordedRequest {
  readonly method: string
  readonly url: string
  readonly authorization: string | undefined
  /** The registry's answer, once it came (502 when the relay could not reach it). */
  status?: number
}

export interface RecordingRelay {
  readonly url: string
  readonly requests: RecordedRequest[]
  close(): Promise<void>
}

export interface RelayOptions {
  /**
   * Turn every cross-repository mount into a plain upload start, as a registry does whose
   * repositories do not share storage (distribution itself always mounts what it holds).
   */
  readonly refuseMounts?: boolean
  /** Runs (and is awaited) before a request goes on to the registry. */
  readonly beforeForward?: (request: RecordedRequest) => Promise<void>
}

export async function startRecordingRelay(target: string, options: RelayOptions = {}): Promise<RecordingRelay> {
  const pool = new Pool(target)
  const requests: RecordedRequest[] = []
  const server: Server = createServer(async (req, res) => {
    const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization }
    requests.push(record)
    if (options.refuseMounts === true && req.method === 'POST' && /[?&]mount=/.test(req.url ?? '')) req.url = (req.url ?? '').replace(/\?.*$/, '')
    await options.beforeForward?.(record)
    const headers = { ...req.headers }
    delete headers.connection
    delete headers['transfer-encoding']
    pool.request({ method: req.method as 'GET', path: req.url ?? '/', headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }).then(
      (up) => {
        record.status = up.statusCode
        const out = { ...up.headers }
        delete out.connection
        delete out['transfer-encoding']
        res.writeHead(up.statusCode, out as Record<string, string>)
        up.body.pipe(res)
      },
      (err: Error) => {
        record.status = 502
        res.writeHead(502).end(err.message)
      },
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: async () => {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await pool.close()
    },
  }
}

/** The `sub` claim of a bearer token, read without verifying it (for assertions only). */
export function tokenSubject(authorization: string | undefined): string | undefined {
  const payload = /^Bearer [^.]+\.([^.]+)\./.exec(authorization ?? '')?.[1]
  if (payload === undefined) return undefined
  return (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub?: string }).sub
}
