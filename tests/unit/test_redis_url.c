/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_redis_url.c - redis:// URLs through k2r_redis_url_parse: every accepted
 * form with the exact host, port, user, password and db it yields, and every
 * refused form with the exact reason. Pure: no sockets.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "k2r/redis_url.h"
#include "suites.h"

typedef struct good_case_s {
    const char *url;
    const char *host;
    int port;
    const char *user;     /* NULL: expect NULL */
    const char *password; /* NULL: expect NULL */
    int db;
} good_case_t;

typedef struct bad_case_s {
    const char *url;
    const char *errstr;
} bad_case_t;

static const good_case_t good[] = {
    {"redis://host", "host", 6379, NULL, NULL, 0},
    {"redis://127.0.0.1", "127.0.0.1", 6379, NULL, NULL, 0},
    {"redis://127.0.0.1:6379", "127.0.0.1", 6379, NULL, NULL, 0},
    {"REDIS://Host.Example", "Host.Example", 6379, NULL, NULL, 0},
    {"redis://host/", "host", 6379, NULL, NULL, 0},
    {"redis://host:1", "host", 1, NULL, NULL, 0},
    {"redis://host:65535", "host", 65535, NULL, NULL, 0},
    {"redis://host:06380", "host", 6380, NULL, NULL, 0},
    {"redis://host:0000000000000000000006380", "host", 6380, NULL, NULL, 0},
    {"redis://my_host-1.svc.cluster.local:7000", "my_host-1.svc.cluster.local", 7000, NULL, NULL,
     0},
    {"redis://:pass@host:6380", "host", 6380, NULL, "pass", 0},
    {"redis://user:pass@host", "host", 6379, "user", "pass", 0},
    {"redis://user:pass@host:6380/3", "host", 6380, "user", "pass", 3},
    {"redis://[::1]:6379", "::1", 6379, NULL, NULL, 0},
    {"redis://[::1]", "::1", 6379, NULL, NULL, 0},
    {"redis://[fe80::1:2]/", "fe80::1:2", 6379, NULL, NULL, 0},
    {"redis://[::ffff:127.0.0.1]:7000/1", "::ffff:127.0.0.1", 7000, NULL, NULL, 1},
    {"redis://app:s3cret@[::1]:6380/2", "::1", 6380, "app", "s3cret", 2},
    {"redis://host/0", "host", 6379, NULL, NULL, 0},
    {"redis://host/15", "host", 6379, NULL, NULL, 15},
    {"redis://host/15/", "host", 6379, NULL, NULL, 15},
    {"redis://host/2147483647", "host", 6379, NULL, NULL, 2147483647},
    {"redis://host/007", "host", 6379, NULL, NULL, 7},
    {"redis://u%40corp:p%3Aw%2F%25d@host", "host", 6379, "u@corp", "p:w/%d", 0},
    {"redis://:%7e%7E@host", "host", 6379, NULL, "~~", 0},
    {"redis://:pa:ss@host", "host", 6379, NULL, "pa:ss", 0},
    {"redis://:p@ss@host", "host", 6379, NULL, "p@ss", 0},
};

static const bad_case_t bad[] = {
    {"http://host", "expected a redis:// or rediss:// URL"},
    {"host:6379", "expected a redis:// or rediss:// URL"},
    {"redis:/host", "expected a redis:// or rediss:// URL"},
    {"", "expected a redis:// or rediss:// URL"},
    {" redis://host", "expected a redis:// or rediss:// URL"},
    {"redis://", "empty host"},
    {"redis://:6379", "empty host"},
    {"redis:///0", "empty host"},
    {"redis://:pw@", "empty host"},
    {"redis://[]:6379", "empty host"},
    {"redis://host:", "port must be 1-65535"},
    {"redis://host:0", "port must be 1-65535"},
    {"redis://host:65536", "port must be 1-65535"},
    {"redis://host:99999999999", "port must be 1-65535"},
    {"redis://host:99999999999999999999999999", "port must be 1-65535"},
    {"redis://host: 80", "port must be 1-65535"},
    {"redis://host:-1", "port must be 1-65535"},
    {"redis://host:+80", "port must be 1-65535"},
    {"redis://host:http", "port must be 1-65535"},
    {"redis://host:6379x", "port must be 1-65535"},
    {"redis://[::1]:0", "port must be 1-65535"},
    {"redis://host/x", "db must be a non-negative integer"},
    {"redis://host/-1", "db must be a non-negative integer"},
    {"redis://host/1x", "db must be a non-negative integer"},
    {"redis://host/2147483648", "db must be a non-negative integer"},
    {"redis://host/99999999999999999999999999", "db must be a non-negative integer"},
    {"redis://host//", "db must be a non-negative integer"},
    {"redis://host/1/x", "unexpected \"x\" after the db"},
    {"redis://host/1//", "unexpected \"/\" after the db"},
    {"redis://host?timeout=1", "invalid character '?' in host"},
    {"redis://ho st", "invalid character ' ' in host"},
    {"redis://host#frag", "invalid character '#' in host"},
    {"redis://[::1", "unclosed [ in host"},
    {"redis://[::1/0]", "unclosed [ in host"},
    {"redis://[::1]x", "unexpected \"x\" after ]"},
    {"redis://[::1]6379", "unexpected \"6379\" after ]"},
    {"redis://[host]", "invalid IPv6 address in []"},
    {"redis://::1", "empty host"},
    {"redis://fe80::1", "IPv6 addresses need brackets, as in redis://[::1]:6379"},
    {"redis://fe80::1:6379", "IPv6 addresses need brackets, as in redis://[::1]:6379"},
    {"redis://user@host", "user without a password (expected user:password@)"},
    {"redis://user:@host", "empty password"},
    {"redis://:@host", "empty password"},
    {"redis://:pa%zzss@host", "bad percent-escape in password (expected %XX)"},
    {"redis://:pass%4@host", "bad percent-escape in password (expected %XX)"},
    {"redis://:pass%@host", "bad percent-escape in password (expected %XX)"},
    {"redis://us%g0er:pw@host", "bad percent-escape in user (expected %XX)"},
    {"redis://:a%00b@host", "%00 is not allowed in password"},
    {"redis://u%00:pw@host", "%00 is not allowed in user"},
};

