// Who made a request, for the ledger and the decision log. Only a name ever leaves this
// file: the Basic password and the token itself are never kept. A bearer token's subject is
// read without verifying the signature (the registry verifies it), so it is labelled claimed.

export type Identity =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'basic'; readonly user: string }
  | { readonly kind: 'bearer'; readonly subject: string | undefined; readonly claimed: true }

export function identityOf(authorization: string | undefined): Identity {
  if (authorization === undefined || authorization === '') return { kind: 'anonymous' }
  const space = authorization.indexOf(' ')
  const scheme = authorization.slice(0, space).toLowerCase()
  const value = authorization.slice(space + 1).trim()
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return { kind: 'basic', user: sanitize(colon === -1 ? decoded : decoded.slice(0, colon)) }
  }
  if (scheme === 'bearer') {
    const payload = value.split('.')[1]
    let subject: string | undefined
    try {
      const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { sub?: unknown }
      subject = typeof claims.sub === 'string' ? sanitize(claims.sub) : undefined
    } catch {
      subject = undefined
    }
    return { kind: 'bearer', subject, claimed: true }
  }
  return { kind: 'anonymous' }
}

/** One short string for records: `alice`, `token:ci-bot (claimed)`, or undefined. */
export function identityLabel(identity: Identity): string | undefined {
  if (identity.kind === 'basic') return identity.user
  if (identity.kind === 'bearer') return identity.subject === undefined ? 'token (no subject)' : `token:${identity.subject} (claimed)`
  return undefined
}

function sanitize(name: string): string {
  // Names end up in logs and messages: printable and short.
  return name.replace(/[^\x20-\x7e]/g, '?').slice(0, 128)
}
