import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError } from '../oci/error-code.js'
import { sendRegistryError } from '../proxy/error-mapper.js'

// The one admin token rule, for the /_guard/v1 API and the /_guard/ page alike. Tools send
// `Authorization: Bearer <token>`. A browser cannot add a header to a page that a person
// opens, but it answers a Basic challenge: it asks once, then sends the token as the Basic
// password with every request to this listener (the user name is not checked). No cookie
// (nothing for another site to ride on beyond what Basic already allows) and no token in
// the URL (query strings end up in history, proxy logs and Referer headers).

export const ADMIN_REALM = 'manifest-guard admin'

/** Both challenges: Basic makes a browser ask; Bearer tells tools what to send. */
const CHALLENGES = [`Basic realm="${ADMIN_REALM}", charset="UTF-8"`, `Bearer realm="${ADMIN_REALM}"`]

const REQUIRED = 'manifest-guard admin: the admin token is required, as `Authorization: Bearer <token>` or as the password of HTTP Basic auth (any user name)'

/** An onRequest hook; with no token configured everything passes (admin.listen is loopback by default). */
export function adminTokenHook(token: string | undefined): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const expected = token === undefined ? undefined : digestOf(token)
  return async (request, reply) => {
    if (expected === undefined) return undefined
    const given = presentedToken(request.headers.authorization)
    if (given !== undefined && timingSafeEqual(digestOf(given), expected)) return undefined
    reply.header('www-authenticate', CHALLENGES)
    return sendRegistryError(reply, RegistryError.of('UNAUTHORIZED', REQUIRED))
  }
}

/** The token a request carries: the Bearer value, or the Basic password. */
export function presentedToken(authorization: string | undefined): string | undefined {
  const m = /^(Bearer|Basic) +(\S+) *$/i.exec(authorization ?? '')
  if (m === null) return undefined
  if (m[1]!.toLowerCase() === 'bearer') return m[2]
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon === -1 ? undefined : decoded.slice(colon + 1)
}

/** Compared as digests: equal length whatever was sent, so the comparison leaks nothing of it. */
function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}
