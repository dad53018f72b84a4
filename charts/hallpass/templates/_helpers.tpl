{{/* Chart name, truncated to 63 characters. */}}
{{- define "hallpass.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, or release-chart. */}}
{{- define "hallpass.fullname" -}}
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

{{/* The injector's objects. Never named plain "hallpass": a Service of that
name would put HALLPASS_* variables into every pod of its namespace. */}}
{{- define "hallpass.injector" -}}
{{- printf "%s-injector" (include "hallpass.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hallpass.tlsSecret" -}}
{{- printf "%s-tls" (include "hallpass.injector" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hallpass.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
{{ include "hallpass.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/part-of: hallpass
{{- end }}

{{- define "hallpass.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hallpass.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/component: injector
{{- end }}

{{/* repository:tag or repository@digest. Arguments: (list image defaultTag). */}}
{{- define "hallpass.imageRef" -}}
{{- $image := index . 0 }}
{{- $defaultTag := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $defaultTag $image.tag) }}
{{- end }}
{{- end }}

{{- define "hallpass.image" -}}
{{- include "hallpass.imageRef" (list .Values.image .Chart.AppVersion) }}
{{- end }}

{{- define "hallpass.sidecarImage" -}}
{{- if .Values.sidecar.image.repository }}
{{- include "hallpass.imageRef" (list .Values.sidecar.image .Chart.AppVersion) }}
{{- else }}
{{- include "hallpass.image" . }}
{{- end }}
{{- end }}

{{/* "cert-manager" or "self-signed", after resolving "auto". */}}
{{- define "hallpass.tlsSource" -}}
{{- $source := .Values.webhook.tls.source }}
{{- if eq $source "auto" }}
{{- if .Capabilities.APIVersions.Has "cert-manager.io/v1" }}cert-manager{{ else }}self-signed{{ end }}
{{- else }}
{{- $source }}
{{- end }}
{{- end }}

{{/* The names the webhook's certificate must carry. */}}
{{- define "hallpass.dnsNames" -}}
{{- $svc := include "hallpass.injector" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.clusterDomain) | toJson }}
{{- end }}

{{/* Namespaces the webhooks never see. */}}
{{- define "hallpass.excludedNamespaces" -}}
{{- append .Values.webhook.excludedNamespaces .Release.Namespace | uniq | toJson }}
{{- end }}

{{/* CEL, on one line: the pod in the variable named by the argument
carries a name the injector owns (crates/injector/src/owned.rs). */}}
{{- define "hallpass.ownedCEL" -}}
{{- $o := . -}}
{{- $named := "c.name == 'hallpass' || c.name.startsWith('hallpass-')" -}}
{{- list
    (printf "(has(%s.metadata.labels) && 'hallpass.io/sidecar' in %s.metadata.labels)" $o $o)
    (printf "(has(%s.metadata.annotations) && ('hallpass.io/injected' in %s.metadata.annotations || 'hallpass.io/overrides' in %s.metadata.annotations))" $o $o $o)
    (printf "%s.spec.containers.exists(c, %s)" $o $named)
    (printf "(has(%s.spec.initContainers) && %s.spec.initContainers.exists(c, %s))" $o $o $named)
    (printf "(has(%s.spec.ephemeralContainers) && %s.spec.ephemeralContainers.exists(c, %s))" $o $o $named)
    (printf "(has(%s.spec.volumes) && %s.spec.volumes.exists(v, v.name.startsWith('hallpass-')))" $o $o)
  | join " || " | printf "(%s)" -}}
{{- end }}
