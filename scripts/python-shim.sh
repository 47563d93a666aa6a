#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# python-shim.sh - a Python with confluent-kafka from PyPI, for the producer
# shim's test (tests/integration/test_shim.c) and anyone who wants to try the
# plugin from Python. confluent-kafka's wheel bundles its own librdkafka
# (2.12.1 here, loaded privately by its extension module): the plugin must
# work with it as well as with the system's.
#
# It makes, once, a virtual environment of Debian's python3 under
#   ${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}/python-shim/venv-VERSION
# and installs into it the pinned wheel, checked against its sha256
# (pip --require-hashes; confluent-kafka has no required dependencies), and
# prints the environment's python on stdout. Needs python3-venv (deps.sh test).
#
# usage: scripts/python-shim.sh     prints the path of the venv's python
set -euo pipefail

version=2.12.1
# confluent_kafka-2.12.1-cp311-cp311-manylinux_2_28_x86_64.whl: Debian 12's
# Python 3.11 on amd64.
sha256=5958feea006c92ac4d5f37cc9b730eb1824a68d7536be7ec274d6841ce0412af

cache="${K2R_CACHE_DIR:-$HOME/.cache/kafka-redis-bridge}"
venv="$cache/python-shim/venv-$version"

if [ ! -f "$venv/complete" ]; then
    mkdir -p "$cache/python-shim"
    exec 9>"$cache/python-shim/lock"
    flock 9
    if [ ! -f "$venv/complete" ]; then
        rm -rf "$venv"
        echo "python-shim.sh: confluent-kafka $version into $venv (once)" >&2
        /usr/bin/python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: --require-hashes \
            -r /dev/stdin >&2 <<<"confluent-kafka==$version --hash=sha256:$sha256"
        touch "$venv/complete"
    fi
fi
echo "$venv/bin/python"
