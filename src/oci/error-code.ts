// The one table of wire error codes (OCI distribution-spec "Error Codes", plus the
// distribution codes clients already know). Clients print `<code in lower-case words>:
// <message>` and nothing else, so the code must be one they recognise and the whole
// explanation goes in `message` (docs/clients.md).

export const ErrorCode = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  // distribution answers 400, not the spec's 404; clients only read the code.
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 415, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  UNKNOWN: { status: 500, message: 'unknown error' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCodeName = keyof typeof ErrorCode

export interface WireError {
  readonly code: ErrorCodeName
  readonly message: string
  readonly detail?: unknown
}

export interface WireErrorBody {
  readonly errors: readonly WireError[]
}

/**
 * An error that carries its own wire form. Thrown (or returned) anywhere below `proxy/`; the
 * error mapper is the only place that turns it into a response.
 */
export class RegistryError extends Error {
  readonly status: number
  readonly errors: readonly WireError[]
  readonly headers: Readonly<Record<string, string>>

  constructor(status: number, errors: readonly WireError[], headers: Record<string, string> = {}) {
    super(errors.map((e) => `${e.code}: ${e.message}`).join('; '))
    this.name = 'RegistryError'
    this.status = status
    this.errors = errors
    this.headers = headers
  }

  /** One error with the code's own status. */
  static of(code: ErrorCodeName, message?: string, detail?: unknown, status?: number): RegistryError {
    const entry: WireError = detail === undefined ? { code, message: message ?? ErrorCode[code].message } : { code, message: message ?? ErrorCode[code].message, detail }
    return new RegistryError(status ?? ErrorCode[code].status, [entry])
  }

  body(): WireErrorBody {
    return { errors: this.errors }
  }
}
