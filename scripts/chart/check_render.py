#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Assertions on the chart's rendered manifests, for scripts/chart-check.sh.

kubeconform checks each Kubernetes object against its schema; this module
checks what no schema can: how the objects fit together and the promises the
chart makes (credentials never in the ConfigMap, credentials only from the
Secret keys the values name, the redis.tls files of the configuration exactly
the files mounted from redis.tls's Secret, every ${file:} reference of the
configuration a read-only file of a Secret in the pod and every ${env:} one a
variable of the container, Kafka's TLS, OIDC and SASL files and static
membership rendered as given, the redis values rendered as given,
HPA and KEDA exclusive, replicas omitted under an autoscaler, a restricted
security context, the configuration mounted as a directory, a checksum
annotation, probes on the bridge's endpoints). The custom resources (ServiceMonitor, PodMonitor,
PrometheusRule, KEDA ScaledObject and TriggerAuthentication) have no schema in
the Kubernetes bundle and are skipped by kubeconform; they are checked here
against the fields their CRDs define (unknown fields are errors, as kubectl's
server-side validation would make them) and against the objects they point at.

Each assertion prints one line, "PASS scenario: what" or
"FAIL scenario: what: why"; the exit status is 1 when any failed.

usage:
  check_render.py render NAME RENDERED VALUES_FILE [CONFIG_OUT]
      assertions on one rendering; VALUES_FILE is the scenario's values (the
      chart defaults are merged under it); CONFIG_OUT receives the rendered
      bridge.yaml, when there is one, for `kafka-redis-bridge check`: its
      ${file:} references to the pod's Secrets point at placeholder files
      under CONFIG_OUT.secrets/, and CONFIG_OUT.env lists a NAME=value line
      for each ${env:NAME}
  check_render.py checksum-differs RENDERED_A RENDERED_B
      the pods' checksum/config annotations differ
  check_render.py readme CHART_DIR
      the chart README lists every value of values.yaml
  check_render.py rules-json RENDERED
      prints each PrometheusRule rule as a JSON line {where, expr, for}, for
      scripts/chart/promql (Prometheus's own parser); nothing without rules
  check_render.py rules-file RENDERED
      prints the PrometheusRule's groups as a Prometheus rule file (what the
      operator hands Prometheus), for `promtool test rules`
  check_render.py alerts RENDERED
      prints the PrometheusRule's alert names, one a line
"""

import json

import os
import re
import sys

import yaml

CHART_DEFAULTS = os.path.join(os.path.dirname(__file__), "..", "..", "helm",
                              "kafka-redis-bridge", "values.yaml")
CONFIG_DIR = "/etc/kafka-redis-bridge"
SECRETS_DIR = "/var/run/secrets/kafka-redis-bridge"
# redis.tls: the bridge setting, the chart value naming the Secret's key, and
# the file the chart projects it to (the paths the chart README documents).
REDIS_TLS_FILES = (("ca_file", "caKey", SECRETS_DIR + "/redis-tls/ca.crt"),
                   ("cert_file", "certKey", SECRETS_DIR + "/redis-tls/tls.crt"),
                   ("key_file", "keyKey", SECRETS_DIR + "/redis-tls/tls.key"))
# Credential environment variables: name -> (secrets.* block, the value
# naming its Secret key). *_FILE variants point at a file projected from it.
CREDENTIAL_ENV = {
    "K2R_REDIS_PASSWORD": ("redis", "passwordKey"),
    "K2R_REDIS_USERNAME": ("redis", "usernameKey"),
    "K2R_REDIS_SENTINEL_PASSWORD": ("redisSentinel", "passwordKey"),
    "K2R_REDIS_SENTINEL_USERNAME": ("redisSentinel", "usernameKey"),
    "K2R_KAFKA_SASL_USERNAME": ("kafkaSasl", "usernameKey"),
    "K2R_KAFKA_SASL_PASSWORD": ("kafkaSasl", "passwordKey"),
}
SECRET_KEY_NAME = re.compile(r"(?i)password|secret|^sasl\.username$|^sasl\.jaas\.config$")
# A value that is one config-provider reference as a whole: the bridge reads
# it in the pod, so a credential written so is not in the ConfigMap.
WHOLE_REFERENCE = re.compile(r"^\$\{(env|file):[^}]+\}$")
REFERENCE = re.compile(r"(?<!\$)\$\{(env|file):([^}]+)\}")
# Kafka's secrets the chart mounts: the librdkafka property, the values
# block and key naming the Secret's key, and the file the chart projects it
# to (the paths the chart README documents).
KAFKA_SECRET_FILES = (
    ("ssl.ca.pem", ("kafka", "tls"), "caKey", SECRETS_DIR + "/kafka-tls/ca.crt"),
    ("ssl.certificate.pem", ("kafka", "tls"), "certKey", SECRETS_DIR + "/kafka-tls/tls.crt"),
    ("ssl.key.pem", ("kafka", "tls"), "keyKey", SECRETS_DIR + "/kafka-tls/tls.key"),
    ("ssl.key.password", ("kafka", "tls"), "keyPasswordKey",
     SECRETS_DIR + "/kafka-tls/key-password"),
    ("sasl.oauthbearer.client.secret", ("kafka", "oidc"), "clientSecretKey",
     SECRETS_DIR + "/kafka-oidc/client-secret"),
    ("sasl.username", ("secrets", "kafkaSasl"), "usernameKey", SECRETS_DIR + "/kafka-sasl/username"),
    ("sasl.password", ("secrets", "kafkaSasl"), "passwordKey", SECRETS_DIR + "/kafka-sasl/password"),
)


def strings(node):
    """Every string value under node (keys aside)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node

# The bridge's metric names: every family the registry renders, as the unit
# tests' golden file has them (tests/fixtures/metrics/known.prom), so a new
# metric is known here without a second list; histograms also have these
# suffixes.
def _families():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "tests", "fixtures", "metrics", "known.prom")
    with open(path, encoding="utf-8") as f:
        return {line.split()[2] for line in f if line.startswith("# TYPE ")}


METRICS = _families()
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# Fields of the custom resources, from their CRDs (prometheus-operator
# monitoring.coreos.com/v1, KEDA keda.sh/v1alpha1): the ones that exist, so a
# typo is caught here as the API server would catch it.
SERVICEMONITOR_SPEC = {
    "attachMetadata", "bodySizeLimit", "convertClassicHistogramsToNHCB", "endpoints",
    "fallbackScrapeProtocol", "jobLabel", "keepDroppedTargets", "labelLimit",
    "labelNameLengthLimit", "labelValueLengthLimit", "namespaceSelector",
    "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor", "podTargetLabels",
    "sampleLimit", "scrapeClass", "scrapeClassicHistograms", "scrapeProtocols", "selector",
    "selectorMechanism", "serviceDiscoveryRole", "targetLabels", "targetLimit",
}
PODMONITOR_SPEC = (SERVICEMONITOR_SPEC - {"endpoints", "serviceDiscoveryRole", "targetLabels"}) | {
    "podMetricsEndpoints"}
