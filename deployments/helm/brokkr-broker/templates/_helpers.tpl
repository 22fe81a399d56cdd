{{/* Names: `helm install brokkr-broker` gives svc/brokkr-broker (api) and brokkr-broker-<component>. */}}
{{- define "brokkr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "brokkr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "brokkr.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "brokkr.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The object name of a component: api is the release's own name (the docs' deploy/brokkr-broker). */}}
{{- define "brokkr.componentName" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
{{- if eq $c "api" -}}{{ include "brokkr.fullname" $root }}{{- else -}}{{ printf "%s-%s" (include "brokkr.fullname" $root) $c | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "brokkr.labels" -}}
app.kubernetes.io/name: {{ include "brokkr.name" . }}
{{ include "brokkr.commonLabels" . }}
{{- end -}}

{{- /* The labels of every object but app.kubernetes.io/name: the bundled
PostgreSQL and Redis name themselves (a key twice in one mapping is invalid
YAML that strict parsers, skaffold's post-renderer among them, refuse). */ -}}
{{- define "brokkr.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: brokkr
{{- end -}}

{{- define "brokkr.selectorLabels" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
app.kubernetes.io/name: {{ include "brokkr.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $c }}
{{- end -}}

{{/* Image of a service: <registry>/<repositoryPrefix><service>:<tag|appVersion>. */}}
{{- define "brokkr.image" -}}
{{- $root := index . 0 -}}{{- $svc := index . 1 -}}
{{- $img := $root.Values.image -}}
{{- $repo := printf "%s%s" $img.repositoryPrefix $svc -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $repo }}{{ end -}}
{{- printf "%s:%s" $repo (default $root.Chart.AppVersion (toString $img.tag)) -}}
{{- end -}}

{{- define "brokkr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "brokkr.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* The Secret holding the credentials the chart manages itself (not used for the ones given by existingSecret). */}}
{{- define "brokkr.secretName" -}}{{ include "brokkr.fullname" . }}{{- end -}}

{{- define "brokkr.postgresqlName" -}}{{ printf "%s-postgresql" (include "brokkr.fullname" .) | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "brokkr.redisName" -}}{{ printf "%s-redis" (include "brokkr.fullname" .) | trunc 63 | trimSuffix "-" }}{{- end -}}

{{/* database URL the chart assembles when postgresql.existingSecret is empty. */}}
{{- define "brokkr.databaseURL" -}}
{{- $pg := .Values.postgresql -}}
{{- if $pg.enabled -}}
{{- printf "postgres://%s:%s@%s:5432/%s?sslmode=disable" (urlquery $pg.auth.username) (urlquery $pg.auth.password) (include "brokkr.postgresqlName" .) $pg.auth.database -}}
{{- else -}}
{{- $e := $pg.external -}}
{{- $_ := required "postgresql.external.host is required when postgresql.enabled=false and postgresql.existingSecret is empty" $e.host -}}
{{- printf "postgres://%s:%s@%s:%v/%s?sslmode=%s" (urlquery $e.username) (urlquery $e.password) $e.host $e.port $e.database $e.sslMode -}}
{{- end -}}
{{- end -}}

{{/* Secret + key of the Redis password, or empty when Redis has none. */}}
{{- define "brokkr.redisPasswordRef" -}}
{{- $r := .Values.redis -}}
{{- if $r.existingSecret -}}{{ $r.existingSecret }}/{{ $r.existingSecretPasswordKey }}
{{- else if or (and $r.enabled $r.auth.password) (and (not $r.enabled) $r.external.password) -}}{{ include "brokkr.secretName" . }}/redis-password
{{- end -}}
{{- end -}}

{{/* "sentinel", "cluster" or "" (one endpoint) for external Redis; fails on a half or double setting. */}}
{{- define "brokkr.redisTopology" -}}
{{- $e := .Values.redis.external -}}
{{- if not .Values.redis.enabled -}}
{{- $s := $e.sentinel.masterName -}}
{{- if and $s $e.cluster.addresses -}}{{ fail "redis.external: set sentinel or cluster, not both" }}{{- end -}}
{{- if and $s (not $e.sentinel.addresses) -}}{{ fail "redis.external.sentinel.addresses must list the sentinels (host:port) when redis.external.sentinel.masterName is set" }}{{- end -}}
{{- if and $e.sentinel.addresses (not $s) -}}{{ fail "redis.external.sentinel.masterName is required with redis.external.sentinel.addresses" }}{{- end -}}
{{- if and $e.cluster.addresses (ne (int $e.db) 0) -}}{{ fail "redis.external.db must be 0 with redis.external.cluster (Redis Cluster has no other database)" }}{{- end -}}
{{- if $s -}}sentinel{{- else if $e.cluster.addresses -}}cluster{{- end -}}
{{- end -}}
{{- end -}}

{{- define "brokkr.redisHostPort" -}}
{{- $topo := include "brokkr.redisTopology" . -}}
{{- if .Values.redis.enabled -}}{{ include "brokkr.redisName" . }}:6379
{{- else if eq $topo "sentinel" -}}{{ first .Values.redis.external.sentinel.addresses }}
{{- else if eq $topo "cluster" -}}{{ first .Values.redis.external.cluster.addresses }}
{{- else -}}{{ required "redis.external.host is required when redis.enabled=false (or set redis.external.sentinel / redis.external.cluster)" .Values.redis.external.host }}:{{ .Values.redis.external.port }}{{- end -}}
{{- end -}}

{{/* Secret + key of the sentinels' password, or empty. */}}
{{- define "brokkr.redisSentinelPasswordRef" -}}
{{- $r := .Values.redis -}}
{{- if eq (include "brokkr.redisTopology" .) "sentinel" -}}
{{- if and $r.existingSecret $r.external.sentinel.existingSecretPasswordKey -}}{{ $r.existingSecret }}/{{ $r.external.sentinel.existingSecretPasswordKey }}
{{- else if $r.external.sentinel.password -}}{{ include "brokkr.secretName" . }}/redis-sentinel-password
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Environment every broker container gets: the ConfigMap, then the credentials by secretKeyRef. */}}
{{- define "brokkr.env" -}}
- name: BROKKR__DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ default (include "brokkr.secretName" .) .Values.postgresql.existingSecret }}
      key: {{ ternary .Values.postgresql.existingSecretKey "database-url" (ne .Values.postgresql.existingSecret "") }}
{{- $ref := include "brokkr.redisPasswordRef" . }}
{{- if $ref }}
- name: BROKKR_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ (splitList "/" $ref) | first }}
      key: {{ (splitList "/" $ref) | last }}
{{- end }}
{{- $scheme := ternary "rediss" "redis" (and (not .Values.redis.enabled) .Values.redis.external.tls) }}
- name: BROKKR__REDIS__URL
  value: {{ printf "%s://%s%s/%v" $scheme (ternary ":$(BROKKR_REDIS_PASSWORD)@" "" (ne $ref "")) (include "brokkr.redisHostPort" .) (ternary 0 .Values.redis.external.db .Values.redis.enabled) | quote }}
{{- $topo := include "brokkr.redisTopology" . }}
{{- if eq $topo "sentinel" }}
- name: BROKKR__REDIS__SENTINEL_MASTER
  value: {{ .Values.redis.external.sentinel.masterName | quote }}
- name: BROKKR__REDIS__SENTINEL_ADDRS
  value: {{ join "," .Values.redis.external.sentinel.addresses | quote }}
{{- with include "brokkr.redisSentinelPasswordRef" . }}
- name: BROKKR__REDIS__SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ (splitList "/" .) | first }}
      key: {{ (splitList "/" .) | last }}
{{- end }}
{{- else if eq $topo "cluster" }}
- name: BROKKR__REDIS__CLUSTER_ADDRS
  value: {{ join "," .Values.redis.external.cluster.addresses | quote }}
{{- end }}
{{- if or .Values.broker.pakHash .Values.broker.pakHashExistingSecret }}
- name: BROKKR__BROKER__PAK_HASH
  valueFrom:
    secretKeyRef:
      name: {{ default (include "brokkr.secretName" .) .Values.broker.pakHashExistingSecret }}
      key: {{ ternary .Values.broker.pakHashExistingSecretKey "BROKKR__BROKER__PAK_HASH" (ne .Values.broker.pakHashExistingSecret "") }}
{{- end }}
{{- if or .Values.broker.webhookEncryptionKey .Values.broker.webhookEncryptionKeyExistingSecret }}
- name: BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default (include "brokkr.secretName" .) .Values.broker.webhookEncryptionKeyExistingSecret }}
      key: {{ ternary .Values.broker.webhookEncryptionKeyExistingSecretKey "BROKKR__BROKER__WEBHOOK_ENCRYPTION_KEY" (ne .Values.broker.webhookEncryptionKeyExistingSecret "") }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "brokkr.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "brokkr.containerSecurityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end -}}

