{{- /* SPDX-License-Identifier: Apache-2.0 */ -}}
{{/*
Helpers shared by the templates: names and labels, the rendered bridge
configuration, the Secret wiring, KEDA's derived trigger settings, and
"validate", which fails rendering with a message that says what to change
when values contradict each other in ways values.schema.json cannot see.
*/}}

{{- define "kafka-redis-bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name, at most 63 characters (a DNS label). */}}
{{- define "kafka-redis-bridge.fullname" -}}
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

{{- define "kafka-redis-bridge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that pick the bridge's pods: the Service, PDB, monitors and spread constraints use them. */}}
{{- define "kafka-redis-bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafka-redis-bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kafka-redis-bridge.labels" -}}
helm.sh/chart: {{ include "kafka-redis-bridge.chart" . }}
{{ include "kafka-redis-bridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kafka-redis-bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kafka-redis-bridge.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kafka-redis-bridge.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "kafka-redis-bridge.configMapName" -}}
{{- default (include "kafka-redis-bridge.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{/* "true" when some autoscaler owns spec.replicas, else "". */}}
{{- define "kafka-redis-bridge.autoscaled" -}}
{{- if or .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}true{{ end }}
{{- end }}

{{/*
The bridge configuration as YAML: config from values, plus the chart's own
http section (the probes and the Service need it on containerPort). Empty
optional maps are left out rather than written as {}.
*/}}
{{- define "kafka-redis-bridge.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $host := .Values.listenHost }}
{{- if contains ":" $host }}
{{- $host = printf "[%s]" $host }}
{{- end }}
{{- $_ := set $cfg "http" (dict "enabled" true "listen" (printf "%s:%d" $host (int .Values.containerPort))) }}
{{- if and (hasKey $cfg "limits") (empty $cfg.limits) }}
{{- $_ := unset $cfg "limits" }}
{{- end }}
{{- if and (hasKey $cfg.kafka "properties") (empty $cfg.kafka.properties) }}
{{- $_ := unset $cfg.kafka "properties" }}
{{- end }}
{{- $redis := include "kafka-redis-bridge.redisConfig" . | fromYaml }}
{{- if $redis }}
{{- $_ := set $cfg "redis" (merge $redis (default dict $cfg.redis)) }}
{{- end }}
{{- /* Kafka's secrets: files mounted from Secrets, referenced as ${file:...}, so they never reach the ConfigMap. */ -}}
{{- $files := include "kafka-redis-bridge.kafkaSecretFiles" . | fromYaml }}
{{- if $files }}
{{- $props := default dict $cfg.kafka.properties }}
{{- range $property, $file := $files }}
{{- $_ := set $props $property (printf "${file:%s}" $file.path) }}
{{- end }}
{{- $_ := set $cfg.kafka "properties" $props }}
{{- end }}
{{- if .Values.staticMembership }}
{{- $_ := set $cfg.kafka "group_instance_id" "${env:POD_NAME}" }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The Kafka secrets the chart mounts as files, as YAML: the librdkafka property
-> {volume, secret, key, path}. From kafka.tls (ssl.ca.pem,
ssl.certificate.pem, ssl.key.pem, ssl.key.password), kafka.oidc
(sasl.oauthbearer.client.secret) and, in secrets.mode file with the chart's
own ConfigMap, secrets.kafkaSasl (sasl.username, sasl.password). The
Deployment projects exactly these keys and the config references exactly
these paths as ${file:PATH}. {} when none is set.
*/}}
{{- define "kafka-redis-bridge.kafkaSecretFiles" -}}
{{- $dir := include "kafka-redis-bridge.secretsDir" . }}
{{- $out := dict }}
{{- $t := .Values.kafka.tls }}
{{- if $t.existingSecret }}
{{- range $property, $pair := dict "ssl.ca.pem" (list $t.caKey "ca.crt") "ssl.certificate.pem" (list $t.certKey "tls.crt") "ssl.key.pem" (list $t.keyKey "tls.key") "ssl.key.password" (list $t.keyPasswordKey "key-password") }}
{{- if index $pair 0 }}
{{- $_ := set $out $property (dict "volume" "kafka-tls" "secret" $t.existingSecret "key" (index $pair 0) "path" (printf "%s/kafka-tls/%s" $dir (index $pair 1))) }}
{{- end }}
{{- end }}
{{- end }}
{{- $o := .Values.kafka.oidc }}
{{- if $o.existingSecret }}
{{- $_ := set $out "sasl.oauthbearer.client.secret" (dict "volume" "kafka-oidc" "secret" $o.existingSecret "key" $o.clientSecretKey "path" (printf "%s/kafka-oidc/client-secret" $dir)) }}
{{- end }}
{{- $sasl := include "kafka-redis-bridge.kafkaSaslSecretName" . }}
{{- if and $sasl (eq .Values.secrets.mode "file") (not .Values.existingConfigMap) }}
{{- $_ := set $out "sasl.username" (dict "volume" "kafka-sasl-password" "secret" $sasl "key" .Values.secrets.kafkaSasl.usernameKey "path" (printf "%s/kafka-sasl/username" $dir)) }}
{{- $_ := set $out "sasl.password" (dict "volume" "kafka-sasl-password" "secret" $sasl "key" .Values.secrets.kafkaSasl.passwordKey "path" (printf "%s/kafka-sasl/password" $dir)) }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
The redis: keys rendered from the chart's `redis` values (config.redis may
not hold them): the ACL user, idle check, sharded Pub/Sub, Sentinel, Cluster,
and redis.tls, whose files are the Secret redis.tls.existingSecret mounted at
redisTlsDir. YAML, {} when none is set.
*/}}
{{- define "kafka-redis-bridge.redisConfig" -}}
{{- $r := .Values.redis }}
{{- $out := dict }}
{{- with $r.username }}
{{- $_ := set $out "username" . }}
{{- end }}
{{- with $r.idleCheck }}
{{- $_ := set $out "idle_check" . }}
{{- end }}
{{- if $r.sharded }}
{{- $_ := set $out "sharded" true }}
{{- end }}
{{- $tls := dict }}
{{- $files := include "kafka-redis-bridge.redisTlsFiles" . | fromYaml }}
{{- range $setting, $file := $files }}
{{- $_ := set $tls $setting $file.path }}
{{- end }}
{{- with $r.tls.serverName }}
{{- $_ := set $tls "server_name" . }}
{{- end }}
{{- if $r.tls.insecureSkipVerify }}
{{- $_ := set $tls "insecure_skip_verify" true }}
{{- end }}
{{- if $tls }}
{{- $_ := set $out "tls" $tls }}
{{- end }}
{{- if or $r.sentinel.master $r.sentinel.addresses }}
{{- $sentinel := dict "master" $r.sentinel.master "addresses" $r.sentinel.addresses }}
{{- with $r.sentinel.username }}
{{- $_ := set $sentinel "username" . }}
{{- end }}
{{- if $r.sentinel.tls }}
{{- $_ := set $sentinel "tls" true }}
{{- end }}
{{- $_ := set $out "sentinel" $sentinel }}
{{- end }}
{{- with $r.cluster.addresses }}
{{- $_ := set $out "cluster" (dict "addresses" .) }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* Where the redis.tls Secret is mounted (always as files: the bridge reads TLS material from files only). */}}
{{- define "kafka-redis-bridge.redisTlsDir" -}}
{{- printf "%s/redis-tls" (include "kafka-redis-bridge.secretsDir" .) }}
{{- end }}

{{/*
The redis.tls files the chart mounts, as YAML: the bridge setting (ca_file,
cert_file, key_file) -> {key: the Secret's key, path: the file in the pod}.
{} without redis.tls.existingSecret. The Deployment projects exactly these
keys and the config points at exactly these paths.
*/}}
{{- define "kafka-redis-bridge.redisTlsFiles" -}}
{{- $t := .Values.redis.tls }}
{{- $dir := include "kafka-redis-bridge.redisTlsDir" . }}
{{- $out := dict }}
{{- if $t.existingSecret }}
{{- range $setting, $pair := dict "ca_file" (list $t.caKey "ca.crt") "cert_file" (list $t.certKey "tls.crt") "key_file" (list $t.keyKey "tls.key") }}
{{- if index $pair 0 }}
{{- $_ := set $out $setting (dict "key" (index $pair 0) "path" (printf "%s/%s" $dir (index $pair 1))) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/* A bridge duration ("500ms", "10s", "5m", "1h", 0) in whole seconds, rounded up. */}}
{{- define "kafka-redis-bridge.durationSeconds" -}}
{{- $d := toString . }}
{{- $digits := regexFind "^[0-9]+" $d }}
{{- $n := atoi (default "0" $digits) }}
{{- $unit := trimPrefix $digits $d }}
{{- if eq $unit "ms" }}{{ div (add $n 999) 1000 }}
{{- else if eq $unit "m" }}{{ mul $n 60 }}
{{- else if eq $unit "h" }}{{ mul $n 3600 }}
{{- else }}{{ $n }}
{{- end }}
{{- end }}

{{/* Secrets: a Secret name when the credential is configured (existing, or created from values), else "". */}}
{{- define "kafka-redis-bridge.redisSecretName" -}}
{{- if .Values.secrets.redis.existingSecret }}
{{- .Values.secrets.redis.existingSecret }}
{{- else if .Values.secrets.redis.password }}
{{- printf "%s-redis" (include "kafka-redis-bridge.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kafka-redis-bridge.redisSentinelSecretName" -}}
{{- if .Values.secrets.redisSentinel.existingSecret }}
{{- .Values.secrets.redisSentinel.existingSecret }}
{{- else if .Values.secrets.redisSentinel.password }}
{{- printf "%s-redis-sentinel" (include "kafka-redis-bridge.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kafka-redis-bridge.kafkaSaslSecretName" -}}
{{- if .Values.secrets.kafkaSasl.existingSecret }}
{{- .Values.secrets.kafkaSasl.existingSecret }}
{{- else if or .Values.secrets.kafkaSasl.username .Values.secrets.kafkaSasl.password }}
{{- printf "%s-kafka-sasl" (include "kafka-redis-bridge.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Where file-mode secrets are mounted in the container. */}}
{{- define "kafka-redis-bridge.secretsDir" -}}
/var/run/secrets/kafka-redis-bridge
{{- end }}

{{/* librdkafka properties from values ({} with an existing ConfigMap). */}}
{{- define "kafka-redis-bridge.kafkaProperties" -}}
{{- if .Values.existingConfigMap }}{{ dict | toJson }}
{{- else }}{{ default dict .Values.config.kafka.properties | toJson }}
{{- end }}
{{- end }}

{{/* KEDA's sasl mode: the value, or derived from sasl.mechanism / security.protocol. */}}
{{- define "kafka-redis-bridge.kedaSasl" -}}
{{- $props := include "kafka-redis-bridge.kafkaProperties" . | fromJson }}
{{- $modes := dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512" "OAUTHBEARER" "oauthbearer" "GSSAPI" "gssapi" }}
{{- $mechanism := upper (toString (default "" (index $props "sasl.mechanism"))) }}
{{- $protocol := upper (toString (default "" (index $props "security.protocol"))) }}
{{- if .Values.autoscaling.keda.sasl }}
{{- .Values.autoscaling.keda.sasl }}
{{- else if $mechanism }}
{{- index $modes $mechanism | default "" }}
{{- else if hasPrefix "SASL_" $protocol }}
{{- /* librdkafka's default mechanism */ -}}
gssapi
{{- end }}
{{- end }}

{{/* KEDA's tls setting: the value, or "enable" when security.protocol is SSL or SASL_SSL. */}}
{{- define "kafka-redis-bridge.kedaTls" -}}
{{- $props := include "kafka-redis-bridge.kafkaProperties" . | fromJson }}
{{- $protocol := upper (toString (default "" (index $props "security.protocol"))) }}
{{- if .Values.autoscaling.keda.tls }}
{{- .Values.autoscaling.keda.tls }}
{{- else if or (eq $protocol "SSL") (eq $protocol "SASL_SSL") }}
{{- "enable" }}
{{- end }}
{{- end }}

{{/* KEDA's offsetResetPolicy: the value, or derived from auto.offset.reset. */}}
{{- define "kafka-redis-bridge.kedaOffsetReset" -}}
{{- $props := include "kafka-redis-bridge.kafkaProperties" . | fromJson }}
{{- $reset := lower (toString (default "" (index $props "auto.offset.reset"))) }}
{{- if .Values.autoscaling.keda.offsetResetPolicy }}
{{- .Values.autoscaling.keda.offsetResetPolicy }}
{{- else if has $reset (list "earliest" "smallest" "beginning") }}
{{- "earliest" }}
{{- else }}
{{- "latest" }}
{{- end }}
{{- end }}

{{/* PromQL label matchers for this release's series. */}}
{{- define "kafka-redis-bridge.promSelector" -}}
{{- default (printf "namespace=%q, job=%q" .Release.Namespace .Release.Name) .Values.metrics.prometheusRule.selector }}
{{- end }}

{{/*
Checks across values; each failure says what to change. Included once, by
the Deployment, so every rendering runs it.
*/}}
{{- define "kafka-redis-bridge.validate" -}}
{{- $v := .Values }}
{{- if and $v.autoscaling.hpa.enabled $v.autoscaling.keda.enabled }}
{{- fail "\n\nautoscaling.hpa.enabled and autoscaling.keda.enabled are both true: enable one of them. KEDA drives its own HorizontalPodAutoscaler from the ScaledObject, and two autoscalers would fight over the Deployment's replicas." }}
{{- end }}
{{- if and $v.metrics.serviceMonitor.enabled $v.metrics.podMonitor.enabled }}
{{- fail "\n\nmetrics.serviceMonitor.enabled and metrics.podMonitor.enabled are both true: enable one of them, or Prometheus scrapes every pod twice and every counter is doubled in sums." }}
{{- end }}
{{- if and $v.secrets.redis.existingSecret $v.secrets.redis.password }}
{{- fail "\n\nsecrets.redis: give existingSecret or password, not both (password creates a Secret for development)." }}
{{- end }}
{{- if and $v.secrets.kafkaSasl.existingSecret (or $v.secrets.kafkaSasl.username $v.secrets.kafkaSasl.password) }}
{{- fail "\n\nsecrets.kafkaSasl: give existingSecret or username/password, not both (username/password create a Secret for development)." }}
{{- end }}
{{- if and (not $v.secrets.kafkaSasl.existingSecret) (or $v.secrets.kafkaSasl.username $v.secrets.kafkaSasl.password) (not (and $v.secrets.kafkaSasl.username $v.secrets.kafkaSasl.password)) }}
{{- fail "\n\nsecrets.kafkaSasl: give both username and password." }}
{{- end }}
{{- if and (or $v.probes.liveness.enabled $v.probes.readiness.enabled $v.probes.startup.enabled $v.service.enabled) (eq (int $v.containerPort) 0) }}
{{- fail "\n\ncontainerPort must be set: the probes and the Service use it." }}
{{- end }}
{{- if not $v.existingConfigMap }}
{{- /* Credentials must never reach the ConfigMap: a credential property is
refused unless its whole value is a reference (${file:...} to a mounted
Secret, ${env:...}), which the bridge resolves in the pod. */ -}}
{{- $files := include "kafka-redis-bridge.kafkaSecretFiles" . | fromYaml }}
{{- range $key, $value := (default dict $v.config.kafka.properties) }}
{{- if and (regexMatch "(?i)(password|secret|^sasl\\.username$|^sasl\\.jaas\\.config$|^ssl\\.key\\.pem$|^ssl_key$)" $key) (not (regexMatch "^\\$\\{(env|file):[^}]+\\}$" (toString $value))) }}
{{- fail (printf "\n\nconfig.kafka.properties.%s: credentials never go in the ConfigMap, where anyone allowed to read ConfigMaps sees them. Use secrets.kafkaSasl for sasl.username and sasl.password, kafka.tls for the private key and its password, kafka.oidc for sasl.oauthbearer.client.secret; for anything else mount a Secret with extraVolumes and write the value as ${file:/path/to/the/file}." $key) }}
{{- end }}
{{- if hasKey $files $key }}
{{- fail (printf "\n\nconfig.kafka.properties.%s: the chart renders this property from %s; remove it from config.kafka.properties." $key (index (dict "kafka-tls" "kafka.tls" "kafka-oidc" "kafka.oidc" "kafka-sasl-password" "secrets.kafkaSasl") (index $files $key).volume)) }}
{{- end }}
{{- end }}
{{- $props := default dict $v.config.kafka.properties }}
{{- $protocol := upper (toString (default "" (index $props "security.protocol"))) }}
{{- if and $v.kafka.tls.existingSecret (not (or (eq $protocol "SSL") (eq $protocol "SASL_SSL"))) }}
{{- fail (printf "\n\nkafka.tls.existingSecret is set, but config.kafka.properties.security.protocol is %q: set SSL or SASL_SSL, or remove kafka.tls (librdkafka would ignore the TLS material and connect in plaintext)." (default "plaintext" $protocol)) }}
{{- end }}
{{- if and $v.kafka.oidc.existingSecret (ne (lower (toString (default "" (index $props "sasl.oauthbearer.method")))) "oidc") }}
{{- fail "\n\nkafka.oidc.existingSecret is set, but config.kafka.properties.sasl.oauthbearer.method is not oidc: set sasl.mechanism: OAUTHBEARER, sasl.oauthbearer.method: oidc, sasl.oauthbearer.client.id and sasl.oauthbearer.token.endpoint.url, or remove kafka.oidc." }}
{{- end }}
{{- /* One group.instance.id per pod: a fixed one would make every replica fence the others in a loop. */ -}}
{{- $instance := list (toString (default "" $v.config.kafka.group_instance_id)) (toString (default "" (index $props "group.instance.id"))) }}
{{- range $id := $instance }}
{{- if and $id $v.staticMembership }}
{{- fail "\n\nstaticMembership is true: the chart sets kafka.group_instance_id to ${env:POD_NAME}; remove group_instance_id (and group.instance.id) from config.kafka." }}
{{- end }}
{{- if and $id (not (contains "${env:" $id)) }}
{{- fail (printf "\n\nconfig.kafka: group instance id %q is the same in every pod, so the replicas would fence each other in a loop: set staticMembership: true (each pod's own name), or write it with ${env:...}." $id) }}
{{- end }}
{{- end }}
{{- if regexMatch "^rediss?://.*@" (toString $v.config.redis.url) }}
{{- fail "\n\nconfig.redis.url holds credentials: write redis://host:port and give the password through secrets.redis, so it never reaches the ConfigMap." }}
{{- end }}
{{- /* The grace period must cover the drain plus committing and leaving the group. */ -}}
{{- $drain := 10 }}
{{- if and $v.config.shutdown (hasKey $v.config.shutdown "drain_timeout") }}
{{- $drain = include "kafka-redis-bridge.durationSeconds" $v.config.shutdown.drain_timeout | atoi }}
{{- end }}
{{- if lt (int $v.terminationGracePeriodSeconds) (add $drain 10) }}
{{- fail (printf "\n\nterminationGracePeriodSeconds is %d but config.shutdown.drain_timeout is %ds: the grace period must be at least the drain timeout plus 10s (%ds) so the bridge can commit its offsets and leave the group before it is killed." (int $v.terminationGracePeriodSeconds) $drain (add $drain 10)) }}
{{- end }}
{{- end }}
{{- include "kafka-redis-bridge.validateRedis" . }}
{{- if $v.autoscaling.keda.enabled }}
{{- if and $v.existingConfigMap (not (and $v.autoscaling.keda.bootstrapServers $v.autoscaling.keda.consumerGroup)) }}
{{- fail "\n\nautoscaling.keda with existingConfigMap: set autoscaling.keda.bootstrapServers and autoscaling.keda.consumerGroup (the chart cannot read them from a ConfigMap it does not render)." }}
{{- end }}
{{- $sasl := include "kafka-redis-bridge.kedaSasl" . }}
{{- if and $sasl (ne $sasl "none") (not (include "kafka-redis-bridge.kafkaSaslSecretName" .)) (not $v.autoscaling.keda.extraSecretTargetRefs) }}
{{- fail (printf "\n\nautoscaling.keda: the brokers use SASL (%s) but secrets.kafkaSasl names no Secret; KEDA's Kafka scaler needs the same credentials as the bridge. Set secrets.kafkaSasl.existingSecret, or autoscaling.keda.extraSecretTargetRefs." $sasl) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The checks of the chart's redis values and secrets.redis*, part of "validate":
TLS only with a TLS connection and with something to mount, one source per
username, Sentinel credentials only with Sentinel, no database but 0 on a
cluster, and the keys the chart renders kept out of config.redis.
*/}}
{{- define "kafka-redis-bridge.validateRedis" -}}
{{- $v := .Values }}
{{- $r := $v.redis }}
{{- $t := $r.tls }}
{{- $cr := default dict $v.config.redis }}
{{- if not $v.existingConfigMap }}
{{- $owned := dict "username" "redis.username (or secrets.redis.usernameKey)" "tls" "redis.tls (its files come from the Secret redis.tls.existingSecret)" "sentinel" "redis.sentinel (its password from secrets.redisSentinel)" "cluster" "redis.cluster" "sharded" "redis.sharded" "idle_check" "redis.idleCheck" }}
{{- range $key := keys $owned | sortAlpha }}
{{- if hasKey $cr $key }}
{{- fail (printf "\n\nconfig.redis.%s: the chart renders this key; set %s in the values instead." $key (index $owned $key)) }}
{{- end }}
{{- end }}
{{- $url := toString (default "redis://127.0.0.1:6379" $cr.url) }}
{{- $tlsOn := or (hasPrefix "rediss://" $url) $r.sentinel.tls }}
{{- range $key := list "existingSecret" "caKey" "certKey" "keyKey" "serverName" "insecureSkipVerify" }}
{{- if and (index $t $key) (not $tlsOn) }}
{{- fail (printf "\n\nredis.tls.%s is set, but config.redis.url is redis:// (plaintext) and redis.sentinel.tls is false: use a rediss:// URL for TLS, or remove redis.tls (the bridge refuses TLS settings it would not use)." $key) }}
{{- end }}
{{- end }}
{{- if and $r.cluster.addresses (regexMatch "^rediss?://[^/]*/0*[1-9]" $url) }}
{{- $db := regexReplaceAll "^rediss?://[^/]*/([0-9]+).*$" $url "${1}" }}
{{- fail (printf "\n\nconfig.redis.url selects database %s, but redis.cluster is set and a Redis Cluster has database 0 only: remove the /%s from the URL." $db $db) }}
{{- end }}
{{- else }}
{{- $rendered := dict "username" $r.username "idleCheck" $r.idleCheck "sharded" $r.sharded "tls.serverName" $t.serverName "tls.insecureSkipVerify" $t.insecureSkipVerify "sentinel.master" $r.sentinel.master "sentinel.addresses" $r.sentinel.addresses "sentinel.username" $r.sentinel.username "sentinel.tls" $r.sentinel.tls "cluster.addresses" $r.cluster.addresses }}
{{- range $key := keys $rendered | sortAlpha }}
{{- if index $rendered $key }}
{{- fail (printf "\n\nredis.%s is rendered into the chart's ConfigMap, but existingConfigMap is set: write it in the bridge.yaml of ConfigMap %s instead (redis.tls files and Secrets are still mounted; the chart README gives their paths)." $key $v.existingConfigMap) }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $t.existingSecret (not (or $t.caKey $t.certKey)) }}
{{- fail (printf "\n\nredis.tls.existingSecret is %s but no key of it is named: set redis.tls.caKey (a CA bundle, e.g. ca.crt) and/or redis.tls.certKey and redis.tls.keyKey (a client certificate, e.g. tls.crt and tls.key). For the system trust store leave existingSecret empty." $t.existingSecret) }}
{{- end }}
{{- if and $t.caKey $t.insecureSkipVerify }}
{{- fail "\n\nredis.tls.caKey and redis.tls.insecureSkipVerify are both set: with verification off the CA is never used. Drop insecureSkipVerify (or caKey)." }}
{{- end }}
{{- if and $r.username $v.secrets.redis.usernameKey }}
{{- fail "\n\nredis.username and secrets.redis.usernameKey are both set: give the ACL user one way (the value goes to the ConfigMap, the key is read from the Secret and would win)." }}
{{- end }}
{{- if and $v.secrets.redis.usernameKey (not $v.secrets.redis.existingSecret) }}
{{- fail "\n\nsecrets.redis.usernameKey needs secrets.redis.existingSecret, the Secret holding that key (with a development password, give redis.username)." }}
{{- end }}
{{- $sentinelSecret := include "kafka-redis-bridge.redisSentinelSecretName" . }}
{{- if and $v.secrets.redisSentinel.existingSecret $v.secrets.redisSentinel.password }}
{{- fail "\n\nsecrets.redisSentinel: give existingSecret or password, not both (password creates a Secret for development)." }}
{{- end }}
{{- if and (or $sentinelSecret $v.secrets.redisSentinel.usernameKey) (not (or $r.sentinel.master $r.sentinel.addresses)) (not $v.existingConfigMap) }}
{{- fail "\n\nsecrets.redisSentinel is set but redis.sentinel is not: set redis.sentinel.master and redis.sentinel.addresses, or remove secrets.redisSentinel." }}
{{- end }}
{{- if and $v.secrets.redisSentinel.usernameKey (not $v.secrets.redisSentinel.existingSecret) }}
{{- fail "\n\nsecrets.redisSentinel.usernameKey needs secrets.redisSentinel.existingSecret, the Secret holding that key (with a development password, give redis.sentinel.username)." }}
{{- end }}
{{- if and $r.sentinel.username $v.secrets.redisSentinel.usernameKey }}
{{- fail "\n\nredis.sentinel.username and secrets.redisSentinel.usernameKey are both set: give the sentinels' ACL user one way." }}
{{- end }}
{{- end }}
