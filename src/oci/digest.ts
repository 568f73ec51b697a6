import { createHash } from 'node:crypto'

// Digest grammar from OCI image-spec descriptor.md "Digests":
//   digest    ::= algorithm ":" encoded
//   algorithm ::= component (separator component)*
//   component ::= [a-z0-9]+ ; separator ::= [+._-]
//   encoded   ::= [a-zA-Z0-9=_-]+
// Registered algorithms additionally require lower-case hex of a fixed length.

export type Digest = string & { readonly __digest: unique symbol }

const GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/
const REGISTERED: Readonly<Record<string, RegExp>> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
}

export type DigestProblem = 'malformed' | 'unsupported-algorithm' | 'bad-encoding'

/** Parses a digest string; returns the problem instead of throwing. */
export function parseDigest(value: unknown): { digest: Digest } | { problem: DigestProblem } {
  if (typeof value !== 'string' || value.length > 200 || !GRAMMAR.test(value)) return { problem: 'malformed' }
  const colon = value.indexOf(':')
  const algorithm = value.slice(0, colon)
  const encodingRule = REGISTERED[algorithm]
  if (encodingRule === undefined) return { problem: 'unsupported-algorithm' }
  if (!encodingRule.test(value.slice(colon + 1))) return { problem: 'bad-encoding' }
  return { digest: value as Digest }
}

export function isDigest(value: unknown): value is Digest {
  return 'digest' in parseDigest(value)
}

export function algorithmOf(digest: Digest): string {
  return digest.slice(0, digest.indexOf(':'))
}

/** The digest of exactly these bytes, in the algorithm of `like` (sha256 by default). */
export function digestOf(bytes: Uint8Array, algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest
}

/** Short form for messages: `sha256:73cd1a2b3c4d`. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':')
  return colon === -1 ? digest.slice(0, 12) : digest.slice(0, colon + 13)
}
