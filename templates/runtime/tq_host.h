/* Building blocks of the host kernels (tinyq's fast integer evaluator, never firmware).
 *
 * The firmware kernels are shaped for Cortex-M registers; a host core has wide vectors.
 * These loops run over output channels innermost, contiguous and padded to TQ_HOST_LANES,
 * so the compiler vectorizes them (-O3 -march=native). Sums are exact int32 and the
 * requantization is TFLM's, as in every kernel: bit-exact with the numpy reference. */
#ifndef TQ_HOST_H
#define TQ_HOST_H

#include "tq_nn.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define TQ_HOST_LANES 16 /* output channels are padded to a multiple of this (one 512-bit vector of int32) */
#define TQ_HOST_ROWS 12  /* pixels (rows of the GEMM) per block: one weight load feeds twelve */
#define TQ_HOST_BLOCKS 4 /* blocks of rows gathered at once */
#define TQ_HOST_ALIGN(p) ((void *)(((uintptr_t)(p) + 63) & ~(uintptr_t)63))

/* A vector of TQ_HOST_LANES int32 sums (GCC/Clang vector extensions: one AVX-512 register,
 * two AVX2 ones, four NEON ones). */
typedef int32_t tq_host_sums __attribute__((vector_size(4 * TQ_HOST_LANES)));

/* TQ_HOST_LANES int8 inputs widened to int32: one sign-extending load with AVX-512; elsewhere a
 * loop, which compilers make one (where __builtin_convertvector may become lane-by-lane inserts). */
static inline tq_host_sums tq_host_load_inputs(const int8_t *x) {
    tq_host_sums v;
#if defined(__AVX512F__) && TQ_HOST_LANES == 16
    const __m512i wide = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x));
    memcpy(&v, &wide, sizeof v);
#else
    int32_t wide[TQ_HOST_LANES];
    for (int32_t i = 0; i < TQ_HOST_LANES; ++i) wide[i] = x[i];
    memcpy(&v, wide, sizeof v);
#endif
    return v;
}

/* TQ_HOST_LANES output channels' weights for four consecutive k, w[k..k+3][o] side by side:
 * one 512-bit vector. A column holds (x + 128) as uint8 (the input offset folded into the bias,
 * see tinyq/ops/affine.py), so four of its values make one int32, as the x86 VNNI dot product
 * (VPDPBUSD: uint8 x int8, four products per int32 lane) takes them; little-endian, the first
 * k in the low byte. */
typedef int8_t tq_host_quads __attribute__((vector_size(4 * TQ_HOST_LANES)));

/* s[o] += the four products of the column's quad with v[o]. Exact: a quad's sum is at most
 * 4 x 255 x 128 and the sums wrap as int32 arithmetic does (the folded bias wraps alike). */
static inline tq_host_sums tq_host_dot4(tq_host_sums s, int32_t quad, tq_host_quads v) {
#if defined(__AVX512VNNI__) && TQ_HOST_LANES == 16
    __m512i acc, w;
    memcpy(&acc, &s, sizeof acc), memcpy(&w, &v, sizeof w);
    acc = _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(quad), w);
    memcpy(&s, &acc, sizeof s);
    return s;
#else
    const uint32_t q = (uint32_t)quad;
    const int32_t c0 = q & 0xFF, c1 = (q >> 8) & 0xFF, c2 = (q >> 16) & 0xFF, c3 = q >> 24;
    for (int32_t i = 0; i < TQ_HOST_LANES; ++i)
        s[i] = (int32_t)((uint32_t)s[i] + (uint32_t)(c0 * v[4 * i] + c1 * v[4 * i + 1] + c2 * v[4 * i + 2] +
                                                     c3 * v[4 * i + 3]));
    return s;
#endif
}

static inline tq_host_quads tq_host_load_quads(const int8_t *w) {
    tq_host_quads v;
    memcpy(&v, w, sizeof v);
    return v;
}

static inline int32_t tq_host_column_quad(const uint8_t *col) {
    int32_t quad;
    memcpy(&quad, col, sizeof quad);
    return quad;
}

/* dst[i] = src[i] + 128 as uint8 (the sign bit flipped), a vector of bytes at a time. */
typedef uint8_t tq_host_bytes __attribute__((vector_size(16)));

