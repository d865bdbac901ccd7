{{/*
Names and labels. Every object carries the standard app.kubernetes.io/* labels and helm.sh/chart; the
Deployment selects on name + instance only (selector labels must never change after install).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "seqmodel-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The name of every object: fullnameOverride, else the release name (with the chart name appended
unless it already holds it). Cluster-scoped objects start with it too, so two releases never clash. */}}
{{- define "seqmodel-operator.fullname" -}}
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

{{- define "seqmodel-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "seqmodel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "seqmodel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "seqmodel-operator.labels" -}}
helm.sh/chart: {{ include "seqmodel-operator.chart" . }}
{{ include "seqmodel-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: seqmodel
{{- end }}

{{/* Labels of the operator's own objects (its pod, identity and settings). */}}
{{- define "seqmodel-operator.operatorLabels" -}}
{{ include "seqmodel-operator.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "seqmodel-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "seqmodel-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image: repository:tag, the tag defaulting to the chart's appVersion (seqmodel.VERSION). */}}
{{- define "seqmodel-operator.image" -}}
{{- printf "%s:%s" .repository (.tag | default .appVersion) }}
{{- end }}

{{/* The directory the job template overrides (jobTemplates) are mounted at. */}}
{{- define "seqmodel-operator.templatesDir" -}}
/etc/seqmodel-operator/templates
{{- end }}

{{/*
The operator's rules on namespaced resources: a ClusterRole's when it watches every namespace, a Role's in
each namespace of watchNamespaces. Each rule names the code that needs it. tests/security_policy.py holds
the same (group, resource, verb) set as an allow-list; change both.
*/}}
{{- define "seqmodel-operator.namespacedRules" -}}
# kopf watches SeqTrainingJobs (list + watch) for the handlers in handlers.py;
# kube.Kube.get_training_job reads one (status sync, and the spec.checkpoint.fromJob source).
- apiGroups: [seqmodel.dev]
  resources: [seqtrainingjobs]
  verbs: [get, list, watch]
# kube.Kube.patch_training_job_status (phase, conditions, metrics); kopf's StatusProgressStorage and
# StatusDiffBaseStorage (handlers.py) patch status.kopf through the status subresource.
- apiGroups: [seqmodel.dev]
  resources: [seqtrainingjobs/status]
  verbs: [patch]
# The SeqSweep controller creates a sweep's trials as SeqTrainingJobs owned by the sweep. No delete:
# the garbage collector removes trials through their ownerReferences when the sweep is deleted.
- apiGroups: [seqmodel.dev]
  resources: [seqtrainingjobs]
  verbs: [create]
# kopf watches SeqSweeps (list + watch) for the sweep handlers in handlers.py, which read one by name (get).
- apiGroups: [seqmodel.dev]
  resources: [seqsweeps]
  verbs: [get, list, watch]
# The sweep's status (phase, conditions, trial summary) and kopf's status storages, through the status
# subresource.
- apiGroups: [seqmodel.dev]
  resources: [seqsweeps/status]
  verbs: [patch]
# kube.Kube.create_job (a replicate's child Job), child_jobs (list by the parent's UID label),
# set_job_suspend (patch spec.suspend); kopf watches Jobs for main.child_job_changed (list + watch).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, patch]
# kube.Kube.job_pods: a child Job's pods, whose termination messages hold the run's JSON summary.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
# versions.py: one ConfigMap per (claim, root, canonical name) holds the version counter;
# kube.Kube.get_config_map, create_config_map, replace_config_map (PUT with a resourceVersion).
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, update]
# kopf.event in reconcilers/training_job.py (phase changes, VersionTaken) and kopf's posting of WARNING
# logs: kopf 1.45 POSTs core v1 Events (kopf/_cogs/clients/events.py, references.EVENTS = v1 events).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* The operator's rules on cluster-scoped resources: always a ClusterRole's. */}}
{{- define "seqmodel-operator.clusterRules" -}}
# kopf's resource observer (kopf/_core/reactor/observation.py) watches CRDs to notice resources that
# are added or changed while it runs; without this it scans once at start and logs a warning.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if or .Values.watchNamespaces .Values.watchNamespacePatterns }}
# Started with `--namespace` (watchNamespaces or watchNamespacePatterns), kopf's namespace observer lists
# and watches namespaces to notice a watched one being created or deleted. Refused, it retries each request for about a minute
# before it falls back to the names as given: the operator would start two minutes late, every time.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end }}

{{/* The watch scope, as the operator's arguments (quoted: a pattern may start with `*` or `!`). */}}
{{- define "seqmodel-operator.scopeArgs" -}}
{{- if and .Values.watchNamespaces .Values.watchNamespacePatterns }}
{{- fail "watchNamespaces and watchNamespacePatterns exclude each other: set one of them" }}
{{- end }}
{{- if or .Values.watchNamespaces .Values.watchNamespacePatterns }}
{{- range concat .Values.watchNamespaces .Values.watchNamespacePatterns }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- end }}

{{/* A setting as its environment variable's text: JSON for lists and maps, integers without the
exponent that Go's float formatting would give large ones (YAML numbers arrive as float64). */}}
{{- define "seqmodel-operator.settingValue" -}}
{{- if or (kindIs "slice" .) (kindIs "map" .) }}
{{- toJson . }}
{{- else if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}
