import t from 'tap'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigMap, Secret, Service, ServiceAccount } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { loadConfig } from '../../src/config/load.js'
import { FIELDS } from '../../src/config/schema.js'
import { CHART, helm } from '../helpers/helm.js'

// The Helm chart: lint --strict, render with the defaults and with every optional part on,
// validate every object against the Kubernetes schemas, and check what must hold.

type Obj = { kind: string; apiVersion: string; metadata: { name: string; annotations?: Record<string, string> }; spec?: Record<string, unknown>; data?: Record<string, string> }

const VALIDATORS: Record<string, new (o: never) => { validate(): void }> = {
  ConfigMap: ConfigMap as never,
  Secret: Secret as never,
  Service: Service as never,
  ServiceAccount: ServiceAccount as never,
  Deployment: Deployment as never,
  HorizontalPodAutoscaler: HorizontalPodAutoscaler as never,
  Ingress: Ingress as never,
  NetworkPolicy: NetworkPolicy as never,
  PodDisruptionBudget: PodDisruptionBudget as never,
}

const ALL_ON = join(CHART, '../../test/fixtures/helm-all-on.yaml')
const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { config: Record<string, unknown> }

async function render(extra: string[] = []): Promise<Obj[]> {
  const r = await helm(['template', 'guard', CHART, '--namespace', 'registry', ...extra])
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`)
  return parseAllDocuments(r.stdout).map((d) => d.toJSON() as Obj).filter((o) => o !== null)
}

function leafKeys(obj: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0 && k !== 'rules' ? leafKeys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  )
}

t.test('helm lint --strict', async (t) => {
  for (const extra of [[], ['-f', ALL_ON]]) {
    const r = await helm(['lint', '--strict', CHART, ...extra])
    t.equal(r.code, 0, `lint ${extra.join(' ') || 'defaults'}: ${r.stdout}${r.stderr}`)
  }
})

t.test('values.config mirrors the config schema key for key (secrets only by reference)', async (t) => {
  const expected = FIELDS.filter((f) => f.secret !== true).map((f) => f.key).sort()
  t.same(leafKeys(values.config).sort(), expected)
})

for (const [name, extra] of [['defaults', []], ['every optional part on', ['-f', ALL_ON]]] as const) {
  t.test(`rendered with ${name}`, async (t) => {
    const objects = await render([...extra])
    const byKind = (kind: string) => objects.filter((o) => o.kind === kind)
    for (const o of objects) {
      const Model = VALIDATORS[o.kind]
      if (Model === undefined) continue
      t.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name} is a valid Kubernetes object`)
    }
    const deployment = byKind('Deployment')[0] as unknown as { spec: { replicas?: number; template: { spec: Record<string, any> } } }
    const pod = deployment.spec.template.spec
    const container = pod['containers'][0]
    t.equal(container.readinessProbe.httpGet.path, '/readyz')
    t.equal(container.livenessProbe.httpGet.path, '/healthz')
    t.equal(container.readinessProbe.httpGet.port, 'http')
    t.match(pod['securityContext'], { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
    t.match(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } })
    t.ok(container.resources.requests.cpu && container.resources.limits.memory, 'resources set')
    t.equal(pod['automountServiceAccountToken'], false)
    t.equal(byKind('PodDisruptionBudget').length, 1)

    const rendered = parseYaml(byKind('ConfigMap')[0]!.data!['manifest-guard.yaml']!) as Record<string, any>
    const service = byKind('Service')[0] as unknown as { spec: { ports: { name: string }[] } }
    const policy = byKind('NetworkPolicy')[0] as unknown as { spec: { ingress: { ports: { port: string }[]; from?: unknown[] }[] } } | undefined
    if (name === 'defaults') {
      const { admin, ...rest } = rendered
      const { admin: valuesAdmin, ...valuesRest } = values.config as Record<string, any>
      t.same(rest, valuesRest, 'the config file is values.config')
      t.same(admin, { ...valuesAdmin, tokenFile: '/etc/manifest-guard/secrets/admin/token' }, 'with the generated admin token')
      t.equal(deployment.spec.replicas, 2, 'two replicas by default')
      t.equal(byKind('Ingress').length + byKind('HorizontalPodAutoscaler').length + byKind('ServiceMonitor').length, 0, 'optional parts off')
      t.doesNotThrow(() => loadConfig({ values: { ...rendered, admin: { ...admin, tokenFile: undefined } } }), 'and manifest-guard accepts it')
      // The admin side is closed by default: metrics on the Service, the API pod-local and behind a token.
      t.same(service.spec.ports.map((p) => p.name), ['http', 'metrics'], 'the Service publishes the proxy and /metrics only')
      t.match(admin.apiListen, /^127\.0\.0\.1:/, 'the /_guard/v1 API listens inside the pod only')
      const secret = byKind('Secret')[0] as unknown as { metadata: { name: string }; data: Record<string, string> }
      t.equal(secret.metadata.name, 'guard-manifest-guard-admin-token', 'an admin token is generated')
      t.ok(Buffer.from(secret.data['token'] ?? '', 'base64').length >= 32, 'a long random token')
      t.ok(container.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/etc/manifest-guard/secrets/admin'), 'and mounted')
      t.ok(policy !== undefined, 'the NetworkPolicy is on')
      t.same(policy!.spec.ingress.map((r) => r.ports[0]!.port), ['http', 'metrics'])
      t.ok((policy!.spec.ingress[1]!.from ?? []).length > 0, 'metrics only from the monitoring namespace')
    } else {
      t.equal(rendered['ledger'].store, 'redis')
      t.equal(rendered['admin'].tokenFile, '/etc/manifest-guard/secrets/admin/token', 'secrets become file paths')
      t.equal(rendered['audit'].webhookTokenFile, '/etc/manifest-guard/secrets/webhook/token')
      t.equal(rendered['lookupCredentials'].passwordFile, '/etc/manifest-guard/secrets/lookup/password')
      t.equal(rendered['ledger'].redisPasswordFile, '/etc/manifest-guard/secrets/redis/password')
      t.equal(rendered['registryEvents'].tokenFile, '/etc/manifest-guard/secrets/events/token')
      t.same([rendered['tls'].cert, rendered['tls'].key], ['/etc/manifest-guard/tls/tls.crt', '/etc/manifest-guard/tls/tls.key'])
      const mounts = container.volumeMounts.map((m: { mountPath: string }) => m.mountPath)
      for (const dir of ['/etc/manifest-guard/tls', '/etc/manifest-guard/secrets/admin', '/etc/manifest-guard/secrets/redis', '/var/log/manifest-guard']) t.ok(mounts.includes(dir), `mounts ${dir}`)
      t.equal(container.readinessProbe.httpGet.scheme, 'HTTPS', 'probes speak TLS when the proxy does')
      t.notMatch(JSON.stringify(objects), /password: |token: [A-Za-z0-9]/, 'no secret value in any object')
      const ingress = byKind('Ingress')[0]!
      const annotations = ingress.metadata.annotations ?? {}
      t.equal(annotations['nginx.ingress.kubernetes.io/proxy-body-size'], '0', 'no body size limit')
      t.equal(annotations['nginx.ingress.kubernetes.io/proxy-request-buffering'], 'off', 'no request buffering')
      t.equal(annotations['nginx.ingress.kubernetes.io/proxy-buffering'], 'off')
      t.equal(annotations['nginx.ingress.kubernetes.io/backend-protocol'], 'HTTPS')
      t.equal(deployment.spec.replicas, undefined, 'the autoscaler owns the replica count')
      t.match(byKind('HorizontalPodAutoscaler')[0]!.spec, { minReplicas: 2, maxReplicas: 6 })
      t.match(byKind('ServiceMonitor')[0]!.spec, { endpoints: [{ port: 'metrics', path: '/metrics' }] })
      t.equal(byKind('NetworkPolicy').length, 1)
      t.same(service.spec.ports.map((p) => p.name), ['http', 'metrics', 'api'], 'the API published when asked')
      t.same(policy!.spec.ingress.map((r) => r.ports[0]!.port), ['http', 'metrics', 'api'])
      t.equal(byKind('Secret').length, 0, 'a given admin token Secret is used, none generated')
    }
  })
}