static inline void tq_host_offset_bytes(const int8_t *restrict src, int32_t count, uint8_t *restrict dst) {
    int32_t i = 0;
    for (; i + 16 <= count; i += 16) {
        tq_host_bytes v;
        memcpy(&v, src + i, sizeof v);
        v ^= 0x80;
        memcpy(dst + i, &v, sizeof v);
    }
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    if (i < count) { /* the tail in one masked load and store */
        const __mmask16 tail = (__mmask16)((1u << (count - i)) - 1u);
        const __m128i v = _mm_maskz_loadu_epi8(tail, src + i);
        _mm_mask_storeu_epi8(dst + i, tail, _mm_xor_si128(v, _mm_set1_epi8((char)0x80)));
    }
#else
    for (; i < count; ++i) dst[i] = (uint8_t)(src[i] ^ 0x80);
#endif
}

/* Where a GEMM's columns lie: row r's quad k of kernel row t is the four bytes at
 * col + r * pixel_bytes + t * kernel_row_bytes + 4 k (k < quads), its weights at
 * w[t][k][lanes][4]. A convolution reads its columns straight from its padded input plane
 * (pixels stride x channels bytes apart, kernel rows a dilated plane row apart); a fully
 * connected layer's one row is its input. Bytes past a kernel row's end meet zero weights. */
typedef struct {
    int32_t pixel_bytes, kernel_rows, kernel_row_bytes, quads;
} tq_host_window;

/* acc[r][o] += sum over k of col[r][k] * w[k][o], for TQ_HOST_ROWS rows and `lanes` output
 * channels, the sums of one or two vectors of channels held in registers over all k (the loops
 * over rows unroll: one weight load feeds TQ_HOST_ROWS dot products). */
static inline void tq_host_gemm_vectors(const uint8_t *restrict col, const tq_host_window *g, const int8_t *restrict w,
                                        int32_t lanes, int32_t *restrict acc) {
    const int32_t quads = g->quads, stride = g->pixel_bytes;
    int32_t o = 0;
    for (; o + 2 * TQ_HOST_LANES <= lanes; o += 2 * TQ_HOST_LANES) { /* two vectors: a column quad feeds two */
        tq_host_sums s[TQ_HOST_ROWS], t[TQ_HOST_ROWS];
        for (int32_t r = 0; r < TQ_HOST_ROWS; ++r) {
            memcpy(&s[r], acc + r * lanes + o, sizeof s[r]);
            memcpy(&t[r], acc + r * lanes + o + TQ_HOST_LANES, sizeof t[r]);
        }
        for (int32_t row = 0; row < g->kernel_rows; ++row) {
            const uint8_t *c = col + row * g->kernel_row_bytes;
            const int8_t *wr = w + 4 * row * quads * lanes;
            for (int32_t k = 0; k < quads; ++k) {
                const tq_host_quads v = tq_host_load_quads(wr + 4 * (k * lanes + o));
                const tq_host_quads u = tq_host_load_quads(wr + 4 * (k * lanes + o + TQ_HOST_LANES));
                for (int32_t r = 0; r < TQ_HOST_ROWS; ++r) {
                    const int32_t quad = tq_host_column_quad(c + r * stride + 4 * k);
                    s[r] = tq_host_dot4(s[r], quad, v), t[r] = tq_host_dot4(t[r], quad, u);
                }
            }
        }
        for (int32_t r = 0; r < TQ_HOST_ROWS; ++r) {
            memcpy(acc + r * lanes + o, &s[r], sizeof s[r]);
            memcpy(acc + r * lanes + o + TQ_HOST_LANES, &t[r], sizeof t[r]);
        }
    }
    for (; o < lanes; o += TQ_HOST_LANES) {
        tq_host_sums s[TQ_HOST_ROWS];
        for (int32_t r = 0; r < TQ_HOST_ROWS; ++r) memcpy(&s[r], acc + r * lanes + o, sizeof s[r]);
        for (int32_t row = 0; row < g->kernel_rows; ++row) {
            const uint8_t *c = col + row * g->kernel_row_bytes;
            const int8_t *wr = w + 4 * row * quads * lanes;
            for (int32_t k = 0; k < quads; ++k) {
                const tq_host_quads v = tq_host_load_quads(wr + 4 * (k * lanes + o));
                for (int32_t r = 0; r < TQ_HOST_ROWS; ++r)
                    s[r] = tq_host_dot4(s[r], tq_host_column_quad(c + r * stride + 4 * k), v);
            }
        }
        for (int32_t r = 0; r < TQ_HOST_ROWS; ++r) memcpy(acc + r * lanes + o, &s[r], sizeof s[r]);
    }
}

