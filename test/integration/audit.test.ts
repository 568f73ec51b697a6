import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startFakeRegistry } from '../helpers/fake-registry.js'
import { buildImage, buildIndex } from '../helpers/oci-builder.js'
import { pushImage, putManifest } from '../helpers/registry-http.js'
import { freePort, waitFor } from '../helpers/tools.js'
import { proxyFor, registryFor } from '../helpers/fixture.js'

// Rejections reach the JSON Lines file and the webhook; a webhook that is slow or down never
// delays a push, and its failures are counted.

const amd = buildImage({ platform: { os: 'linux', architecture: 'amd64' }, seed: 'audit' })
const missing = buildImage({ platform: { os: 'linux', architecture: 'arm64' }, seed: 'audit' })
const broken = buildIndex([amd, missing])

function metricValue(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

t.test('the JSONL file and the webhook both receive the rejection', async (t) => {
  const registry = await registryFor(t)
  await pushImage(registry.url, 'team/app', amd)
  const received: { headers: Record<string, unknown>; body: Record<string, unknown> }[] = []
  const receiver = await startFakeRegistry((req, res) => {
    received.push({ headers: req.headers, body: JSON.parse(req.body.toString()) as Record<string, unknown> })
    res.writeHead(204)
    res.end()
  })
  t.teardown(() => receiver.close())
  const dir = mkdtempSync(join(tmpdir(), 'mg-audit-'))
  const file = join(dir, 'audit.jsonl')
  const proxy = await proxyFor(t, registry.url, { audit: { file, fileMaxBytes: 4096, fileKeep: 2, webhookUrl: receiver.url, webhookToken: 'hook-secret' } })

  t.equal((await putManifest(proxy.url, 'team/app', '1', broken.manifest)).status, 400)
  t.equal((await putManifest(proxy.url, 'team/app', 'ok', buildIndex([amd]).manifest)).status, 201)
  await proxy.app.guard.audit.file?.drained()
  await proxy.app.guard.audit.webhook?.drained()

  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.equal(lines.length, 1, 'only the rejection (accepted pushes are not audited by default)')
  t.match(lines[0], { event: 'push.rejected', repository: 'team/app', reference: '1', digest: broken.manifest.digest })

  t.equal(received.length, 1, 'one webhook delivery')
  t.match(received[0]!.headers['content-type'], 'application/cloudevents+json')
  t.equal(received[0]!.headers['authorization'], 'Bearer hook-secret')
  t.match(received[0]!.body, { specversion: '1.0', type: 'io.manifest-guard.push.rejected', source: 'manifest-guard', subject: 'team/app:1', data: { event: 'push.rejected', digest: broken.manifest.digest } })
  t.notMatch(JSON.stringify(proxy.logs.raw), 'hook-secret', 'the webhook token is in no log')

  t.test('the file rotates by size and keeps the configured number', async (t) => {
    for (let i = 0; i < 12; i++) await putManifest(proxy.url, 'team/app', `r${i}`, broken.manifest)
    await proxy.app.guard.audit.file?.drained()
    const files = readdirSync(dir).sort()
    t.same(files, ['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2'])
    for (const f of files) t.ok(readFileSync(join(dir, f)).length <= 4096, `${f} within the size bound`)
  })
})

t.test('a slow webhook does not delay the push; a dead one is counted', async (t) => {
  const registry = await registryFor(t)
  await pushImage(registry.url, 'team/app', amd)
  // The webhook answers only when the test says so: the push must come back while it still
  // holds the delivery, however slow the machine. A push that waited for it would hang, and
  // the race below turns that into a failure instead of a timeout.
  let answerWebhook = (): void => undefined
  const webhookHeld = new Promise<void>((resolve) => (answerWebhook = resolve))
  const sleeper = await startFakeRegistry(async (_req, res) => {
    await webhookHeld
    res.writeHead(204)
    res.end()
  })
  t.teardown(() => {
    answerWebhook()
    return sleeper.close()
  })
  const slow = await proxyFor(t, registry.url, { audit: { webhookUrl: sleeper.url, webhookTimeoutMs: 600_000 } })
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), 60_000)))
  const res = await Promise.race([putManifest(slow.url, 'team/app', '1', broken.manifest), hung])
  clearTimeout(timer)
  t.not(res, 'hung', 'the push did not wait for the webhook')
  t.equal(res === 'hung' ? 0 : res.status, 400, 'the rejection came back while the webhook still held its delivery')
  await waitFor(async () => sleeper.requests.length === 1, 30_000, 'the delivery to arrive at the webhook')
  answerWebhook()
  await slow.app.guard.audit.webhook?.drained()

  const dead = await proxyFor(t, registry.url, { audit: { webhookUrl: `http://127.0.0.1:${await freePort()}`, webhookRetries: 2, webhookTimeoutMs: 500 } })
  t.equal((await putManifest(dead.url, 'team/app', '1', broken.manifest)).status, 400)
  await dead.app.guard.audit.webhook?.drained()
  const metrics = await (await fetch(`${dead.adminUrl}/metrics`)).text()
  t.equal(metricValue(metrics, 'manifest_guard_audit_deliveries_total', 'sink="webhook",outcome="failed"'), 1, 'the failed delivery is counted')
  t.equal(metricValue(metrics, 'manifest_guard_audit_deliveries_total', 'sink="webhook",outcome="retried"'), 2, 'after two retries')
  t.equal(dead.logs.find((r) => r['msg'] === 'webhook delivery failed; the event is logged here instead').length, 1, 'and logged')
})
