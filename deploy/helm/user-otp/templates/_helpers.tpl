{{/*
Helpers, after DIGIT's common chart (common.name, common.labels, common.image), written anew:
this chart does not depend on `common`.
*/}}

{{/* The resource name: `name`, else the chart's name (DIGIT's common.name). */}}
{{- define "user-otp.name" -}}
{{- default .Chart.Name .Values.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "user-otp.namespace" -}}
{{- default .Values.namespace .Values.global.namespace -}}
{{- end -}}

{{/* Selector labels (DIGIT's: app, group). They never change for a release. */}}
{{- define "user-otp.selectorLabels" -}}
app: {{ include "user-otp.name" . }}
{{- with .Values.labels.group }}
group: {{ . }}
{{- end }}
{{- end -}}

{{- define "user-otp.labels" -}}
{{ include "user-otp.selectorLabels" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .Values.role }}
app.kubernetes.io/version: {{ include "user-otp.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- range $key, $val := .Values.additionalLabels }}
{{ $key }}: {{ $val | quote }}
{{- end }}
{{- end -}}

{{- define "user-otp.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/*
An image reference (DIGIT's common.image): a repository with a "/" is used as it is, else
global.containerRegistry is put in front when set. Call with (dict "root" $ "repository" R "tag" T).
*/}}
{{- define "user-otp.image" -}}
{{- $registry := .root.Values.global.containerRegistry -}}
{{- $tag := required "image.tag is mandatory (or the chart's appVersion)" .tag -}}
{{- if or (contains "/" .repository) (not $registry) -}}
{{- printf "%s:%s" .repository $tag -}}
{{- else -}}
{{- printf "%s/%s:%s" $registry .repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Role checks. */}}
{{- define "user-otp.validateRole" -}}
{{- $roles := list "all" "serve" "worker" "otp-api" -}}
{{- if not (has .Values.role $roles) -}}
{{- fail (printf "role must be one of %s, not %q (migrate runs as the init container)" (join ", " $roles) .Values.role) -}}
{{- end -}}
{{- if not (has .Values.kind (list "Deployment" "StatefulSet")) -}}
{{- fail (printf "kind must be Deployment or StatefulSet, not %q" .Values.kind) -}}
{{- end -}}
{{- if not (hasPrefix "/" .Values.contextPath) -}}
{{- fail (printf "contextPath must start with \"/\": %q" .Values.contextPath) -}}
{{- end -}}
{{- if not (hasPrefix "/" .Values.otpApi.path) -}}
{{- fail (printf "otpApi.path must start with \"/\": %q" .Values.otpApi.path) -}}
{{- end -}}
{{- if and .Values.otpApi.port (eq (toString .Values.otpApi.port) (toString .Values.httpPort)) -}}
{{- fail "otpApi.port must differ from httpPort (leave it empty to serve the egov-otp API on httpPort)" -}}
{{- end -}}
{{- end -}}

{{/* "true" when the role serves HTTP. */}}
{{- define "user-otp.servesHttp" -}}
{{- if ne .Values.role "worker" }}true{{ end -}}
{{- end -}}

{{/* "true" when the role runs the Kafka consumer (the worker). */}}
{{- define "user-otp.runsWorker" -}}
{{- if has .Values.role (list "all" "worker") }}true{{ end -}}
{{- end -}}

{{/* The egov-otp API's own port, when it has one (roles that serve it). */}}
{{- define "user-otp.otpApiPort" -}}
{{- if and .Values.otpApi.port (has .Values.role (list "all" "serve" "otp-api")) -}}
{{- .Values.otpApi.port -}}
{{- end -}}
{{- end -}}

{{/* The base path the probes use: the egov-otp API's in role otp-api, else the context path. */}}
{{- define "user-otp.healthBase" -}}
{{- if eq .Values.role "otp-api" -}}
{{- trimSuffix "/" .Values.otpApi.path -}}
{{- else -}}
{{- trimSuffix "/" .Values.contextPath -}}
{{- end -}}
{{- end -}}

{{/*
The port the probes use: httpPort, except in role otp-api with the egov-otp API on its own port
(then that is the only port it serves).
*/}}
{{- define "user-otp.probePort" -}}
{{- if and (eq .Values.role "otp-api") (include "user-otp.otpApiPort" .) -}}
{{- include "user-otp.otpApiPort" . -}}
{{- else -}}
{{- .Values.httpPort -}}
{{- end -}}
{{- end -}}

{{/*
A value that is either a list/map (rendered as YAML) or a template string (DIGIT's form, run
through tpl), as a list. Call with (dict "root" $ "value" V).
*/}}
{{- define "user-otp.asList" -}}
{{- $v := .value -}}
{{- if kindIs "string" $v -}}
{{- if trim $v -}}
{{- tpl $v .root | fromYamlArray | toJson -}}
{{- else -}}
[]
{{- end -}}
{{- else if $v -}}
{{- toJson $v -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/*
Merges the chart's env entries with the user's: a user entry replaces the chart's entry of the
same name (at the chart's position); the user's other entries follow. Call with
(dict "chart" LIST "user" LIST); renders a YAML list.
*/}}
{{- define "user-otp.mergeEnv" -}}
{{- $user := dict -}}
{{- range .user -}}
{{- $_ := set $user .name . -}}
{{- end -}}
{{- $out := list -}}
{{- $seen := dict -}}
{{- range .chart -}}
{{- if hasKey $user .name -}}
{{- $out = append $out (get $user .name) -}}
{{- else -}}
{{- $out = append $out . -}}
{{- end -}}
{{- $_ := set $seen .name true -}}
{{- end -}}
{{- range .user -}}
{{- if not (hasKey $seen .name) -}}
{{- $out = append $out (get $user .name) -}}
{{- $_ := set $seen .name true -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Env both containers need: database, PostgreSQL TLS, Kafka security, the HMAC files. */}}
{{- define "user-otp.sharedEnv" -}}
{{- if .Values.appType }}
- name: SPRING_DATASOURCE_URL
  valueFrom:
    configMapKeyRef:
      name: {{ .Values.digit.configMap }}
      key: db-url
- name: SPRING_DATASOURCE_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.digit.dbSecret }}
      key: username
{{- end }}
{{- with .Values.postgres.sslMode }}
- name: PGSSLMODE
  value: {{ . | quote }}
{{- end }}
{{- with .Values.postgres.sslRootCert }}
- name: PGSSLROOTCERT
  value: {{ . | quote }}
{{- end }}
{{- if .Values.hmac.secretName }}
- name: USER_OTP_HMAC_SECRET_FILE
  value: {{ printf "%s/current" (trimSuffix "/" .Values.hmac.mountPath) | quote }}
{{- if .Values.hmac.previousKeysFile }}
- name: USER_OTP_HMAC_PREVIOUS_KEYS_FILE
  value: {{ printf "%s/previous" (trimSuffix "/" .Values.hmac.mountPath) | quote }}
{{- end }}
{{- end }}
{{- with .Values.hmac.keyId }}
- name: USER_OTP_HMAC_KEY_ID
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Env of the application container, before the user's `env`. */}}
{{- define "user-otp.appEnv" -}}
{{- include "user-otp.sharedEnv" . }}
{{- if .Values.appType }}
- name: SPRING_DATASOURCE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.digit.dbSecret }}
      key: password
