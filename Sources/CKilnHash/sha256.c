#include "CKilnHash.h"
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define KILN_HAVE_X86 1
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t H0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

// FIPS 180-4 §6.2.2 over `blocks` 64-byte blocks.
static void blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t w[64];
    while (blocks--) {
        for (int t = 0; t < 16; t++) w[t] = load_be32(data + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
        data += 64;
    }
}

#ifdef KILN_HAVE_X86
// The SHA extensions keep the state as ABEF/CDGH pairs; each sha256rnds2 does two rounds, so four words of
// W+K take a pair of them. sha256msg1/msg2 compute the message schedule four words at a time.
#define SHANI_ROUNDS(w, k)                                                                                   \
    do {                                                                                                     \
        __m128i m = _mm_add_epi32((w), _mm_loadu_si128((const __m128i *)(K + (k))));                         \
        s1 = _mm_sha256rnds2_epu32(s1, s0, m);                                                               \
        s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(m, 0x0E));                                      \
    } while (0)
// w0 = W[t-16..t-13], w1 = W[t-12..t-9], w2 = W[t-8..t-5], w3 = W[t-4..t-1]; replaces w0 with W[t..t+3].
#define SHANI_SCHEDULE(w0, w1, w2, w3)                                                                       \
    (w0) = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32((w0), (w1)), _mm_alignr_epi8((w3), (w2), 4)), (w3))

__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1); // CDAB
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);  // EFGH
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);                                            // ABEF
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);                                                 // CDGH
    while (blocks--) {
        __m128i abef = s0, cdgh = s1;
        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 0)), bswap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), bswap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), bswap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), bswap);
        SHANI_ROUNDS(w0, 0);
        SHANI_ROUNDS(w1, 4);
        SHANI_ROUNDS(w2, 8);
        SHANI_ROUNDS(w3, 12);
        for (int k = 16; k < 64; k += 16) {
            SHANI_SCHEDULE(w0, w1, w2, w3); SHANI_ROUNDS(w0, k);
            SHANI_SCHEDULE(w1, w2, w3, w0); SHANI_ROUNDS(w1, k + 4);
            SHANI_SCHEDULE(w2, w3, w0, w1); SHANI_ROUNDS(w2, k + 8);
            SHANI_SCHEDULE(w3, w0, w1, w2); SHANI_ROUNDS(w3, k + 12);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        data += 64;
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);       // FEBA
    s1 = _mm_shuffle_epi32(s1, 0xB1);        // DCHG
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);     // DCBA
    s1 = _mm_alignr_epi8(s1, tmp, 8);        // HGFE
    _mm_storeu_si128((__m128i *)&state[0], s0);
    _mm_storeu_si128((__m128i *)&state[4], s1);
}

// FastCDC and SHA-256 in one instruction stream. Both are latency-bound chains (the gear hash's shift-add per
// byte, sha256rnds2's latency per two rounds); interleaved they run side by side in the out-of-order core instead
// of one after the other. The hash works on bytes already known to hold no cut (scanned, or before the minimum
// size), so it may trail the scan: kiln_cdc_next lets it start at the chunk's first byte while the scan starts at
// the minimum size, and each step hashes one 64-byte block while scanning KB bytes. KB = 48 while the hash trails by
// more than a block (it catches up 16 bytes a step: the bytes before the minimum, which used to be hashed alone, are
// hashed under the scan), then KB = 64 with the hash one block behind.
// Four gear steps whose values all derive from fp directly (f4 = fp<<4 + ...), so the loop-carried chain is one
// shift and one add per four bytes; each mask test is its own rarely taken branch.
#define GEAR4(k)                                                                                             \
    do {                                                                                                     \
        uint64_t g0 = gear[q[(k)]], g1 = gear[q[(k) + 1]], g2 = gear[q[(k) + 2]], g3 = gear[q[(k) + 3]];       \
        uint64_t t2 = (g0 << 1) + g1, t3 = (t2 << 1) + g2, t4 = (t3 << 1) + g3;                               \
        uint64_t f1 = (fp << 1) + g0, f2 = (fp << 2) + t2, f3 = (fp << 3) + t3, f4 = (fp << 4) + t4;          \
        if (__builtin_expect(!(f1 & mask), 0)) { if (cut < 0) cut = (k); }                                    \
        else if (__builtin_expect(!(f2 & mask), 0)) { if (cut < 0) cut = (k) + 1; }                           \
        else if (__builtin_expect(!(f3 & mask), 0)) { if (cut < 0) cut = (k) + 2; }                           \
        else if (__builtin_expect(!(f4 & mask), 0)) { if (cut < 0) cut = (k) + 3; }                           \
        fp = f4;                                                                                             \
    } while (0)
