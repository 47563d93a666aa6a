#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""schema_validate.py - validates bridge.yaml files against the config's JSON
Schema (config/bridge.schema.json) with Debian's python3-jsonschema.

usage: schema_validate.py [--brief] SCHEMA FILE...            whole configs
       schema_validate.py [--brief] --fragments SCHEMA FILE... Markdown files: every
           ```yaml block whose top level is a mapping of config sections
           (kafka, redis, rules, ...) is validated as a part of a config
           (what the root and its sections require is not asked for); other blocks
           (a rule's lines alone, a Helm values file) are left out

Prints one line per config or block: "valid NAME" or "invalid NAME: PATH:
MESSAGE" (every error, in the order of their paths), then "N valid, N invalid";
exits 1 when any was invalid, 2 on a usage or read error. With --brief an
error is "PATH: KEYWORD" (the schema keyword that failed: enum, required,
additionalProperties, ...; anyOf(minimum,type) for a value that fits none of
its forms, with what each failed on), which does not depend on jsonschema's
wording.
"""
import copy
import json
import re
import sys

import jsonschema
import yaml

# The pattern of config/bridge.schema.json's "reference" (src/schema.c).
REFERENCE = r"(^|[^$])(\$\$)*\$\{(env|file):[^}]+\}"


def keywords(err):
    """The keyword that failed; for anyOf and oneOf with the keywords each
    form failed on, e.g. anyOf(minimum,type)."""
    if not err.context:
        return err.validator
    return "%s(%s)" % (err.validator, ",".join(sorted({keywords(c) for c in err.context})))


def likeliest(err):
    """For a value that fits none of an anyOf's forms, the reason of the form
    it was likely meant as: one it has the type of, not the ${env:}/${file:}
    reference that every typed setting also takes."""
    while err.validator == "anyOf" and err.context:
        forms = [c for c in err.context if not is_reference(c)] or list(err.context)
        err = ([c for c in forms if c.validator != "type"] or forms)[0]
    return err


def is_reference(err):
    return err.validator == "pattern" and err.validator_value == REFERENCE


def errors_of(validator, doc, brief):
    """Each error as "path: message" (or "path: keyword"), sorted by path."""
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        path = ".".join(str(p) for p in err.absolute_path) or "(root)"
        if brief:
            out.append("%s: %s" % (path, keywords(err)))
            continue
        # The value jsonschema quotes can be a whole rule: shortened.
        err = likeliest(err)
        message, value = err.message, repr(err.instance)
        if len(value) > 40 and message.startswith(value):
            message = value[:37] + "..." + message[len(value):]
        out.append("%s: %s" % (path, message))
    return out


def yaml_blocks(text):
    """The ```yaml blocks of a Markdown text, with the line each starts on."""
    for m in re.finditer(r"^```yaml\n(.*?)^```", text, re.S | re.M):
        yield text.count("\n", 0, m.start()) + 2, m.group(1)


def main(argv):
    args = argv[1:]
    brief = args[:1] == ["--brief"]
    args = args[1:] if brief else args
    fragments = args[:1] == ["--fragments"]
    args = args[1:] if fragments else args
    if len(args) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(args[0]) as f:
        schema = json.load(f)
    jsonschema.Draft7Validator.check_schema(schema)
    whole = jsonschema.Draft7Validator(schema)
    partial_schema = copy.deepcopy(schema)
    partial_schema.pop("required", None)
    for section in partial_schema["properties"].values():
        section.pop("required", None)
    partial = jsonschema.Draft7Validator(partial_schema)
    sections = set(schema["properties"])
    nvalid = ninvalid = 0
    for path in args[1:]:
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            print("schema_validate.py: %s" % e, file=sys.stderr)
            return 2
        if fragments:
            docs = []
            for line, block in yaml_blocks(text):
                try:
                    doc = yaml.safe_load(block)
                except yaml.YAMLError:
                    continue
                if isinstance(doc, dict) and doc and set(doc) <= sections:
                    docs.append(("%s:%d" % (path, line), doc, partial))
        else:
            try:
                docs = [(path, yaml.safe_load(text), whole)]
            except yaml.YAMLError as e:
                docs = [(path, e, None)]
        for name, doc, validator in docs:
            if validator is None:
                errs = ["(root): %s" % ("yaml" if brief else "not YAML: " + str(doc).replace("\n", " "))]
            else:
                errs = errors_of(validator, doc, brief)
            if errs:
                ninvalid += 1
                for e in errs:
                    print("invalid %s: %s" % (name, e))
            else:
                nvalid += 1
                print("valid %s" % name)
    print("%d valid, %d invalid" % (nvalid, ninvalid))
    return 1 if ninvalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