/* One row of the same. */
static inline void tq_host_gemm_row(const uint8_t *restrict col, const tq_host_window *g, const int8_t *restrict w,
                                    int32_t lanes, int32_t *restrict acc) {
    const int32_t quads = g->quads;
    for (int32_t o = 0; o < lanes; o += TQ_HOST_LANES) {
        tq_host_sums s;
        memcpy(&s, acc + o, sizeof s);
        for (int32_t row = 0; row < g->kernel_rows; ++row) {
            const uint8_t *c = col + row * g->kernel_row_bytes;
            const int8_t *wr = w + 4 * row * quads * lanes;
            for (int32_t k = 0; k < quads; ++k)
                s = tq_host_dot4(s, tq_host_column_quad(c + 4 * k), tq_host_load_quads(wr + 4 * (k * lanes + o)));
        }
        memcpy(acc + o, &s, sizeof s);
    }
}

#if defined(__AMX_INT8__) && defined(__linux__) && defined(__x86_64__)
/* Advanced Matrix Extensions: one TDPBUSD multiplies a tile of TQ_HOST_ROWS rows of columns
 * (uint8, 16 quads each, rows any number of bytes apart) by a tile of 16 weight quads of 16
 * channels, the host-quads layout as it is (row j of the weight tile is quad k + j of the
 * channels' weights), into a tile of int32 sums: sixteen VPDPBUSDs at once. A product's
 * latency is long, so up to TQ_HOST_BLOCKS blocks of rows accumulate in their own tiles while
 * one weight tile feeds them all. Linux lends the tile registers to a process that asks
 * (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA); where it refuses, the vector path runs. */
/* The tile instructions as asm that tells the compiler which memory they touch (GCC 12's
 * intrinsics do not: it may then drop the configuration's stores or reorder the sums' loads). */
#define TQ_TILE_LOAD(t, base, stride) \
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #t ::"r"(base), "r"((long)(stride)) : "memory")
#define TQ_TILE_STORE(t, base, stride) \
    __asm__ volatile("tilestored %%tmm" #t ", (%0,%1,1)" ::"r"(base), "r"((long)(stride)) : "memory")
#define TQ_TILE_DPBUSD(sums, columns, weights) \
    __asm__ volatile("tdpbusd %%tmm" #weights ", %%tmm" #columns ", %%tmm" #sums ::)
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} tq_host_tile_config;

static inline int tq_host_tiles_allowed(void) {
    static int state; /* 0: not asked yet, 1: granted, -1: refused (asking twice is harmless) */
    int granted = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (granted == 0) {
        long status; /* arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA), without libc's headers */
        __asm__ volatile("syscall" : "=a"(status) : "0"(158L), "D"(0x1023L), "S"(18L) : "rcx", "r11", "memory");
        granted = status == 0 ? 1 : -1;
        __atomic_store_n(&state, granted, __ATOMIC_RELAXED);
    }
    return granted > 0;
}

/* Tiles for a GEMM of `quads` quads per kernel row: 0-3 the blocks' sums, 4 and 5 a full step of
 * 16 quads (columns, weights), 6 and 7 a kernel row's last step. Returns 0 where the tiles are
 * not available. */
static inline int tq_host_tiles_begin(int32_t quads) {
    if (!tq_host_tiles_allowed()) return 0;
    tq_host_tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int32_t t = 0; t < 6; ++t) config.rows[t] = TQ_HOST_ROWS, config.bytes_per_row[t] = 64;
    config.rows[5] = 16;
    if (quads % 16) {
        config.rows[6] = TQ_HOST_ROWS, config.bytes_per_row[6] = (uint16_t)(4 * (quads % 16));
        config.rows[7] = (uint8_t)(quads % 16), config.bytes_per_row[7] = 64;
    }
    __asm__ volatile("ldtilecfg %0" ::"m"(config) : "memory");
    return 1;
}