// Round group r (four rounds) of the block being hashed, then four gear bytes unless KB = 48 skips every fourth.
#define STEP(r, w, k)                                                                                        \
    do {                                                                                                     \
        SHANI_ROUNDS(w, 4 * (r));                                                                            \
        if (KB == 64 || ((r) & 3) != 3) GEAR4(k);                                                              \
    } while (0)

// `steps` steps: hashes the blocks at h, h+64, ... while scanning KB bytes a step at q. The caller guarantees every
// hashed block lies before the scan's start. Stops after the step in which a cut was found: returns the steps done
// and the cut's offset from q's start of that step in *cut_offset (-1 when there was none).
__attribute__((target("sha,sse4.1,ssse3"), always_inline))
static inline size_t cdc_fused_steps(const int KB, uint32_t state[8], const uint8_t *h, const uint8_t *q, size_t steps,
                                     uint64_t *fpp, uint64_t mask, const uint64_t *gear, int *cut_offset) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);
    __m128i s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);
    uint64_t fp = *fpp;
    int cut = -1;
    size_t step = 0;
    while (step < steps) {
        __m128i abef = s0, cdgh = s1;
        __m128i w0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(h + 0)), bswap);
        __m128i w1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(h + 16)), bswap);
        __m128i w2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(h + 32)), bswap);
        __m128i w3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(h + 48)), bswap);
        // Gear byte offsets: 4 per round group, or for KB = 48 4 per step except steps 3, 7, 11, 15.
#define GK(r) (KB == 64 ? 4 * (r) : 4 * ((r) - (r) / 4))
        STEP(0, w0, GK(0)); STEP(1, w1, GK(1)); STEP(2, w2, GK(2)); STEP(3, w3, GK(3));
        SHANI_SCHEDULE(w0, w1, w2, w3); STEP(4, w0, GK(4));
        SHANI_SCHEDULE(w1, w2, w3, w0); STEP(5, w1, GK(5));
        SHANI_SCHEDULE(w2, w3, w0, w1); STEP(6, w2, GK(6));
        SHANI_SCHEDULE(w3, w0, w1, w2); STEP(7, w3, GK(7));
        SHANI_SCHEDULE(w0, w1, w2, w3); STEP(8, w0, GK(8));
        SHANI_SCHEDULE(w1, w2, w3, w0); STEP(9, w1, GK(9));
        SHANI_SCHEDULE(w2, w3, w0, w1); STEP(10, w2, GK(10));
        SHANI_SCHEDULE(w3, w0, w1, w2); STEP(11, w3, GK(11));
        SHANI_SCHEDULE(w0, w1, w2, w3); STEP(12, w0, GK(12));
        SHANI_SCHEDULE(w1, w2, w3, w0); STEP(13, w1, GK(13));
        SHANI_SCHEDULE(w2, w3, w0, w1); STEP(14, w2, GK(14));
        SHANI_SCHEDULE(w3, w0, w1, w2); STEP(15, w3, GK(15));
#undef GK
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        step++;
        if (cut >= 0) break;
        h += 64;
        q += KB;
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);
    s1 = _mm_shuffle_epi32(s1, 0xB1);
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);
    s1 = _mm_alignr_epi8(s1, tmp, 8);
    _mm_storeu_si128((__m128i *)&state[0], s0);
    _mm_storeu_si128((__m128i *)&state[4], s1);
    *fpp = fp;
    *cut_offset = cut;
    return step;
}
#undef STEP

