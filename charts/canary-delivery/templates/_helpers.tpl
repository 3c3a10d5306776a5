{{/* The chart's name, and the release's full name (both at most 63 characters, as labels need). */}}
{{- define "canary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "canary.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "canary.selectorLabels" -}}
app.kubernetes.io/name: {{ include "canary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "canary.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "canary.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "canary.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "canary.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether the Git sync runs: a repository in git.url, or sources in git.sources. */}}
{{- define "canary.gitEnabled" -}}
{{- if or .Values.git.url .Values.git.sources }}true{{ end }}
{{- end }}

{{/* The sources the sync keeps state for: "default" (git.url) and each of git.sources. */}}
{{- define "canary.gitSources" -}}
{{- $names := list }}
{{- if .Values.git.url }}{{ $names = append $names "default" }}{{ end }}
{{- range $index, $source := .Values.git.sources }}
{{- $names = append $names (required (printf "git.sources[%d].name is required" $index) $source.name) }}
{{- end }}
{{- join "," $names }}
{{- end }}

{{/* The resource that holds the sync state (sync.state). */}}
{{- define "canary.stateResource" -}}
{{- if eq .Values.sync.state "secret" }}secrets{{ else }}configmaps{{ end }}
{{- end }}

{{/* What the engine reads and writes: the rules of manifests/rbac (cluster-wide) and of
manifests/rbac-namespaced (a Role: without Kuma's cluster-scoped TrafficRoutes). */}}
{{- define "canary.engineRules" -}}
- apiGroups: ["canary.dev"]
  resources: ["canaries"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["canary.dev"]
  resources: ["canaries/status", "canaries/finalizers"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["canary.dev"]
  resources: ["metrictemplates", "alertproviders"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments", "daemonsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "configmaps", "secrets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["networking.istio.io"]
  resources: ["virtualservices", "destinationrules"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["projectcontour.io"]
  resources: ["httpproxies"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["traefik.io"]
  resources: ["traefikservices"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["split.smi-spec.io"]
  resources: ["trafficsplits"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["gateway.solo.io"]
  resources: ["routetables"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["gloo.solo.io"]
  resources: ["upstreams"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apisix.apache.org"]
  resources: ["apisixroutes"]
  verbs: ["get", "list", "watch", "create", "patch"]
{{- if not .Values.namespace }}
- apiGroups: ["kuma.io"]
  resources: ["trafficroutes"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
{{- end }}
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