t.test('publishing the API while it listens on loopback fails with why', async (t) => {
  const r = await helm(['template', 'guard', CHART, '--set', 'service.apiPort=9465'])
  t.not(r.code, 0)
  t.match(r.stderr, 'set config.admin.apiListen to 0.0.0.0:PORT')
})

t.test('NOTES tell how to point docker at it', async (t) => {
  // helm renders NOTES.txt only on install, which needs a cluster: render a copy of it as a
  // plain template instead.
  const copy = join(mkdtempSync(join(tmpdir(), 'mg-chart-')), 'manifest-guard')
  cpSync(CHART, copy, { recursive: true })
  const text = readFileSync(join(copy, 'templates/NOTES.txt'), 'utf8')
  rmSync(join(copy, 'templates/NOTES.txt'))
  writeFileSync(join(copy, 'templates/_notes.tpl'), `{{- define "notes" -}}\n${text}{{- end -}}\n`)
  writeFileSync(join(copy, 'templates/notes-rendered.yaml'), 'notes: {{ include "notes" . | quote }}\n')
  const notes = async (extra: string[]) => {
    const r = await helm(['template', 'guard', copy, '--namespace', 'registry', '--show-only', 'templates/notes-rendered.yaml', ...extra])
    t.equal(r.code, 0, r.stderr)
    return String((parseYaml(r.stdout) as { notes: string }).notes)
  }
  t.match(await notes(['-f', ALL_ON]), 'docker manifest push registry.example.com/team/app:1.0')
  const defaults = await notes([])
  t.match(defaults, 'port-forward svc/guard-manifest-guard')
  t.match(defaults, 'config.ledger.store=redis', 'warns that replicas with a memory ledger do not share it')
})
