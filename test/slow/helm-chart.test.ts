import t, { type Test } from 'tap'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigMap, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'
import { loadConfig } from '../../src/config/load.js'
import { FIELDS } from '../../src/config/schema.js'
import { chartValuesSchema } from '../../src/config/chart-schema.js'
import { startFakeKubeApi } from '../helpers/fake-kube-api.js'
import { CHART, helm } from '../helpers/helm.js'
import { requireTool, run } from '../helpers/tools.js'
import { promqlRefs, withoutGrafanaIntervals } from '../helpers/promql.js'
import { proxyFor } from '../helpers/fixture.js'

// The Helm chart: lint --strict, render with the defaults and with every optional part on,
// validate every object against the Kubernetes (and Prometheus Operator) schemas, and check
// what must hold: the admin API private by default behind a token kept across upgrades, the
// Grafana dashboard and the alerts reading only metrics the proxy really exports.

type Obj = {
  kind: string
  apiVersion: string
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  spec?: Record<string, any>
  data?: Record<string, string>
}

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
  PrometheusRule: PrometheusRule as never,
  ServiceMonitor: ServiceMonitor as never,
  Pod: Pod as never,
  PersistentVolumeClaim: PersistentVolumeClaim as never,
}

const ALL_ON = join(CHART, '../../test/fixtures/helm-all-on.yaml')
const PRODUCTION = join(CHART, 'examples/production.yaml')
/** values.schema.json requires the registry; the defaults leave it to the user. */
const UPSTREAM = ['--set', 'config.upstream=http://registry:5000']
const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { config: Record<string, unknown> }

async function render(extra: string[] = [], env: Record<string, string> = {}): Promise<Obj[]> {
  const r = await helm(['template', 'guard', CHART, '--namespace', 'registry', ...(extra.includes('-f') ? [] : UPSTREAM), ...extra], env)
  if (r.code !== 0) throw new Error(`helm template failed: ${r.stderr}`)
  return parseAllDocuments(r.stdout).map((d) => d.toJSON() as Obj).filter((o) => o !== null)
}

const ADMIN_TOKEN_SECRET = 'guard-manifest-guard-admin-token'

