/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.cpp - the C interface of include/k2r/json.h over simdjson's DOM parser: compiling
 * dotted paths, decoding one record value at a time and reading the value at a path.
 *
 * It is the only C++ in the bridge and it stays a thin shim: no exceptions (the build uses
 * -fno-exceptions, so only simdjson's error-code API is used), no I/O, no knowledge of rules or
 * channels. It is not a JSON library: values come back as views into the parser's storage. The
 * DOM parser is used rather than On Demand on purpose: it validates the whole document up front,
 * so a record with trailing garbage or invalid UTF-8 is refused even if the paths we read would
 * never have reached the bad bytes. After the first records no parse or lookup allocates: the
 * padded input buffer and the parser's own buffers only grow, and lookups compare string views.
 */
#include "k2r/json.h"

#include <simdjson.h>

#include <cassert>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <type_traits>

struct k2r_json_s {
    simdjson::dom::parser parser;
    /* The record copied and followed by SIMDJSON_PADDING zero bytes, because the caller's buffer
     * (a librdkafka message) is neither padded nor ours to read past its end. simdjson says the
     * padding's content does not matter; zeroing it (as its padded_string does) costs one 64-byte
     * store and keeps what it reads there the same from record to record. */
    char *buf = nullptr;
    size_t cap = 0;
    simdjson::dom::element root;
    bool valid = false; /* root points into the last parse, which succeeded */
    simdjson::error_code err = simdjson::SUCCESS;

    k2r_json_s() = default;
    k2r_json_s(const k2r_json_s &) = delete;
    k2r_json_s &operator=(const k2r_json_s &) = delete;
    ~k2r_json_s() {
        delete[] buf;
    }
};

namespace {

constexpr size_t padding = simdjson::SIMDJSON_PADDING;

/* simdjson releases after 3.0 have BIGINT_ERROR for integers beyond 64 bits (3.0 says
 * NUMBER_ERROR) and number the codes after it differently; it is found by name where it exists. */
template <typename E, typename = void> struct bigint_error { static constexpr int value = -1; };
template <typename E> struct bigint_error<E, std::void_t<decltype(E::BIGINT_ERROR)>> {
    static constexpr int value = E::BIGINT_ERROR;
};

/*
 * simdjson releases after 3.0 take a value that starts with a byte below '0' other than '"' and
 * '-' (never JSON: '+', '.', ',', a control byte...) for a number and fail it as NUMBER_ERROR
 * where 3.0 says TAPE_ERROR. So that the detail is the same on every release, a parse that failed
 * on a number is parsed again with the first byte of each such value (after '[', ':' or ',';
 * where a key is due instead, every release already says TAPE_ERROR) made an 'x', which every
 * release fails as TAPE_ERROR at the same place. Only records that already failed pay for it.
 * True when a byte was changed.
 */
bool neutralize_bad_value_starts(char *buf, size_t len) {
    bool changed = false, in_string = false, value_next = false;

    for (size_t i = 0; i < len; i++) {
        char c = buf[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else if (value_next && (unsigned char)c < '0' && c != '"' && c != '-') {
            buf[i] = 'x';
            changed = true;
            value_next = false;
        } else {
            in_string = c == '"';
            value_next = c == '[' || c == ':' || c == ',';
        }
    }
    return changed;
}

/* Why a parse failed, in the bridge's own words (they reach dead-letter details and logs), which
 * are simdjson 3.0's: later releases put the code's name in front and reword some. */
const char *parse_error_text(simdjson::error_code err) {
    switch (err) {
    case simdjson::SUCCESS:
        return "No error";
    case simdjson::EMPTY:
        return "Empty: no JSON found";
    case simdjson::CAPACITY:
        return "This parser can't support a document that big";
    case simdjson::MEMALLOC:
        return "Error allocating memory, we're most likely out of memory";
    case simdjson::TAPE_ERROR:
        return "The JSON document has an improper structure: missing or superfluous commas, "
               "braces, missing keys, etc.";
    case simdjson::DEPTH_ERROR:
        return "The JSON document was too deep (too many nested objects and arrays)";
    case simdjson::STRING_ERROR:
        return "Problem while parsing a string";
    case simdjson::T_ATOM_ERROR:
        return "Problem while parsing an atom starting with the letter 't'";
    case simdjson::F_ATOM_ERROR:
        return "Problem while parsing an atom starting with the letter 'f'";
    case simdjson::N_ATOM_ERROR:
        return "Problem while parsing an atom starting with the letter 'n'";
    case simdjson::NUMBER_ERROR:
        return "Problem while parsing a number";
    case simdjson::UTF8_ERROR:
        return "The input is not valid UTF-8";
    case simdjson::UNESCAPED_CHARS:
        return "Within strings, some characters must be escaped, we found unescaped characters";
    case simdjson::UNCLOSED_STRING:
        return "A string is opened, but never closed.";
    default:
        if (static_cast<int>(err) == bigint_error<simdjson::error_code>::value)
            return "Problem while parsing a number";
        return simdjson::error_message(err);
    }
}

void empty_segment_error(char *errstr, size_t errstr_size, const char *text) {
    if (errstr && errstr_size > 0)
        std::snprintf(errstr, errstr_size, "empty segment in path \"%s\"", text);
}

/* A segment is an array index when it is all decimal digits and fits a long; "-1" or "+1" are
 * plain keys. Leading zeros are accepted ("007" is 7), matching what a user would mean. */
long segment_index(const char *key, size_t key_len) {
    long index = 0;

    for (size_t i = 0; i < key_len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        int digit = key[i] - '0';
        if (index > (LONG_MAX - digit) / 10)
            return -1;
        index = index * 10 + digit;
    }
    return index;
}

/* Grows the padded buffer to hold len bytes plus padding; keeps it when it is big enough. */
bool reserve(k2r_json_t *json, size_t len) {
    if (len > SIZE_MAX - padding)
        return false;
    size_t need = len + padding;
    if (need <= json->cap)
        return true;
    /* Round up to 4 KiB so a stream of slowly growing records does not reallocate each time. */
    size_t cap = need > SIZE_MAX - 4095 ? need : (need + 4095) & ~static_cast<size_t>(4095);
    char *buf = new (std::nothrow) char[cap];
    if (!buf)
        return false;
    delete[] json->buf;
    json->buf = buf;
    json->cap = cap;
    return true;
}

/* Fills *out from a found element; out was zeroed by the caller. */
void fill_value(simdjson::dom::element elem, k2r_value_t *out) {
    switch (elem.type()) {
    case simdjson::dom::element_type::STRING: {
        std::string_view sv;
        if (elem.get(sv) != simdjson::SUCCESS)
            return;
        out->type = K2R_VALUE_STRING;
        out->str = sv.data();
        out->len = sv.size();
        return;
    }
    case simdjson::dom::element_type::INT64:
        if (elem.get(out->i) == simdjson::SUCCESS)
            out->type = K2R_VALUE_INT;
        return;
    case simdjson::dom::element_type::UINT64:
        if (elem.get(out->u) == simdjson::SUCCESS)
            out->type = K2R_VALUE_UINT;
        return;
    case simdjson::dom::element_type::DOUBLE:
        if (elem.get(out->d) == simdjson::SUCCESS)
            out->type = K2R_VALUE_DOUBLE;
        return;
    case simdjson::dom::element_type::BOOL: {
        bool b = false;
        if (elem.get(b) != simdjson::SUCCESS)
            return;
        out->type = K2R_VALUE_BOOL;
        out->b = b ? 1 : 0;
        return;
    }
    case simdjson::dom::element_type::NULL_VALUE:
        out->type = K2R_VALUE_NULL;
        return;
    case simdjson::dom::element_type::OBJECT:
        out->type = K2R_VALUE_OBJECT;
        return;
    case simdjson::dom::element_type::ARRAY:
        out->type = K2R_VALUE_ARRAY;
        return;
    }
}

} // namespace

extern "C" {

int k2r_path_compile(const char *text, k2r_path_t *path, char *errstr, size_t errstr_size) {
    assert(text && path);
    *path = k2r_path_t{};

    /* Segments are split on '.'; "\." is a dot inside a key and "\\" a
     * backslash, so keys such as "app.kubernetes.io/name" can be reached. */
    size_t text_len = std::strlen(text);
    size_t nsegs = 1;
    for (size_t i = 0; i < text_len; i++) {
        if (text[i] == '\\') {
            if (i + 1 == text_len || (text[i + 1] != '.' && text[i + 1] != '\\')) {
                if (errstr && errstr_size > 0)
                    std::snprintf(errstr, errstr_size,
                                  "bad escape in path \"%s\" (write \\. for a dot in a key, \\\\ "
                                  "for a backslash)",
                                  text);
                return -1;
            }
            i++;
        } else if (text[i] == '.') {
            nsegs++;
        }
    }

    path->text = static_cast<char *>(std::malloc(text_len + 1));
    path->segs = static_cast<k2r_path_seg_t *>(std::calloc(nsegs, sizeof(*path->segs)));
    if (!path->text || !path->segs)
        goto fail;
    std::memcpy(path->text, text, text_len + 1);

    {
        size_t i = 0;
        for (size_t s = 0; s < nsegs; s++) {
            k2r_path_seg_t *seg = &path->segs[s];
            size_t key_len = 0;
            int escaped = 0;

            /* A key is never longer than what is left of the text. */
            seg->key = static_cast<char *>(std::malloc(text_len - i + 1));
            if (!seg->key)
                goto fail;
            path->nsegs = s + 1; /* so k2r_path_free() releases the keys made so far */
            while (i < text_len && text[i] != '.') {
                if (text[i] == '\\') {
                    i++;
                    escaped = 1;
                }
                seg->key[key_len++] = text[i++];
            }
            i++; /* the separating dot */
            if (key_len == 0) {
                k2r_path_free(path);
                empty_segment_error(errstr, errstr_size, text);
                return -1;
            }
            seg->key[key_len] = '\0';
            seg->key_len = key_len;
            seg->index = escaped ? -1 : segment_index(seg->key, key_len);
        }
    }
    return 0;

fail:
    k2r_path_free(path);
    if (errstr && errstr_size > 0)
        std::snprintf(errstr, errstr_size, "out of memory compiling path \"%s\"", text);
    return -1;
}

void k2r_path_free(k2r_path_t *path) {
    if (!path)
        return;
    if (path->segs) {
        for (size_t s = 0; s < path->nsegs; s++)
            std::free(path->segs[s].key);
    }
    std::free(path->segs);
    std::free(path->text);
    *path = k2r_path_t{};
}

k2r_json_t *k2r_json_new(void) {
    /* The parser's constructor does not allocate; its buffers are made by the first parse. */
    return new (std::nothrow) k2r_json_s();
}

void k2r_json_destroy(k2r_json_t *json) {
    delete json;
}

int k2r_json_parse(k2r_json_t *json, const char *buf, size_t len) {
    assert(json && (buf || len == 0));
    json->valid = false;

    /* An empty Kafka value (a tombstone, or a producer sending nothing) is not JSON; say so
     * without touching buf, which may then be NULL. */
    if (len == 0 || !buf) {
        json->err = simdjson::EMPTY;
        return -1;
    }
    if (!reserve(json, len)) {
        json->err = simdjson::MEMALLOC;
        return -1;
    }
    std::memcpy(json->buf, buf, len);
    std::memset(json->buf + len, 0, padding);

    /* realloc_if_needed = false: the buffer is already padded, so simdjson must not copy it. */
    simdjson::error_code err = json->parser.parse(json->buf, len, false).get(json->root);
    if (err == simdjson::NUMBER_ERROR && neutralize_bad_value_starts(json->buf, len))
        err = json->parser.parse(json->buf, len, false).get(json->root);
    /* RFC 8259 lets a parser refuse a UTF-8 byte order mark, and the bridge does. simdjson 3.0
     * fails one as an improper structure unless the bytes fail its first pass (UTF-8, strings);
     * later releases skip it. */
    if (len >= 3 && std::memcmp(buf, "\xef\xbb\xbf", 3) == 0 && err != simdjson::UTF8_ERROR &&
        err != simdjson::UNCLOSED_STRING && err != simdjson::UNESCAPED_CHARS &&
        err != simdjson::MEMALLOC && err != simdjson::CAPACITY)
        err = simdjson::TAPE_ERROR;
    if (err != simdjson::SUCCESS) {
        json->err = err;
        return -1;
    }
    json->err = simdjson::SUCCESS;
    json->valid = true;
    return 0;
}

const char *k2r_json_error(const k2r_json_t *json) {
    assert(json);
    return parse_error_text(json->err);
}

void k2r_json_get(k2r_json_t *json, const k2r_path_t *path, k2r_value_t *out) {
    assert(json && path && out);
    *out = k2r_value_t{};
    out->type = K2R_VALUE_ABSENT;

    /* Reading after a failed parse is a caller bug; the tape then holds a half-written document,
     * so answer ABSENT rather than read it when asserts are compiled out. */
    assert(json->valid);
    if (!json->valid)
        return;

    simdjson::dom::element elem = json->root;
    for (size_t s = 0; s < path->nsegs; s++) {
        const k2r_path_seg_t &seg = path->segs[s];
        simdjson::dom::element next;

        switch (elem.type()) {
        case simdjson::dom::element_type::OBJECT: {
            simdjson::dom::object obj;
            if (elem.get(obj) != simdjson::SUCCESS)
                return;
            if (obj.at_key(std::string_view(seg.key, seg.key_len)).get(next) != simdjson::SUCCESS)
                return;
            break;
        }
        case simdjson::dom::element_type::ARRAY: {
            simdjson::dom::array arr;
            if (seg.index < 0 || elem.get(arr) != simdjson::SUCCESS)
                return;
            if (arr.at(static_cast<size_t>(seg.index)).get(next) != simdjson::SUCCESS)
                return;
            break;
        }
        default:
            /* Stepping into a scalar leads nowhere. */
            return;
        }
        elem = next;
    }
    fill_value(elem, out);
}

} // extern "C"
