{{- define "agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agent.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "agent.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "agent.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "agent.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: brokkr
{{- end -}}

{{- define "agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "agent.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "agent.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion (toString .Values.image.tag)) -}}
{{- end -}}

{{/*
The agent's rules: the ClusterRole of files/rbac.yaml, which is a symlink to
services/agent/rbac.yaml (helm follows it when loading and packaging), so the
chart and `kubectl apply -f services/agent/rbac.yaml` grant the same. Filters:
rbac.secretAccess.enabled=false drops secrets, shipwright.enabled=false drops
the shipwright.io rule, namespaced mode drops cluster-scoped kinds.
*/}}
{{- define "agent.rules" -}}
{{- $rules := list -}}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.Files.Get "files/rbac.yaml") -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if and $obj (eq (toString $obj.kind) "ClusterRole") (eq (toString $obj.metadata.name) "brokkr-agent") -}}
{{- $rules = $obj.rules -}}
{{- end -}}
{{- end -}}
{{- if not $rules }}{{ fail "files/rbac.yaml (services/agent/rbac.yaml) has no ClusterRole brokkr-agent" }}{{ end -}}
{{- $clusterScoped := list "namespaces" "clusterroles" "clusterrolebindings" "customresourcedefinitions" -}}
{{- $out := list -}}
{{- range $r := $rules -}}
{{- $keep := true -}}
{{- if and (not $.Values.shipwright.enabled) (has "shipwright.io" $r.apiGroups) }}{{ $keep = false }}{{ end -}}
{{- $res := list -}}
{{- range $x := $r.resources -}}
{{- if and (eq $x "secrets") (not $.Values.rbac.secretAccess.enabled) -}}
{{- else if and (has $x $clusterScoped) (not $.Values.rbac.clusterWide) -}}
{{- else -}}{{ $res = append $res $x }}{{- end -}}
{{- end -}}
{{- if and $keep $res -}}
{{- $out = append $out (dict "apiGroups" $r.apiGroups "resources" $res "verbs" $r.verbs) -}}
{{- end -}}
{{- end -}}
{{- toYaml (concat $out .Values.rbac.extraRules) -}}
{{- end -}}