function leafKeys(obj: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length > 0 && k !== 'rules' ? leafKeys(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`],
  )
}

t.test('helm lint --strict', async (t) => {
  for (const extra of [UPSTREAM, ['-f', ALL_ON], ['-f', PRODUCTION]]) {
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
    // The proxy port drops connections beyond maxConnections; a failed liveness probe there
    // would restart the pod and cut every upload.
    t.same([container.readinessProbe.httpGet.port, container.livenessProbe.httpGet.port], ['metrics', 'metrics'], 'probes on the admin listener')
    t.same([container.readinessProbe.httpGet.scheme, container.livenessProbe.httpGet.scheme], ['HTTP', 'HTTP'], 'which is plain HTTP')
    t.match(pod['securityContext'], { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } })
    t.match(container.securityContext, { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } })
    t.ok(container.resources.requests.cpu && container.resources.limits.memory, 'resources set')
    t.equal(pod['automountServiceAccountToken'], false)
    t.equal(byKind('PodDisruptionBudget').length, 1, 'a PDB with two or more replicas')
    checkShutdown(t, pod, container)
    t.equal(byKind('Pod').filter((p) => p.metadata.annotations?.['helm.sh/hook'] === 'test').length, 1, 'a helm test pod')

    const rendered = parseYaml(byKind('ConfigMap').find((c) => c.metadata.name === 'guard-manifest-guard')!.data!['manifest-guard.yaml']!) as Record<string, any>
    const service = byKind('Service')[0] as unknown as { spec: { ports: { name: string }[] } }
    const policy = byKind('NetworkPolicy')[0] as unknown as { spec: { ingress: { ports: { port: string }[]; from?: unknown[] }[] } } | undefined
    if (name === 'defaults') {
      const { admin, ...rest } = rendered
      const { admin: valuesAdmin, ...valuesRest } = values.config as Record<string, any>
      t.same(rest, { ...valuesRest, upstream: 'http://registry:5000' }, 'the config file is values.config')
      t.same(admin, { ...valuesAdmin, tokenFile: '/etc/manifest-guard/secrets/admin/token' }, 'with the generated admin token')
      t.equal(deployment.spec.replicas, 2, 'two replicas by default')
      t.equal(byKind('Ingress').length + byKind('HorizontalPodAutoscaler').length + byKind('ServiceMonitor').length + byKind('PrometheusRule').length, 0, 'optional parts off')
      t.equal(byKind('ConfigMap').length, 1, 'no dashboard')
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
      t.equal(policy!.spec.ingress[0]!.from, undefined, 'the proxy port open to all: it trusts no forwarded header')
      t.match(policy!.spec.ingress[1]!.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], 'metrics only from the monitoring namespace')
      t.equal(rendered['trustForwardedHeaders'], false)
      t.equal(byKind('PersistentVolumeClaim').length, 0)
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
      t.equal(container.readinessProbe.httpGet.scheme, 'HTTP', 'probes stay on the plain-HTTP admin listener when the proxy serves TLS')
      const test = byKind('Pod')[0] as unknown as { spec: { containers: { env: { name: string; value: string }[] }[] } }
      t.match(test.spec.containers[0]!.env, [{ name: 'PROXY_URL', value: 'https://guard-manifest-guard:5000' }], 'the helm test speaks TLS when the proxy does')
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
      t.equal(rendered['caFile'], '/etc/manifest-guard/ca/ca.crt', 'the CA bundle is named in caFile')
      t.ok(mounts.includes('/etc/manifest-guard/ca') && mounts.includes('/scratch'), 'and mounted, next to extraVolumeMounts')
      t.ok(container.env.some((e: { name: string }) => e.name === 'NODE_OPTIONS'), 'extraEnv is passed on')
      t.match(pod['volumes'].find((v: { name: string }) => v.name === 'audit'), { persistentVolumeClaim: { claimName: 'guard-manifest-guard-audit' } }, 'the audit trail on a claim')
      t.equal(container.volumeMounts.find((m: { name: string }) => m.name === 'audit').subPathExpr, '$(POD_NAME)', 'one directory per pod')
      t.equal(byKind('PersistentVolumeClaim').length, 1)
      t.same((policy!.spec as Record<string, unknown>)['policyTypes'], ['Ingress', 'Egress'], 'egress limited when asked')
      t.equal(byKind('Secret').length, 0, 'a given admin token Secret is used, none generated')
      const dashboard = byKind('ConfigMap').find((c) => c.metadata.name === 'guard-manifest-guard-dashboard')!
      t.match(dashboard.metadata, { namespace: 'monitoring', labels: { grafana_dashboard: '1' }, annotations: { grafana_folder: 'Registry' } }, "the dashboard ConfigMap carries the Grafana sidecar's label")
      t.match(byKind('PrometheusRule')[0]!.metadata.labels, { release: 'kube-prometheus-stack' })
    }
  })
}

/** preStop, then SIGTERM: the grace period covers the preStop sleep, the drain delay, the deadline of uploads in flight and the flush. */
function checkShutdown(t: Test, pod: Record<string, any>, container: Record<string, any>, config?: Record<string, any>): void {
  const sleep = container.lifecycle?.preStop?.exec?.command as string[] | undefined
  t.same(sleep?.slice(0, 1), ['sleep'], 'a preStop sleep while endpoints are updated')
  const shutdown = config?.['shutdown'] ?? (values.config['shutdown'] as Record<string, number>)
  const needed = Number(sleep?.[1]) + shutdown.drainDelayMs / 1000 + shutdown.timeoutMs / 1000 + 10
  t.ok(pod['terminationGracePeriodSeconds'] >= needed, `grace period ${pod['terminationGracePeriodSeconds']} s covers preStop + drain + in-flight deadline + flush (${needed} s)`)
}

t.test('values.schema.json is generated from the settings table (npm run docs)', async (t) => {
  t.equal(readFileSync(join(CHART, 'values.schema.json'), 'utf8'), chartValuesSchema())
})

t.test('the values schema refuses bad values before anything is rendered', async (t) => {
  const cases: [string, string[], RegExp][] = [
    ['no registry', [], /config: upstream is required|config\.upstream/],
    ['a replica count that is not a number', [...UPSTREAM, '--set', 'replicaCount=abc'], /replicaCount: Invalid type. Expected: integer/],
    ['a mistyped mode', [...UPSTREAM, '--set', 'config.validation.mode=enforcee'], /config\.validation\.mode must be one of the following: "enforce", "warn", "off"/],
    ['a secret in plain values (it would land in the ConfigMap)', [...UPSTREAM, '--set', 'config.admin.token=s3cret'], /config\.admin: Additional property token is not allowed/],
    ['a Redis password in plain values', [...UPSTREAM, '--set', 'config.ledger.redisPassword=s3cret'], /Additional property redisPassword is not allowed/],
    ['a mistyped key', [...UPSTREAM, '--set', 'config.validation.moed=warn'], /Additional property moed is not allowed/],
    ['an upstream with a path', ['--set', 'config.upstream=http://registry:5000/v2'], /config\.upstream: Does not match pattern/],
    ['a port out of range', [...UPSTREAM, '--set', 'config.server.maxConnections=0'], /maxConnections: Must be greater than or equal to 1/],
  ]
  for (const [what, extra, message] of cases) {
    const r = await helm(['template', 'guard', CHART, ...extra])
    t.not(r.code, 0, `${what}: refused`)
    t.match(r.stderr, message, `${what}: ${r.stderr.split('\n').slice(1, 3).join(' ')}`)
    t.notMatch(r.stderr, 's3cret', 'the secret is not echoed')
  }
  const ok = await helm(['template', 'guard', CHART, ...UPSTREAM, '--set', 'config.ledger.redisUrl=redis://guard@redis:6379/0'])
  t.equal(ok.code, 0, `a Redis URL with an ACL user is fine: ${ok.stderr}`)
})

t.test('a PodDisruptionBudget only with two or more replicas', async (t) => {
  const pdbs = async (extra: string[]) => (await render(extra)).filter((o) => o.kind === 'PodDisruptionBudget').length
  t.equal(await pdbs(['--set', 'replicaCount=1']), 0, 'one replica: none (it would block every node drain)')
  t.equal(await pdbs(['--set', 'replicaCount=2']), 1, 'two: one')
  t.equal(await pdbs(['--set', 'autoscaling.enabled=true', '--set', 'autoscaling.minReplicas=1']), 0, 'an autoscaler that may go down to one: none')
  t.equal(await pdbs(['--set', 'autoscaling.enabled=true', '--set', 'autoscaling.minReplicas=3']), 1)
})

t.test('the production values file from the chart README', async (t) => {
  const text = readFileSync(PRODUCTION, 'utf8')
  t.ok(readFileSync(join(CHART, 'README.md'), 'utf8').includes(text.trim()), 'the README shows this very file')
  const objects = await render(['-f', PRODUCTION])
  for (const o of objects) {
    const Model = VALIDATORS[o.kind]
    if (Model !== undefined) t.doesNotThrow(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name} is a valid Kubernetes object`)
  }
  const byKind = (kind: string) => objects.filter((o) => o.kind === kind)
  const pod = (byKind('Deployment')[0] as unknown as { spec: { template: { spec: Record<string, any> } } }).spec.template.spec
  const container = pod['containers'][0]
  const config = parseYaml(byKind('ConfigMap').find((c) => c.metadata.name === 'guard-manifest-guard')!.data!['manifest-guard.yaml']!) as Record<string, any>

  // The API Service reaches a listener: the chart's address beats the one the image sets.
  const env = Object.fromEntries((container.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]))
  t.equal(env['MANIFEST_GUARD_ADMIN_API_LISTEN'], '0.0.0.0:9465', 'the chart sets the API listen address in the environment')
  const IMAGE_ENV = { MANIFEST_GUARD_LISTEN: '0.0.0.0:5000', MANIFEST_GUARD_ADMIN_LISTEN: '0.0.0.0:9464', MANIFEST_GUARD_ADMIN_API_LISTEN: '127.0.0.1:9465' }
  const dockerfile = readFileSync(join(CHART, '../../Dockerfile'), 'utf8')
  for (const [k, v] of Object.entries(IMAGE_ENV)) t.match(dockerfile, `${k}=${v}`, `the image sets ${k}`)
  const effective = loadConfig({ env: { ...IMAGE_ENV, ...env, MANIFEST_GUARD_CONFIG: '' }, values: { ...config, admin: { ...config['admin'], tokenFile: undefined }, ledger: { ...config['ledger'], redisPasswordFile: undefined }, registryEvents: {} } })
  t.same(effective.admin.apiListen, { host: '0.0.0.0', port: 9465 }, 'so the process listens where the API Service points')
  const service = byKind('Service')[0] as unknown as { spec: { ports: { name: string; port: number; targetPort: string }[] } }
  t.match(service.spec.ports.find((p) => p.name === 'api'), { port: 9465, targetPort: 'api' })
  t.match(container.ports.find((p: { name: string }) => p.name === 'api'), { containerPort: 9465 })

  t.same([container.readinessProbe.httpGet.port, container.livenessProbe.httpGet.port], ['metrics', 'metrics'], 'probes on the admin listener')
  t.equal(byKind('PodDisruptionBudget').length, 1)
  checkShutdown(t, pod, container, config)
  t.equal(config['trustForwardedHeaders'], true, 'behind the Ingress the proxy takes X-Forwarded-*')
  const policy = byKind('NetworkPolicy')[0] as unknown as { spec: { ingress: { ports: { port: string }[]; from?: Record<string, any>[] }[] } }
  const proxyFrom = policy.spec.ingress.find((r) => r.ports[0]!.port === 'http')!.from ?? []
  t.match(proxyFrom[0], { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } }, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } } }, 'and only the ingress controller reaches the proxy port')
  t.equal(proxyFrom.length, 2, 'besides the helm test pod')
  t.match(byKind('Ingress')[0]!.metadata.annotations, { 'cert-manager.io/cluster-issuer': 'letsencrypt', 'nginx.ingress.kubernetes.io/proxy-body-size': '0' }, "cert-manager's annotation next to the chart's")
  t.equal(config['ledger'].redisUrl, 'redis://manifest-guard@redis-master.registry.svc:6379/0')
  const test = byKind('Pod').find((p) => p.metadata.annotations?.['helm.sh/hook'] === 'test') as unknown as { metadata: { labels: Record<string, string> }; spec: Record<string, any> } | undefined
  t.ok(test !== undefined, 'the helm test pod')
  t.equal(test?.metadata.labels['app.kubernetes.io/component'], 'helm-test', 'labelled as the NetworkPolicy lets in')
  t.match(test?.spec['containers'][0].env, [{ name: 'PROXY_URL', value: 'http://guard-manifest-guard:5000' }, { name: 'METRICS_URL', value: 'http://guard-manifest-guard:9464' }])
  t.match(test?.spec['securityContext'], { runAsNonRoot: true }, 'restricted like the proxy')
  t.same(byKind('PersistentVolumeClaim').map((c) => c.metadata.name), ['guard-manifest-guard-audit'], 'the audit trail on a claim')
  t.ok(container.resources.requests.memory === '384Mi', 'memory request sized for the default ledger and cache')
})

