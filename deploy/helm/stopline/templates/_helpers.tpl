{{/*
What each service is, as the code has it (not settings): the module the image runs, the prefix of its
settings, its Kafka principal, whether it reads PostgreSQL, the keys of the app Secret it needs, and its
workload kind. The scorer stages are StatefulSets: a restarted or updated pod keeps its name, which is
its static group membership (STOPLINE_INSTANCE), so it takes back its partitions without a rebalance
and without restoring another instance's state. The others are Deployments: the pod's name is their
instance id, stable across container restarts (a crash), new when the pod is replaced.
*/}}
{{- define "stopline.facts" -}}
ingest:
  module: services.ingest.app
  prefix: INGEST
  principal: stopline-ingest
  database: true
  workload: Deployment
scorer-persons:
  module: services.scorer.main
  prefix: SCORER
  principal: stopline-scorer
  database: false
  workload: StatefulSet
  env:
    STOPLINE_SCORER_STAGES: '["persons"]'
scorer-accounts:
  module: services.scorer.main
  prefix: SCORER
  principal: stopline-scorer
  database: false
  workload: StatefulSet
  env:
    STOPLINE_SCORER_STAGES: '["accounts"]'
coordination:
  module: services.coordination.app
  prefix: COORDINATION
  principal: stopline-coordination
  database: true
  workload: Deployment
  secrets:
    STOPLINE_SECRETS_KEY: secrets-key
notifier:
  module: services.notifier
  prefix: NOTIFIER
  principal: stopline-notifier
  database: true
  workload: Deployment
  secrets:
    STOPLINE_NOTIFIER_SMS_SECRET: notifier-sms-secret
    STOPLINE_NOTIFIER_PUSH_SECRET: notifier-push-secret
    STOPLINE_NOTIFIER_PAYLOAD_KEY: notifier-payload-key
blocklist:
  module: services.blocklist
  prefix: BLOCKLIST
  principal: stopline-blocklist
  database: true
  workload: Deployment
console:
  module: services.console
  prefix: CONSOLE
  principal: ""
  database: false
  workload: Deployment
  secrets:
    STOPLINE_CONSOLE_SESSION_KEY: console-session-key
    STOPLINE_CONSOLE_OIDC_CLIENT_SECRET: console-oidc-client-secret
{{- end -}}

{{- define "stopline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stopline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/part-of: stopline
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "stopline.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/name: {{ .name }}
{{- end -}}

{{- define "stopline.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The settings every Stopline process gets: environment, Kafka, and the shared secrets. */}}
{{- define "stopline.commonEnv" -}}
- name: STOPLINE_ENVIRONMENT
  value: {{ .Values.environment | quote }}
- name: STOPLINE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: STOPLINE_FORWARDED_ALLOW_IPS
  value: {{ .Values.forwardedAllowIps | quote }}
- name: STOPLINE_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrap is required" .Values.kafka.bootstrap | quote }}
- name: STOPLINE_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
- name: STOPLINE_KAFKA_SESSION_TIMEOUT_MS
  value: {{ .Values.kafka.sessionTimeoutMs | quote }}
- name: STOPLINE_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
{{- if .Values.kafka.ca.existingSecret }}
- name: STOPLINE_KAFKA_CA_FILE
  value: /etc/stopline/kafka/ca.crt
{{- end }}
- name: STOPLINE_PSEUDONYM_KEY
  valueFrom:
    secretKeyRef:
      name: {{ required "appSecret.existingSecret is required" .Values.appSecret.existingSecret }}
      key: pseudonym-key
- name: STOPLINE_JWT_ISSUER
  value: {{ .Values.jwt.issuer | quote }}
- name: STOPLINE_JWT_AUDIENCE
  value: {{ .Values.jwt.audience | quote }}
{{- if .Values.jwt.publicKeyConfigMap.name }}
- name: STOPLINE_JWT_PUBLIC_KEY
  valueFrom:
    configMapKeyRef:
      name: {{ .Values.jwt.publicKeyConfigMap.name }}
      key: {{ .Values.jwt.publicKeyConfigMap.key }}
{{- else if .Values.jwt.publicKey }}
- name: STOPLINE_JWT_PUBLIC_KEY
  value: {{ .Values.jwt.publicKey | quote }}
{{- else if .Values.jwt.jwksUrl }}
- name: STOPLINE_JWT_JWKS_URL
  value: {{ .Values.jwt.jwksUrl | quote }}
{{- else if eq .Values.environment "production" }}
{{- fail "jwt: production needs the token issuer's keys: jwt.jwksUrl, jwt.publicKey or jwt.publicKeyConfigMap.name (without, the officers' services refuse to start)" }}
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "stopline.kafkaPassword" -}}
- name: STOPLINE_KAFKA_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.existingSecret is required" .root.Values.kafka.existingSecret }}
      key: {{ .principal }}
{{- end -}}

{{- define "stopline.databaseUrl" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required" .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
{{- end -}}

{{- define "stopline.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{- define "stopline.kafkaCaVolume" -}}
{{- if .Values.kafka.ca.existingSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.ca.existingSecret }}
    items:
      - key: {{ .Values.kafka.ca.key }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "stopline.kafkaCaMount" -}}
{{- if .Values.kafka.ca.existingSecret }}
- name: kafka-ca
  mountPath: /etc/stopline/kafka
  readOnly: true
{{- end }}
{{- end -}}
