import { isIP } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RegistryError } from '../oci/error-code.js'
import { sendRegistryError } from '../proxy/error-mapper.js'

// The DNS-rebinding guard of the admin listeners. A page on evil.example can make its own name
// resolve to 127.0.0.1 (or a pod's address) and then read, as its own origin, whatever the
// listener answers: with no admin token (the CLI's default) that is every decision and the
// checks run with lookupCredentials. The browser still sends the name the page was loaded
// from in Host, so a listener that answers only its own names is out of the page's reach.
//
// Its own names: the host of its listen address, `localhost`, the names in admin.allowedHosts,
// and any IP address. An address is never what a rebinding page sends (the attack needs a name
// the attacker controls), and it is what Prometheus (by pod IP), kubectl port-forward
// (127.0.0.1) and curl on the node send. A request without Host (HTTP/1.0) is no browser's.

/** Names every admin listener answers to, beside IP addresses. */
const LOCAL_NAMES = ['localhost']

/** The host part of a Host header, lower-case, without port, brackets or a trailing dot. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase()
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(h)
  if (bracketed !== null) return bracketed[1]!
  const colon = h.indexOf(':')
  // More than one colon without brackets is not a valid Host: keep it whole, so it matches nothing.
  const name = colon !== -1 && h.indexOf(':', colon + 1) === -1 ? h.slice(0, colon) : h
  return name.endsWith('.') ? name.slice(0, -1) : name
}

/** An onRequest hook answering 421 to a request that names another host. */
export function hostGuard(listenHost: string, allowed: readonly string[]): (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const names = new Set([...LOCAL_NAMES, ...allowed, listenHost].map(hostName))
  return async (request, reply) => {
    const header = request.headers.host
    if (header === undefined) return undefined
    const name = hostName(header)
    if (names.has(name) || isIP(name) !== 0) return undefined
    reply.header('connection', 'close')
    return sendRegistryError(
      reply,
      RegistryError.of(
        'DENIED',
        `manifest-guard admin: this listener does not answer for the host "${name.slice(0, 253)}"; it answers for its own address, localhost, IP addresses and the names in admin.allowedHosts (a guard against DNS rebinding)`,
        undefined,
        421,
      ),
    )
  }
}