__attribute__((target("sha,sse4.1,ssse3")))
static size_t cdc_fused_48(uint32_t state[8], const uint8_t *h, const uint8_t *q, size_t steps, uint64_t *fpp,
                           uint64_t mask, const uint64_t *gear, int *cut_offset) {
    return cdc_fused_steps(48, state, h, q, steps, fpp, mask, gear, cut_offset);
}

__attribute__((target("sha,sse4.1,ssse3")))
static size_t cdc_fused_64(uint32_t state[8], const uint8_t *h, const uint8_t *q, size_t steps, uint64_t *fpp,
                           uint64_t mask, const uint64_t *gear, int *cut_offset) {
    return cdc_fused_steps(64, state, h, q, steps, fpp, mask, gear, cut_offset);
}

static int cpu_has_shani(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 19)) || !(c & (1u << 9))) return 0; // SSE4.1, SSSE3
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; // CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29]
}

// Two chunks' hashes at once: the chunk just cut (its end known, its bytes all hashable) and the chunk being scanned,
// one block of each and 64 gear bytes a step. The two sha256rnds2 chains are independent, so they overlap in the
// CPU as the gear does: where one chain is latency-bound, two run in the time of one.
#define SHANI_ROUNDS2(x0, x1, w, k)                                                                          \
    do {                                                                                                     \
        __m128i m_ = _mm_add_epi32((w), _mm_loadu_si128((const __m128i *)(K + (k))));                        \
        x1 = _mm_sha256rnds2_epu32(x1, x0, m_);                                                              \
        x0 = _mm_sha256rnds2_epu32(x0, x1, _mm_shuffle_epi32(m_, 0x0E));                                     \
    } while (0)
#define LOAD_STATE(state, x0, x1)                                                                            \
    do {                                                                                                     \
        __m128i t_ = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(state)[0]), 0xB1);                 \
        x1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&(state)[4]), 0x1B);                         \
        x0 = _mm_alignr_epi8(t_, x1, 8);                                                                     \
        x1 = _mm_blend_epi16(x1, t_, 0xF0);                                                                  \
    } while (0)
#define STORE_STATE(state, x0, x1)                                                                           \
    do {                                                                                                     \
        __m128i t_ = _mm_shuffle_epi32(x0, 0x1B);                                                            \
        __m128i u_ = _mm_shuffle_epi32(x1, 0xB1);                                                            \
        _mm_storeu_si128((__m128i *)&(state)[0], _mm_blend_epi16(t_, u_, 0xF0));                             \
        _mm_storeu_si128((__m128i *)&(state)[4], _mm_alignr_epi8(u_, t_, 8));                                \
    } while (0)
#define STEP2(r, wa, wb)                                                                                     \
    do {                                                                                                     \
        SHANI_ROUNDS2(a0, a1, wa, 4 * (r));                                                                  \
        SHANI_ROUNDS2(b0, b1, wb, 4 * (r));                                                                  \
        GEAR4(4 * (r));                                                                                      \
    } while (0)

