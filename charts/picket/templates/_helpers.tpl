{{/* Chart name, truncated to 63 characters (a DNS label). */}}
{{- define "picket.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified release name; the release name alone when it already contains the chart name. */}}
{{- define "picket.fullname" -}}
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

{{- define "picket.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Kubernetes recommended labels. Call with (dict "ctx" $ "component" "injector"). */}}
{{- define "picket.labels" -}}
helm.sh/chart: {{ include "picket.chart" .ctx }}
{{ include "picket.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: picket
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "picket.selectorLabels" -}}
app.kubernetes.io/name: {{ include "picket.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Names of the objects. */}}
{{- define "picket.injector.name" -}}
{{- printf "%s-injector" (include "picket.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "picket.injector.serviceAccountName" -}}
{{- if .Values.injector.serviceAccount.create -}}
{{- default (include "picket.injector.name" .) .Values.injector.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.injector.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "picket.webhookTls.secretName" -}}
{{- if eq .Values.webhook.tls.mode "provided" -}}
{{- required "webhook.tls.existingSecret is required when webhook.tls.mode is provided" .Values.webhook.tls.existingSecret -}}
{{- else -}}
{{- printf "%s-webhook-tls" (include "picket.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "picket.meshCa.secretName" -}}
{{- if .Values.meshCA.existingSecret -}}
{{- .Values.meshCA.existingSecret -}}
{{- else -}}
{{- printf "%s-mesh-ca" (include "picket.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "picket.packKeys.configMapName" -}}
{{- printf "%s-keys" .Values.pack.configMapName | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "registry/repository:tag", tag defaulting to the chart's appVersion. Call with (dict "image" .Values.image.picket "ctx" $). */}}
{{- define "picket.image" -}}
{{- $tag := .image.tag | default .ctx.Chart.AppVersion -}}
{{- $ref := .image.repository -}}
{{- if .image.registry -}}
{{- $ref = printf "%s/%s" .image.registry .image.repository -}}
{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/* The address sidecars reach the identity service at. */}}
{{- define "picket.identityAddress" -}}
{{- printf "%s.%s.svc:%d" (include "picket.injector.name" .) .Release.Namespace (int .Values.injector.service.identityPort) -}}
{{- end -}}

{{/* The injector configuration (config.json). Fields beyond the injector contract appear only when their feature is used. */}}
{{- define "picket.injector.config" -}}
{{- $c := dict
  "proxyImage" (include "picket.image" (dict "image" .Values.image.picket "ctx" .))
  "initImage" (include "picket.image" (dict "image" .Values.image.picketInit "ctx" .))
  "imagePullPolicy" .Values.image.picket.pullPolicy
  "packConfigMap" .Values.pack.configMapName
  "mode" .Values.sidecar.mode
  "nativeSidecar" .Values.sidecar.nativeSidecar
  "resources" .Values.sidecar.resources
  "trustDomain" .Values.mesh.trustDomain
  "identityAddress" (include "picket.identityAddress" .)
  "excludeInboundPorts" .Values.sidecar.excludeInboundPorts
  "excludeOutboundPorts" .Values.sidecar.excludeOutboundPorts
  "excludeOutboundCidrs" .Values.sidecar.excludeOutboundCidrs
-}}
{{- if .Values.pack.publicKeys -}}
{{- $_ := set $c "packKeysConfigMap" (include "picket.packKeys.configMapName" .) -}}
{{- end -}}
{{- if .Values.pack.requireSigned -}}
{{- $_ := set $c "requireSignedPack" true -}}
{{- end -}}
{{- if .Values.pack.allowRollback -}}
{{- $_ := set $c "allowPackRollback" true -}}
{{- end -}}
{{- toJson $c -}}
{{- end -}}
