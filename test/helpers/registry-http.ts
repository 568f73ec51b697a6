import type { Blob, BuiltImage, BuiltIndex } from './oci-builder.js'

// The distribution API spoken directly, for arranging registry state quickly and for
// requests a client tool would not send.

export type Auth = string | undefined

function headers(auth: Auth, extra: Record<string, string> = {}): Record<string, string> {
  return auth === undefined ? extra : { ...extra, authorization: auth }
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

export async function pushBlob(base: string, repo: string, b: Pick<Blob, 'bytes' | 'digest'>, auth?: Auth): Promise<void> {
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: headers(auth) })
  await start.arrayBuffer()
  if (start.status !== 202) throw new Error(`upload start for ${repo} answered ${start.status}`)
  const location = new URL(start.headers.get('location') ?? '', base)
  location.searchParams.set('digest', b.digest)
  const put = await fetch(location, {
    method: 'PUT',
    headers: headers(auth, { 'content-type': 'application/octet-stream' }),
    body: b.bytes,
  })
  const text = await put.text()
  if (put.status !== 201) throw new Error(`blob PUT ${b.digest} to ${repo} answered ${put.status}: ${text}`)
}

export async function putManifest(base: string, repo: string, ref: string, m: Pick<Blob, 'bytes' | 'mediaType'>, auth?: Auth, contentType?: string | null): Promise<Response> {
  const h: Record<string, string> = {}
  if (contentType !== null) h['content-type'] = contentType ?? m.mediaType
  return fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: headers(auth, h), body: m.bytes })
}

async function expectCreated(res: Response, what: string): Promise<void> {
  const text = await res.text()
  if (res.status !== 201) throw new Error(`${what} answered ${res.status}: ${text}`)
}

/** Pushes an image's blobs and its manifest (by digest, and by tag when given). */
export async function pushImage(base: string, repo: string, image: BuiltImage, tag?: string, auth?: Auth): Promise<void> {
  for (const b of [image.config, ...image.layers]) await pushBlob(base, repo, b, auth)
  await expectCreated(await putManifest(base, repo, tag ?? image.manifest.digest, image.manifest, auth), `manifest ${repo}:${tag ?? image.manifest.digest}`)
}

/** Pushes every child (recursively, by digest), then the index itself under `ref`. */
export async function pushIndex(base: string, repo: string, index: BuiltIndex, ref: string, auth?: Auth): Promise<void> {
  await pushChildren(base, repo, index, auth)
  await expectCreated(await putManifest(base, repo, ref, index.manifest, auth), `index ${repo}:${ref}`)
}

export async function pushChildren(base: string, repo: string, index: BuiltIndex, auth?: Auth): Promise<void> {
  for (const child of index.children) {
    if ('layers' in child) await pushImage(base, repo, child, undefined, auth)
    else await pushIndex(base, repo, child, child.manifest.digest, auth)
  }
}

export async function getManifest(base: string, repo: string, ref: string, auth?: Auth): Promise<{ status: number; bytes: Buffer; contentType: string | null; digest: string | null }> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, {
    headers: headers(auth, {
      accept: [
        'application/vnd.oci.image.index.v1+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.docker.distribution.manifest.v2+json',
      ].join(', '),
    }),
  })
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), contentType: res.headers.get('content-type'), digest: res.headers.get('docker-content-digest') }
}

export async function deleteManifest(base: string, repo: string, digest: string, auth?: Auth): Promise<number> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${digest}`, { method: 'DELETE', headers: headers(auth) })
  await res.arrayBuffer()
  return res.status
}

export async function errorsOf(res: Response): Promise<{ code: string; message: string; detail?: unknown }[]> {
  const body = (await res.json()) as { errors?: { code: string; message: string; detail?: unknown }[] }
  return body.errors ?? []
}