__attribute__((target("sha,sse4.1,ssse3")))
static size_t cdc_fused2_64(uint32_t state_a[8], const uint8_t *ha, uint32_t state_b[8], const uint8_t *hb,
                            const uint8_t *q, size_t steps, uint64_t *fpp, uint64_t mask, const uint64_t *gear,
                            int *cut_offset) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i a0, a1, b0, b1;
    LOAD_STATE(state_a, a0, a1);
    LOAD_STATE(state_b, b0, b1);
    uint64_t fp = *fpp;
    int cut = -1;
    size_t step = 0;
    while (step < steps) {
        __m128i sa0 = a0, sa1 = a1, sb0 = b0, sb1 = b1;
        __m128i x0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ha + 0)), bswap);
        __m128i x1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ha + 16)), bswap);
        __m128i x2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ha + 32)), bswap);
        __m128i x3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(ha + 48)), bswap);
        __m128i y0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(hb + 0)), bswap);
        __m128i y1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(hb + 16)), bswap);
        __m128i y2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(hb + 32)), bswap);
        __m128i y3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(hb + 48)), bswap);
        STEP2(0, x0, y0); STEP2(1, x1, y1); STEP2(2, x2, y2); STEP2(3, x3, y3);
        for (int g = 1; g < 4; g++) {
            // Unrolled by the compiler; GEAR4's offsets follow g.
            SHANI_SCHEDULE(x0, x1, x2, x3); SHANI_SCHEDULE(y0, y1, y2, y3); STEP2(4 * g, x0, y0);
            SHANI_SCHEDULE(x1, x2, x3, x0); SHANI_SCHEDULE(y1, y2, y3, y0); STEP2(4 * g + 1, x1, y1);
            SHANI_SCHEDULE(x2, x3, x0, x1); SHANI_SCHEDULE(y2, y3, y0, y1); STEP2(4 * g + 2, x2, y2);
            SHANI_SCHEDULE(x3, x0, x1, x2); SHANI_SCHEDULE(y3, y0, y1, y2); STEP2(4 * g + 3, x3, y3);
        }
        a0 = _mm_add_epi32(a0, sa0); a1 = _mm_add_epi32(a1, sa1);
        b0 = _mm_add_epi32(b0, sb0); b1 = _mm_add_epi32(b1, sb1);
        step++;
        if (cut >= 0) break;
        ha += 64;
        hb += 64;
        q += 64;
    }
    STORE_STATE(state_a, a0, a1);
    STORE_STATE(state_b, b0, b1);
    *fpp = fp;
    *cut_offset = cut;
    return step;
}
#undef STEP2
#else
static size_t cdc_fused_48(uint32_t state[8], const uint8_t *h, const uint8_t *q, size_t steps, uint64_t *fpp,
                           uint64_t mask, const uint64_t *gear, int *cut_offset) {
    (void)state; (void)h; (void)q; (void)steps; (void)fpp; (void)mask; (void)gear; *cut_offset = -1;
    return 0;
}
static size_t cdc_fused_64(uint32_t state[8], const uint8_t *h, const uint8_t *q, size_t steps, uint64_t *fpp,
                           uint64_t mask, const uint64_t *gear, int *cut_offset) {
    (void)state; (void)h; (void)q; (void)steps; (void)fpp; (void)mask; (void)gear; *cut_offset = -1;
    return 0;
}
static size_t cdc_fused2_64(uint32_t state_a[8], const uint8_t *ha, uint32_t state_b[8], const uint8_t *hb,
                            const uint8_t *q, size_t steps, uint64_t *fpp, uint64_t mask, const uint64_t *gear,
                            int *cut_offset) {
    (void)state_a; (void)ha; (void)state_b; (void)hb; (void)q; (void)steps; (void)fpp; (void)mask; (void)gear;
    *cut_offset = -1;
    return 0;
}
static int cpu_has_shani(void) { return 0; }
static void blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) { blocks_portable(state, data, blocks); }
#endif

// cpuid runs once: under a hypervisor it traps and costs microseconds, more than hashing a small chunk.
int kiln_sha256_best_impl(void) {
    static int best; // 0 = not yet known; a benign race, every thread computes the same value
    int v = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (v == 0) {
        v = cpu_has_shani() ? KILN_SHA256_SHANI : KILN_SHA256_PORTABLE;
        __atomic_store_n(&best, v, __ATOMIC_RELAXED);
    }
    return v;
}

static inline void run_blocks(kiln_sha256_ctx *ctx, const uint8_t *data, size_t blocks) {
    if (ctx->impl == KILN_SHA256_SHANI) blocks_shani(ctx->state, data, blocks);
    else blocks_portable(ctx->state, data, blocks);
}

int kiln_sha256_init_impl(kiln_sha256_ctx *ctx, int impl) {
    if (impl == KILN_SHA256_AUTO) impl = kiln_sha256_best_impl();
    if (impl == KILN_SHA256_SHANI && kiln_sha256_best_impl() != KILN_SHA256_SHANI) return -1;
    if (impl != KILN_SHA256_SHANI && impl != KILN_SHA256_PORTABLE) return -1;
    memcpy(ctx->state, H0, sizeof H0);
    ctx->length = 0;
    ctx->used = 0;
    ctx->impl = (uint32_t)impl;
    return 0;
}

void kiln_sha256_init(kiln_sha256_ctx *ctx) { (void)kiln_sha256_init_impl(ctx, KILN_SHA256_AUTO); }

