import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { RegistryPath } from '../oci/reference.js'
import type { Exchange } from './exchange.js'
import type { Forward } from './contracts.js'
import { pathOf, route } from './seam.js'

// Reads (GET and HEAD of registry paths the seam would forward untouched) go straight to the
// forwarder, before fastify's routing and request objects: they are most of a registry's
// requests, and per request that layer cost as much as the forwarding itself (measured with
// --cpu-prof against a trivial upstream; numbers in the README's performance section). The
// seam's own route() decides; everything else, and anything it would not simply forward,
// takes the full path through fastify and @fastify/http-proxy.

export type FastLane = (req: IncomingMessage, res: ServerResponse) => boolean

export function createFastLane(forward: Forward, logger: FastifyBaseLogger, nextId: () => string): FastLane {
  return (req, res) => {
    const method = req.method
    if (method !== 'GET' && method !== 'HEAD') return false
    const url = req.url ?? ''
    if (!url.startsWith('/v2/')) return false
    const path = pathOf(url)
    if (route(method, path) !== 'forward') return false
    forward(new ReadExchange(req, method, url, path, logger, nextId), res)
    return true
  }
}

class ReadExchange implements Exchange {
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly raw: IncomingMessage
  readonly query: unknown = {}
  readonly body: unknown = undefined
  registryPath: RegistryPath | null
  pushedManifest = null
  readonly #logger: FastifyBaseLogger
  readonly #nextId: () => string
  #id: string | undefined

  constructor(raw: IncomingMessage, method: string, url: string, path: RegistryPath, logger: FastifyBaseLogger, nextId: () => string) {
    this.raw = raw
    this.method = method
    this.url = url
    this.headers = raw.headers
    this.registryPath = path
    this.#logger = logger
    this.#nextId = nextId
  }

  // Only a log line ever needs these; most reads never do.
  get id(): string {
    this.#id ??= this.#nextId()
    return this.#id
  }

  get log(): FastifyBaseLogger {
    return this.#logger.child({ reqId: this.id })
  }
}