- name: SPRING_KAFKA_BOOTSTRAP_SERVERS
  valueFrom:
    configMapKeyRef:
      name: {{ .Values.digit.configMap }}
      key: kafka-brokers
- name: USER_HOST
  valueFrom:
    configMapKeyRef:
      name: {{ .Values.digit.serviceHostConfigMap }}
      key: egov-user
- name: EGOV_LOCALISATION_HOST
  valueFrom:
    configMapKeyRef:
      name: {{ .Values.digit.serviceHostConfigMap }}
      key: egov-localization
- name: FLYWAY_ENABLED
  value: "false"
{{- end }}
- name: SERVER_PORT
  value: {{ .Values.httpPort | quote }}
- name: SERVER_SERVLET_CONTEXT_PATH
  value: {{ .Values.contextPath | quote }}
- name: USER_OTP_OTP_API_PATH
  value: {{ .Values.otpApi.path | quote }}
{{- with include "user-otp.otpApiPort" . }}
- name: USER_OTP_OTP_API_PORT
  value: {{ . | quote }}
{{- end }}
{{- if .Values.initContainers.dbMigration.enabled }}
- name: USER_OTP_MIGRATE_ON_START
  value: "false"
{{- end }}
{{- if and (include "user-otp.runsWorker" .) .Values.worker.staticMembership }}
- name: USER_OTP_KAFKA_GROUP_INSTANCE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- end }}
{{- with .Values.kafka.securityProtocol }}
- name: USER_OTP_KAFKA_SECURITY_PROTOCOL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.saslMechanism }}
- name: USER_OTP_KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.saslSecret }}
- name: USER_OTP_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: username
- name: USER_OTP_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: password
{{- end }}
{{- with .Values.kafka.sslCaLocation }}
- name: USER_OTP_KAFKA_SSL_CA_LOCATION
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Env of the migration init container, before initContainers.dbMigration.env. */}}
{{- define "user-otp.migrateEnv" -}}
{{- include "user-otp.sharedEnv" . }}
{{- if .Values.appType }}
- name: FLYWAY_USER
  valueFrom:
    secretKeyRef:
      name: {{ .Values.digit.dbSecret }}
      key: flyway-username
- name: FLYWAY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.digit.dbSecret }}
      key: flyway-password
{{- end }}
{{- end -}}

{{/* One probe: a map (timings; the chart adds httpGet) or a template string (DIGIT's form). */}}
{{- define "user-otp.probe" -}}
{{- if kindIs "string" .probe -}}
{{- tpl .probe .root -}}
{{- else -}}
httpGet:
  path: {{ .path | quote }}
  port: {{ .port }}
{{ toYaml .probe }}
{{- end -}}
{{- end -}}

{{/* Volumes: /tmp (the root file system is read-only), the HMAC keys, the user's. */}}
{{- define "user-otp.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.hmac.secretName }}
- name: hmac-keys
  mountPath: {{ .Values.hmac.mountPath | quote }}
  readOnly: true
{{- end }}
{{- with (include "user-otp.asList" (dict "root" . "value" .Values.extraVolumeMounts) | fromJsonArray) }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The ingress / zuul context: ingress.context, else contextPath without its leading "/". */}}
{{- define "user-otp.ingressContext" -}}
{{- default (trimPrefix "/" (trimSuffix "/" .Values.contextPath)) .Values.ingress.context -}}
{{- end -}}
