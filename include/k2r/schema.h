/* SPDX-License-Identifier: Apache-2.0 */
/*
 * schema.h - the JSON Schema of the config file (bridge.yaml), for editors
 * (yaml-language-server completes and checks a file that names it) and for
 * checking example configs without the bridge.
 *
 * It is generated, never written by hand: the scalar sections from the
 * settings table (config.h: names, types, ranges, choices, defaults,
 * environment overrides, descriptions), the rules from the tables the loader
 * reads them by (k2r_rule_keys, k2r_source_syntax, the on_error and unsafe
 * words). `kafka-redis-bridge check --json-schema` prints it, and
 * config/bridge.schema.json is that output (a unit test compares them).
 *
 * Every settings value may be a ${env:NAME} or ${file:/path} reference
 * (the loader resolves them before it reads a value by its type), and no
 * rule value may hold one (rules are not resolved).
 *
 * What it is not: the loader. A schema cannot say everything the loader
 * checks (a redis:// URL's syntax, a duration's range, a channel template's
 * variables, librdkafka's own property checks, a rule topic among
 * kafka.topics, what a reference resolves to); `check` remains the judge,
 * and the schema never refuses a file the loader takes, with one exception
 * that a YAML-to-JSON reader forces: a string setting written as a plain
 * number (group_id: 42) is a number in JSON, and the schema wants a string.
 */
#ifndef K2R_SCHEMA_H
#define K2R_SCHEMA_H

/*
 * Renders the schema (JSON Schema draft-07) as indented JSON ending in a
 * newline. Returns a new string (release with free), or NULL when out of
 * memory.
 */
char *k2r_schema_render(void);

#endif