ENDPOINT = {
    "authorization", "basicAuth", "bearerTokenFile", "bearerTokenSecret", "enableHttp2",
    "filterRunning", "followRedirects", "honorLabels", "honorTimestamps", "interval",
    "metricRelabelings", "noProxy", "oauth2", "params", "path", "port", "proxyConnectHeader",
    "proxyFromEnvironment", "proxyUrl", "relabelings", "scheme", "scrapeTimeout", "targetPort",
    "tlsConfig", "trackTimestampsStaleness",
}
POD_ENDPOINT = (ENDPOINT - {"bearerTokenFile"}) | {"portNumber"}
RELABEL = {"action", "modulus", "regex", "replacement", "separator", "sourceLabels",
           "targetLabel"}
RULE_GROUP = {"name", "interval", "rules", "limit", "partial_response_strategy", "query_offset",
              "labels"}
RULE = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
SCALEDOBJECT_SPEC = {"scaleTargetRef", "pollingInterval", "cooldownPeriod",
                     "initialCooldownPeriod", "idleReplicaCount", "minReplicaCount",
                     "maxReplicaCount", "advanced", "triggers", "fallback"}
SCALE_TARGET = {"apiVersion", "kind", "name", "envSourceContainerName"}
TRIGGER = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
ADVANCED = {"horizontalPodAutoscalerConfig", "restoreToOriginalReplicaCount", "scalingModifiers"}
TRIGGERAUTH_SPEC = {"secretTargetRef", "env", "hashiCorpVault", "azureKeyVault", "podIdentity",
                    "awsSecretManager", "gcpSecretManager", "configMapTargetRef",
                    "boundServiceAccountToken", "filePath"}
SECRET_TARGET = {"parameter", "name", "key"}
# KEDA's Kafka scaler: trigger metadata and authentication parameters.
KAFKA_TRIGGER_METADATA = {
    "bootstrapServers", "consumerGroup", "topic", "lagThreshold", "activationLagThreshold",
    "offsetResetPolicy", "allowIdleConsumers", "scaleToZeroOnInvalidOffset",
    "excludePersistentLag", "limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions",
    "version", "partitionLimitation", "sasl", "saslTokenProvider", "tls", "unsafeSsl",
    "awsRegion",
}
KAFKA_AUTH_PARAMETERS = {
    "sasl", "saslTokenProvider", "username", "password", "keytab", "realm", "kerberosConfig",
    "kerberosServiceName", "kerberosDisableFAST", "oauthTokenEndpointUri", "scopes",
    "oauthExtensions", "tls", "ca", "cert", "key", "keyPassword", "awsRegion",
    "awsAccessKeyID", "awsSecretAccessKey", "awsRoleArn",
}
KEDA_SASL = {"plaintext", "scram_sha256", "scram_sha512", "gssapi", "oauthbearer", "none"}
PROM_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


class Failed(Exception):
    """One assertion did not hold; the message says why."""


def ensure(condition, why):
    if not condition:
        raise Failed(why)


def merge(base, over):
    """Helm's values merge: maps merge key by key, anything else replaces, null deletes."""
    out = dict(base)
    for key, value in (over or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def of_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind):
    found = of_kind(docs, kind)
    ensure(len(found) == 1, "expected one %s, found %d" % (kind, len(found)))
    return found[0]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def known_keys(obj, allowed, where):
    """Every key of obj is one the CRD defines."""
    ensure(isinstance(obj, dict), "%s: expected an object" % where)
    unknown = sorted(set(obj) - allowed)
    ensure(not unknown, "%s: unknown field(s) %s" % (where, ", ".join(unknown)))


def duration_seconds(text):
    """A bridge duration ("500ms", "10s", "5m", "1h", 0) in seconds."""
    m = re.fullmatch(r"([0-9]+)(ms|s|m|h)?", str(text))
    ensure(m, "not a duration: %r" % (text,))
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


