/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - /healthz, /readyz and /metrics on libmicrohttpd.
 *
 * libmicrohttpd parses HTTP and runs one thread of its own that polls the
 * listening socket and every connection; this file only binds the socket
 * (so a bind failure has an exact reason to report) and answers requests
 * from the metrics registry. Every answer is small and ready at once, so the
 * one thread is enough, and the limits below keep a slow or hostile client
 * from holding it: few connections, a short idle timeout, a small memory
 * pool per connection.
 *
 * Not here: anything the answers mean (metrics.c decides health and
 * readiness and renders the text).
 */
#include "k2r/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "k2r/addr.h"
#include "k2r/clock.h"
#include "k2r/config.h"
#include "k2r/log.h"

/* Probes and a scraper or two, usually from one address (the node's: the
 * kubelet and Prometheus alike), so there is no per-address limit, which
 * would lock them out behind a few idle connections; instead there is room
 * for many, and an idle one (a client that connected and went quiet) is
 * dropped after 3 s. */
#define HTTP_CONNECTION_LIMIT   256
#define HTTP_CONNECTION_TIMEOUT 3     /* seconds */
#define HTTP_MEMORY_LIMIT       16384 /* per connection: request line and headers */

struct k2r_http_s {
    struct MHD_Daemon *daemon;
    k2r_metrics_t *metrics;   /* borrowed */
    k2r_ratelimit_t error_rl; /* libmicrohttpd's own messages; only its thread logs */
};

/* libmicrohttpd's messages (a client that broke off, a refused connection)
 * can repeat per connection, so they are rate-limited. */
static void __attribute__((format(printf, 2, 0)))
on_mhd_log(void *cls, const char *fmt, va_list ap) {
    k2r_http_t *http = cls;
    uint64_t suppressed;
    char msg[512];
    size_t n;

    if (!k2r_log_ratelimit(&http->error_rl, &suppressed))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    k2r_log_warn("http: %s (%llu similar suppressed)", msg, (unsigned long long)suppressed);
}

/* Queues a response; `body` is copied unless `owned` (then libmicrohttpd
 * frees it with free(3) once sent). */
/*
 * The process_* families every Prometheus exporter has (CPU seconds,
 * resident and virtual memory, open and allowed descriptors, start time),
 * read from /proc at each scrape, appended to `text` (of *len bytes, grown
 * with realloc). Returns the text, or NULL when out of memory (text freed).
 * What /proc does not say is left out, never invented.
 */
static char *append_process(char *text, size_t *len) {
    char buf[1024], more[1024], *out;
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long start = 0;
    long rss = 0, hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE), btime = 0;
    size_t n = 0, fds = 0;
    struct rlimit rl;
    FILE *f = fopen("/proc/self/stat", "r");
    DIR *d;

    more[0] = '\0';
    if (f) {
        /* The command name (field 2) may hold spaces: fields are read after
         * its ')'. The kernel's own numbers: that sscanf reports no overflow
         * does not matter here, and one format skips the fields between. */
        if (fgets(buf, sizeof(buf), f) && strrchr(buf, ')') && hz > 0 &&
            // NOLINTNEXTLINE(cert-err34-c)
            sscanf(strrchr(buf, ')') + 2,
                   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
                   "%llu %lu %ld",
                   &utime, &stime, &start, &vsize, &rss) == 5)
            n += (size_t)snprintf(more + n, sizeof(more) - n,
                                  "# HELP process_cpu_seconds_total User and system CPU time.\n"
                                  "# TYPE process_cpu_seconds_total counter\n"
                                  "process_cpu_seconds_total %.2f\n"
                                  "# HELP process_resident_memory_bytes Resident memory.\n"
                                  "# TYPE process_resident_memory_bytes gauge\n"
                                  "process_resident_memory_bytes %ld\n"
                                  "# HELP process_virtual_memory_bytes Virtual memory.\n"
                                  "# TYPE process_virtual_memory_bytes gauge\n"
                                  "process_virtual_memory_bytes %lu\n",
                                  (double)(utime + stime) / (double)hz, rss * page, vsize);
        fclose(f);
    }
    f = fopen("/proc/stat", "r");
    if (f) {
        while (fgets(buf, sizeof(buf), f))
            if (sscanf(buf, "btime %ld", &btime) == 1) // NOLINT(cert-err34-c): the kernel's line
                break;
        fclose(f);
    }
    if (btime > 0 && hz > 0 && start > 0 && n < sizeof(more))
        n += (size_t)snprintf(more + n, sizeof(more) - n,
                              "# HELP process_start_time_seconds Start time, seconds since the "
                              "epoch.\n"
                              "# TYPE process_start_time_seconds gauge\n"
                              "process_start_time_seconds %.2f\n",
                              (double)btime + (double)start / (double)hz);
    d = opendir("/proc/self/fd");
    if (d) {
        while (readdir(d))
            fds++;
        closedir(d);
        fds = fds > 3 ? fds - 3 : 0; /* ".", ".." and the directory's own */
        if (n < sizeof(more))
            n += (size_t)snprintf(more + n, sizeof(more) - n,
                                  "# HELP process_open_fds Open file descriptors.\n"
                                  "# TYPE process_open_fds gauge\n"
                                  "process_open_fds %zu\n",
                                  fds);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && n < sizeof(more))
        n += (size_t)snprintf(more + n, sizeof(more) - n,
                              "# HELP process_max_fds The limit of open file descriptors.\n"
                              "# TYPE process_max_fds gauge\n"
                              "process_max_fds %llu\n",
                              (unsigned long long)rl.rlim_cur);
    if (n >= sizeof(more))
        n = strlen(more);
    out = realloc(text, *len + n + 1);
    if (!out) {
        free(text);
        return NULL;
    }
    memcpy(out + *len, more, n + 1);
    *len += n;
    return out;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status, char *body,
                               size_t len, int owned, const char *content_type) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    if (!resp) {
        if (owned)
            free(body);
        return MHD_NO; /* out of memory: libmicrohttpd closes the connection */
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp); /* the connection holds its own reference */
    return rc;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned int status,
                                    const char *line) {
    char body[300];
    int n = snprintf(body, sizeof(body), "%s\n", line);

    if (n < 0)
        return MHD_NO;
    if ((size_t)n >= sizeof(body))
        n = (int)sizeof(body) - 1;
    return respond(conn, status, body, (size_t)n, 0, "text/plain; charset=utf-8");
}