static inline void tq_host_tiles_end(void) { __asm__ volatile("tilerelease" ::: "memory"); }

/* Block `t` (a tile number, so a constant) of the tiled GEMM: its step on columns `tile` and
 * weights `weights`. */
#define TQ_HOST_TILE_STEP(t, tile, weights, c, stride, blocks)                       \
    do {                                                                             \
        if ((blocks) > (t)) {                                                        \
            TQ_TILE_LOAD(tile, (c) + (t) * TQ_HOST_ROWS * (stride), stride);          \
            TQ_TILE_DPBUSD(t, tile, weights);                                          \
        }                                                                            \
    } while (0)
#define TQ_HOST_TILE_STEPS(tile, weights, c, stride, blocks)                         \
    do {                                                                             \
        TQ_HOST_TILE_STEP(0, tile, weights, c, stride, blocks);                      \
        TQ_HOST_TILE_STEP(1, tile, weights, c, stride, blocks);                      \
        TQ_HOST_TILE_STEP(2, tile, weights, c, stride, blocks);                      \
        TQ_HOST_TILE_STEP(3, tile, weights, c, stride, blocks);                      \
    } while (0)

/* acc[r][o] = bias[o] + sum over k of col[r][k] * w[k][o] for `blocks` (1 to TQ_HOST_BLOCKS)
 * blocks of TQ_HOST_ROWS rows, on the tiles of tq_host_tiles_begin(g->quads); `bias` padded to
 * `lanes` (each sum tile starts as the bias row repeated: a load with a row stride of zero). */
static inline void tq_host_gemm_tiles(const uint8_t *col, int32_t blocks, const tq_host_window *g, const int8_t *w,
                                      int32_t lanes, const int32_t *bias, int32_t *acc) {
    const int32_t block_bytes = 4 * TQ_HOST_ROWS * lanes, quads = g->quads, stride = g->pixel_bytes;
    for (int32_t o = 0; o < lanes; o += TQ_HOST_LANES) {
        TQ_TILE_LOAD(0, bias + o, 0);
        if (blocks > 1) TQ_TILE_LOAD(1, bias + o, 0);
        if (blocks > 2) TQ_TILE_LOAD(2, bias + o, 0);
        if (blocks > 3) TQ_TILE_LOAD(3, bias + o, 0);
        for (int32_t row = 0; row < g->kernel_rows; ++row) {
            const uint8_t *c = col + row * g->kernel_row_bytes;
            const int8_t *wr = w + 4 * (row * quads * lanes + o);
            int32_t k = 0;
            for (; k + 16 <= quads; k += 16) {
                TQ_TILE_LOAD(5, wr + 4 * k * lanes, 4 * lanes);
                TQ_HOST_TILE_STEPS(4, 5, c + 4 * k, stride, blocks);
            }
            if (k < quads) {
                TQ_TILE_LOAD(7, wr + 4 * k * lanes, 4 * lanes);
                TQ_HOST_TILE_STEPS(6, 7, c + 4 * k, stride, blocks);
            }
        }
        uint8_t *sums = (uint8_t *)(acc + o);
        TQ_TILE_STORE(0, sums, 4 * lanes);
        if (blocks > 1) TQ_TILE_STORE(1, sums + block_bytes, 4 * lanes);
        if (blocks > 2) TQ_TILE_STORE(2, sums + 2 * block_bytes, 4 * lanes);
        if (blocks > 3) TQ_TILE_STORE(3, sums + 3 * block_bytes, 4 * lanes);
    }
}
#undef TQ_HOST_TILE_STEPS
#undef TQ_HOST_TILE_STEP
#else
static inline int tq_host_tiles_begin(int32_t quads) { return (void)quads, 0; }
static inline void tq_host_tiles_end(void) {}
static inline void tq_host_gemm_tiles(const uint8_t *col, int32_t blocks, const tq_host_window *g, const int8_t *w,
                                      int32_t lanes, const int32_t *bias, int32_t *acc) {
    (void)col, (void)blocks, (void)g, (void)w, (void)lanes, (void)bias, (void)acc; /* never called */
}
#endif