class Rendering:
    """One `helm template` output and the values it was rendered from."""

    def __init__(self, name, rendered_path, values_path):
        self.name = name
        with open(rendered_path) as f:
            self.text = f.read()
        self.docs = load_docs(rendered_path)
        with open(CHART_DEFAULTS) as f:
            defaults = yaml.safe_load(f)
        with open(values_path) as f:
            self.values = merge(defaults, yaml.safe_load(f) or {})
        self.failed = 0

    # ------------------------------------------------------------ helpers

    def deployment(self):
        return one(self.docs, "Deployment")

    def pod_spec(self):
        return self.deployment()["spec"]["template"]["spec"]

    def bridge(self):
        containers = self.pod_spec()["containers"]
        ensure(len(containers) == 1 and containers[0]["name"] == "bridge",
               "expected one container named bridge")
        return containers[0]

    def pod_labels(self):
        return self.deployment()["spec"]["template"]["metadata"]["labels"]

    def config(self):
        """The bridge configuration the pods read, parsed (None with an existing ConfigMap)."""
        maps = of_kind(self.docs, "ConfigMap")
        if self.values["existingConfigMap"]:
            ensure(not maps, "a ConfigMap was rendered although existingConfigMap is set")
            return None
        cm = one(self.docs, "ConfigMap")
        return yaml.safe_load(cm["data"]["bridge.yaml"])

    def secret_strings(self):
        """The credentials given as values in this scenario."""
        s = self.values["secrets"]
        return [v for v in (s["redis"]["password"], s["redisSentinel"]["password"],
                            s["kafkaSasl"]["username"], s["kafkaSasl"]["password"]) if v]

    def rendered_secret_names(self):
        """Secrets the rendering creates or the values name as existing."""
        sv = self.values["secrets"]
        return ({s["metadata"]["name"] for s in of_kind(self.docs, "Secret")}
                | {sv[block]["existingSecret"] for block in ("redis", "redisSentinel", "kafkaSasl")
                   if sv[block]["existingSecret"]})

    def run(self, what, fn):
        try:
            fn()
            print("PASS %s: %s" % (self.name, what))
        except Failed as e:
            print("FAIL %s: %s: %s" % (self.name, what, e))
            self.failed += 1
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            print("FAIL %s: %s: unexpected shape (%s: %s)" % (self.name, what,
                                                             type(e).__name__, e))
            self.failed += 1

    # ------------------------------------------------------------ assertions

    def restricted_security_context(self):
        """The restricted Pod Security Standard, for the bridge and the test pod."""
        pods = [("bridge", self.pod_spec())]
        pods += [(p["metadata"]["name"], p["spec"]) for p in of_kind(self.docs, "Pod")]
        for name, spec in pods:
            psc = spec.get("securityContext") or {}
            ensure(not spec.get("hostNetwork") and not spec.get("hostPID")
                   and not spec.get("hostIPC"), "%s: host namespaces" % name)
            for vol in spec.get("volumes") or []:
                ensure("hostPath" not in vol, "%s: hostPath volume %s" % (name, vol["name"]))
            for c in spec["containers"]:
                sc = c.get("securityContext") or {}
                where = "%s/%s" % (name, c["name"])

                def get(key):
                    return sc.get(key, psc.get(key))

                ensure(get("runAsNonRoot") is True, "%s: runAsNonRoot is not true" % where)
                for key in ("runAsUser", "runAsGroup"):
                    ensure(isinstance(get(key), int) and get(key) > 0,
                           "%s: %s is not a numeric non-root id" % (where, key))
                ensure(sc.get("allowPrivilegeEscalation") is False,
                       "%s: allowPrivilegeEscalation is not false" % where)
                ensure(not sc.get("privileged"), "%s: privileged" % where)
                caps = sc.get("capabilities") or {}
                ensure("ALL" in (caps.get("drop") or []), "%s: capabilities do not drop ALL" % where)
                ensure(not caps.get("add"), "%s: capabilities added" % where)
                ensure((get("seccompProfile") or {}).get("type") == "RuntimeDefault",
                       "%s: seccompProfile is not RuntimeDefault" % where)
                ensure(sc.get("readOnlyRootFilesystem") is True,
                       "%s: root filesystem is writable" % where)

    def tmp_is_empty_dir(self):
        spec, c = self.pod_spec(), self.bridge()
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        ensure("/tmp" in mounts, "nothing is mounted at /tmp")
        vols = {v["name"]: v for v in spec["volumes"]}
        ensure("emptyDir" in vols[mounts["/tmp"]["name"]], "/tmp is not an emptyDir")

    def config_mounted_as_directory(self):
        spec, c = self.pod_spec(), self.bridge()
        mounts = [m for m in c["volumeMounts"] if m["mountPath"] == CONFIG_DIR]
        ensure(len(mounts) == 1, "nothing is mounted at %s" % CONFIG_DIR)
        ensure("subPath" not in mounts[0] and "subPathExpr" not in mounts[0],
               "the config is a subPath mount: ConfigMap updates would never reach the pod")
        ensure(not any("subPath" in m for m in c["volumeMounts"]
                       if m["mountPath"].startswith(CONFIG_DIR)), "a subPath mount under %s" % CONFIG_DIR)
        vol = {v["name"]: v for v in spec["volumes"]}[mounts[0]["name"]]
        ensure("configMap" in vol, "the config volume is not a ConfigMap")
        want = self.values["existingConfigMap"] or one(self.docs, "ConfigMap")["metadata"]["name"]
        ensure(vol["configMap"]["name"] == want,
               "the volume uses ConfigMap %s, not %s" % (vol["configMap"]["name"], want))
        ensure(c["args"] == ["run", "-c", CONFIG_DIR + "/bridge.yaml"],
               "the bridge is not started on %s/bridge.yaml: %s" % (CONFIG_DIR, c["args"]))

    def checksum_annotation(self):
        annotations = self.deployment()["spec"]["template"]["metadata"].get("annotations") or {}
        want = self.values["rollOnConfigChange"] and not self.values["existingConfigMap"]
        value = annotations.get("checksum/config")
        if want:
            ensure(value and re.fullmatch(r"[0-9a-f]{64}", value),
                   "no sha256 checksum/config annotation on the pod template")
        else:
            ensure(value is None, "checksum/config present although pods must not roll")

    def replicas_and_autoscalers(self):
        hpas, scaled = of_kind(self.docs, "HorizontalPodAutoscaler"), of_kind(self.docs, "ScaledObject")
        ensure(not (hpas and scaled), "both a HorizontalPodAutoscaler and a ScaledObject")
        spec = self.deployment()["spec"]
        if hpas or scaled:
            ensure("replicas" not in spec, "replicas set although an autoscaler owns them")
        else:
            ensure(spec.get("replicas") == self.values["replicaCount"],
                   "replicas is %r, not replicaCount %r" % (spec.get("replicas"),
                                                           self.values["replicaCount"]))
        target = self.deployment()["metadata"]["name"]
        for hpa in hpas:
            ref = hpa["spec"]["scaleTargetRef"]
            ensure((ref["kind"], ref["name"]) == ("Deployment", target),
                   "the HPA targets %s/%s" % (ref["kind"], ref["name"]))
            ensure(hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"],
                   "HPA minReplicas above maxReplicas")

    def no_credentials_in_configmap(self):
        for cm in of_kind(self.docs, "ConfigMap"):
            text = yaml.safe_dump(cm["data"])
            for s in self.secret_strings():
                ensure(s not in text, "a credential given in values appears in ConfigMap %s"
                       % cm["metadata"]["name"])
        cfg = self.config()
        if cfg is None:
            return
        ensure("password" not in (cfg.get("redis") or {}), "redis.password in the ConfigMap")
        ensure("password" not in ((cfg.get("redis") or {}).get("sentinel") or {}),
               "redis.sentinel.password in the ConfigMap")

        # No key anywhere in the configuration (the rules aside, whose names
        # are the user's fields) is a password or a secret.
        def walk(node, where):
            if isinstance(node, dict):
                for key, value in node.items():
                    path = "%s.%s" % (where, key) if where else str(key)
                    ensure(not SECRET_KEY_NAME.search(str(key))
                           or WHOLE_REFERENCE.match(str(value)), "%s in the ConfigMap" % path)
                    walk(value, path)
            elif isinstance(node, list):
                for i, value in enumerate(node):
                    walk(value, "%s[%d]" % (where, i))
        walk({k: v for k, v in cfg.items() if k != "rules"}, "")
        ensure(not re.match(r"^rediss?://.*@", str((cfg.get("redis") or {}).get("url", ""))),
               "credentials in redis.url")
        for key, value in ((cfg.get("kafka") or {}).get("properties") or {}).items():
            ensure(not re.search(r"(?i)password|secret|^sasl\.username$|^sasl\.jaas\.config$", key)
                   or WHOLE_REFERENCE.match(str(value)),
                   "kafka.properties.%s in the ConfigMap" % key)

    def credentials_only_from_secrets(self):
        # A credential given in values appears nowhere in plain text: only
        # base64 inside its Secret.
        for s in self.secret_strings():
            ensure(s not in self.text, "a credential appears in plain text in the manifests")
        c, spec = self.bridge(), self.pod_spec()
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        known_secrets = self.rendered_secret_names()
        sv = self.values["secrets"]
        for env in c.get("env") or []:
            name = env["name"]
            base = name[:-len("_FILE")] if name.endswith("_FILE") else name
            if base not in CREDENTIAL_ENV:
                ensure(not re.match(r"K2R_.*(PASSWORD|USERNAME)", name),
                       "%s: a credential variable the chart does not know" % name)
                continue
            block, key_value = CREDENTIAL_ENV[base]
            want_key = sv[block][key_value]
            if name.endswith("_FILE"):
                ensure(sv["mode"] == "file", "%s in env mode" % name)
                path = env["value"]
                mount = mounts.get(os.path.dirname(path))
                ensure(mount and mount.get("readOnly"), "%s: %s is not on a read-only mount"
                       % (name, path))
                secret = volumes[mount["name"]].get("secret")
                ensure(secret, "%s: %s is not from a Secret volume" % (name, path))
                ensure(secret["secretName"] in known_secrets,
                       "%s: Secret %s is neither rendered nor named in values"
                       % (name, secret["secretName"]))
                items = {i["path"]: i["key"] for i in secret.get("items", [])}
                ensure(os.path.basename(path) in items,
                       "%s: the Secret volume does not project %s" % (name, path))
                ensure(items[os.path.basename(path)] == want_key,
                       "%s: %s is the Secret's key %s, not secrets.%s.%s (%s)"
                       % (name, path, items[os.path.basename(path)], block, key_value, want_key))
            else:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                ensure(ref and "value" not in env, "%s is not taken from a Secret" % name)
                ensure(ref["name"] in known_secrets, "%s: Secret %s is neither rendered nor "
                       "named in values" % (name, ref["name"]))
                ensure(ref["key"] == want_key, "%s: key %s, not secrets.%s.%s (%s)"
                       % (name, ref["key"], block, key_value, want_key))
        names = {e["name"] for e in c.get("env") or []}

        def given(base):
            return names & {base, base + "_FILE"}
        if sv["redis"]["existingSecret"] or sv["redis"]["password"]:
            ensure(given("K2R_REDIS_PASSWORD"),
                   "a Redis secret is configured but the bridge is not given it")
        ensure(bool(given("K2R_REDIS_USERNAME")) == bool(sv["redis"]["usernameKey"]),
               "K2R_REDIS_USERNAME(_FILE) and secrets.redis.usernameKey disagree")
        if sv["redisSentinel"]["existingSecret"] or sv["redisSentinel"]["password"]:
            ensure(given("K2R_REDIS_SENTINEL_PASSWORD"),
                   "a Sentinel secret is configured but the bridge is not given it")
        else:
            ensure(not given("K2R_REDIS_SENTINEL_PASSWORD"),
                   "a Sentinel password without secrets.redisSentinel")
        ensure(bool(given("K2R_REDIS_SENTINEL_USERNAME"))
               == bool(sv["redisSentinel"]["usernameKey"]),
               "K2R_REDIS_SENTINEL_USERNAME(_FILE) and secrets.redisSentinel.usernameKey disagree")
        if sv["kafkaSasl"]["existingSecret"] or sv["kafkaSasl"]["password"]:
            props = ((self.config() or {}).get("kafka") or {}).get("properties") or {}
            refs = all(WHOLE_REFERENCE.match(str(props.get(p, "")))
                       for p in ("sasl.username", "sasl.password"))
            ensure(refs or ({"K2R_KAFKA_SASL_USERNAME"} <= names
                            and names & {"K2R_KAFKA_SASL_PASSWORD", "K2R_KAFKA_SASL_PASSWORD_FILE"}),
                   "SASL credentials are configured but the bridge is not given them")
            ensure(not (refs and names & {"K2R_KAFKA_SASL_USERNAME", "K2R_KAFKA_SASL_PASSWORD",
                                          "K2R_KAFKA_SASL_PASSWORD_FILE"}),
                   "SASL credentials given twice: ${file:} references and K2R_KAFKA_SASL_*")

    def redis_tls_files_mounted(self):
        """redis.tls.ca_file/cert_file/key_file in the config are exactly the
        files the Deployment projects, read-only and 0440, from the keys of
        redis.tls.existingSecret the values name; no CA means the system trust
        store; no TLS material with a plaintext URL. With an existing
        ConfigMap, the files are at the paths the chart README documents."""
        t = self.values["redis"]["tls"]
        c, spec = self.bridge(), self.pod_spec()
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        # Every file of every Secret volume in the pod, by path.
        projected = {}
        for mount in c["volumeMounts"]:
            secret = volumes[mount["name"]].get("secret")
            for item in (secret or {}).get("items") or []:
                projected[os.path.join(mount["mountPath"], item["path"])] = (
                    secret["secretName"], item["key"], mount, volumes[mount["name"]])
        wanted = {setting: path for setting, key_value, path in REDIS_TLS_FILES
                  if t["existingSecret"] and t[key_value]}
        cfg = self.config()
        if cfg is not None:
            redis = cfg.get("redis") or {}
            tls = redis.get("tls") or {}
            tls_on = (str(redis.get("url", "")).startswith("rediss://")
                      or (redis.get("sentinel") or {}).get("tls") is True)
            if not tls_on:
                ensure(not tls, "redis.tls in the config with a plaintext redis:// URL")
            files = {k: tls[k] for k in ("ca_file", "cert_file", "key_file") if k in tls}
            ensure(files == wanted, "the config's TLS files %s are not the chart's %s"
                   % (files, wanted))
            ensure(("cert_file" in files) == ("key_file" in files),
                   "cert_file and key_file go together")
            for key, value in (("server_name", t["serverName"]),
                               ("insecure_skip_verify", t["insecureSkipVerify"])):
                ensure(tls.get(key) == (value or None),
                       "redis.tls.%s is %r, values say %r" % (key, tls.get(key), value))
        key_values = {setting: key_value for setting, key_value, _ in REDIS_TLS_FILES}
        for setting, path in wanted.items():
            ensure(path in projected, "%s: %s is not mounted in the pod" % (setting, path))
            secret_name, key, mount, volume = projected[path]
            ensure(secret_name == t["existingSecret"], "%s: %s comes from Secret %s, not %s"
                   % (setting, path, secret_name, t["existingSecret"]))
            ensure(key == t[key_values[setting]], "%s: %s is the key %s, not redis.tls.%s (%s)"
                   % (setting, path, key, key_values[setting], t[key_values[setting]]))
            ensure(mount.get("readOnly") is True, "%s: %s is on a writable mount" % (setting, path))
            ensure(volume["secret"].get("defaultMode") == 0o440,
                   "%s: %s is not mode 0440" % (setting, path))
            ensure("subPath" not in mount, "%s: a subPath mount" % setting)
        # Nothing else is projected under the TLS directory.
        tls_dir = SECRETS_DIR + "/redis-tls"
        extra = sorted(p for p in projected
                       if p.startswith(tls_dir + "/") and p not in wanted.values())
        ensure(not extra, "files under %s that no setting names: %s" % (tls_dir, extra))
        if not wanted:
            ensure(tls_dir not in mounts, "%s mounted without redis.tls.existingSecret" % tls_dir)

    def projected_files(self):
        """Every file of every Secret volume the bridge mounts, by path:
        (Secret name, key, mount, volume)."""
        c, spec = self.bridge(), self.pod_spec()
        volumes = {v["name"]: v for v in spec["volumes"]}
        projected = {}
        for mount in c["volumeMounts"]:
            secret = volumes[mount["name"]].get("secret")
            for item in (secret or {}).get("items") or []:
                projected[os.path.join(mount["mountPath"], item["path"])] = (
                    secret["secretName"], item["key"], mount, volumes[mount["name"]])
        return projected

    def references_resolve_in_the_pod(self):
        """Every ${file:PATH} in the config is a file the pod projects
        read-only (0440) from a Secret that is rendered or named in values;
        every ${env:NAME} is a variable of the bridge container."""
        cfg = self.config()
        if cfg is None:
            return
        files = self.projected_files()
        env = {e["name"] for e in self.bridge().get("env") or []}
        known_secrets = self.rendered_secret_names() | {
            self.values["kafka"]["tls"]["existingSecret"],
            self.values["kafka"]["oidc"]["existingSecret"]} - {""}
        for text in strings(cfg):
            for provider, arg in REFERENCE.findall(text):
                if provider == "env":
                    ensure(arg in env, "${env:%s}: the container has no %s" % (arg, arg))
                    continue
                ensure(arg in files, "${file:%s}: no Secret volume projects it" % arg)
                secret_name, _, mount, volume = files[arg]
                ensure(mount.get("readOnly") is True, "${file:%s}: a writable mount" % arg)
                ensure("subPath" not in mount, "${file:%s}: a subPath mount" % arg)
                ensure(volume["secret"].get("defaultMode") == 0o440,
                       "${file:%s}: not mode 0440" % arg)
                ensure(secret_name in known_secrets, "${file:%s}: Secret %s is neither rendered "
                       "nor named in values" % (arg, secret_name))

    def kafka_secrets_rendered(self):
        """kafka.tls, kafka.oidc and (file mode, own ConfigMap) secrets.kafkaSasl
        are exactly the config's ${file:...} properties, each the file of the
        Secret key the values name; staticMembership is group_instance_id
        ${env:POD_NAME} with POD_NAME the pod's name."""
        v = self.values
        files = self.projected_files()
        sasl_secret = v["secrets"]["kafkaSasl"]["existingSecret"] or (
            v["secrets"]["kafkaSasl"]["password"] and "dev")
        wanted = {}
        for prop, block, key_value, path in KAFKA_SECRET_FILES:
            section = v[block[0]][block[1]]
            if block[1] == "kafkaSasl":
                on = sasl_secret and v["secrets"]["mode"] == "file" and not v["existingConfigMap"]
            else:
                on = section["existingSecret"] and section[key_value]
            if on:
                wanted[prop] = (path, section[key_value], section.get("existingSecret"))
        for prop, (path, key, secret) in wanted.items():
            ensure(path in files, "%s: %s is not mounted" % (prop, path))
            ensure(files[path][1] == key, "%s: %s is the Secret's key %s, not %s"
                   % (prop, path, files[path][1], key))
            if secret:
                ensure(files[path][0] == secret, "%s: %s is from Secret %s, not %s"
                       % (prop, path, files[path][0], secret))
        for d in ("kafka-tls", "kafka-oidc"):
            extra = sorted(p for p in files if p.startswith("%s/%s/" % (SECRETS_DIR, d))
                           and p not in [w[0] for w in wanted.values()])
            ensure(not extra, "files under %s that no property names: %s" % (d, extra))
        env = {e["name"]: e for e in self.bridge().get("env") or []}
        if v["staticMembership"]:
            ref = ((env.get("POD_NAME") or {}).get("valueFrom") or {}).get("fieldRef") or {}
            ensure(ref.get("fieldPath") == "metadata.name",
                   "staticMembership without POD_NAME from metadata.name")
        else:
            ensure("POD_NAME" not in env or v["extraEnv"], "POD_NAME without staticMembership")
        cfg = self.config()
        if cfg is None:
            return
        kafka = cfg.get("kafka") or {}
        props = kafka.get("properties") or {}
        for prop, (path, _, _) in wanted.items():
            ensure(props.get(prop) == "${file:%s}" % path,
                   "kafka.properties.%s is %r, not ${file:%s}" % (prop, props.get(prop), path))
        for prop, _, _, path in KAFKA_SECRET_FILES:
            if prop not in wanted:
                ensure(props.get(prop) != "${file:%s}" % path,
                       "kafka.properties.%s names %s, which values do not mount" % (prop, path))
        if v["staticMembership"]:
            ensure(kafka.get("group_instance_id") == "${env:POD_NAME}",
                   "group_instance_id is %r, not ${env:POD_NAME}" % kafka.get("group_instance_id"))
        for instance in (kafka.get("group_instance_id"), props.get("group.instance.id")):
            ensure(instance is None or "${env:" in str(instance),
                   "a group instance id the same in every pod: %r" % instance)

    def checkable_config(self, config_out):
        """Writes the rendered bridge.yaml for `kafka-redis-bridge check` on
        this machine: each ${file:} under the pod's Secrets directory points
        at a placeholder file under CONFIG_OUT.secrets/ instead, and
        CONFIG_OUT.env lists NAME=value for each ${env:NAME} (the pod's own
        values, such as its name, are not known here)."""
        cfg_maps = of_kind(self.docs, "ConfigMap")
        if not cfg_maps:
            return
        text = cfg_maps[0]["data"]["bridge.yaml"]
        names = []

        def to_placeholder(m):
            provider, arg = m.group(1), m.group(2)
            if provider == "env":
                if arg not in names:
                    names.append(arg)
                return m.group(0)
            if not arg.startswith(SECRETS_DIR + "/"):
                return m.group(0)
            local = config_out + ".secrets" + arg[len(SECRETS_DIR):]
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with open(local, "w") as f:
                f.write("placeholder-%s\n" % os.path.basename(arg))
            return "${file:%s}" % local
        text = REFERENCE.sub(to_placeholder, text)
        with open(config_out, "w") as f:
            f.write(text)
        with open(config_out + ".env", "w") as f:
            for name in names:
                f.write("%s=placeholder-%s\n" % (name, name.lower()))

    def redis_values_rendered(self):
        """The chart's redis values are the config's redis section, as values say."""
        cfg = self.config()
        if cfg is None:
            return
        r, redis = self.values["redis"], cfg.get("redis") or {}
        ensure(redis.get("username") == (r["username"] or None),
               "redis.username %r, values say %r" % (redis.get("username"), r["username"]))
        ensure(redis.get("idle_check") == (r["idleCheck"] or None),
               "redis.idle_check %r, values say %r" % (redis.get("idle_check"), r["idleCheck"]))
        ensure(bool(redis.get("sharded")) == r["sharded"], "redis.sharded differs from values")
        sentinel, cluster = redis.get("sentinel"), redis.get("cluster")
        if r["sentinel"]["master"]:
            ensure(sentinel and sentinel.get("master") == r["sentinel"]["master"]
                   and sentinel.get("addresses") == r["sentinel"]["addresses"],
                   "redis.sentinel is not the values' master and addresses")
            ensure(sentinel.get("username") == (r["sentinel"]["username"] or None)
                   and bool(sentinel.get("tls")) == r["sentinel"]["tls"],
                   "redis.sentinel username or tls differ from values")
        else:
            ensure(sentinel is None, "redis.sentinel rendered without redis.sentinel.master")
        if r["cluster"]["addresses"]:
            ensure(cluster == {"addresses": r["cluster"]["addresses"]},
                   "redis.cluster is not the values' addresses")
            ensure(not re.match(r"^rediss?://[^/]*/0*[1-9]", str(redis.get("url", ""))),
                   "a database other than 0 on a cluster")
        else:
            ensure(cluster is None, "redis.cluster rendered without addresses")
        ensure(not (sentinel and cluster), "both redis.sentinel and redis.cluster")

    def grace_period_covers_drain(self):
        cfg = self.config()
        if cfg is None:
            return
        drain = duration_seconds((cfg.get("shutdown") or {}).get("drain_timeout", "10s"))
        grace = self.pod_spec()["terminationGracePeriodSeconds"]
        ensure(grace >= drain + 10, "terminationGracePeriodSeconds %s < drain_timeout %ss + 10s"
               % (grace, drain))

    def probes_on_bridge_endpoints(self):
        c = self.bridge()
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        ensure("http" in ports, "no container port named http")
        probes = self.values["probes"]
        for key, path, on in (("livenessProbe", "/healthz", probes["liveness"]["enabled"]),
                              ("readinessProbe", "/readyz", probes["readiness"]["enabled"]),
                              ("startupProbe", "/healthz", probes["startup"]["enabled"])):
            if not on:
                ensure(key not in c, "%s rendered although disabled" % key)
                continue
            get = c[key]["httpGet"]
            ensure(get["path"] == path and get["port"] == "http",
                   "%s is %s on %s, not %s on http" % (key, get["path"], get["port"], path))
        cfg = self.config()
        if cfg is not None:
            http = cfg["http"]
            ensure(http.get("enabled") is True, "http is not enabled in the config")
            port = int(http["listen"].rsplit(":", 1)[1])
            ensure(port == ports["http"], "http.listen port %d is not containerPort %d"
                   % (port, ports["http"]))

    def selectors_pick_the_bridge_pods(self):
        labels = self.pod_labels()
        selector = self.deployment()["spec"]["selector"]["matchLabels"]
        ensure(matches(selector, labels), "the Deployment selector misses its own pods")
        for svc in of_kind(self.docs, "Service"):
            ensure(matches(svc["spec"]["selector"], labels), "the Service misses the pods")
            ensure(any(p["targetPort"] == "http" for p in svc["spec"]["ports"]),
                   "the Service does not target the http port")
        for pdb in of_kind(self.docs, "PodDisruptionBudget"):
            ensure(matches(pdb["spec"]["selector"]["matchLabels"], labels), "the PDB misses the pods")
        for tsc in self.pod_spec().get("topologySpreadConstraints") or []:
            ensure(matches(tsc["labelSelector"]["matchLabels"], labels),
                   "a topology spread constraint misses the pods")
        for pod in of_kind(self.docs, "Pod"):
            ensure(not matches(selector, pod["metadata"].get("labels") or {}),
                   "test pod %s carries the bridge's selector labels" % pod["metadata"]["name"])

    def test_hook(self):
        pods = of_kind(self.docs, "Pod")
        if not (self.values["test"]["enabled"] and self.values["service"]["enabled"]):
            ensure(not pods, "a test pod was rendered although disabled")
            return
        pod = one(self.docs, "Pod")
        ensure(pod["metadata"]["annotations"].get("helm.sh/hook") == "test",
               "the test pod is not a helm test hook")
        svc = one(self.docs, "Service")
        script = " ".join(pod["spec"]["containers"][0]["args"])
        url = "http://%s:%d/readyz" % (svc["metadata"]["name"], svc["spec"]["ports"][0]["port"])
        ensure('base="%s' % url[:-len("/readyz")] in script and "$base/readyz" in script,
               "the test does not ask %s" % url)

    def monitors(self):
        labels = self.pod_labels()
        services = of_kind(self.docs, "Service")
        for sm in of_kind(self.docs, "ServiceMonitor"):
            ensure(sm["apiVersion"] == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
            spec = sm["spec"]
            known_keys(spec, SERVICEMONITOR_SPEC, "ServiceMonitor.spec")
            ensure(services, "a ServiceMonitor without a Service")
            ensure(matches(spec["selector"]["matchLabels"], services[0]["metadata"]["labels"]),
                   "the ServiceMonitor selector misses the Service")
            ensure(spec["jobLabel"] in services[0]["metadata"]["labels"],
                   "jobLabel %s is not a Service label" % spec["jobLabel"])
            port_names = {p["name"] for p in services[0]["spec"]["ports"]}
            self._endpoints(spec["endpoints"], ENDPOINT, port_names, "ServiceMonitor")
        for pm in of_kind(self.docs, "PodMonitor"):
            ensure(pm["apiVersion"] == "monitoring.coreos.com/v1", "PodMonitor apiVersion")
            spec = pm["spec"]
            known_keys(spec, PODMONITOR_SPEC, "PodMonitor.spec")
            ensure(matches(spec["selector"]["matchLabels"], labels),
                   "the PodMonitor selector misses the pods")
            ensure(spec["jobLabel"] in labels, "jobLabel %s is not a pod label" % spec["jobLabel"])
            port_names = {p["name"] for p in self.bridge()["ports"]}
            self._endpoints(spec["podMetricsEndpoints"], POD_ENDPOINT, port_names, "PodMonitor")
        ensure(not (of_kind(self.docs, "ServiceMonitor") and of_kind(self.docs, "PodMonitor")),
               "both a ServiceMonitor and a PodMonitor: every pod would be scraped twice")

    def _endpoints(self, endpoints, allowed, port_names, kind):
        ensure(endpoints, "%s without endpoints" % kind)
        for i, ep in enumerate(endpoints):
            where = "%s endpoint %d" % (kind, i)
            known_keys(ep, allowed, where)
            ensure(ep["port"] in port_names, "%s: port %s does not exist" % (where, ep["port"]))
            ensure(ep.get("path") == "/metrics", "%s: path is not /metrics" % where)
            for key in ("interval", "scrapeTimeout"):
                if key in ep:
                    ensure(PROM_DURATION.match(ep[key]), "%s: %s %r" % (where, key, ep[key]))
            for key in ("relabelings", "metricRelabelings"):
                for r in ep.get(key) or []:
                    known_keys(r, RELABEL, "%s.%s" % (where, key))

    def prometheus_rules(self):
        for pr in of_kind(self.docs, "PrometheusRule"):
            ensure(pr["apiVersion"] == "monitoring.coreos.com/v1", "PrometheusRule apiVersion")
            known_keys(pr["spec"], {"groups"}, "PrometheusRule.spec")
            alerts = []
            for group in pr["spec"]["groups"]:
                known_keys(group, RULE_GROUP, "PrometheusRule group")
                ensure(group["name"] and group["rules"], "a group without name or rules")
                for rule in group["rules"]:
                    where = "rule %s" % rule.get("alert", rule.get("record"))
                    known_keys(rule, RULE, where)
                    ensure(("alert" in rule) != ("record" in rule), "%s: alert or record" % where)
                    expr = rule["expr"]
                    ensure(isinstance(expr, str) and expr.strip(), "%s: empty expr" % where)
                    ensure(balanced(expr), "%s: unbalanced brackets in %r" % (where, expr))
                    for metric in re.findall(r"\bk2r_[a-z_]+", expr):
                        base = metric
                        for suffix in HISTOGRAM_SUFFIXES:
                            if metric.endswith(suffix) and metric[:-len(suffix)] in METRICS:
                                base = metric[:-len(suffix)]
                        ensure(base in METRICS, "%s: unknown metric %s" % (where, metric))
                    if "for" in rule:
                        ensure(PROM_DURATION.match(str(rule["for"])), "%s: for %r" % (where, rule["for"]))
                    if "alert" in rule:
                        ensure((rule.get("labels") or {}).get("severity"), "%s: no severity" % where)
                        for text in (rule.get("annotations") or {}).values():
                            ensure(text.count("{{") == text.count("}}"),
                                   "%s: unbalanced template in %r" % (where, text))
                        alerts.append(rule["alert"])
            ensure(len(alerts) == len(set(alerts)), "duplicate alert names")
            wanted = {"notReady": "KafkaRedisBridgeNotReady",
                      "lagGrowing": "KafkaRedisBridgeLagGrowing",
                      "publishErrors": "KafkaRedisBridgePublishErrors",
                      "partitionStopped": "KafkaRedisBridgePartitionStopped",
                      "staleDrops": "KafkaRedisBridgeStaleDrops",
                      "absent": "KafkaRedisBridgeAbsent"}
            for key, alert in wanted.items():
                on = self.values["metrics"]["prometheusRule"]["alerts"][key]["enabled"]
                ensure((alert in alerts) == on, "%s %s" % (alert, "missing" if on else "present"))

    def keda(self):
        scaled = of_kind(self.docs, "ScaledObject")
        auths = {a["metadata"]["name"]: a for a in of_kind(self.docs, "TriggerAuthentication")}
        if not scaled:
            ensure(not auths, "a TriggerAuthentication without a ScaledObject")
            return
        so = one(self.docs, "ScaledObject")
        ensure(so["apiVersion"] == "keda.sh/v1alpha1", "ScaledObject apiVersion")
        spec = so["spec"]
        known_keys(spec, SCALEDOBJECT_SPEC, "ScaledObject.spec")
        known_keys(spec["scaleTargetRef"], SCALE_TARGET, "ScaledObject.spec.scaleTargetRef")
        ensure(spec["scaleTargetRef"]["name"] == self.deployment()["metadata"]["name"],
               "the ScaledObject targets %s" % spec["scaleTargetRef"]["name"])
        ensure(spec["minReplicaCount"] <= spec["maxReplicaCount"], "min above max replicas")
        for key in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
            ensure(isinstance(spec[key], int), "%s is not an integer" % key)
        if "advanced" in spec:
            known_keys(spec["advanced"], ADVANCED, "ScaledObject.spec.advanced")
        cfg = self.config() or {}
        keda_values = self.values["autoscaling"]["keda"]
        for trigger in spec["triggers"]:
            known_keys(trigger, TRIGGER, "trigger")
            ensure(trigger["type"] == "kafka", "trigger type %s" % trigger["type"])
            meta = trigger["metadata"]
            known_keys(meta, KAFKA_TRIGGER_METADATA, "kafka trigger metadata")
            ensure(all(isinstance(v, str) for v in meta.values()),
                   "trigger metadata values must all be strings")
            brokers = keda_values["bootstrapServers"] or cfg["kafka"]["brokers"]
            group = keda_values["consumerGroup"] or cfg["kafka"]["group_id"]
            ensure(meta["bootstrapServers"] == brokers, "bootstrapServers is not %s" % brokers)
            ensure(meta["consumerGroup"] == group, "consumerGroup is not %s" % group)
            if "sasl" in meta:
                ensure(meta["sasl"] in KEDA_SASL, "sasl mode %s" % meta["sasl"])
            if "tls" in meta:
                ensure(meta["tls"] in ("enable", "disable"), "tls %s" % meta["tls"])
            props = cfg.get("kafka", {}).get("properties") or {}
            if str(props.get("security.protocol", "")).upper().startswith("SASL_"):
                ensure(meta.get("sasl") not in (None, "none"),
                       "the brokers use SASL but the trigger has no sasl mode")
                ensure("authenticationRef" in trigger, "SASL without a TriggerAuthentication")
            if "authenticationRef" in trigger:
                name = trigger["authenticationRef"]["name"]
                ensure(name in auths, "authenticationRef %s is not rendered" % name)
                self._trigger_auth(auths[name])

    def _trigger_auth(self, auth):
        ensure(auth["apiVersion"] == "keda.sh/v1alpha1", "TriggerAuthentication apiVersion")
        known_keys(auth["spec"], TRIGGERAUTH_SPEC, "TriggerAuthentication.spec")
        refs = auth["spec"]["secretTargetRef"]
        for ref in refs:
            known_keys(ref, SECRET_TARGET, "secretTargetRef")
            ensure(ref["parameter"] in KAFKA_AUTH_PARAMETERS,
                   "parameter %s is not one of the Kafka scaler's" % ref["parameter"])
        # The same Secret and keys the bridge's own container reads.
        env = {e["name"]: e for e in self.bridge().get("env") or []}
        by_param = {r["parameter"]: r for r in refs}
        files = self.projected_files()
        user_file = files.get(SECRETS_DIR + "/kafka-sasl/username")
        if "K2R_KAFKA_SASL_USERNAME" in env:
            user = env["K2R_KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"]
        elif user_file:
            user = {"name": user_file[0], "key": user_file[1]}
        else:
            ensure(not ({"username", "password"} & set(by_param)),
                   "KEDA gets SASL credentials the bridge does not use")
            return
        ensure("username" in by_param and "password" in by_param,
               "the bridge uses SASL credentials KEDA is not given")
        ensure((by_param["username"]["name"], by_param["username"]["key"])
               == (user["name"], user["key"]), "KEDA's username is not the bridge's")
        ensure(by_param["password"]["name"] == user["name"]
               and by_param["password"]["key"] == self.values["secrets"]["kafkaSasl"]["passwordKey"],
               "KEDA's password is not the bridge's")

    def check_all(self, config_out):
        checks = [
            ("restricted security context", self.restricted_security_context),
            ("/tmp is an emptyDir", self.tmp_is_empty_dir),
            ("config mounted as a directory, not subPath", self.config_mounted_as_directory),
            ("checksum/config annotation", self.checksum_annotation),
            ("replicas omitted under an autoscaler; HPA and KEDA exclusive",
             self.replicas_and_autoscalers),
            ("no credentials in the ConfigMap", self.no_credentials_in_configmap),
            ("credentials only from Secrets (secretKeyRef or *_FILE), with the keys values name",
             self.credentials_only_from_secrets),
            ("redis.tls files in the config = the files mounted read-only from redis.tls's Secret",
             self.redis_tls_files_mounted),
            ("redis values rendered into the config (username, idle_check, sharded, sentinel, "
             "cluster)", self.redis_values_rendered),
            ("every ${file:} of the config is a read-only 0440 Secret file in the pod, every "
             "${env:} a container variable", self.references_resolve_in_the_pod),
            ("kafka.tls, kafka.oidc, SASL files and staticMembership rendered as values say",
             self.kafka_secrets_rendered),
            ("grace period covers drain_timeout + 10s", self.grace_period_covers_drain),
            ("probes on /healthz and /readyz at the http port", self.probes_on_bridge_endpoints),
            ("selectors pick the bridge pods, not the test pod",
             self.selectors_pick_the_bridge_pods),
            ("helm test hook asks the Service for /readyz", self.test_hook),
            ("ServiceMonitor / PodMonitor fields and targets", self.monitors),
            ("PrometheusRule fields, metric names and alerts", self.prometheus_rules),
            ("KEDA ScaledObject / TriggerAuthentication fields and credentials", self.keda),
        ]
        for what, fn in checks:
            self.run(what, fn)
        if config_out:
            self.checkable_config(config_out)
        return 1 if self.failed else 0


def balanced(expr):
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in re.sub(r'"(\\.|[^"\\])*"', '""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def checksum_differs(path_a, path_b):
    def checksum(path):
        dep = one(load_docs(path), "Deployment")
        return (dep["spec"]["template"]["metadata"].get("annotations") or {}).get("checksum/config")
    a, b = checksum(path_a), checksum(path_b)
    ok = a and b and a != b
    print("%s checksum: a config change changes checksum/config%s"
          % ("PASS" if ok else "FAIL", "" if ok else ": %s vs %s" % (a, b)))
    return 0 if ok else 1


def value_paths(node, prefix=""):
    """Leaf paths of values.yaml: scalars, lists and empty maps are leaves."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from value_paths(value, "%s.%s" % (prefix, key) if prefix else key)
    else:
        yield prefix


def readme_lists_values(chart_dir):
    with open(os.path.join(chart_dir, "values.yaml")) as f:
        values = yaml.safe_load(f)
    with open(os.path.join(chart_dir, "README.md")) as f:
        readme = f.read()
    missing = [p for p in value_paths(values) if "`%s`" % p not in readme]
    if missing:
        print("FAIL readme: every value is listed: missing %s" % ", ".join(missing))
        return 1
    print("PASS readme: every value is listed")
    return 0


def rules_json(rendered):
    for pr in of_kind(load_docs(rendered), "PrometheusRule"):
        for group in pr["spec"]["groups"]:
            for rule in group["rules"]:
                where = "%s/%s" % (group["name"], rule.get("alert", rule.get("record")))
                print(json.dumps({"where": where, "expr": rule["expr"],
                                  "for": str(rule.get("for", ""))}))
    return 0


def rules_file(rendered):
    groups = []
    for pr in of_kind(load_docs(rendered), "PrometheusRule"):
        groups.extend(pr["spec"]["groups"])
    ensure(groups, "no PrometheusRule groups in %s" % rendered)
    yaml.safe_dump({"groups": groups}, sys.stdout, sort_keys=False, width=1000)
    return 0


def alert_names(rendered):
    for pr in of_kind(load_docs(rendered), "PrometheusRule"):
        for group in pr["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    print(rule["alert"])
    return 0


def main(argv):
    if len(argv) >= 5 and argv[1] == "render":
        return Rendering(argv[2], argv[3], argv[4]).check_all(argv[5] if len(argv) > 5 else None)
    if len(argv) == 4 and argv[1] == "checksum-differs":
        return checksum_differs(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "readme":
        return readme_lists_values(argv[2])
    if len(argv) == 3 and argv[1] == "rules-json":
        return rules_json(argv[2])
    if len(argv) == 3 and argv[1] == "rules-file":
        return rules_file(argv[2])
    if len(argv) == 3 and argv[1] == "alerts":
        return alert_names(argv[2])
    print(__doc__.split("usage:")[1].rstrip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