t.test('publishing the API while it listens on loopback fails with why', async (t) => {
  const r = await helm(['template', 'guard', CHART, ...UPSTREAM, '--set', 'service.apiPort=9465'])
  t.not(r.code, 0)
  t.match(r.stderr, 'set config.admin.apiListen to 0.0.0.0:PORT')
})

t.test('the admin token the chart makes is kept across upgrades (lookup)', async (t) => {
  // Without a cluster, lookup finds nothing: every render makes a new token.
  const tokenOf = (objects: Obj[]) => Buffer.from(objects.find((o) => o.kind === 'Secret')!.data!['token']!, 'base64').toString()
  t.not(tokenOf(await render()), tokenOf(await render()), 'random when there is nothing to keep')
  // An upgrade: the Secret is in the cluster, and the chart reads it back.
  const api = await startFakeKubeApi({ [`registry/${ADMIN_TOKEN_SECRET}`]: { token: 'token-operators-already-use' } })
  t.teardown(() => api.close())
  const cluster = ['--dry-run=server', '--kube-apiserver', api.url]
  const env = { KUBECONFIG: '/dev/null' }
  t.equal(tokenOf(await render(cluster, env)), 'token-operators-already-use', 'the token in the cluster is kept')
  t.ok(api.requests.includes(`GET /api/v1/namespaces/registry/secrets/${ADMIN_TOKEN_SECRET}`), 'helm asked the cluster for it')
  // A first install: not in the cluster yet, so a new one.
  t.match(tokenOf(await render([...cluster, '--namespace', 'other'], env)), /^[A-Za-z0-9]{32,}$/)
})