/* acc[r][o] = bias[o] + sum over k of col[r][k] * w[k][o] for `rows` rows (up to
 * TQ_HOST_BLOCKS x TQ_HOST_ROWS), on the tiles when tq_host_tiles_begin gave them, else in
 * vectors; `bias` padded to `lanes`. */
static inline void tq_host_gemm(const uint8_t *col, int32_t rows, const tq_host_window *g, const int8_t *w,
                                int32_t lanes, const int32_t *bias, int32_t *acc, int tiles) {
    int32_t r = 0;
    if (tiles && rows >= TQ_HOST_ROWS) {
        tq_host_gemm_tiles(col, rows / TQ_HOST_ROWS, g, w, lanes, bias, acc);
        r = rows / TQ_HOST_ROWS * TQ_HOST_ROWS;
    }
    for (int32_t i = r; i < rows; ++i) memcpy(acc + i * lanes, bias, 4 * (size_t)lanes);
    for (; r + TQ_HOST_ROWS <= rows; r += TQ_HOST_ROWS)
        tq_host_gemm_vectors(col + r * g->pixel_bytes, g, w, lanes, acc + r * lanes);
    for (; r < rows; ++r) tq_host_gemm_row(col + r * g->pixel_bytes, g, w, lanes, acc + r * lanes);
}

/* tq_requantize without branches, for every input. */
static inline int32_t tq_host_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    const int32_t a = (int32_t)((uint32_t)x << left);
    const int64_t product = (int64_t)a * multiplier;
    const int64_t nudged = product + (product >= 0 ? (1 << 30) : (1 - (1 << 30)));
    int32_t high = (int32_t)((nudged + ((nudged >> 63) & 0x7FFFFFFF)) >> 31); /* division by 2^31, toward zero */
    high = (a == INT32_MIN && multiplier == INT32_MIN) ? INT32_MAX : high;
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t threshold = (mask >> 1) + (high < 0);
    return (high >> right) + ((high & mask) > threshold);
}

/* The same on eight lanes at once (compilers leave the scalar loop unvectorized: it mixes
 * int32 and int64 lanes). Comparisons give -1 or 0 per lane, so selections are masks. */
typedef int32_t tq_host_i32x8 __attribute__((vector_size(32)));
typedef uint32_t tq_host_u32x8 __attribute__((vector_size(32)));
typedef int64_t tq_host_i64x8 __attribute__((vector_size(64)));

static inline tq_host_i32x8 tq_host_requantize8(tq_host_i32x8 x, tq_host_i32x8 multiplier, tq_host_i32x8 shift) {
    const tq_host_i32x8 positive = shift > 0, left = shift & positive, right = -shift & ~positive;
    const tq_host_i32x8 a = (tq_host_i32x8)((tq_host_u32x8)x << (tq_host_u32x8)left);
    const tq_host_i64x8 product =
        __builtin_convertvector(a, tq_host_i64x8) * __builtin_convertvector(multiplier, tq_host_i64x8);
    const tq_host_i64x8 nudged = product + (1 - (INT64_C(1) << 30)) + ((product >= 0) & ((INT64_C(1) << 31) - 1));
    tq_host_i32x8 high = __builtin_convertvector((nudged + ((nudged >> 63) & 0x7FFFFFFF)) >> 31, tq_host_i32x8);
    const tq_host_i32x8 saturated = (a == INT32_MIN) & (multiplier == INT32_MIN);
    high = (high & ~saturated) | (INT32_MAX & saturated);
    const tq_host_i32x8 mask = (tq_host_i32x8)(((tq_host_u32x8){0} + 1u) << (tq_host_u32x8)right) - 1;
    const tq_host_i32x8 threshold = (mask >> 1) - (high < 0);
    return (high >> right) - ((high & mask) > threshold);
}

#if defined(__AVX512F__) && TQ_HOST_LANES == 16
/* tq_requantize on sixteen lanes, in two steps: what depends on the channels' multipliers and
 * shifts only (prepared once per vector of channels), then each vector of sums. The doubling
 * high multiply's nudged division toward zero is (a m + 2^30) >> 31 for every product (the
 * nudge and the truncation cancel), so even and odd lanes' 64-bit products need one add and one
 * shift each before they merge into 32-bit lanes. */
