/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.c - the mapping invariants the fuzz targets assert (see check.h).
 *
 * These are the promises rules.h makes to the bridge and to Redis clients,
 * written so that a fuzzer can hold the mapper to them: every offset lands in
 * the caller's buffer, every channel is short enough and safe to SUBSCRIBE or
 * PSUBSCRIBE to literally, and every notification is a JSON object a client
 * can parse. It is not a second implementation of the rules: it checks the
 * shape of the output, not which channel a record should have gone to.
 */
#include "check.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/utf8.h"

void k2r_fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    va_list ap;

    fprintf(stderr, "\n%s:%d: fuzz invariant violated: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    __builtin_trap();
}

void k2r_fuzz_dump(const char *label, const char *bytes, size_t len) {
    fprintf(stderr, "  %s (%zu bytes): \"", label, len);
    for (size_t i = 0; i < len && i < 512; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fprintf(stderr, "\"%s\n", len > 512 ? "..." : "");
}

/*
 * A byte no channel may hold, whatever the rule's `unsafe:` says: control
 * characters would corrupt logs and the inline protocol, whitespace splits
 * redis-cli arguments, and * ? [ ] make a PSUBSCRIBE pattern match more than
 * the one channel. fuzz_map's templates hold only safe literal text, so there
 * any such byte came from a substituted value that `reject` should have
 * refused or `escape` should have escaped (safe_templates). A fuzzed config
 * may write such bytes into a template itself, so fuzz_config does not ask.
 */
static int unsafe_byte(unsigned char c) {
    return c < 0x20 || c == 0x7f || c == ' ' || c == '*' || c == '?' || c == '[' || c == ']';
}

static void check_json(const char *msg, size_t len, const char *rule) {
    json_error_t err;
    /* INT_AS_REAL: jansson refuses integers above INT64_MAX, which a notification may
     * legitimately carry (K2R_VALUE_UINT); ALLOW_NUL: "\u0000" is valid JSON. */
    json_t *doc = json_loadb(
        msg, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &err);

    if (!doc || !json_is_object(doc)) {
        k2r_fuzz_dump("notification", msg, len);
        K2R_FUZZ_CHECK(doc && json_is_object(doc),
                       "rule %s: the notification is not one JSON object: %s (at %d)", rule,
                       doc ? "not an object" : err.text, doc ? 0 : err.position);
    }
    json_decref(doc);
}

void k2r_fuzz_check_mapping(const k2r_mapping_t *m, const k2r_buf_t *out,
                            const k2r_fuzz_limits_t *lim) {
    K2R_FUZZ_CHECK(m->npublish <= K2R_FANOUT_MAX, "npublish %zu", m->npublish);
    K2R_FUZZ_CHECK((unsigned)m->skip < K2R_SKIP__COUNT, "skip %d", (int)m->skip);
    K2R_FUZZ_CHECK((unsigned)m->action <= K2R_ACTION_STOP, "action %d", (int)m->action);
    K2R_FUZZ_CHECK(k2r_skip_name(m->skip) && k2r_action_name(m->action), "names");
    /* rules.h: both are NONE exactly when nothing failed. */
    K2R_FUZZ_CHECK((m->skip == K2R_SKIP_NONE) == (m->action == K2R_ACTION_NONE),
                   "skip %s with action %s", k2r_skip_name(m->skip), k2r_action_name(m->action));
    /* The detail is only promised on failure. */
    if (m->skip != K2R_SKIP_NONE)
        K2R_FUZZ_CHECK(memchr(m->detail, '\0', sizeof(m->detail)) != NULL,
                       "detail is not NUL-terminated");
    if (m->skip != K2R_SKIP_NONE && m->skip != K2R_SKIP_NO_RULE && m->skip != K2R_SKIP_NOT_JSON)
        K2R_FUZZ_CHECK(m->detail[0] != '\0', "skip %s without a detail", k2r_skip_name(m->skip));
    /* rules.h: "STOP wins over everything (publish nothing of this record)". */
    if (m->action == K2R_ACTION_STOP)
        K2R_FUZZ_CHECK(m->npublish == 0, "action stop with %zu to publish", m->npublish);
    if (m->skip == K2R_SKIP_NONE && m->npublish > 0)
        K2R_FUZZ_CHECK(m->rule == m->publish[0].rule,
                       "mapping.rule is not the first publishing rule");
    K2R_FUZZ_CHECK(out->len <= out->cap, "buffer len %zu above cap %zu", out->len, out->cap);

    for (size_t i = 0; i < m->npublish && i < K2R_FANOUT_MAX; i++) {
        size_t coff = m->publish[i].channel_off, clen = m->publish[i].channel_len;
        size_t moff = m->publish[i].message_off, mlen = m->publish[i].message_len;
        const char *rule = m->publish[i].rule;

        K2R_FUZZ_CHECK(rule != NULL, "publish[%zu] has no rule", i);
        K2R_FUZZ_CHECK(coff >= lim->base && coff <= out->len && clen <= out->len - coff,
                       "publish[%zu] channel [%zu, +%zu) outside [%zu, %zu)", i, coff, clen,
                       lim->base, out->len);
        K2R_FUZZ_CHECK(moff >= lim->base && moff <= out->len && mlen <= out->len - moff,
                       "publish[%zu] message [%zu, +%zu) outside [%zu, %zu)", i, moff, mlen,
                       lim->base, out->len);
        K2R_FUZZ_CHECK(clen > 0 && clen <= lim->max_channel,
                       "rule %s: channel length %zu not in 1..%zu", rule, clen, lim->max_channel);
        K2R_FUZZ_CHECK(mlen <= lim->max_message, "rule %s: message length %zu above %zu", rule,
                       mlen, lim->max_message);
        for (size_t j = 0; j < clen && lim->safe_templates; j++) {
            unsigned char c = (unsigned char)out->data[coff + j];
            if (unsafe_byte(c)) {
                k2r_fuzz_dump("channel", out->data + coff, clen);
                K2R_FUZZ_CHECK(!unsafe_byte(c), "rule %s: channel byte %zu is 0x%02x", rule, j, c);
            }
        }
        /* Template text comes from YAML, which is UTF-8; values are refused or escaped
         * when they are not (docs/rules.md), so every channel is valid UTF-8. */
        for (size_t j = 0, n; j < clen; j += n) {
            n = k2r_utf8_char((const unsigned char *)out->data + coff + j, clen - j);
            if (!n)
                k2r_fuzz_dump("channel", out->data + coff, clen);
            K2R_FUZZ_CHECK(n > 0, "rule %s: channel is not valid UTF-8 at byte %zu", rule, j);
        }
        if (!lim->is_plain || !lim->is_plain(rule, lim->ctx))
            check_json(out->data + moff, mlen, rule);
    }
}
