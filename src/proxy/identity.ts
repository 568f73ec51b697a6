// Who made a request, for the ledger and the decision log. Only a name ever leaves this
// file: the Basic password and the token itself are never kept. The proxy checks neither a
// password nor a token's signature (the registry does), so a name is labelled `claimed`
// until the registry has accepted a request that carried it.

export type Identity =
  | { readonly kind: 'anonymous' }
  | { readonly kind: 'basic'; readonly user: string; readonly claimed?: true }
  | { readonly kind: 'bearer'; readonly subject: string | undefined; readonly claimed?: true }

/** `accepted`: the registry answered a request carrying these credentials without refusing them. */
export function identityOf(authorization: string | undefined, accepted: boolean): Identity {
  const claim = accepted ? {} : { claimed: true as const }
  if (authorization === undefined || authorization === '') return { kind: 'anonymous' }
  const space = authorization.indexOf(' ')
  const scheme = authorization.slice(0, space).toLowerCase()
  const value = authorization.slice(space + 1).trim()
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    return { kind: 'basic', user: sanitize(colon === -1 ? decoded : decoded.slice(0, colon)), ...claim }
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
    return { kind: 'bearer', subject, ...claim }
  }
  return { kind: 'anonymous' }
}

/** One short string for records: `alice`, `token:ci-bot`, `alice (claimed)`, or undefined. */
export function identityLabel(identity: Identity): string | undefined {
  if (identity.kind === 'anonymous') return undefined
  const name = identity.kind === 'basic' ? identity.user : identity.subject === undefined ? 'token (no subject)' : `token:${identity.subject}`
  return identity.claimed === true ? `${name} (claimed)` : name
}

function sanitize(name: string): string {
  // Names end up in logs and messages: printable and short.
  return name.replace(/[^\x20-\x7e]/g, '?').slice(0, 128)
}
