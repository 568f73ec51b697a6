import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { CHART, helm } from '../helpers/helm.js'
import { Agent, request } from 'undici'
import { assertOk, DockerCli, skopeoPush } from '../helpers/clients.js'
import { assertEngineOk, buildScratchImage, startDockerd } from '../helpers/dockerd.js'
import { buildImage, buildIndex, ociLayoutRef } from '../helpers/oci-builder.js'
import { buildProjectImage, readDockerfile } from '../helpers/project-image.js'
import { startRegistry } from '../helpers/registry.js'
import { getManifest, putManifest } from '../helpers/registry-http.js'
import { selfSignedCert } from '../helpers/tls-cert.js'
import { freePort, waitFor } from '../helpers/tools.js'

// The project's image as users get it: built from the Dockerfile by a real docker engine and
// run as it ships (its own USER, a read-only root filesystem, host networking on loopback), in
// front of a real registry. Its own npm script (npm run test:image; .ci/run runs it): building
// on vfs storage takes minutes, more than the rest of the suite together.

const TAG = 'manifest-guard:image-test'
const dockerfile = readDockerfile()

// overlay2 where the kernel allows it: the build is several times faster than on vfs.
const engine = await startDockerd({ storageDriver: 'auto' })
t.teardown(() => engine.stop())
const built = await buildProjectImage(engine, TAG)
t.comment(`image built (${engine.storageDriver} storage) on a stand-in for ${built.base} (Node.js ${built.nodeVersion}): prepare ${built.timings.prepare} s, import ${built.timings.import} s, build ${built.timings.build} s`)

const registry = await startRegistry()
t.teardown(() => registry.stop())

interface Container {
  readonly name: string
  readonly port: number
  readonly adminPort: number
  readonly apiPort: number
  logs(): Promise<string>
}

/** Runs the image as it ships, read-only, on the host's loopback; removed at teardown. */
async function runImage(name: string, env: Record<string, string | undefined>, extra: readonly string[] = []): Promise<Container> {
  const port = await freePort()
  const adminPort = await freePort()
  const apiPort = await freePort()
  const vars = {
    MANIFEST_GUARD_UPSTREAM: registry.url,
    MANIFEST_GUARD_LISTEN: `127.0.0.1:${port}`,
    MANIFEST_GUARD_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    MANIFEST_GUARD_ADMIN_API_LISTEN: `127.0.0.1:${apiPort}`,
    ...env,
  }
  assertEngineOk(
    await engine.docker(['run', '--detach', '--name', name, '--network', 'host', '--read-only', ...Object.entries(vars).flatMap(([k, v]) => (v === undefined ? [] : ['--env', `${k}=${v}`])), ...extra, TAG]),
    `docker run ${name}`,
  )
  t.teardown(async () => void (await engine.docker(['rm', '--force', name])))
  const logs = async (): Promise<string> => {
    const r = await engine.docker(['logs', name])
    return r.stdout + r.stderr
  }
  return { name, port, adminPort, apiPort, logs }
}