/* Every request lands here, once its headers are read. None of the answers
 * needs a request body, so the answer is queued on the first call. HEAD gets
 * the same headers without a body (libmicrohttpd leaves the body out). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    k2r_http_t *http = cls;
    char why[256];

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (strcmp(url, "/healthz") == 0) {
        int ok =
            k2r_metrics_healthy(http->metrics, k2r_now_ms(), K2R_HTTP_STALL_MS, why, sizeof(why));
        return respond_text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why);
    }
    if (strcmp(url, "/readyz") == 0) {
        int ok = k2r_metrics_ready(http->metrics, why, sizeof(why));
        return respond_text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, why);
    }
    if (strcmp(url, "/metrics") == 0) {
        char *text;
        size_t len;

        if (k2r_metrics_render(http->metrics, &text, &len) != 0 ||
            !(text = append_process(text, &len)))
            return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        return respond(conn, MHD_HTTP_OK, text, len, 1, "text/plain; version=0.0.4; charset=utf-8");
    }
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found");
}

/* A non-blocking listening socket bound to `sa`; -1 with errno set. `dual`
 * makes an IPv6 socket take IPv4 connections as well. */
static int bind_one(const struct sockaddr *sa, socklen_t len, int dual) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1, zero = 0, err;

    if (fd < 0)
        return -1;
    /* SO_REUSEADDR: a restarted bridge binds again at once, despite the
     * previous one's connections in TIME_WAIT. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        (!dual || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) == 0) &&
        bind(fd, sa, len) == 0 && listen(fd, 64) == 0)
        return fd;
    err = errno;
    close(fd);
    errno = err;
    return -1;
}

/*
 * A listening socket for `host` and `port`. "" is every interface: IPv6 and
 * IPv4 on one socket, or IPv4 alone on a host without IPv6. Anything else is
 * resolved (a literal address resolves to itself) and its addresses are
 * tried in order until one binds. Returns the socket, or -1 with the reason
 * in errstr.
 */
static int listen_on(const char *listen_addr, const char *host, int port, char *errstr,
                     size_t errstr_size) {
    struct addrinfo hints, *res = NULL;
    char service[8];
    int fd = -1, err = EADDRNOTAVAIL, gai;

    if (!host[0]) {
        struct sockaddr_in6 any6;
        struct sockaddr_in any4;

        memset(&any6, 0, sizeof(any6));
        any6.sin6_family = AF_INET6;
        any6.sin6_port = htons((uint16_t)port);
        any6.sin6_addr = in6addr_any;
        fd = bind_one((const struct sockaddr *)&any6, sizeof(any6), 1);
        if (fd < 0 && errno == EAFNOSUPPORT) {
            memset(&any4, 0, sizeof(any4));
            any4.sin_family = AF_INET;
            any4.sin_port = htons((uint16_t)port);
            any4.sin_addr.s_addr = htonl(INADDR_ANY);
            fd = bind_one((const struct sockaddr *)&any4, sizeof(any4), 0);
        }
        if (fd < 0)
            snprintf(errstr, errstr_size, "http.listen %s: %s", listen_addr, strerror(errno));
        return fd;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%d", port);
    gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        snprintf(errstr, errstr_size, "http.listen %s: %s", listen_addr,
                 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
        return -1;
    }
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = bind_one(ai->ai_addr, ai->ai_addrlen, 0);
        if (fd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(errstr, errstr_size, "http.listen %s: %s", listen_addr, strerror(err));
    return fd;
}

k2r_http_t *k2r_http_start(const char *listen_addr, k2r_metrics_t *m, char *errstr,
                           size_t errstr_size) {
    k2r_http_t *http;
    char host[256];
    int port, fd;

    if (k2r_split_listen(listen_addr, host, sizeof(host), &port) != 0) {
        snprintf(errstr, errstr_size,
                 "http.listen %s: expected host:port, [ipv6]:port or :port with a port 1-65535",
                 listen_addr);
        return NULL;
    }
    http = calloc(1, sizeof(*http));
    if (!http) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    http->metrics = m;
    http->error_rl = (k2r_ratelimit_t)K2R_RATELIMIT_INIT(10000);
    fd = listen_on(listen_addr, host, port, errstr, errstr_size);
    if (fd < 0) {
        free(http);
        return NULL;
    }
    /* From here libmicrohttpd owns fd and closes it when stopped. A failed
     * start closes it or not, depending on how far it got, so fd is left
     * alone then: a leak on a path that ends the process beats closing a
     * descriptor number another thread may have been given meanwhile. */
    http->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, http,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)HTTP_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)HTTP_CONNECTION_TIMEOUT, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_MEMORY_LIMIT, MHD_OPTION_END);
    if (!http->daemon) {
        snprintf(errstr, errstr_size, "http.listen %s: cannot start the HTTP server", listen_addr);
        free(http);
        return NULL;
    }
    return http;
}

void k2r_http_stop(k2r_http_t *http) {
    if (!http)
        return;
    MHD_stop_daemon(http->daemon);
    free(http);
}
