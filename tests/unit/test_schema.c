/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_schema.c - the config's JSON Schema (schema.h): the committed
 * config/bridge.schema.json is what the code renders, every row of the
 * settings table and every rule key is in it, and what it requires and
 * forbids is what the loader does. scripts/check-schema.sh validates the
 * repository's configs against it.
 */
#include <CUnit/CUnit.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k2r/config.h"
#include "k2r/schema.h"
#include "suites.h"

/* The schema as rendered and parsed; NULL when either failed. */
static json_t *rendered(void) {
    char *text = k2r_schema_render();
    json_t *root = text ? json_loads(text, 0, NULL) : NULL;

    free(text);
    return root;
}

/* The object at a path of object keys, e.g. {"properties", "kafka", NULL}. */
static json_t *at(json_t *o, const char *const *keys) {
    for (; o && *keys; keys++)
        o = json_object_get(o, *keys);
    return o;
}

/* The strings of a JSON array, comma-separated, into out. */
static void joined(json_t *arr, char *out, size_t size) {
    size_t i, n = 0;
    json_t *v;

    out[0] = '\0';
    json_array_foreach(arr, i, v) {
        n += (size_t)snprintf(out + n, n < size ? size - n : 0, "%s%s", i ? "," : "",
                              json_string_value(v) ? json_string_value(v) : "?");
    }
}

/* config/bridge.schema.json is the rendering, byte for byte (`make config-schema`). */
static void test_committed_file(void) {
    char path[4096], *text = k2r_schema_render(), *file = NULL;
    FILE *f;
    long n = -1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    if (!text)
        return; /* not reached: the assertion ends the test */
    snprintf(path, sizeof(path), "%s/config/bridge.schema.json", K2R_SOURCE_DIR);
    f = fopen(path, "rb");
    CU_ASSERT_PTR_NOT_NULL(f);
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (file = calloc(1, (size_t)n + 1)) != NULL && fread(file, 1, (size_t)n, f) != (size_t)n) {
        free(file);
        file = NULL;
    }
    if (f)
        fclose(f);
    CU_ASSERT_PTR_NOT_NULL(file);
    if (file && strcmp(file, text) != 0)
        fprintf(stderr, "\nconfig/bridge.schema.json differs from the rendering: run `make "
                        "config-schema`\n");
    CU_ASSERT_STRING_EQUAL(file ? file : "", text);
    free(file);
    free(text);
}

/* Every row is at its dotted path (redis.tls.ca_file under redis, tls), with
 * the JSON type its own type gives, and each closed section refuses unknown keys. */
static void test_every_setting(void) {
    json_t *root = rendered();
    size_t n;
    const k2r_setting_t *rows = k2r_settings(&n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(json_object_get(root, "additionalProperties"), json_false());
    for (size_t i = 0; i < n; i++) {
        char name[128], *word, *save = NULL;
        json_t *o = root, *parent = NULL;
        const char *type;

        snprintf(name, sizeof(name), "%s", rows[i].name);
        for (word = strtok_r(name, ".", &save); word && o; word = strtok_r(NULL, ".", &save)) {
            parent = o;
            o = json_object_get(json_object_get(o, "properties"), word);
        }
        CU_ASSERT_PTR_NOT_NULL(o);
        if (!o) {
            fprintf(stderr, "\n%s is not in the schema\n", rows[i].name);
            continue;
        }
        CU_ASSERT_EQUAL(json_object_get(parent, "additionalProperties"), json_false());
        CU_ASSERT(json_is_string(json_object_get(o, "description")));
        /* A typed value may also be a ${env:}/${file:} reference: the type
         * is the first branch, the reference the last. */
        if (rows[i].type == K2R_SETTING_INT || rows[i].type == K2R_SETTING_BOOL ||
            rows[i].type == K2R_SETTING_CHOICE || rows[i].type == K2R_SETTING_DURATION) {
            json_t *any = json_object_get(o, "anyOf");
            const char *last = json_string_value(
                json_object_get(json_array_get(any, json_array_size(any) - 1), "$ref"));

            CU_ASSERT_STRING_EQUAL(last ? last : "", "#/definitions/reference");
            o = json_array_get(any, 0);
        }
        type = json_string_value(json_object_get(o, "type"));
        switch (rows[i].type) {
        case K2R_SETTING_INT:
            CU_ASSERT_STRING_EQUAL(type ? type : "", "integer");
            CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "minimum")), rows[i].min);
            CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "maximum")), rows[i].max);
            break;
        case K2R_SETTING_BOOL:
            CU_ASSERT_STRING_EQUAL(type ? type : "", "boolean");
            break;
        case K2R_SETTING_CHOICE:
            CU_ASSERT_STRING_EQUAL(type ? type : "", "string");
            for (size_t c = 0; rows[i].choices[c]; c++)
                CU_ASSERT_STRING_EQUAL(
                    json_string_value(json_array_get(json_object_get(o, "enum"), c)),
                    rows[i].choices[c]);
            break;
        case K2R_SETTING_STRING:
        case K2R_SETTING_SECRET:
        case K2R_SETTING_DURATION:
            CU_ASSERT_STRING_EQUAL(type ? type : "", "string");
            if (rows[i].type != K2R_SETTING_DURATION)
                CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "minLength")), 1);
            break;
        case K2R_SETTING_RULES:
            CU_ASSERT_STRING_EQUAL(type ? type : "", "array");
            break;
        default:
            break;
        }
    }
    json_decref(root);
}

