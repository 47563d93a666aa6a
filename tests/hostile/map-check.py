#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""map-check.py - checks the hostile-input corpus against `kafka-redis-bridge map`.

The unit suite (tests/unit/test_hostile.c) runs every case through
k2r_rules_map in-process. This script takes the other road to the same code:
it writes each case as `map` input, runs the built binary on
tests/hostile/bridge.yaml, and compares map's output line with the case's
expectation. It is how the expectations were checked while writing them, and
how a new case can be.

A case goes as a plain line (its value bytes) when it has no key and no
headers, or else as a --envelope line, which needs its key, headers and value
to be valid UTF-8 and its header names to be distinct (docs/map.md). A case
neither can express is counted as "not expressible" and left to the unit
suite. A case marked `bug` or `bug-map` is reported but does not fail.

usage: tests/hostile/map-check.py [BINARY]   (default build/kafka-redis-bridge)
exit status: 0 when every expressible case agrees, 1 otherwise.
"""
import base64
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_bytes(text, line, one=False):
    """BYTES (see cases.txt) at the start of text, or only its first item when
    `one`; returns (bytes, rest)."""
    out = bytearray()
    text = text.lstrip(" \t")
    items = 0
    while text and text[0] in "'\"" and not (one and items):
        q = text[0]
        end = 1
        item = bytearray()
        while text[end] != q:
            c = text[end]
            if q == '"' and c == "\\":
                e = text[end + 1]
                if e == "x":
                    item.append(int(text[end + 2:end + 4], 16))
                    end += 4
                    continue
                item += {"\\": b"\\", '"': b'"', "'": b"'", "n": b"\n", "r": b"\r",
                         "t": b"\t", "0": b"\0"}[e]
                end += 2
                continue
            item += c.encode()
            end += 1
        text = text[end + 1:].lstrip(" \t")
        times = 1
        m = re.match(r"\*\s*(\d+)", text)
        if m:
            times = int(m.group(1))
            text = text[m.end():].lstrip(" \t")
        out += item * times
        items += 1
    if not items:
        raise SystemExit(f"cases.txt:{line}: expected bytes")
    return bytes(out), text


def load(path):
    cases, case, last = [], None, None
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if line[:1] in (" ", "\t"):
                if line.strip() and not line.strip().startswith("#"):
                    more, _ = parse_bytes(line, n)
                    last[0][last[1]] += more
                continue
            if not line.strip() or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            if word == "case":
                case = {"name": rest.strip(), "line": n, "key": None, "headers": [],
                        "partition": 0, "publish": [], "bug": None}
                cases.append(case)
            elif word == "topic":
                case["topic"] = rest.strip()
            elif word == "partition":
                case["partition"] = int(rest)
            elif word in ("key", "value"):
                case[word] = None if rest.strip() == "none" else parse_bytes(rest, n)[0]
                last = (case, word) if case[word] is not None else None
            elif word in ("header", "headers"):
                count = 1
                if word == "headers":
                    count, rest = rest.split(" ", 1)
                name, rest = parse_bytes(rest, n, one=True)
                value = None if rest.strip() == "none" else parse_bytes(rest, n)[0]
                case["headers"] += [(name, value)] * int(count)
            elif word == "expect":
                parts = rest.split()
                case["action"] = "none" if parts[0] == "publish" else parts[0]
                case["rule"] = None if parts[1] == "none" else parts[1]
                case["reason"] = parts[2] if len(parts) > 2 else None
            elif word in ("detail", "bug", "bug-map"):
                key = "detail" if word == "detail" else "bug"
                case[key] = parse_bytes(rest, n)[0]
                last = (case, key)
            elif word == "publish":
                case["publish"].append([parse_bytes(rest, n)[0], None])
                last = (case["publish"][-1], 0)
            elif word == "message":
                case["publish"][-1][1] = parse_bytes(rest, n)[0]
                last = (case["publish"][-1], 1)
    return cases


def utf8(b):
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def envelope(case):
    """The case as an envelope line, or None when the envelope cannot say it."""
    names = [h[0] for h in case["headers"]]
    if len(set(names)) != len(names):
        return None
    env = {"topic": "hostile." + case["topic"], "partition": case["partition"]}
    if case["key"] is not None:
        env["key"] = utf8(case["key"])
        if env["key"] is None:
            return None
    if case["headers"]:
        env["headers"] = {}
        for name, value in case["headers"]:
            n, v = utf8(name), (utf8(value) if value is not None else None)
            if n is None or (value is not None and v is None):
                return None
            env["headers"][n] = v
    if case["value"] is None:
        env["value"] = None
    else:
        env["value"] = utf8(case["value"])
        if env["value"] is None:
            return None
    return json.dumps(env, ensure_ascii=False).encode()


def want_of(case):
    """What map must print for the case (as a dict)."""
    out = {"rule": case["rule"]}
    if case["action"] != "none":
        out["action"] = case["action"]
        out["reason"] = f'{case["reason"]}: {case["detail"].decode()}'
    if case["action"] == "none" or case["publish"]:
        out["publish"] = []
        for channel, message in case["publish"]:
            p = {}
            for key, b in (("channel", channel), ("message", message)):
                if utf8(b) is not None:
                    p[key] = utf8(b)
                else:
                    p[key + "_base64"] = base64.b64encode(b).decode()
            out["publish"].append(p)
    return out


def run(binary, args, lines):
    cfg = os.path.join(HERE, "bridge.yaml")
    res = subprocess.run([binary, "map", "-c", cfg] + args, input=b"\n".join(lines) + b"\n",
                         stdout=subprocess.PIPE, check=True)
    # Not splitlines(): it also splits at U+2028 and U+0085, which some cases put in channels.
    out = res.stdout.decode().split("\n")[:-1]
    assert len(out) == len(lines), (len(out), len(lines))
    return [json.loads(o) for o in out]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/kafka-redis-bridge")
    cases = load(os.path.join(HERE, "cases.txt"))
    plain, env, skipped = {}, [], []
    for case in cases:
        v = case["value"]
        if (case["key"] is None and not case["headers"] and v is not None and b"\n" not in v
                and not v.endswith(b"\r")):
            plain.setdefault(case["topic"], []).append(case)
        elif envelope(case) is not None:
            env.append(case)
        else:
            skipped.append(case)
    got = []
    for topic, group in plain.items():
        got += zip(group, run(binary, ["--topic", "hostile." + topic], [c["value"] for c in group]))
    if env:
        got += zip(env, run(binary, ["--envelope"], [envelope(c) for c in env]))
    bad = known = 0
    for case, out in got:
        if out == want_of(case):
            continue
        if case["bug"]:
            known += 1
            print(f'known bug {case["name"]}: {case["bug"].decode()}')
            continue
        bad += 1
        print(f'cases.txt:{case["line"]}: {case["name"]}\n  map:  {json.dumps(out)}\n'
              f'  want: {json.dumps(want_of(case))}')
    print(f"map-check: {len(got)} of {len(cases)} cases checked with map "
          f"({sum(len(g) for g in plain.values())} plain, {len(env)} envelope), "
          f"{bad} disagree, {known} known bugs; {len(skipped)} not expressible: "
          + ", ".join(c["name"] for c in skipped))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