void kiln_sha256_update(kiln_sha256_ctx *ctx, const void *data, size_t len) {
    const uint8_t *p = data;
    ctx->length += len;
    if (ctx->used) {
        size_t take = 64 - ctx->used;
        if (take > len) take = len;
        memcpy(ctx->block + ctx->used, p, take);
        ctx->used += (uint32_t)take;
        p += take;
        len -= take;
        if (ctx->used < 64) return;
        run_blocks(ctx, ctx->block, 1);
        ctx->used = 0;
    }
    if (len >= 64) {
        run_blocks(ctx, p, len / 64);
        p += len & ~(size_t)63;
        len &= 63;
    }
    if (len) {
        memcpy(ctx->block, p, len);
        ctx->used = (uint32_t)len;
    }
}

void kiln_sha256_final(kiln_sha256_ctx *ctx, uint8_t out[32]) {
    uint64_t bits = ctx->length * 8;
    uint32_t used = ctx->used;
    ctx->block[used++] = 0x80;
    if (used > 56) {
        memset(ctx->block + used, 0, 64 - used);
        run_blocks(ctx, ctx->block, 1);
        used = 0;
    }
    memset(ctx->block + used, 0, 56 - used);
    for (int i = 0; i < 8; i++) ctx->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    run_blocks(ctx, ctx->block, 1);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        out[4 * i + 3] = (uint8_t)ctx->state[i];
    }
    memset(ctx->block, 0, sizeof ctx->block);
}

void kiln_sha256(const void *data, size_t len, uint8_t out[32]) {
    kiln_sha256_ctx ctx;
    kiln_sha256_init(&ctx);
    kiln_sha256_update(&ctx, data, len);
    kiln_sha256_final(&ctx, out);
}

int kiln_hmac_sha256_impl(int impl, const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32]) {
    uint8_t k[64] = {0}, pad[64], inner[32];
    kiln_sha256_ctx ctx;
    if (kiln_sha256_init_impl(&ctx, impl) != 0) return -1;
    if (keylen > 64) { // RFC 2104 §2: longer keys are hashed first
        kiln_sha256_update(&ctx, key, keylen);
        kiln_sha256_final(&ctx, k);
        kiln_sha256_init_impl(&ctx, impl);
    } else if (keylen) {
        memcpy(k, key, keylen);
    }
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
    kiln_sha256_update(&ctx, pad, 64);
    kiln_sha256_update(&ctx, data, len);
    kiln_sha256_final(&ctx, inner);
    for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
    kiln_sha256_init_impl(&ctx, impl);
    kiln_sha256_update(&ctx, pad, 64);
    kiln_sha256_update(&ctx, inner, 32);
    kiln_sha256_final(&ctx, out);
    memset(k, 0, sizeof k);
    memset(pad, 0, sizeof pad);
    return 0;
}

void kiln_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len, uint8_t out[32]) {
    (void)kiln_hmac_sha256_impl(KILN_SHA256_AUTO, key, keylen, data, len, out);
}

// Feeds scanned bytes to the hash: whole aligned blocks straight to the block function.
static inline void feed(kiln_sha256_ctx *ctx, const uint8_t *p, size_t len) {
    if (ctx->used == 0 && len == 64) {
        ctx->length += 64;
        run_blocks(ctx, p, 1);
    } else {
        kiln_sha256_update(ctx, p, len);
    }
}

// Scans p[s..s+m) with the gear, one byte at a time, under one mask. Returns the index of the byte after which
// the chunk ends, or -1.
static inline long scan_bytes(uint64_t *fpp, const uint64_t gear[256], uint64_t mask, const uint8_t *p, size_t s, size_t m) {
    uint64_t fp = *fpp;
    for (size_t j = s; j < s + m; j++) {
        fp = (fp << 1) + gear[p[j]];
        if (!(fp & mask)) {
            *fpp = fp;
            return (long)j;
        }
    }
    *fpp = fp;
    return -1;
}

static inline size_t end_chunk(kiln_cdc *c, int *cut, size_t length) {
    c->fp = 0;
    c->position = 0;
    *cut = 1;
    return length;
}

