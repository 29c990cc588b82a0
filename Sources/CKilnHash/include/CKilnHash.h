#pragma once
#include <stddef.h>
#include <stdint.h>

// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), Glibc only. On x86-64 CPUs with the SHA extensions the block
// function uses them (checked once with cpuid); elsewhere a portable C block function runs.

#ifdef __cplusplus
extern "C" {
#endif

enum {
    KILN_SHA256_AUTO = 0,     // the fastest implementation this CPU has
    KILN_SHA256_PORTABLE = 1, // plain C
    KILN_SHA256_SHANI = 2,    // x86 SHA extensions (SHA-NI)
};

typedef struct kiln_sha256_ctx {
    uint32_t state[8];
    uint64_t length;   // bytes hashed so far
    uint8_t block[64]; // pending partial block
    uint32_t used;     // bytes in block
    uint32_t impl;     // KILN_SHA256_PORTABLE or KILN_SHA256_SHANI
} kiln_sha256_ctx;

/// One-shot digest of `len` bytes at `data` into `out`.
void kiln_sha256(const void *data, size_t len, uint8_t out[32]);

void kiln_sha256_init(kiln_sha256_ctx *ctx);
/// Initialises with a given implementation; returns 0, or -1 when the CPU lacks it (ctx is then unusable).
int kiln_sha256_init_impl(kiln_sha256_ctx *ctx, int impl);
void kiln_sha256_update(kiln_sha256_ctx *ctx, const void *data, size_t len);
void kiln_sha256_final(kiln_sha256_ctx *ctx, uint8_t out[32]);

/// The implementation KILN_SHA256_AUTO picks on this CPU.
int kiln_sha256_best_impl(void);

/// HMAC-SHA-256 (RFC 2104 / RFC 4231) of `data` under `key`.
void kiln_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32]);
/// The same with a chosen SHA-256 implementation; returns -1 when the CPU lacks it.
int kiln_hmac_sha256_impl(int impl, const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32]);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// FastCDC scanning state for one stream (see KilnDedup's Chunker, which fills it in).
typedef struct kiln_cdc {
    uint64_t fp;
    uint64_t mask_s, mask_l;
    uint32_t min_size, avg_size, max_size;
    uint32_t position; // bytes of the current chunk seen so far
} kiln_cdc;

/// Scans `n` bytes continuing the current chunk. Returns how many were consumed; `*cut` is 1 when the chunk ends
/// after them (the state is then reset for the next chunk). With `ctx`, the consumed bytes are also hashed into
/// it, block by block as they are scanned, so the SHA unit and the gear loop overlap.
size_t kiln_cdc_next(kiln_cdc *c, const uint64_t gear[256], kiln_sha256_ctx *ctx, const uint8_t *p, size_t n, int *cut);

/// Every chunk that ends within `n` bytes continuing the current one, with its SHA-256 (`ctx` holds the hash of the
/// chunk in progress and must not be NULL): up to `max` chunk ends (offsets from `p`, after the last byte) in `ends`
/// and digests in `ids`, in order; returns how many. `*consumed` is `n`, or the last end when `max` chunks filled
/// (the caller passes the rest again). The bytes after the last end are hashed into `ctx` and the scan state kept,
/// as kiln_cdc_next does. Faster than kiln_cdc_next in a loop: a chunk's hash may finish while the next is scanned.
size_t kiln_cdc_chunks(kiln_cdc *c, const uint64_t gear[256], kiln_sha256_ctx *ctx, const uint8_t *p, size_t n,
                       size_t *ends, uint8_t (*ids)[32], size_t max, size_t *consumed);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

/// Resemblance features of `n` bytes: for each of 3 fixed linear maps, the largest image of the gear hash over the
/// positions where its low 4 bits are zero (KilnDedup's Resemblance).
void kiln_resemblance(const uint8_t *p, size_t n, const uint64_t gear[256], uint64_t out[3]);

#ifdef __cplusplus
}
#endif
