{{/* Names: RELEASE-admission, or fullnameOverride. */}}
{{- define "vouch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (default "admission" .Values.nameOverride) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vouch.selectorLabels" -}}
app.kubernetes.io/name: vouch-admission
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vouch.labels" -}}
{{ include "vouch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: vouch
{{- end -}}

{{- define "vouch.image" -}}
{{- $repo := required "image.repository is required (the vouch-admission image, built by scripts/build-images)" .Values.image.repository -}}
{{- if .Values.image.digest -}}
{{- if not (regexMatch "^sha256:[0-9a-f]{64}$" .Values.image.digest) -}}
{{- fail (printf "image.digest %q is not sha256:<64 lowercase hex>; hint: the digest scripts/build-images printed, or `skopeo inspect docker://%s:TAG`" .Values.image.digest $repo) -}}
{{- end -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "vouch.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "vouch.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{- define "vouch.policyConfigMap" -}}
{{- default (printf "%s-policy" (include "vouch.fullname" .)) .Values.policy.existingConfigMap -}}
{{- end -}}

{{- define "vouch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vouch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The CA bundle for clientConfig (base64 of the PEM given in tls.caBundle), checked. */}}
{{- define "vouch.caBundle" -}}
{{- $pem := .Values.tls.caBundle | trim -}}
{{- if not (hasPrefix "-----BEGIN CERTIFICATE-----" $pem) -}}
{{- fail "tls.caBundle must be the PEM of the CA that signed the serving certificate; hint: --set-file tls.caBundle=ca.pem (or tls.certManager.enabled=true)" -}}
{{- end -}}
{{- $pem | b64enc -}}
{{- end -}}