// The SHA-NI path: the hash trails the scan (see cdc_fused_steps). p[0..h) is hashed; p[0..s) is known to hold no
// cut (scanned, or before the minimum size), and the hash never passes s.
static size_t cdc_next_shani(kiln_cdc *c, const uint64_t gear[256], kiln_sha256_ctx *ctx, const uint8_t *p, size_t n, int *cut) {
    const uint32_t pos = c->position; // chunk bytes before p
    uint64_t fp = c->fp;
    *cut = 0;
    size_t h = 0, s = pos < c->min_size ? c->min_size - pos : 0;
    for (;;) {
        if (pos + s >= c->max_size) { // forced cut at the maximum size (s == max - pos)
            kiln_sha256_update(ctx, p + h, s - h);
            return end_chunk(c, cut, s);
        }
        if (s >= n) break;
        uint64_t mask;
        size_t limit; // bytes that may be scanned under this mask
        if (pos + s < c->avg_size) {
            mask = c->mask_s;
            limit = c->avg_size - (pos + s);
        } else {
            mask = c->mask_l;
            limit = c->max_size - (pos + s);
        }
        size_t avail = n - s < limit ? n - s : limit;
        size_t lag = s - h;
        if (ctx->used != 0) {
            // A partial block is pending from the previous call: complete it from bytes known to hold no cut.
            size_t take = 64 - ctx->used;
            if (lag < take && lag < n - h) {
                size_t m = take - lag < avail ? take - lag : avail;
                long j = scan_bytes(&fp, gear, mask, p, s, m);
                if (j >= 0) {
                    kiln_sha256_update(ctx, p + h, (size_t)j + 1 - h);
                    return end_chunk(c, cut, (size_t)j + 1);
                }
                s += m;
                continue;
            }
            if (take > s - h) take = s - h;
            kiln_sha256_update(ctx, p + h, take);
            h += take;
            continue;
        }
        size_t steps = 0, k = 0, done = 0;
        int offset = -1;
        if (lag >= 128 && avail >= 48) {
            // At each step's start the hash trails by at least a block: lag - 16 * step >= 64.
            steps = (lag - 64) / 16 + 1;
            if (steps > avail / 48) steps = avail / 48;
            k = 48;
            done = cdc_fused_48(ctx->state, p + h, p + s, steps, &fp, mask, gear, &offset);
        } else if (lag >= 64 && avail >= 64) {
            steps = avail / 64;
            k = 64;
            done = cdc_fused_64(ctx->state, p + h, p + s, steps, &fp, mask, gear, &offset);
        } else {
            // Too little to hash under the scan, or too little left to scan: bytes one at a time, up to a block
            // ahead of the hash.
            size_t m = lag < 64 ? 64 - lag : avail;
            if (m > avail) m = avail;
            long j = scan_bytes(&fp, gear, mask, p, s, m);
            if (j >= 0) {
                kiln_sha256_update(ctx, p + h, (size_t)j + 1 - h);
                return end_chunk(c, cut, (size_t)j + 1);
            }
            s += m;
            continue;
        }
        ctx->length += 64 * done;
        h += 64 * done;
        if (offset >= 0) {
            size_t end = s + k * (done - 1) + (size_t)offset + 1;
            kiln_sha256_update(ctx, p + h, end - h);
            return end_chunk(c, cut, end);
        }
        s += k * done;
    }
    // The end of the bytes, no cut: all of them are part of the chunk.
    kiln_sha256_update(ctx, p + h, n - h);
    c->fp = fp;
    c->position = pos + (uint32_t)n;
    return n;
}

