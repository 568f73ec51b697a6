import { FIELDS, type Field } from './schema.js'

// helm/manifest-guard/values.schema.json, generated from the settings table (npm run docs),
// so `helm install` refuses a bad value (a mistyped mode, a replica count of "abc") before
// anything is rendered, and a secret written into `config:` (which becomes a ConfigMap) is
// refused: secrets are given under `secrets:` by reference. A test compares the committed file
// with this output.

type Schema = Record<string, unknown>

const SECRET_HINT = 'Secret values are not accepted here: reference a Secret under `secrets:` (the chart mounts it and sets the …File key).'

function configSchema(fields: readonly Field[]): Schema {
  const root: Schema = { type: 'object', additionalProperties: false, description: `manifest-guard's settings, key for key (config/README.md). ${SECRET_HINT}`, properties: {} }
  for (const f of fields) {
    if (f.secret === true) continue
    const parts = f.key.split('.')
    let node = root
    for (const part of parts.slice(0, -1)) {
      const props = node['properties'] as Record<string, Schema>
      props[part] ??= { type: 'object', additionalProperties: false, properties: {} }
      node = props[part] as Schema
    }
    ;(node['properties'] as Record<string, Schema>)[parts[parts.length - 1] as string] = { ...(f.type.jsonSchema ?? {}), description: f.doc }
  }
  // The chart cannot guess the registry: an install without it fails here, not in CrashLoopBackOff.
  root['required'] = ['upstream']
  return root
}

const integer = (minimum: number): Schema => ({ type: 'integer', minimum })
const secretRef: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { secretName: { type: 'string' }, key: { type: 'string', minLength: 1 } },
}
const list: Schema = { type: 'array' }
const map: Schema = { type: 'object' }

/** The chart's values schema: `config` from the settings table, the chart's own keys typed by hand. */
export function chartValuesSchema(): string {
  const schema: Schema = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'manifest-guard chart values',
    description: 'Generated from src/config/schema.ts by `npm run docs`. Do not edit by hand.',
    type: 'object',
    required: ['config'],
    properties: {
      replicaCount: integer(0),
      image: {
        type: 'object',
        properties: {
          repository: { type: 'string', minLength: 1 },
          tag: { type: 'string' },
          pullPolicy: { enum: ['Always', 'IfNotPresent', 'Never'] },
        },
      },
      config: configSchema(FIELDS),
      secrets: {
        type: 'object',
        additionalProperties: false,
        properties: {
          tls: { type: 'object', additionalProperties: false, properties: { secretName: { type: 'string' } } },
          adminToken: secretRef,
          webhookToken: secretRef,
          lookupPassword: secretRef,
          redisPassword: secretRef,
          registryEventsToken: secretRef,
        },
      },
      caBundle: {
        type: 'object',
        additionalProperties: false,
        properties: { configMapName: { type: 'string' }, secretName: { type: 'string' }, key: { type: 'string', minLength: 1 } },
      },
      shutdown: {
        type: 'object',
        additionalProperties: false,
        properties: { preStopSleepSeconds: integer(0), terminationGracePeriodSeconds: { type: ['integer', 'null'], minimum: 1 } },
      },
      service: {
        type: 'object',
        properties: {
          type: { enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          metricsPort: { type: 'integer', minimum: 1, maximum: 65535 },
          apiPort: { type: 'integer', minimum: 0, maximum: 65535 },
        },
      },
      ingress: { type: 'object', properties: { enabled: { type: 'boolean' }, host: { type: 'string' }, trustForwardedHeaders: { type: 'boolean' } } },
      podDisruptionBudget: { type: 'object', properties: { enabled: { type: 'boolean' }, minAvailable: { type: ['integer', 'string'] } } },
      autoscaling: {
        type: 'object',
        properties: { enabled: { type: 'boolean' }, minReplicas: integer(1), maxReplicas: integer(1), targetCPUUtilizationPercentage: { type: 'integer', minimum: 1, maximum: 100 } },
      },
      auditPersistence: {
        type: 'object',
        additionalProperties: false,
        properties: { enabled: { type: 'boolean' }, existingClaim: { type: 'string' }, size: { type: 'string' }, storageClass: { type: 'string' }, accessModes: list },
      },
      networkPolicy: {
        type: 'object',
        properties: {
          enabled: { type: 'boolean' },
          proxyFrom: list,
          ingressControllerFrom: list,
          metricsFrom: list,
          monitoringNamespace: { type: 'string' },
          apiFrom: list,
          egress: { type: 'object', additionalProperties: false, properties: { enabled: { type: 'boolean' }, to: list } },
        },
      },
      extraEnv: list,
      extraVolumes: list,
      extraVolumeMounts: list,
      resources: map,
      podSecurityContext: map,
      securityContext: map,
    },
  }
  return `${JSON.stringify(schema, null, 2)}\n`
}
