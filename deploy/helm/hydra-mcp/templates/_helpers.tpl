{{/* Names and labels, as `helm create` makes them. */}}
{{- define "hydra-mcp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hydra-mcp.fullname" -}}
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

{{- define "hydra-mcp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hydra-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hydra-mcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hydra-mcp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "hydra-mcp.serviceAccountName" -}}
{{- default (include "hydra-mcp.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "hydra-mcp.secretName" -}}
{{- if .Values.secret.create }}{{ include "hydra-mcp.fullname" . }}{{ else }}{{ .Values.secret.existingSecret }}{{ end }}
{{- end }}

{{- define "hydra-mcp.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Replicas the pods can be scaled down to: what a PDB has to stay below. */}}
{{- define "hydra-mcp.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Ory's namespace (empty: ours) and its charts' fullnames, as Ory's _helpers.tpl derive them. */}}
{{- define "hydra-mcp.oryNamespace" -}}
{{- default .Release.Namespace .Values.ory.namespace }}
{{- end }}

{{- define "hydra-mcp.oryFullname" -}}
{{- $c := index . 0 }}{{- $chart := index . 1 }}
{{- if $c.fullname }}{{ $c.fullname }}
{{- else if contains $chart $c.release }}{{ $c.release | trunc 63 | trimSuffix "-" }}
{{- else }}{{ printf "%s-%s" $c.release $chart | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "hydra-mcp.hydraAdminUrl" -}}
{{- if .Values.config.hydra.adminUrl }}{{ .Values.config.hydra.adminUrl }}
{{- else }}{{ printf "http://%s-admin.%s.svc.%s:%d" (include "hydra-mcp.oryFullname" (list .Values.ory.hydra "hydra")) (include "hydra-mcp.oryNamespace" .) .Values.clusterDomain (int .Values.ory.hydra.adminPort) }}
{{- end }}
{{- end }}

{{- define "hydra-mcp.kratosAdminUrl" -}}
{{- if .Values.config.kratos.adminUrl }}{{ .Values.config.kratos.adminUrl }}
{{- else }}{{ printf "http://%s-admin.%s.svc.%s:%d" (include "hydra-mcp.oryFullname" (list .Values.ory.kratos "kratos")) (include "hydra-mcp.oryNamespace" .) .Values.clusterDomain (int .Values.ory.kratos.adminServicePort) }}
{{- end }}
{{- end }}

{{/* Pod selector of Ory's pods of one chart: what Ory's Deployments select on. */}}
{{- define "hydra-mcp.oryPodSelector" -}}
{{- $c := index . 0 -}}
matchLabels:
  app.kubernetes.io/name: {{ $c.nameLabel }}
  app.kubernetes.io/instance: {{ $c.release }}
{{- end }}

{{/* Where the secret files are mounted. */}}
{{- define "hydra-mcp.secretDir" -}}/run/secrets/hydra-mcp{{- end }}

{{/* The port of tracing.endpoint: its own, else the scheme's. */}}
{{- define "hydra-mcp.tracingPort" -}}
{{- $u := urlParse .Values.tracing.endpoint -}}
{{- $parts := splitList ":" $u.host -}}
{{- if gt (len $parts) 1 }}{{ last $parts }}{{ else if eq $u.scheme "https" }}443{{ else }}80{{ end -}}
{{- end }}