/** Waits for /healthz through the container's listener; fails with the container's log. */
async function waitServing(c: Container, url: string, dispatcher?: Agent): Promise<void> {
  try {
    await waitFor(async () => {
      const state = (await engine.docker(['inspect', '--format', '{{.State.Status}}', c.name])).stdout.trim()
      if (state !== 'running') throw new Error(`container ${c.name} is ${state}`)
      const res = await request(`${url}/healthz`, { dispatcher }).catch(() => undefined)
      await res?.body.dump()
      return res?.statusCode === 200
    }, 60_000, `${c.name} to serve ${url}`)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- docker logs ${c.name} ---\n${await c.logs()}`)
  }
}

/** The engine's own HEALTHCHECK verdict (the Dockerfile's: every 15 s, 3 retries). */
async function healthStatus(name: string): Promise<{ status: string; log: string }> {
  const deadline = Date.now() + 120_000
  for (;;) {
    const r = await engine.docker(['inspect', '--format', '{{json .State.Health}}', name])
    const health = JSON.parse(r.stdout) as { Status: string; Log: { ExitCode: number; Output: string }[] } | null
    const status = health?.Status ?? 'none'
    if (status === 'healthy' || status === 'unhealthy' || Date.now() > deadline) return { status, log: JSON.stringify(health?.Log ?? []) }
    await new Promise((resolve) => setTimeout(resolve, 1_000))
  }
}

// The TLS container's certificate: self-signed for 127.0.0.1, readable by the image's user.
const { dir: tlsDir } = await selfSignedCert('mg-image-tls-')
t.teardown(() => rmSync(tlsDir, { recursive: true, force: true }))
chmodSync(tlsDir, 0o755)
chmodSync(join(tlsDir, 'tls.key'), 0o644)

// Both start now, so their first HEALTHCHECK runs (15 s in) overlap.
const plain = await runImage('mg-image-plain', {})
const tls = await runImage('mg-image-tls', { MANIFEST_GUARD_TLS_CERT: '/tls/tls.crt', MANIFEST_GUARD_TLS_KEY: '/tls/tls.key' }, ['--volume', `${tlsDir}:/tls:ro`])

t.test("the Dockerfile's base is stood in for, and the image is what the Dockerfile says", async (t) => {
  t.equal(dockerfile.buildImageDefault, dockerfile.base, "by default the build stage uses the runtime's base: users' builds are unchanged")
  // By number: Kubernetes verifies runAsNonRoot only for a numeric user (issue 23).
  t.equal(dockerfile.user, '1000:1000', 'the Dockerfile names an unprivileged user by number')
  const config = JSON.parse(assertEngineOk(await engine.docker(['image', 'inspect', '--format', '{{json .Config}}', TAG]), 'inspect image').stdout) as {
    User: string
    Entrypoint: string[]
    Healthcheck?: { Test: string[] }
    Labels?: Record<string, string>
  }
  t.equal(config.User, '1000:1000', 'the image runs as 1000:1000')
  t.match(
    config.Labels,
    {
      'org.opencontainers.image.title': 'manifest-guard',
      'org.opencontainers.image.source': 'https://github.com/manifest-guard/manifest-guard',
      'org.opencontainers.image.licenses': 'Apache-2.0',
      'org.opencontainers.image.version': /^\d+\.\d+\.\d+/,
    },
    'with the OCI image labels',
  )
  t.same(config.Entrypoint, ['node', 'dist/src/cli.js'])
  t.same(config.Healthcheck?.Test, ['CMD', 'node', 'dist/src/cli.js', 'healthcheck'], 'the HEALTHCHECK runs manifest-guard healthcheck')
  const node = assertEngineOk(await engine.docker(['run', '--rm', '--network', 'none', '--entrypoint', 'node', TAG, '--version']), 'node --version in the image').stdout.trim()
  t.equal(node, built.nodeVersion, `Node.js ${node} from the stand-in base`)
})

t.test('a container of the image: non-root, read-only, serving, healthy', async (t) => {
  await waitServing(plain, `http://127.0.0.1:${plain.port}`)
  const v2 = await request(`http://127.0.0.1:${plain.port}/v2/`)
  await v2.body.dump()
  t.equal(v2.statusCode, 200, 'GET /v2/ through the container reaches the registry')
  t.equal(v2.headers['docker-distribution-api-version'], 'registry/2.0', "and carries the registry's own header")

  const id = assertEngineOk(await engine.docker(['exec', plain.name, 'id']), 'id in the container').stdout.trim()
  t.match(id, /^uid=1000\(node\) gid=1000\(node\)/, `it runs as the image's user node: ${id}`)
  const inspect = assertEngineOk(await engine.docker(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}', plain.name]), 'inspect container').stdout.trim()
  t.equal(inspect, 'true 1000:1000', 'with a read-only root filesystem')
  for (const path of ['/probe', '/app/probe', '/tmp/probe']) {
    const write = await engine.docker(['exec', plain.name, 'sh', '-c', `echo probe > ${path}`])
    t.not(write.code, 0, `writing ${path} fails`)
    t.match(write.stderr, 'Read-only file system', `…because the root filesystem is read-only: ${write.stderr.trim()}`)
  }
  t.match((await engine.docker(['exec', '--user', 'root', plain.name, 'sh', '-c', 'echo probe > /probe'])).stderr, 'Read-only file system', 'not even root can write to /')

  const check = await engine.docker(['exec', plain.name, 'node', 'dist/src/cli.js', 'healthcheck'])
  t.equal(check.code, 0, `manifest-guard healthcheck reports healthy (${check.stderr.trim()})`)
  const elsewhere = await engine.docker(['exec', plain.name, 'node', 'dist/src/cli.js', 'healthcheck', '--listen', `127.0.0.1:${await freePort()}`])
  t.equal(elsewhere.code, 1, 'and unhealthy where no proxy listens')
  const health = await healthStatus(plain.name)
  t.equal(health.status, 'healthy', `the engine's HEALTHCHECK says healthy (${health.log})`)
})

t.test('without MANIFEST_GUARD_UPSTREAM the image refuses to start rather than proxy to itself', async (t) => {
  // The baked config names http://127.0.0.1:5000 and the image listens on 0.0.0.0:5000.
  const r = await engine.docker(['run', '--rm', '--network', 'none', '--read-only', TAG])
  t.equal(r.code, 2, 'exit 2, a configuration error')
  t.match(r.stderr.trim(), /^manifest-guard: invalid config: upstream: http:\/\/127\.0\.0\.1:5000 is the proxy's own listen address \(0\.0\.0\.0:5000\); set upstream \(MANIFEST_GUARD_UPSTREAM/, 'saying why')
  t.equal(r.stderr.trim().split('\n').length, 1, 'in one line')
})

t.test("an HTTPS registry behind a private CA, trusted through the chart's CA mechanism", async (t) => {
  const ca = await selfSignedCert('mg-image-ca-')
  t.teardown(() => rmSync(ca.dir, { recursive: true, force: true }))
  chmodSync(ca.dir, 0o755)
  chmodSync(ca.key, 0o644)
  const secure = await startRegistry({ tls: { cert: ca.cert, key: ca.key } })
  t.teardown(() => secure.stop())
  // What the chart renders for caBundle: the config file (caFile set) and where the CA is mounted.
  const rendered = await helm(['template', 'guard', CHART, '--set', `config.upstream=${secure.url}`, '--set', 'caBundle.configMapName=company-ca', '--set', 'config.admin.enabled=false'])
  t.equal(rendered.code, 0, rendered.stderr)
  const docs = parseAllDocuments(rendered.stdout).map((d) => d.toJSON() as { kind: string; data?: Record<string, string>; spec?: any })
  const configFile = docs.find((d) => d?.kind === 'ConfigMap')!.data!['manifest-guard.yaml']!
  const container = docs.find((d) => d?.kind === 'Deployment')!.spec.template.spec.containers[0]
  const caMount = (container.volumeMounts as { name: string; mountPath: string }[]).find((m) => m.name === 'ca-bundle')!.mountPath
  const configMount = (container.volumeMounts as { name: string; mountPath: string }[]).find((m) => m.name === 'config')!.mountPath
  const env = Object.fromEntries((container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]))
  t.match(configFile, `caFile: ${caMount}/ca.crt`, 'the chart names the mounted bundle in caFile')
  const dir = mkdtempSync(join(tmpdir(), 'mg-image-chart-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'config'))
  mkdirSync(join(dir, 'ca'))
  writeFileSync(join(dir, 'config', 'manifest-guard.yaml'), configFile)
  copyFileSync(ca.cert, join(dir, 'ca', 'ca.crt'))
  for (const d of [dir, join(dir, 'config'), join(dir, 'ca')]) chmodSync(d, 0o755)
  const mounts = ['--volume', `${join(dir, 'config')}:${configMount}:ro`, '--volume', `${join(dir, 'ca')}:${caMount}:ro`]
  // As the chart runs it (its MANIFEST_GUARD_CONFIG), on a loopback port of the host.
  const c = await runImage('mg-image-private-ca', { MANIFEST_GUARD_UPSTREAM: undefined, MANIFEST_GUARD_CONFIG: env['MANIFEST_GUARD_CONFIG']! }, mounts)
  await waitServing(c, `http://127.0.0.1:${c.port}`)
  const v2 = await request(`http://127.0.0.1:${c.port}/v2/`)
  await v2.body.dump()
  t.equal(v2.statusCode, 200, `GET /v2/ through the container reaches the HTTPS registry (${await c.logs()})`)
  const index = buildIndex([buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'image-private-ca' })])
  const child = index.children[0] as ReturnType<typeof buildImage>
  const base = `http://127.0.0.1:${c.port}`
  for (const b of [child.config, ...child.layers]) {
    const start = await request(`${base}/v2/ca/app/blobs/uploads/`, { method: 'POST' })
    await start.body.dump()
    const location = String(start.headers['location'])
    const put = await request(`${location.startsWith('http') ? location : base + location}${location.includes('?') ? '&' : '?'}digest=${b.digest}`, { method: 'PUT', body: b.bytes, headers: { 'content-type': 'application/octet-stream' } })
    await put.body.dump()
    t.equal(put.statusCode, 201, 'a blob through the container')
  }
  t.equal((await putManifest(base, 'ca/app', child.manifest.digest, child.manifest)).status, 201)
  const list = await putManifest(base, 'ca/app', '1.0', index.manifest)
  t.equal(list.status, 201, "a sound list accepted: the container's own lookups trusted the registry too")
})

t.test('a container serving TLS: answers over verified TLS, healthcheck healthy', async (t) => {
  const ca = readFileSync(join(tlsDir, 'tls.crt'), 'utf8')
  const verified = new Agent({ connect: { ca } })
  t.teardown(() => verified.close())
  await waitServing(tls, `https://127.0.0.1:${tls.port}`, verified)
  const v2 = await request(`https://127.0.0.1:${tls.port}/v2/`, { dispatcher: verified })
  await v2.body.dump()
  t.equal(v2.statusCode, 200, 'GET /v2/ over TLS through the container reaches the registry')

  const check = await engine.docker(['exec', tls.name, 'node', 'dist/src/cli.js', 'healthcheck'])
  t.equal(check.code, 0, `manifest-guard healthcheck reports a TLS proxy healthy (exit ${check.code} ${check.stderr.trim()})`)
  const health = await healthStatus(tls.name)
  t.equal(health.status, 'healthy', `the engine's HEALTHCHECK says healthy (${health.log})`)
})

t.test('list pushes are validated by the container: stale and broken lists rejected, a sound one accepted', async (t) => {
  await waitServing(plain, `http://127.0.0.1:${plain.port}`)
  const host = `127.0.0.1:${plain.port}`
  const repo = `${host}/team/app`
  const docker = new DockerCli()
  t.teardown(() => docker.cleanup())
  const amd64 = { os: 'linux', architecture: 'amd64' }
  const oldAmd = buildImage({ platform: amd64, seed: 'image-old' })
  const arm = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'image-old' })
  assertOk(await skopeoPush(ociLayoutRef(oldAmd), `${repo}:1.0-amd64`), 'push amd64')
  assertOk(await skopeoPush(ociLayoutRef(arm), `${repo}:1.0-arm64`), 'push arm64')
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'create the list (kept locally)')

  // The amd64 image is rebuilt and pushed; the list docker kept still names the old build.
  const newAmd = buildImage({ platform: amd64, seed: 'image-new' })
  assertOk(await skopeoPush(ociLayoutRef(newAmd), `${repo}:1.0-amd64`), 'push the rebuilt amd64')
  assertOk(await docker.run(['manifest', 'create', '--insecure', '--amend', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'create --amend')
  const stale = await docker.run(['manifest', 'push', '--insecure', `${repo}:1.0`])
  t.not(stale.code, 0, 'the stale list is rejected')
  t.match(stale.stderr, `stale child ${oldAmd.manifest.digest} (linux/amd64) is an old build`, 'docker prints why, naming the stale child')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).status, 404, 'nothing was stored')

  // A list naming a child that was never pushed.
  const never = buildImage({ platform: { os: 'linux', architecture: 's390x' }, seed: 'image-never' })
  const broken = buildIndex([newAmd, never])
  const answer = await putManifest(`http://${host}`, 'team/app', 'broken', broken.manifest)
  const body = (await answer.json()) as { errors: { code: string; message: string }[] }
  t.equal(answer.status, 400, 'a list naming a never-pushed child is rejected with 400')
  t.equal(body.errors[0]?.code, 'MANIFEST_BLOB_UNKNOWN')
  t.match(body.errors[0]?.message, never.manifest.digest, 'naming the missing child')

  // The fix: a list made from the current images goes through.
  assertOk(await docker.run(['manifest', 'rm', `${repo}:1.0`]), 'manifest rm')
  assertOk(await docker.run(['manifest', 'create', '--insecure', `${repo}:1.0`, `${repo}:1.0-amd64`, `${repo}:1.0-arm64`]), 'create again')
  const sound = assertOk(await docker.run(['manifest', 'push', '--insecure', `${repo}:1.0`]), 'push the sound list')
  t.equal((await getManifest(registry.url, 'team/app', '1.0')).digest, sound.stdout.trim(), 'the sound list is stored')

  const decisions = (await plain.logs())
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as { event?: string }]
      } catch {
        return []
      }
    })
    .filter((r) => r.event?.startsWith('push.') === true)
    .map((r) => r.event)
  t.same(decisions, ['push.rejected', 'push.rejected', 'push.accepted'], "the container's log holds one decision record per list push")

  // The admin listeners of the container: the metrics, and (on a listener of its own) the page of recent decisions.
  const metrics = await request(`http://127.0.0.1:${plain.adminPort}/metrics`)
  const text = await metrics.body.text()
  t.match(text, /^manifest_guard_list_pushes_total\{result="rejected"\} 2$/m, 'metrics count the two rejected pushes')
  t.match(text, /^manifest_guard_list_pushes_total\{result="accepted"\} 1$/m, 'and the accepted one')
  const onMetrics = await request(`http://127.0.0.1:${plain.adminPort}/_guard/`)
  await onMetrics.body.dump()
  t.equal(onMetrics.statusCode, 404, 'the published metrics port does not serve the decisions')
  const page = await request(`http://127.0.0.1:${plain.apiPort}/_guard/`)
  const html = await page.body.text()
  t.equal(page.statusCode, 200, 'the decisions page answers on the API listener')
  t.match(html, oldAmd.manifest.digest, 'and shows the stale child of the rejected push')
})

t.test('the docker engine pushes and pulls through the container', async (t) => {
  await waitServing(plain, `http://127.0.0.1:${plain.port}`)
  const ref = `127.0.0.1:${plain.port}/team/engine:1.0`
  const id = await buildScratchImage(engine, 'through-the-image', [ref])
  const push = assertEngineOk(await engine.docker(['push', ref]), 'docker push through the container')
  const digest = /digest: (sha256:[a-f0-9]{64})/.exec(push.stdout)?.[1]
  t.equal((await getManifest(registry.url, 'team/engine', '1.0')).digest, digest, 'the registry holds what docker pushed')
  assertEngineOk(await engine.docker(['image', 'rm', '--force', id]), 'docker image rm')
  assertEngineOk(await engine.docker(['pull', ref]), 'docker pull through the container')
  t.equal(assertEngineOk(await engine.docker(['image', 'inspect', '--format', '{{.Id}}', ref]), 'inspect').stdout.trim(), id, 'the pulled image is the one built')
})
