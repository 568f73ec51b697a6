{{- define "manifest-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "manifest-guard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "manifest-guard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "manifest-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "manifest-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "manifest-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "manifest-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "manifest-guard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The port of a HOST:PORT listen address. */}}
{{- define "manifest-guard.port" -}}
{{- splitList ":" . | last -}}
{{- end -}}

{{/* Where each referenced Secret is mounted, and the config key its file goes to. */}}
{{- define "manifest-guard.secretMounts" -}}
adminToken: { dir: /etc/manifest-guard/secrets/admin, section: admin, key: tokenFile }
webhookToken: { dir: /etc/manifest-guard/secrets/webhook, section: audit, key: webhookTokenFile }
lookupPassword: { dir: /etc/manifest-guard/secrets/lookup, section: lookupCredentials, key: passwordFile }
redisPassword: { dir: /etc/manifest-guard/secrets/redis, section: ledger, key: redisPasswordFile }
registryEventsToken: { dir: /etc/manifest-guard/secrets/events, section: registryEvents, key: tokenFile }
{{- end -}}

{{/* The admin token Secret the chart makes when none is given. */}}
{{- define "manifest-guard.generatedAdminToken" -}}
{{- printf "%s-admin-token" (include "manifest-guard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secrets by reference, with the admin token's filled in when the chart makes it. */}}
{{- define "manifest-guard.secrets" -}}
{{- $secrets := deepCopy .Values.secrets -}}
{{- if and .Values.config.admin.enabled (not .Values.secrets.adminToken.secretName) -}}
{{- $_ := set $secrets.adminToken "secretName" (include "manifest-guard.generatedAdminToken" .) -}}
{{- end -}}
{{- toYaml $secrets -}}
{{- end -}}

{{/* The config file: the values' config, with the files of referenced Secrets filled in. */}}
{{- define "manifest-guard.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $mounts := include "manifest-guard.secretMounts" . | fromYaml -}}
{{- $secrets := include "manifest-guard.secrets" . | fromYaml -}}
{{- range $name, $m := $mounts -}}
{{- $ref := index $secrets $name -}}
{{- if $ref.secretName -}}
{{- $_ := set (index $cfg $m.section) $m.key (printf "%s/%s" $m.dir $ref.key) -}}
{{- end -}}
{{- end -}}
{{- if .Values.secrets.tls.secretName -}}
{{- $_ := set $cfg.tls "cert" "/etc/manifest-guard/tls/tls.crt" -}}
{{- $_ := set $cfg.tls "key" "/etc/manifest-guard/tls/tls.key" -}}
{{- end -}}
{{- if or .Values.caBundle.configMapName .Values.caBundle.secretName -}}
{{- $_ := set $cfg "caFile" (printf "/etc/manifest-guard/ca/%s" .Values.caBundle.key) -}}
{{- end -}}
{{- if eq (include "manifest-guard.trustsForwardedHeaders" .) "true" -}}
{{- $_ := set $cfg "trustForwardedHeaders" true -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Whether the proxy takes X-Forwarded-* headers: set in config, or the chart's Ingress sets them. */}}
{{- define "manifest-guard.trustsForwardedHeaders" -}}
{{- if or .Values.config.trustForwardedHeaders (and .Values.ingress.enabled .Values.ingress.trustForwardedHeaders) -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* The fewest replicas that run: what a PDB and the replicas alert go by. */}}
{{- define "manifest-guard.minReplicas" -}}
{{- if .Values.autoscaling.enabled -}}{{ .Values.autoscaling.minReplicas | int }}{{- else -}}{{ .Values.replicaCount | int }}{{- end -}}
{{- end -}}

{{/* The pod's grace period: preStop, then the drain delay, the deadline of requests in flight and 15 s for the audit flush (10 s) and exit. */}}
{{- define "manifest-guard.gracePeriod" -}}
{{- if .Values.shutdown.terminationGracePeriodSeconds -}}
{{- .Values.shutdown.terminationGracePeriodSeconds | int -}}
{{- else -}}
{{- $s := .Values.config.shutdown -}}
{{- add (.Values.shutdown.preStopSleepSeconds | int) (div (add ($s.drainDelayMs | int) 999) 1000) (div (add ($s.timeoutMs | int) 999) 1000) 15 -}}
{{- end -}}
{{- end -}}

{{- define "manifest-guard.scheme" -}}
{{- if or .Values.secrets.tls.secretName .Values.config.tls.cert -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