size_t kiln_cdc_next(kiln_cdc *c, const uint64_t gear[256], kiln_sha256_ctx *ctx, const uint8_t *p, size_t n, int *cut) {
    *cut = 0;
    if (n == 0) return 0;
    if (ctx && ctx->impl == KILN_SHA256_SHANI) return cdc_next_shani(c, gear, ctx, p, n, cut);
    size_t i = 0;
    uint32_t pos = c->position;
    // No cut before the minimum size: those bytes are only hashed.
    if (pos < c->min_size) {
        size_t k = c->min_size - pos;
        if (k > n) k = n;
        if (ctx) kiln_sha256_update(ctx, p, k);
        i = k;
        pos += (uint32_t)k;
        if (pos < c->min_size) {
            c->position = pos;
            return n;
        }
    }
    uint64_t fp = c->fp;
    while (i < n) {
        // A segment: up to the hash's next block boundary, not past the average (mask change) or the maximum.
        size_t seg = ctx ? 64 - ctx->used : 64;
        if (seg > n - i) seg = n - i;
        uint64_t mask;
        size_t limit;
        if (pos < c->avg_size) {
            mask = c->mask_s;
            limit = c->avg_size - pos;
        } else {
            mask = c->mask_l;
            limit = c->max_size - pos;
        }
        if (seg > limit) seg = limit;
        long j = scan_bytes(&fp, gear, mask, p, i, seg);
        if (j >= 0) {
            if (ctx) feed(ctx, p + i, (size_t)j + 1 - i);
            return end_chunk(c, cut, (size_t)j + 1);
        }
        if (ctx) feed(ctx, p + i, seg);
        i += seg;
        pos += (uint32_t)seg;
        if (pos >= c->max_size) return end_chunk(c, cut, i);
    }
    c->fp = fp;
    c->position = pos;
    return n;
}


// kiln_cdc_chunks on SHA-NI: the chunk just cut ("a") is hashed to its end while the next one ("b") is scanned and
// hashed, two blocks a step (cdc_fused2_64). The scanned chunk's hash trails its scan by the bytes before the minimum
// size, so each cut leaves about that much of "a" to hash under the next chunk's scan, where a second chain is free.
static size_t cdc_chunks_shani(kiln_cdc *c, const uint64_t gear[256], kiln_sha256_ctx *ctx, const uint8_t *p, size_t n,
                               size_t *ends, uint8_t (*ids)[32], size_t max, size_t *consumed) {
    size_t count = 0, start = 0;
    // A chunk continued from the previous call (or a partial block pending): to its cut as nextCut does.
    if (c->position != 0 || ctx->used != 0 || ctx->length != 0) {
        int cut = 0;
        size_t k = cdc_next_shani(c, gear, ctx, p, n, &cut);
        if (!cut) {
            *consumed = n;
            return 0;
        }
        ends[count] = k;
        kiln_sha256_final(ctx, ids[count]);
        kiln_sha256_init_impl(ctx, KILN_SHA256_SHANI);
        count++;
        start = k;
    }
    kiln_sha256_ctx a;
    int a_active = 0;
    size_t ha = 0, ea = 0, a_index = 0;
    uint64_t fp = 0;
    size_t hb = start, s = start + c->min_size;
    while (count < max) {
        size_t off = s - start; // chunk offset of the next byte to scan
        size_t end = 0;         // a cut of the scanned chunk after p[end - 1], when nonzero
        if (off >= c->max_size) {
            end = s;
        } else if (s >= n) {
            break;
        } else {
            uint64_t mask;
            size_t limit;
            if (off < c->avg_size) {
                mask = c->mask_s;
                limit = c->avg_size - off;
            } else {
                mask = c->mask_l;
                limit = c->max_size - off;
            }
            size_t avail = n - s < limit ? n - s : limit;
            size_t lag = s - hb;
            size_t steps = 0, k = 0, done = 0;
            int offset = -1;
            if (a_active && ea - ha < 64) {
                kiln_sha256_update(&a, p + ha, ea - ha);
                kiln_sha256_final(&a, ids[a_index]);
                a_active = 0;
                continue;
            }
            if (a_active && lag >= 64 && avail >= 64) {
                steps = (ea - ha) / 64;
                if (steps > avail / 64) steps = avail / 64;
                k = 64;
                done = cdc_fused2_64(a.state, p + ha, ctx->state, p + hb, p + s, steps, &fp, mask, gear, &offset);
                a.length += 64 * done;
                ha += 64 * done;
                ctx->length += 64 * done;
                hb += 64 * done;
            } else if (a_active && avail >= 64) {
                steps = (ea - ha) / 64;
                if (steps > avail / 64) steps = avail / 64;
                k = 64;
                done = cdc_fused_64(a.state, p + ha, p + s, steps, &fp, mask, gear, &offset);
                a.length += 64 * done;
                ha += 64 * done;
            } else if (!a_active && lag >= 64 && avail >= 64) {
                // The hash keeps trailing by the bytes before the minimum: they are hashed with the next chunk's
                // scan, two chains at once, rather than one chain catching up under this chunk's scan (48).
                steps = avail / 64;
                k = 64;
                done = cdc_fused_64(ctx->state, p + hb, p + s, steps, &fp, mask, gear, &offset);
                ctx->length += 64 * done;
                hb += 64 * done;
            } else {
                size_t m = lag < 64 ? 64 - lag : avail;
                if (m > avail) m = avail;
                long j = scan_bytes(&fp, gear, mask, p, s, m);
                if (j >= 0) {
                    end = (size_t)j + 1;
                } else {
                    s += m;
                    continue;
                }
            }
            if (!end) {
                if (offset < 0) {
                    s += k * done;
                    continue;
                }
                end = s + k * (done - 1) + (size_t)offset + 1;
            }
        }
        // The scanned chunk ends at `end`: it becomes the one hashed to its end, a new chunk starts.
        if (a_active) {
            kiln_sha256_update(&a, p + ha, ea - ha);
            kiln_sha256_final(&a, ids[a_index]);
        }
        a = *ctx;
        a_active = 1;
        ha = hb;
        ea = end;
        a_index = count;
        ends[count++] = end;
        kiln_sha256_init_impl(ctx, KILN_SHA256_SHANI);
        start = end;
        hb = end;
        s = end + c->min_size;
        fp = 0;
    }
    if (a_active) {
        kiln_sha256_update(&a, p + ha, ea - ha);
        kiln_sha256_final(&a, ids[a_index]);
    }
    if (count == max) { // no room for more: stop after the last cut
        c->fp = 0;
        c->position = 0;
        *consumed = start;
        return count;
    }
    // The chunk in progress goes on past these bytes.
    kiln_sha256_update(ctx, p + hb, n - hb);
    c->fp = fp;
    c->position = (uint32_t)(n - start);
    *consumed = n;
    return count;
}

