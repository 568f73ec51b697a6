import type { IncomingHttpHeaders } from 'node:http'

// The origin the client used to reach the proxy: what Location headers and fix commands
// must name. Forwarded headers are believed only when configured (behind an ingress);
// otherwise anyone could make the proxy hand out URLs of their choosing.

export interface ClientOrigin {
  readonly proto: 'http' | 'https'
  readonly host: string
}

export function clientOrigin(request: { readonly headers: IncomingHttpHeaders }, trustForwarded: boolean, tls: boolean): ClientOrigin {
  const headers = request.headers
  let proto: 'http' | 'https' = tls ? 'https' : 'http'
  let host = headers.host ?? ''
  if (trustForwarded) {
    const fProto = firstValue(headers['x-forwarded-proto'])
    if (fProto === 'http' || fProto === 'https') proto = fProto
    const fHost = firstValue(headers['x-forwarded-host'])
    if (fHost !== undefined && fHost !== '') host = fHost
  }
  return { proto, host }
}

/** First entry of a header that proxies append to (`a, b` or repeated). */
export function firstValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value
  const first = v?.split(',', 1)[0]?.trim()
  return first === '' ? undefined : first
}