{{/* The five services: component name, values key, port, whether an HPA may scale it. */}}
{{- define "brokkr.components" -}}
- {name: api, key: api, port: 3000, hpa: true}
- {name: auth, key: auth, port: 3100, hpa: false}
- {name: templating, key: templating, port: 3200, hpa: false}
- {name: work-order-scheduler, key: workOrderScheduler, port: 3300, hpa: true}
- {name: webhook-dispatch, key: webhookDispatch, port: 3400, hpa: true}
{{- end -}}

{{- define "brokkr.replicas" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
{{- $v := index $root.Values $c.key -}}
{{- if not (kindIs "invalid" $v.replicas) }}{{ $v.replicas }}{{ else if eq $c.name "api" }}{{ $root.Values.replicaCount }}{{ else }}1{{ end -}}
{{- end -}}

{{/* The Secret auth keeps a generated admin PAK in (broker.adminPakSecret). */}}
{{- define "brokkr.adminPakSecretName" -}}{{ default (printf "%s-admin-pak" (include "brokkr.fullname" .) | trunc 63 | trimSuffix "-") .Values.broker.adminPakSecret.name }}{{- end -}}

{{/* auth's own ServiceAccount, the only one with a token (for the admin PAK Secret). */}}
{{- define "brokkr.authServiceAccountName" -}}{{ printf "%s-auth" (include "brokkr.fullname" .) | trunc 63 | trimSuffix "-" }}{{- end -}}
