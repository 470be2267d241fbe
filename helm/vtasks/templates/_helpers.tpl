{{/* Names: <release>-vtasks unless the release name already says vtasks. */}}
{{- define "vtasks.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vtasks.fullname" -}}
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

{{- define "vtasks.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "vtasks.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "vtasks.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vtasks.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of one pool's pods. Call with (dict "root" $ "pool" $pool). */}}
{{- define "vtasks.poolSelectorLabels" -}}
{{ include "vtasks.selectorLabels" .root }}
app.kubernetes.io/component: worker
vtasks/pool: {{ .pool.name }}
{{- end }}

{{- define "vtasks.poolName" -}}
{{- printf "%s-%s" (include "vtasks.fullname" .root) .pool.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vtasks.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Where the config map is mounted, and the writable directory of the health file. */}}
{{- define "vtasks.configPath" -}}/etc/vtasks/vtasks.yml{{- end }}
{{- define "vtasks.runDir" -}}/var/run/vtasks{{- end }}

{{- define "vtasks.shutdownTimeout" -}}
{{- if hasKey .Values.topology "shutdown_timeout" }}
{{- .Values.topology.shutdown_timeout }}
{{- else }}30{{- end }}
{{- end }}

{{/*
Seconds Kubernetes waits after SIGTERM before SIGKILL. The supervisor gives children
shutdown_timeout to drain, then 5 s more before it kills stragglers (kill_margin in
vtasks.runtime.topology); 10 s on top leaves it time to exit on its own.
*/}}
{{- define "vtasks.terminationGracePeriod" -}}
{{- add (ceil (float64 (include "vtasks.shutdownTimeout" .))) 15 }}
{{- end }}

{{/*
A rendered vtasks.yml. Call with (dict "root" $ "pools" $listOfPools): the runtime keys from
.Values.topology plus what the chart owns (backend, workers, scheduler, health_file, metrics).
The scheduler runs in its own Deployment, so no worker topology enables it.
*/}}
{{- define "vtasks.topology" -}}
{{- $root := .root }}
{{- $workers := list }}
{{- range .pools }}
{{- $workers = append $workers (pick . "name" "queues" "concurrency" "processes") }}
{{- end }}
{{- $topology := deepCopy $root.Values.topology }}
{{- $_ := set $topology "django_settings" $root.Values.django.settingsModule }}
{{- $_ = set $topology "backend" $root.Values.backend.alias }}
{{- $_ = set $topology "workers" $workers }}
{{- $_ = set $topology "scheduler" (dict "enabled" false) }}
{{- $_ = set $topology "health_file" (printf "%s/health" (include "vtasks.runDir" $root)) }}
{{- if $root.Values.metrics.enabled }}
{{- $_ = set $topology "metrics" (dict "address" "0.0.0.0" "port" $root.Values.metrics.port) }}
{{- end }}
{{- toYaml $topology }}
{{- end }}

{{/* The lone scheduler's topology: the backend and the schedules (a topology names a pool;
   the scheduler ignores it). */}}
{{- define "vtasks.schedulerTopology" -}}
{{- $topology := dict "django_settings" .Values.django.settingsModule "backend" .Values.backend.alias }}
{{- $_ := set $topology "scheduler" (dict "enabled" true "schedules" (.Values.scheduler.schedules | default dict)) }}
{{- toYaml $topology }}
{{- end }}

{{/* Environment of every container: the settings module and the URLs, by reference. */}}
{{- define "vtasks.env" -}}
- name: DJANGO_SETTINGS_MODULE
  value: {{ .Values.django.settingsModule | quote }}
- name: PYTHONUNBUFFERED
  value: "1"
- name: PYTHONDONTWRITEBYTECODE
  value: "1"
{{- with .Values.backend }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .databaseUrlKey }}
      {{- if eq .type "valkey" }}
      optional: true
      {{- end }}
{{- if eq .type "valkey" }}
- name: BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .brokerUrlKey }}
{{- end }}
{{- end }}
{{- with .Values.django.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "vtasks.envFrom" -}}
{{- with .Values.django.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by the workers, the scheduler and the migration job. */}}
{{- define "vtasks.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container fields shared by every container of the chart. */}}
{{- define "vtasks.containerCommon" -}}
image: {{ include "vtasks.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- with .Values.django.workingDir }}
workingDir: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
env:
  {{- include "vtasks.env" . | nindent 2 }}
{{- include "vtasks.envFrom" . }}
{{- end }}

{{/* Values the schema cannot judge alone. */}}
{{- define "vtasks.validate" -}}
{{- $names := list }}
{{- range .Values.pools }}
{{- if has .name $names }}
{{- fail (printf "pools: the name %q is used twice" .name) }}
{{- end }}
{{- $names = append $names .name }}
{{- if and (dig "hpa" "enabled" false .) (dig "keda" "enabled" false .) }}
{{- fail (printf "pools[%s]: enable hpa or keda, not both (KEDA manages its own HPA)" .name) }}
{{- end }}
{{- if and (dig "keda" "enabled" false .) (eq $.Values.backend.type "valkey") (not $.Values.keda.valkey.address) }}
{{- fail (printf "pools[%s].keda: set keda.valkey.address (host:port KEDA polls)" .name) }}
{{- end }}
{{- end }}
{{- end }}