typedef struct {
    __m512i left, right, multiplier, odd_multiplier, mask, threshold;
    __mmask16 minimum_multiplier;
} tq_host_requantizer;

static inline tq_host_requantizer tq_host_requantizer16(__m512i multiplier, __m512i shift) {
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    tq_host_requantizer r;
    r.left = _mm512_max_epi32(shift, zero), r.right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
    r.multiplier = multiplier, r.odd_multiplier = _mm512_srli_epi64(multiplier, 32);
    r.mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, r.right), one), r.threshold = _mm512_srai_epi32(r.mask, 1);
    r.minimum_multiplier = _mm512_cmpeq_epi32_mask(multiplier, _mm512_set1_epi32(INT32_MIN));
    return r;
}

static inline __m512i tq_host_requantize_prepared(const tq_host_requantizer *r, __m512i x) {
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1), half = _mm512_set1_epi64(INT64_C(1) << 30);
    const __m512i a = _mm512_sllv_epi32(x, r->left);
    const __m512i even = _mm512_add_epi64(_mm512_mul_epi32(a, r->multiplier), half);
    const __m512i odd = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), r->odd_multiplier), half);
    __m512i high = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 31), _mm512_slli_epi64(odd, 1));
    const __mmask16 saturated = _mm512_mask_cmpeq_epi32_mask(r->minimum_multiplier, a, _mm512_set1_epi32(INT32_MIN));
    high = _mm512_mask_mov_epi32(high, saturated, _mm512_set1_epi32(INT32_MAX));
    const __m512i threshold = _mm512_mask_add_epi32(r->threshold, _mm512_cmplt_epi32_mask(high, zero), r->threshold, one);
    const __m512i result = _mm512_srav_epi32(high, r->right);
    return _mm512_mask_add_epi32(result, _mm512_cmpgt_epi32_mask(_mm512_and_si512(high, r->mask), threshold), result, one);
}

static inline __m512i tq_host_requantize16(__m512i x, __m512i multiplier, __m512i shift) {
    const tq_host_requantizer r = tq_host_requantizer16(multiplier, shift);
    return tq_host_requantize_prepared(&r, x);
}
#endif

/* y[i] = tq_requantize(x[i], m[i], s[i]) on TQ_HOST_LANES lanes. */
static inline void tq_host_requantize_lanes(const int32_t *x, const int32_t *m, const int32_t *s, int32_t *y) {
#if defined(__AVX512F__) && TQ_HOST_LANES == 16
    _mm512_storeu_si512(y, tq_host_requantize16(_mm512_loadu_si512(x), _mm512_loadu_si512(m), _mm512_loadu_si512(s)));
#else
    for (int32_t i = 0; i < TQ_HOST_LANES; i += 8) {
        tq_host_i32x8 xs, ms, ss;
        memcpy(&xs, x + i, sizeof xs), memcpy(&ms, m + i, sizeof ms), memcpy(&ss, s + i, sizeof ss);
        const tq_host_i32x8 ys = tq_host_requantize8(xs, ms, ss);
        memcpy(y + i, &ys, sizeof ys);
    }
#endif
}

/* Requantize `count` accumulators into int8 outputs (per-channel or one multiplier and shift). */
static inline void tq_host_requantize_s8(const int32_t *restrict acc, int32_t count,
                                         const tq_per_channel_quant_params *q, int32_t offset, tq_activation act,
                                         int8_t *restrict out) {
    const int32_t step = q->per_channel ? 1 : 0;
    int32_t o = 0;
#if defined(__AVX512F__) && TQ_HOST_LANES == 16
    const __m512i low = _mm512_set1_epi32(act.min), high = _mm512_set1_epi32(act.max), add = _mm512_set1_epi32(offset);
    for (; o + TQ_HOST_LANES <= count; o += TQ_HOST_LANES) {
        const __m512i m = step ? _mm512_loadu_si512(q->multiplier + o) : _mm512_set1_epi32(q->multiplier[0]);
        const __m512i s = step ? _mm512_loadu_si512(q->shift + o) : _mm512_set1_epi32(q->shift[0]);
        const __m512i y = _mm512_add_epi32(tq_host_requantize16(_mm512_loadu_si512(acc + o), m, s), add);
        _mm_storeu_si128((__m128i *)(out + o), _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(y, low), high)));
    }
