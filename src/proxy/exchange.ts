import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { FastifyBaseLogger } from 'fastify'
import type { Manifest } from '../oci/manifest.js'
import type { RegistryPath } from '../oci/reference.js'

// One client request as the forwarder and the traffic observer see it. A FastifyRequest is
// one; so is the light object the fast lane builds for reads (fast-lane.ts).

export interface Exchange {
  readonly id: string
  readonly method: string
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly raw: IncomingMessage
  readonly log: FastifyBaseLogger
  readonly query: unknown
  readonly body: unknown
  registryPath: RegistryPath | null
  /** The manifest a PUT carried, for the traffic observer to remember once the registry took it. */
  pushedManifest: { readonly copy: () => Buffer | undefined; readonly parsed?: Manifest } | null
}