size_t kiln_cdc_chunks(kiln_cdc *c, const uint64_t gear[256], kiln_sha256_ctx *ctx, const uint8_t *p, size_t n,
                       size_t *ends, uint8_t (*ids)[32], size_t max, size_t *consumed) {
    if (max == 0 || n == 0) {
        *consumed = 0;
        return 0;
    }
    if (ctx->impl == KILN_SHA256_SHANI) return cdc_chunks_shani(c, gear, ctx, p, n, ends, ids, max, consumed);
    size_t count = 0, at = 0;
    while (at < n && count < max) {
        int cut;
        at += kiln_cdc_next(c, gear, ctx, p + at, n - at, &cut);
        if (!cut) break;
        ends[count] = at;
        kiln_sha256_final(ctx, ids[count]);
        kiln_sha256_init_impl(ctx, (int)ctx->impl);
        count++;
    }
    *consumed = at;
    return count;
}

void kiln_resemblance(const uint8_t *p, size_t n, const uint64_t gear[256], uint64_t out[3]) {
    static const uint64_t m[3] = {0x9E3779B97F4A7C15ULL, 0xBF58476D1CE4E5B9ULL, 0x94D049BB133111EBULL};
    static const uint64_t a[3] = {0x632BE59BD9B4E019ULL, 0x8CB92BA72F3D8DD7ULL, 0x2545F4914F6CDD1DULL};
    uint64_t fp = 0, b0 = 0, b1 = 0, b2 = 0;
    for (size_t i = 0; i < n; i++) {
        fp = (fp << 1) + gear[p[i]];
        if (i < 63 || (fp & 0xF)) continue;
        uint64_t v0 = fp * m[0] + a[0], v1 = fp * m[1] + a[1], v2 = fp * m[2] + a[2];
        if (v0 > b0) b0 = v0;
        if (v1 > b1) b1 = v1;
        if (v2 > b2) b2 = v2;
    }
    out[0] = b0;
    out[1] = b1;
    out[2] = b2;
}
