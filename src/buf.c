/* SPDX-License-Identifier: Apache-2.0 */
/*
 * buf.c - the growable byte buffer.
 *
 * Capacity starts at 4 KiB and doubles, so appending n bytes one record at a
 * time costs amortised O(n) copies and a handful of reallocs per buffer's
 * life. A failed realloc leaves the buffer as it was.
 *
 * Not here: anything that knows what the bytes mean (map.c).
 */
#include "k2r/buf.h"

#include <stdlib.h>
#include <string.h>

int k2r_buf_grow(k2r_buf_t *buf, size_t n) {
    size_t cap = buf->cap ? buf->cap : 4096;
    char *data;

    while (cap < buf->len + n)
        cap *= 2;
    data = realloc(buf->data, cap);
    if (!data)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

void k2r_buf_free(k2r_buf_t *buf) {
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

int k2r_array_reserve(void *arrp, size_t *cap, size_t need, size_t size, size_t first) {
    void **arr = arrp;
    size_t c = *cap ? *cap : first;
    void *p;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    p = realloc(*arr, c * size);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

/* The key of element i (memcpy: the key need not be aligned for a plain load). */
static uint64_t key_at(const void *arr, size_t i, size_t size, size_t key_offset) {
    uint64_t k;

    memcpy(&k, (const char *)arr + i * size + key_offset, sizeof(k));
    return k;
}

int k2r_array_find_u64(const void *arr, size_t n, size_t size, size_t key_offset, uint64_t key,
                       size_t *at) {
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_at(arr, mid, size, key_offset) < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n || key_at(arr, lo, size, key_offset) != key)
        return -1;
    *at = lo;
    return 0;
}
