#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make-corpus.py - writes the seed inputs of fuzz/corpus/map/ and fuzz/corpus/config/.

The map seeds are records in the layout fuzz_map.c cuts its input into (see
record_from_input() there): one flags byte, an optional length-prefixed key,
up to three headers, then the value. The config seeds are the repository's
own config files plus the rule grammar's example and fuzz_map.c's embedded
config. Run it again after changing either layout; the files it writes are
committed, so the fuzzers need no Python.
"""
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

TOPICS = {"t": 0, "app.orders": 2, "app.users": 3, "audit.42": 4, "audit.x": 5, "other": 6,
          "app": 7}
HEADERS = ["X-GitHub-Event", "x-fan", "ce_type", "ce_id", "ce_source", "ce_subject",
           "ce_specversion", "x-tenant", "content-type"]


def record(topic, value=b"", key=None, headers=(), tombstone=False, no_ts=False):
    """Encodes one record; headers are (name, value) with value None for no value."""
    assert len(headers) <= 3
    b0 = TOPICS[topic] | (0x08 if key is not None else 0) | (0x10 if tombstone else 0)
    b0 |= (0x20 if no_ts else 0) | (len(headers) << 6)
    out = bytearray([b0])
    if key is not None:
        key = key.encode() if isinstance(key, str) else key
        assert len(key) < 256
        out += bytes([len(key)]) + key
    for name, val in headers:
        if name in HEADERS:
            out.append(HEADERS.index(name))
        else:
            raw = name.encode()
            out += bytes([9, len(raw)]) + raw
        if val is None:
            out.append(0xFF)
        else:
            val = val.encode() if isinstance(val, str) else val
            assert len(val) < 255
            out += bytes([len(val)]) + val
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    out += value.encode() if isinstance(value, str) else value
    return bytes(out)


def map_seeds():
    push = {"id": "e1", "type": "push", "source_type": "github", "source_id": 42,
            "organization": {"login": "acme"}, "repository": {"full_name": "acme/widgets"}}
    yield "push", record("t", push, key="k1", headers=[("X-GitHub-Event", "push")])
    yield "push-no-org", record("t", {"id": 1, "type": "push", "source_type": "gh",
                                      "source_id": "x"}, headers=[("X-GitHub-Event", "push")])
    yield "push-missing-id", record("t", {"source_type": "gh"},
                                    headers=[("X-GitHub-Event", "push")])
    yield "push-fan", record("t", push, key="k", headers=[("X-GitHub-Event", "push"),
                                                          ("x-fan", "f1")])
    yield "push-fan-pr", record("t", dict(push, action="opened", number=7, kind="pr"),
                                headers=[("X-GitHub-Event", "push"), ("x-fan", "all")])
    yield "pr-opened", record("t", {"kind": "pull_request", "number": 7, "action": "opened",
                                    "sender": {"login": "octo"}, "labels": [{"name": "bug"}]})
    yield "pr-closed-default-type", record("t", {"number": "12", "action": "closed"})
    yield "pr-ignored", record("t", {"kind": "ignored", "number": 1, "action": "opened"})
    yield "pr-escape", record("t", {"kind": "a b*c?[d]", "number": 1, "action": "reopened"})
    yield "pr-wrong-type", record("t", {"kind": "k", "number": {"n": 1}, "action": "opened"})
    yield "pr-bool-id", record("t", {"kind": "k", "number": True, "action": "opened"})
    yield "ce-binary", record("t", {"data": 1}, headers=[
        ("ce_type", "com.example.created"), ("ce_id", "a-1"), ("ce_source", "/src")])
    yield "ce-blocked", record("t", "{}", headers=[("ce_type", "x"), ("ce_id", "1"),
                                                   ("ce_source", "spam")])
    yield "ce-structured", record("t", {"specversion": "1.0", "type": "com.example.x",
                                        "id": "9", "source": "/s", "subject": "sub",
                                        "time": "2024-01-01T00:00:00Z", "data": {"a": 1}},
                                  headers=[("content-type",
                                            "application/cloudevents+json")])
    yield "ce-unsafe", record("t", "{}", headers=[("ce_type", "a\tb"), ("ce_id", "x y"),
                                                  ("ce_subject", "\x00\x01")])
    yield "ce-null-header", record("t", "{}", headers=[("ce_type", None), ("ce_id", None)])
    yield "catch-all", record("t", {"a.b": "dot", "value": [1, 2, 3]}, key="key")
    yield "catch-all-nokey", record("t", {"value": None}, no_ts=True)
    yield "tombstone-t", record("t", tombstone=True, key="gone")
    yield "tombstone-app", record("app.orders", tombstone=True, key="gone")
    yield "app-plain", record("app.orders", {"kind": "order", "meta.id": 5}, key="o-1",
                              headers=[("x-tenant", "acme")])
    yield "app-nokey", record("app.users", {"kind": "user"})
    yield "app-deep", record("app.users", {"a": {"b": [{"c": "here"}]}}, key="u")
    yield "app-skip-me", record("app.users", {"kind": "skip-me"}, key="u")
    yield "app-tenant-unsafe", record("app.orders", "{}", key="k*1",
                                      headers=[("x-tenant", "a b\r\n")])
    yield "app-raw-header", record("app.orders", "[]", key="k",
                                   headers=[("x-custom-\u00e9", "v"), ("x-tenant", "t")])
    yield "audit", record("audit.42", {"seq": 1, "id": "a", "type": "t", "source_id": "s"},
                          headers=[("ce_type", "login")])
    yield "audit-no-match", record("audit.42", {"seq": 2}, headers=[("ce_type", "ignored")])
    yield "audit-wide", record("audit.42", {"seq": 3, "x": list(range(33))})
    yield "audit-stop", record("audit.42", {"seq": 4, "x": {"32": "stop", "31": "a:b"}})
    yield "audit-no-rule", record("audit.x", {"seq": 1})
    yield "ce-structured-not-json", record(
        "t", "{\"specversion\":", headers=[("content-type", "application/cloudevents+json")])
    yield "no-rule", record("other", {"id": 1})
    yield "no-rule-app", record("app", {"id": 1})
    yield "long-id", record("t", {"source_type": "x" * 60, "source_id": "y" * 90},
                            headers=[("X-GitHub-Event", "push")])
    yield "large-notification", record("t", {"source_type": "s", "source_id": "i",
                                             "id": "z" * 300, "type": "push"},
                                       headers=[("X-GitHub-Event", "push")])
    yield "empty-value-var", record("t", {"source_type": "", "source_id": ""},
                                    headers=[("X-GitHub-Event", "push")])
    yield "unicode", record("t", {"source_type": "caf\u00e9", "source_id": "\U0001F600",
                                  "id": "\\u00e9 \u2028", "type": "\u0000nul"},
                            key="\u00fc", headers=[("X-GitHub-Event", "push")])
    yield "escapes", record("t", '{"source_type":"a\\u0000b","source_id":"\\ud83d\\ude00",'
                                 '"id":"\\"q\\"","type":"\\n"}',
                            headers=[("X-GitHub-Event", "push")])
    yield "big-numbers", record("t", '{"source_type":18446744073709551615,'
                                     '"source_id":-9223372036854775808,"id":1e308,'
                                     '"type":-0.0}', headers=[("X-GitHub-Event", "push")])
    yield "floats", record("t", '{"source_type":1.5,"source_id":2,"id":3e-7,"type":0.1}',
                           headers=[("X-GitHub-Event", "push")])
    yield "bad-utf8-header", record("t", {"source_type": "a", "source_id": "b"},
                                    key=b"\xff\xfe", headers=[("X-GitHub-Event", "push")])
    yield "deep-array", record("t", "[" * 300 + "]" * 300)
    yield "deep-object", record("t", '{"a":' * 200 + "1" + "}" * 200)
    yield "garbage", record("t", b"\x00\xff{\"a\":")
    yield "trailing", record("t", '{"id":1} {"id":2}')
    yield "truncated", record("t", '{"source_type":"x","source_id":"y"')
    yield "not-json", record("app.orders", "hello world", key="k")
    yield "empty", b""
    yield "only-flags", bytes([0xFF])


def config_seeds():
    fixtures = os.path.join(ROOT, "tests", "fixtures", "config")
    for name in sorted(os.listdir(fixtures)):
        if name.endswith(".yaml"):
            with open(os.path.join(fixtures, name), "rb") as f:
                yield "fixture-" + name, f.read()
    with open(os.path.join(ROOT, "config", "bridge.example.yaml"), "rb") as f:
        yield "bridge.example.yaml", f.read()
    with open(os.path.join(ROOT, "docs", "rules.md"), encoding="utf-8") as f:
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", f.read(), re.S)):
            yield "docs-rules-%d.yaml" % i, block.encode()
    # fuzz_map.c's config, out of its C string literal.
    with open(os.path.join(HERE, "fuzz_map.c"), encoding="utf-8") as f:
        src = f.read()
    body = src.split("config_yaml[] =", 1)[1].split(";\n", 1)[0]
    lits = re.findall(r'^\s*"((?:[^"\\]|\\.)*)"', body, re.M)
    yaml = "".join(bytes(s, "utf-8").decode("unicode_escape") for s in lits)
    yield "fuzz-map.yaml", yaml.encode()


def write(dirname, seeds):
    path = os.path.join(HERE, "corpus", dirname)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    for name, data in seeds:
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)


def main():
    write("map", map_seeds())
    write("config", config_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