/* What must be written: kafka (group_id, topics: kafka.brokers may come from
 * K2R_KAFKA_BROKERS) and rules; nothing else. */
static void test_required(void) {
    static const char *const kafka[] = {"properties", "kafka", "required", NULL};
    json_t *root = rendered();
    char text[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    joined(json_object_get(root, "required"), text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "kafka,rules");
    joined(at(root, kafka), text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "group_id,topics");
    json_decref(root);
}

/* A rule's keys are exactly the loader's (k2r_rule_keys), name and topic
 * required; sources take var only in notification fields, and no default
 * with const or var. */
static void test_rules(void) {
    static const char *const rule_props[] = {"definitions", "rule", "properties", NULL};
    static const char *const rule_req[] = {"definitions", "rule", "required", NULL};
    json_t *root = rendered(), *props, *branch, *map;
    size_t nkeys = 0, i;
    char text[256], want[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    props = at(root, rule_props);
    for (; k2r_rule_keys[nkeys]; nkeys++)
        CU_ASSERT_PTR_NOT_NULL(json_object_get(props, k2r_rule_keys[nkeys]));
    CU_ASSERT_EQUAL(json_object_size(props), nkeys);
    joined(at(root, rule_req), text, sizeof(text));
    CU_ASSERT_STRING_EQUAL(text, "name,topic");

    /* The mapping form of each source is its anyOf's second branch. */
    map = json_array_get(
        json_object_get(json_object_get(json_object_get(root, "definitions"), "source"), "anyOf"),
        1);
    CU_ASSERT_PTR_NULL(json_object_get(json_object_get(map, "properties"), "var"));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(map, "oneOf")), K2R_SOURCE_COUNT - 1);
    map = json_array_get(
        json_object_get(json_object_get(json_object_get(root, "definitions"), "field_source"),
                        "anyOf"),
        1);
    CU_ASSERT_PTR_NOT_NULL(json_object_get(json_object_get(map, "properties"), "var"));
    CU_ASSERT_EQUAL(json_array_size(json_object_get(map, "oneOf")), K2R_SOURCE_COUNT);
    /* One branch per kind, in k2r_source_syntax's order; "not default" where none is taken. */
    json_array_foreach(json_object_get(map, "oneOf"), i, branch) {
        joined(json_object_get(branch, "required"), text, sizeof(text));
        CU_ASSERT_STRING_EQUAL(text, k2r_source_syntax[i].key);
        joined(json_object_get(json_object_get(branch, "not"), "required"), text, sizeof(text));
        snprintf(want, sizeof(want), "%s", k2r_source_syntax[i].takes_default ? "" : "default");
        CU_ASSERT_STRING_EQUAL(text, want);
    }
    json_decref(root);
}

int test_schema_register(void) {
    CU_pSuite s = CU_add_suite("schema", NULL, NULL);

    if (!s ||
        !CU_add_test(s, "schema: config/bridge.schema.json is the rendering",
                     test_committed_file) ||
        !CU_add_test(s, "schema: every setting at its path, typed", test_every_setting) ||
        !CU_add_test(s, "schema: kafka.group_id, kafka.topics and rules required", test_required) ||
        !CU_add_test(s, "schema: rule keys and sources are the loader's", test_rules))
        return CU_get_error();
    return 0;
}
