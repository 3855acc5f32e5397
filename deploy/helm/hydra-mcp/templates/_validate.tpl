{{/*
Rules across values that values.schema.json cannot express; each failure
names the values involved. Included once, from the Deployment.
*/}}
{{- define "hydra-mcp.validate" -}}
{{- $min := int (include "hydra-mcp.minReplicas" .) }}
{{- $many := or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) }}
{{- if lt (int .Values.replicaCount) 1 }}
{{- fail "replicaCount: must be at least 1 (scale to zero with kubectl, not the chart: a PodDisruptionBudget over zero pods blocks every drain)" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled $many (ge (int .Values.podDisruptionBudget.minAvailable) $min) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the replicas (%s = %d): otherwise no pod may ever be evicted and node drains hang" (int .Values.podDisruptionBudget.minAvailable) (ternary "autoscaling.minReplicas" "replicaCount" .Values.autoscaling.enabled) $min) }}
{{- end }}
{{- if and (eq .Values.database.type "sqlite") $many }}
{{- fail (printf "database.type sqlite allows one replica only (replicaCount %d%s): each pod would have its own SQLite file, with its own users, rate limits and data. Use database.type postgresql (DATABASE_URL) to run more" (int .Values.replicaCount) (ternary ", autoscaling.enabled" "" .Values.autoscaling.enabled)) }}
{{- end }}
{{- if and (eq .Values.database.type "sqlite") .Values.database.sqlite.existingClaim (not (eq (int .Values.replicaCount) 1)) }}
{{- fail "database.sqlite.existingClaim: one replica only" }}
{{- end }}
{{- if and $many (eq .Values.config.legacySse "on") (eq .Values.service.sessionAffinity "None") }}
{{- fail "config.legacySse on with more than one replica needs session affinity (/sse and its /messages must reach one pod): set service.sessionAffinity ClientIP, or keep config.legacySse off" }}
{{- end }}
{{- if and (eq .Values.config.identity "kratos") (not .Values.config.kratos.publicUrl) }}
{{- fail "config.kratos.publicUrl: required with config.identity kratos (Kratos's public API as browsers reach it)" }}
{{- end }}
{{- if and .Values.connections.enabled (not .Values.connections.catalogue) }}
{{- fail "connections.catalogue: required with connections.enabled (the provider catalogue)" }}
{{- end }}
{{- if and .Values.secret.create .Values.secret.existingSecret }}
{{- fail "secret.create and secret.existingSecret: choose one (the chart's Secret from secret.values, or yours by name)" }}
{{- end }}
{{- if and .Values.secret.create .Values.connections.enabled (not .Values.secret.values.connectionKeys) }}
{{- fail "secret.values.connectionKeys: required with connections.enabled and secret.create (CONNECTION_KEYS seal stored tokens)" }}
{{- end }}
{{- end }}