t.test('the Grafana dashboard and the alerts read only metrics the proxy exports', async (t) => {
  // The names the proxy exports, from a running proxy's /metrics; their labels from its registry.
  const proxy = await proxyFor(t, 'http://127.0.0.1:9')
  const exposition = await (await fetch(`${proxy.adminUrl}/metrics`)).text()
  const exported = new Map<string, Set<string>>()
  const declared = new Map((proxy.app.guard.metrics.registry.getMetricsAsArray() as unknown as { name: string; labelNames?: string[] }[]).map((m) => [m.name, m.labelNames ?? []]))
  for (const [, name, type] of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const labels = new Set(declared.get(name!) ?? [])
    const names = type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name!, `${name}_sum`, `${name}_count`] : [name!]
    if (type === 'histogram') labels.add('le')
    for (const n of names) exported.set(n, labels)
  }
  t.ok(exported.has('manifest_guard_list_pushes_total') && exported.has('manifest_guard_proxied_bytes_total'), 'the scrape lists the metrics')
  // Labels Prometheus adds to every series of a target (ServiceMonitor defaults).
  const TARGET_LABELS = new Set(['namespace', 'job', 'pod', 'instance', 'service', 'container', 'endpoint'])
  // Series the alerts read that the proxy cannot export itself: Prometheus' own `up`, and
  // kube-state-metrics' view of the Deployment (a replica not ready).
  exported.set('up', new Set())
  exported.set('kube_deployment_status_replicas_unavailable', new Set(['deployment']))

  // Prometheus's own series of every target.
  exported.set('up', new Set())
  const check = (where: string, expr: string): { metrics: string[]; grouping: string[] } => {
    const refs = promqlRefs(withoutGrafanaIntervals(expr))
    t.same(refs.errors, [], `${where}: PromQL parses`)
    const metrics = refs.selectors.map((s) => s.metric)
    for (const s of refs.selectors) {
      const labels = exported.get(s.metric)
      t.ok(labels !== undefined, `${where}: ${s.metric} is exported`)
      for (const l of s.labels) t.ok(labels?.has(l) === true || TARGET_LABELS.has(l), `${where}: ${s.metric} has label ${l}`)
    }
    const known = new Set([...TARGET_LABELS, ...metrics.flatMap((m) => [...(exported.get(m) ?? [])])])
    for (const l of refs.grouping) t.ok(known.has(l), `${where}: grouping by ${l}, a label of its metrics`)
    return { metrics, grouping: [...refs.grouping] }
  }

  const objects = await render(['-f', ALL_ON])
  const dashboardMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'guard-manifest-guard-dashboard')!
  const dashboard = JSON.parse(dashboardMap.data!['manifest-guard.json']!) as { uid: string; title: string; templating: { list: { name: string; type: string; query: unknown }[] }; panels: { type: string; title: string; targets?: { expr: string; legendFormat?: string }[] }[] }
  t.equal(dashboard.uid, 'manifest-guard')
  t.match(dashboard.templating.list, [{ name: 'datasource', type: 'datasource', query: 'prometheus' }], 'the Prometheus data source is chosen, not assumed')
  const used = new Set<string>()
  const grouped = new Set<string>()
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    t.ok((panel.targets ?? []).length > 0, `panel "${panel.title}" has queries`)
    for (const target of panel.targets ?? []) {
      const { metrics, grouping } = check(`panel "${panel.title}"`, target.expr)
      metrics.forEach((m) => used.add(m))
      grouping.forEach((g) => grouped.add(g))
      for (const [, label] of (target.legendFormat ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)) t.ok(grouping.includes(label!) || TARGET_LABELS.has(label!), `panel "${panel.title}": legend {{${label}}} is a label of the result`)
    }
  }
  for (const q of dashboard.templating.list.filter((v) => v.type === 'query')) {
    const expr = String((q.query as { query: string }).query).replace(/^label_values\((.*), *\w+\)$/, '$1')
    check(`variable ${q.name}`, expr)
  }
  for (const m of ['manifest_guard_list_pushes_total', 'manifest_guard_list_push_problems_total', 'manifest_guard_validation_duration_seconds_bucket', 'manifest_guard_upstream_lookups_total', 'manifest_guard_proxied_bytes_total', 'manifest_guard_proxied_requests_total']) {
    t.ok(used.has(m), `the dashboard shows ${m}`)
  }
  for (const g of ['result', 'cause', 'status_class', 'direction']) t.ok(grouped.has(g), `the dashboard splits by ${g}`)

  const rules = (objects.find((o) => o.kind === 'PrometheusRule')!.spec!['groups'] as { rules: { alert: string; expr: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[]).flatMap((g) => g.rules)
  t.same(rules.map((r) => r.alert).sort(), [
    'ManifestGuardAuditDeliveriesFailing',
    'ManifestGuardLedgerDown',
    'ManifestGuardLedgerErrors',
    'ManifestGuardLedgerRecordsLost',
    'ManifestGuardLookupsFailing',
    'ManifestGuardPassthroughErrors',
    'ManifestGuardRejectionsSpike',
    'ManifestGuardReplicaDown',
    'ManifestGuardReplicaNotReady',
    'ManifestGuardReplicasDown',
    'ManifestGuardValidationSlow',
  ])
  const readme = readFileSync(join(CHART, 'README.md'), 'utf8')
  for (const rule of rules) {
    t.equal(rule.annotations['runbook_url'], `https://github.com/manifest-guard/manifest-guard/blob/main/helm/manifest-guard/README.md#${rule.alert.toLowerCase()}`, `alert ${rule.alert} has a runbook`)
    t.match(readme, `\n### ${rule.alert}\n`, `and the chart README has its section`)
  }
  for (const rule of rules) {
    const { metrics } = check(`alert ${rule.alert}`, rule.expr)
    t.ok(metrics.length > 0, `alert ${rule.alert} reads metrics`)
    t.match(rule.expr, rule.alert === 'ManifestGuardReplicaNotReady' ? 'namespace="registry", deployment="guard-manifest-guard"' : 'namespace="registry", job="guard-manifest-guard"', `alert ${rule.alert} reads this release's series only`)
    t.equal(rule.labels['severity'], rule.alert === 'ManifestGuardLedgerDown' ? 'critical' : 'warning')
    t.ok(rule.annotations['summary'] && rule.annotations['description'], `alert ${rule.alert} says what is wrong`)
  }
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
  const defaults = await notes(UPSTREAM)
  t.match(defaults, 'port-forward svc/guard-manifest-guard')
  t.match(defaults, 'config.ledger.store=redis', 'warns that replicas with a memory ledger do not share it')
  t.match(defaults, `get secret ${ADMIN_TOKEN_SECRET} -o jsonpath='{.data.token}'`, "tells where the chart's admin token is")
  t.match(defaults, 'port-forward deploy/guard-manifest-guard 9465:9465', 'and how to reach the API listener on loopback')
  t.match(defaults, 'http://127.0.0.1:9465/_guard/')
  t.match(await notes(['-f', ALL_ON]), 'get secret mg-admin', 'or the Secret named in values')
})