static int url_is_zero(const k2r_redis_url_t *u) {
    return !u->host && !u->user && !u->password && u->db == 0;
}

static void check_str(const char *url, const char *what, const char *got, const char *want) {
    if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0)) {
        fprintf(stderr, "\n  %s: %s: got %s%s%s, want %s%s%s\n", url, what, got ? "\"" : "",
                got ? got : "NULL", got ? "\"" : "", want ? "\"" : "", want ? want : "NULL",
                want ? "\"" : "");
        CU_FAIL("wrong field");
    }
}

static void test_accepted(void) {
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const good_case_t *c = &good[i];
        k2r_redis_url_t u;
        char errstr[256] = "";

        if (k2r_redis_url_parse(c->url, &u, errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "\n  %s: refused: %s\n", c->url, errstr);
            CU_FAIL("accepted form refused");
            continue;
        }
        check_str(c->url, "host", u.host, c->host);
        check_str(c->url, "user", u.user, c->user);
        check_str(c->url, "password", u.password, c->password);
        if (u.port != c->port || u.db != c->db) {
            fprintf(stderr, "\n  %s: port %d db %d, want port %d db %d\n", c->url, u.port, u.db,
                    c->port, c->db);
            CU_FAIL("wrong port or db");
        }
        k2r_redis_url_free(&u);
        CU_ASSERT(url_is_zero(&u));
    }
}

static void test_refused(void) {
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const bad_case_t *c = &bad[i];
        k2r_redis_url_t u;
        char errstr[256] = "";

        if (k2r_redis_url_parse(c->url, &u, errstr, sizeof(errstr)) == 0) {
            fprintf(stderr, "\n  %s: accepted, want \"%s\"\n", c->url, c->errstr);
            CU_FAIL("refused form accepted");
            k2r_redis_url_free(&u);
            continue;
        }
        check_str(c->url, "errstr", errstr, c->errstr);
        /* A refused URL leaves nothing to free, so callers may free it anyway. */
        CU_ASSERT(url_is_zero(&u));
        k2r_redis_url_free(&u);
    }
}

static void test_password_not_in_errstr(void) {
    k2r_redis_url_t u;
    char errstr[256] = "";

    CU_ASSERT_EQUAL(k2r_redis_url_parse("redis://:hunter2@host:0", &u, errstr, sizeof(errstr)), -1);
    CU_ASSERT_PTR_NULL(strstr(errstr, "hunter2"));
    CU_ASSERT_EQUAL(k2r_redis_url_parse("redis://:hunter2@[x]", &u, errstr, sizeof(errstr)), -1);
    CU_ASSERT_PTR_NULL(strstr(errstr, "hunter2"));
}

/* rediss:// is the same grammar with TLS on; the port still defaults to 6379. */
static void test_tls_scheme(void) {
    static const struct {
        const char *url;
        int tls, port;
    } cases[] = {
        {"redis://host", 0, 6379},
        {"rediss://host", 1, 6379},
        {"REDISS://host:6380", 1, 6380},
        {"rediss://u:p@[::1]:7000/2", 1, 7000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        k2r_redis_url_t u;
        char errstr[256] = "";

        CU_ASSERT_EQUAL_FATAL(k2r_redis_url_parse(cases[i].url, &u, errstr, sizeof(errstr)), 0);
        CU_ASSERT_EQUAL(u.tls, cases[i].tls);
        CU_ASSERT_EQUAL(u.port, cases[i].port);
        k2r_redis_url_free(&u);
    }
}

static void test_free_zeroed(void) {
    k2r_redis_url_t u;

    memset(&u, 0, sizeof(u));
    k2r_redis_url_free(&u);
    k2r_redis_url_free(NULL);
    CU_ASSERT(url_is_zero(&u));
}

int test_redis_url_register(void) {
    CU_pSuite suite = CU_add_suite("redis_url", NULL, NULL);

    if (!suite || !CU_add_test(suite, "accepted forms", test_accepted) ||
        !CU_add_test(suite, "refused forms", test_refused) ||
        !CU_add_test(suite, "password never echoed", test_password_not_in_errstr) ||
        !CU_add_test(suite, "rediss:// sets tls", test_tls_scheme) ||
        !CU_add_test(suite, "free of a zeroed url", test_free_zeroed))
        return CU_get_error();
    return 0;
}