#if defined(__AVX512BW__) && defined(__AVX512VL__)
    if (o < count) { /* the last channels in masked lanes */
        const __mmask16 tail = (__mmask16)((1u << (count - o)) - 1u);
        const __m512i m = step ? _mm512_maskz_loadu_epi32(tail, q->multiplier + o) : _mm512_set1_epi32(q->multiplier[0]);
        const __m512i s = step ? _mm512_maskz_loadu_epi32(tail, q->shift + o) : _mm512_set1_epi32(q->shift[0]);
        const __m512i y = _mm512_add_epi32(tq_host_requantize16(_mm512_maskz_loadu_epi32(tail, acc + o), m, s), add);
        _mm_mask_storeu_epi8(out + o, tail, _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(y, low), high)));
        o = count;
    }
#endif
#else
    int32_t m[TQ_HOST_LANES], s[TQ_HOST_LANES], y[TQ_HOST_LANES];
    for (int32_t i = 0; i < TQ_HOST_LANES; ++i) m[i] = q->multiplier[0], s[i] = q->shift[0];
    for (; o + TQ_HOST_LANES <= count; o += TQ_HOST_LANES) {
        tq_host_requantize_lanes(acc + o, step ? q->multiplier + o : m, step ? q->shift + o : s, y);
        for (int32_t i = 0; i < TQ_HOST_LANES; ++i) out[o + i] = (int8_t)TQ_CLAMP(y[i] + offset, act.min, act.max);
    }
#endif
    for (; o < count; ++o) {
        const int32_t v = tq_host_requantize(acc[o], q->multiplier[step * o], q->shift[step * o]) + offset;
        out[o] = (int8_t)TQ_CLAMP(v, act.min, act.max);
    }
}

/* The same for `rows` rows of accumulators `lanes` apart into rows of `count` outputs, each
 * vector of channels' requantizer prepared once for all rows. */
static inline void tq_host_requantize_rows_s8(const int32_t *restrict acc, int32_t rows, int32_t lanes, int32_t count,
                                              const tq_per_channel_quant_params *q, int32_t offset, tq_activation act,
                                              int8_t *restrict out) {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && TQ_HOST_LANES == 16
    const __m512i low = _mm512_set1_epi32(act.min), high = _mm512_set1_epi32(act.max), add = _mm512_set1_epi32(offset);
    for (int32_t o = 0; o < count; o += TQ_HOST_LANES) {
        const __mmask16 lanes_used = count - o >= TQ_HOST_LANES ? 0xFFFF : (__mmask16)((1u << (count - o)) - 1u);
        const __m512i m = q->per_channel ? _mm512_maskz_loadu_epi32(lanes_used, q->multiplier + o)
                                         : _mm512_set1_epi32(q->multiplier[0]);
        const __m512i s =
            q->per_channel ? _mm512_maskz_loadu_epi32(lanes_used, q->shift + o) : _mm512_set1_epi32(q->shift[0]);
        const tq_host_requantizer r = tq_host_requantizer16(m, s);
        for (int32_t row = 0; row < rows; ++row) {
            const __m512i y = _mm512_add_epi32(tq_host_requantize_prepared(&r, _mm512_loadu_si512(acc + row * lanes + o)), add);
            _mm_mask_storeu_epi8(out + row * count + o, lanes_used,
                                 _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(y, low), high)));
        }
    }
#else
    for (int32_t row = 0; row < rows; ++row) tq_host_requantize_s8(acc + row * lanes, count, q, offset, act, out + row * count);
#endif
}

/* acc[r] = bias for `rows` rows of `lanes` (channels past `count` start at zero). */
static inline void tq_host_bias_rows(int32_t *restrict acc, int32_t rows, int32_t lanes, const int32_t *restrict bias,
                                     int32_t count) {
    for (int32_t r = 0; r < rows; ++r)
        for (int32_t o = 0; o < lanes; ++o) acc[r * lanes + o] = o < count ? bias[o] : 0;
}

#endif /* TQ_HOST_H */