t.test('promtool test rules: the alerts fire when it matters', async (t) => {
  requireTool('promtool', "apt-get install -y prometheus (Debian's package carries promtool)")
  const rule = (await render(['-f', ALL_ON])).find((o) => o.kind === 'PrometheusRule')!
  const dir = mkdtempSync(join(tmpdir(), 'mg-promtool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // JSON is YAML: promtool reads both.
  writeFileSync(join(dir, 'rules.yaml'), JSON.stringify({ groups: rule.spec!['groups'] }))
  const sel = 'namespace="registry", job="guard-manifest-guard"'
  // Every annotation but the description (which the cases spell out) as the chart renders it.
  type Rendered = { alert: string; annotations: { summary: string; runbook_url: string } }
  const rendered = new Map((rule.spec!['groups'] as { rules: Rendered[] }[]).flatMap((g) => g.rules).map((r) => [r.alert, r.annotations]))
  const alert = (name: string, labels: Record<string, string>, description: string) => ({
    exp_labels: { alertname: name, severity: name === 'ManifestGuardLedgerDown' ? 'critical' : 'warning', ...labels },
    exp_annotations: { summary: rendered.get(name)?.summary, runbook_url: rendered.get(name)?.runbook_url, description },
  })
  const tests = {
    rule_files: ['rules.yaml'],
    evaluation_interval: '30s',
    tests: [
      {
        // Redis goes away at 1m on pod a, with no push at all: the alert fires by 3m (within 2 minutes).
        interval: '30s',
        input_series: [
          { series: `manifest_guard_ledger_up{${sel}, pod="a"}`, values: '1 1 0x10' },
          { series: `manifest_guard_ledger_up{${sel}, pod="b"}`, values: '1x12' },
        ],
        alert_rule_test: [
          { eval_time: '1m', alertname: 'ManifestGuardLedgerDown', exp_alerts: [] },
          { eval_time: '3m', alertname: 'ManifestGuardLedgerDown', exp_alerts: [alert('ManifestGuardLedgerDown', { pod: 'a' }, 'Pod a: the ledger (Redis) does not answer; list pushes cannot be checked for stale children. Records of pushes meanwhile are kept (manifest_guard_ledger_pending_records) and written when it answers.')] },
        ],
      },
      {
        // Replica b stops answering its scrapes at 1m; later every replica is gone.
        interval: '30s',
        input_series: [
          { series: `up{${sel}, pod="a"}`, values: '1x10' },
          { series: `up{${sel}, pod="b"}`, values: '1 1 0x8' },
        ],
        alert_rule_test: [
          { eval_time: '1m', alertname: 'ManifestGuardReplicaDown', exp_alerts: [] },
          { eval_time: '4m', alertname: 'ManifestGuardReplicaDown', exp_alerts: [alert('ManifestGuardReplicaDown', { namespace: 'registry', job: 'guard-manifest-guard', pod: 'b' }, 'Pod b does not answer its scrape.')] },
        ],
      },
      {
        interval: '30s',
        // (A series stops: Prometheus counts it for 5 minutes more, then the alert waits 2.)
        input_series: [{ series: `up{${sel}, pod="a"}`, values: '1 1 _x30' }],
        alert_rule_test: [{ eval_time: '10m', alertname: 'ManifestGuardReplicaDown', exp_alerts: [alert('ManifestGuardReplicaDown', {}, 'No manifest-guard replica answers its scrape.')] }],
      },
      {
        // One replica not ready for 5 minutes (kube-state-metrics).
        interval: '1m',
        input_series: [{ series: 'kube_deployment_status_replicas_unavailable{namespace="registry", deployment="guard-manifest-guard"}', values: '0 1x10' }],
        alert_rule_test: [
          { eval_time: '3m', alertname: 'ManifestGuardReplicaNotReady', exp_alerts: [] },
          { eval_time: '7m', alertname: 'ManifestGuardReplicaNotReady', exp_alerts: [alert('ManifestGuardReplicaNotReady', { namespace: 'registry', deployment: 'guard-manifest-guard' }, '1 replicas of guard-manifest-guard unavailable for 5 minutes.')] },
        ],
      },
      {
        // A hung registry: every validation waits for validation.timeoutMs (20 s), and no 5xx.
        interval: '1m',
        input_series: [
          { series: `manifest_guard_validation_duration_seconds_bucket{${sel}, result="unverified", le="1"}`, values: '0x30' },
          { series: `manifest_guard_validation_duration_seconds_bucket{${sel}, result="unverified", le="10"}`, values: '0x30' },
          { series: `manifest_guard_validation_duration_seconds_bucket{${sel}, result="unverified", le="20"}`, values: '0+5x30' },
          { series: `manifest_guard_validation_duration_seconds_bucket{${sel}, result="unverified", le="+Inf"}`, values: '0+5x30' },
        ],
        alert_rule_test: [{ eval_time: '25m', alertname: 'ManifestGuardValidationSlow', exp_alerts: [alert('ManifestGuardValidationSlow', {}, 'p99 of list validation is 19.9s; a registry that hangs (no 5xx) shows here first.')] }],
      },
      {
        // Quick validations: nothing fires.
        interval: '1m',
        input_series: [
          { series: `manifest_guard_validation_duration_seconds_bucket{${sel}, result="accepted", le="1"}`, values: '0+5x30' },
          { series: `manifest_guard_validation_duration_seconds_bucket{${sel}, result="accepted", le="+Inf"}`, values: '0+5x30' },
        ],
        alert_rule_test: [{ eval_time: '25m', alertname: 'ManifestGuardValidationSlow', exp_alerts: [] }],
      },
    ],
  }
  writeFileSync(join(dir, 'tests.yaml'), JSON.stringify(tests))
  const r = await run('promtool', ['test', 'rules', join(dir, 'tests.yaml')], { timeoutMs: 60_000 })
  t.equal(r.code, 0, `promtool test rules passes:\n${r.stdout}${r.stderr}`)
  t.match(r.stdout + r.stderr, 'SUCCESS')
})
