/* tinyq kernel interface: types, status codes and TFLite Micro's fixed-point
 * arithmetic (double-rounding requantization, gemmlowp exp/reciprocal).
 * Kernels follow CMSIS-NN's call shape: context, op params, quant params,
 * then (dims, data) pairs. Nothing here allocates. */
#ifndef TQ_NN_H
#define TQ_NN_H

#include <stdint.h>
#include <string.h>

typedef enum { TQ_OK = 0, TQ_ARG_ERROR = -1 } tq_status;

typedef struct { int32_t n, h, w, c; } tq_dims;
typedef struct { void *buf; int32_t size; } tq_context;          /* scratch memory */
typedef struct { int32_t h, w; } tq_tile;
typedef struct { int32_t min, max; } tq_activation;

typedef struct {
    int32_t input_offset, output_offset;
    tq_tile stride, padding, dilation;
    tq_activation activation;
} tq_conv_params;

typedef struct {
    int32_t input_offset, output_offset, ch_mult;
    tq_tile stride, padding, dilation;
    tq_activation activation;
} tq_dw_conv_params;

typedef struct {
    int32_t input_offset, output_offset;
    tq_activation activation;
} tq_fc_params;

/* Requantization tables; a per-tensor layer has one entry (per_channel = 0). */
typedef struct { const int32_t *multiplier, *shift; int32_t per_channel; } tq_per_channel_quant_params;

typedef struct { tq_tile stride, padding; tq_activation activation; } tq_pool_params;

/* Layers marked for specialization become one function each with every
 * kernel call inlined, so shapes and offsets fold into constants. */
#if defined(__GNUC__)
#define TQ_SPECIALIZED __attribute__((flatten, noinline))
#define TQ_ALIGNED(n) __attribute__((aligned(n)))
#else
#define TQ_SPECIALIZED
#define TQ_ALIGNED(n)
#endif

/* Unroll a short loop whose trip count specialization makes constant (kernel
 * taps), or an inner product loop twice (halving its loop overhead). */
#if defined(__GNUC__)
#define TQ_UNROLL _Pragma("GCC unroll 16")
#define TQ_UNROLL_2 _Pragma("GCC unroll 2")
#else
#define TQ_UNROLL
#define TQ_UNROLL_2
#endif

#define TQ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define TQ_MAX(a, b) ((a) > (b) ? (a) : (b))
#define TQ_CLAMP(x, lo, hi) TQ_MIN(TQ_MAX((x), (lo)), (hi))

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a*b / 2^31), ties upward. */
static inline int32_t tq_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, ties away from zero. */
static inline int32_t tq_rdbp(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM's MultiplyByQuantizedMultiplier (double rounding). The left shift
 * wraps like the int32 arithmetic TFLM relies on. */
static inline int32_t tq_requantize(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return tq_rdbp(tq_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* Weight `index` of an int4 tensor packed two per byte, low nibble first. */
static inline int32_t tq_int4(const uint8_t *packed, int32_t index) {
    const int32_t byte = packed[index >> 1];
    const int32_t nibble = (index & 1) ? (byte >> 4) : (byte & 0xF);
    return nibble - ((nibble & 8) << 1);
}

static inline int8_t tq_sat8(int32_t x, int32_t lo, int32_t hi) {
    return (int8_t)TQ_CLAMP(x, lo, hi);
}

static inline int16_t tq_sat16(int32_t x, int32_t lo, int32_t hi) {
    return (int16_t)TQ_CLAMP(x, lo, hi);
}

/* TFLM's MultiplyByQuantizedMultiplier for an int64 accumulator (16x8 kernels): the
 * multiplier rounded to 16 bits (at most 0x7FFF), one rounding shift by 15 - shift. */
static inline int32_t tq_requantize64(int64_t x, int32_t multiplier, int32_t shift) {
    const int64_t reduced = multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
    const int total = 15 - shift;
    return (int32_t)((x * reduced + ((int64_t)1 << (total - 1))) >> total);
}

/* Requantization for the fast kernels, output offset included: bit-exact with
 * tq_requantize(acc) + offset when the right shift r is at least 1 and
 * |acc| < 2^30 (the generator checks both for every layer it gives a fast
 * kernel, and that the sum below stays in int32). TFLM's two roundings and the
 * offset fold into one 64-bit multiply-accumulate (one SMLAL on a Cortex-M):
 *   floor((2 acc m + 2^31 + (2^(r-1) + offset 2^r - [acc < 0]) 2^32) / 2^(32+r)).
 * `high` holds 2^(r-1) + offset 2^r, precomputed per channel. */
typedef struct { int32_t multiplier, shift, high; } tq_requant;

static inline int32_t tq_requant_apply(int32_t acc, const tq_requant *q) {
    const int64_t base = (int64_t)((uint64_t)(int64_t)(q->high + (acc >> 31)) << 32) + INT64_C(0x80000000);
    const int64_t y = base + (int64_t)(acc * 2) * q->multiplier;
    return (int32_t)(y >> 32) >> q->shift;
}

/* --- SIMD: the Arm DSP extension, or portable twins (so hosts test the same code) --- */
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
static inline int32_t tq_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int32_t)a, (int32_t)b, acc); }
static inline int32_t tq_smlabb(uint32_t a, uint32_t b, int32_t acc) { return __smlabb((int32_t)a, (int32_t)b, acc); }
static inline int32_t tq_smlatt(uint32_t a, uint32_t b, int32_t acc) { return __smlatt((int32_t)a, (int32_t)b, acc); }
static inline uint32_t tq_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
static inline uint32_t tq_sxtb16_ror8(uint32_t x) {   /* GCC 12's arm_acle.h has no __ror */
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
static inline uint32_t tq_sadd16(uint32_t a, uint32_t b) { return (uint32_t)__sadd16((int32_t)a, (int32_t)b); }
static inline int32_t tq_ssat8(int32_t x) { return __ssat(x, 8); }
#else
static inline int32_t tq_lo16(uint32_t x) { return (int16_t)(uint16_t)(x & 0xFFFFu); }
static inline int32_t tq_hi16(uint32_t x) { return (int16_t)(uint16_t)(x >> 16); }
static inline uint32_t tq_pack16(int32_t lo, int32_t hi) { return ((uint32_t)(uint16_t)lo) | ((uint32_t)(uint16_t)hi << 16); }
static inline int32_t tq_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(tq_lo16(a) * tq_lo16(b)) + (uint32_t)(tq_hi16(a) * tq_hi16(b)));
}
static inline int32_t tq_smlabb(uint32_t a, uint32_t b, int32_t acc) { return acc + tq_lo16(a) * tq_lo16(b); }
static inline int32_t tq_smlatt(uint32_t a, uint32_t b, int32_t acc) { return acc + tq_hi16(a) * tq_hi16(b); }
static inline uint32_t tq_sxtb16(uint32_t x) { return tq_pack16((int8_t)(x & 0xFFu), (int8_t)((x >> 16) & 0xFFu)); }
static inline uint32_t tq_sxtb16_ror8(uint32_t x) { return tq_sxtb16((x >> 8) | (x << 24)); }
static inline uint32_t tq_sadd16(uint32_t a, uint32_t b) { return tq_pack16(tq_lo16(a) + tq_lo16(b), tq_hi16(a) + tq_hi16(b)); }
static inline int32_t tq_ssat8(int32_t x) { return TQ_CLAMP(x, -128, 127); }
#endif

/* Saturate to int8, then apply a fused activation's tighter bounds (constants
 * after specialization, so the checks vanish when the range is full). */
static inline int8_t tq_clamp_s8(int32_t x, tq_activation act) {
    x = tq_ssat8(x);
    if (act.min > -128) x = TQ_MAX(x, act.min);
    if (act.max < 127) x = TQ_MIN(x, act.max);
    return (int8_t)x;
}

static inline uint32_t tq_load32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void tq_store32(void *p, uint32_t v) { memcpy(p, &v, sizeof v); }

/* --- gemmlowp fixed-point helpers for SOFTMAX and LOGISTIC --------------- */

static inline int32_t tq_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t tq_wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* SaturatingRoundingMultiplyByPOT for a positive exponent. */
static inline int32_t tq_sat_shift_left(int32_t x, int exponent) {
    const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) return INT32_MAX;
    if (x < -threshold) return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static inline int32_t tq_exp_quarter_interval(int32_t a) {
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = tq_wrap_add(a, 1 << 28);     /* a + 1/8 */
    const int32_t x2 = tq_srdhm(x, x);
    const int32_t x3 = tq_srdhm(x2, x);
    const int32_t x4 = tq_srdhm(x2, x2);
    const int32_t x4_over_4 = tq_rdbp(x4, 2);
    const int32_t poly = tq_rdbp(tq_wrap_add(tq_srdhm(tq_wrap_add(x4_over_4, x3), constant_1_over_3), x2), 1);
    return tq_wrap_add(constant_term, tq_srdhm(constant_term, tq_wrap_add(x, poly)));
}

/* gemmlowp exp_on_negative_values: a <= 0 with `integer_bits`, result Q0.31. */
static inline int32_t tq_exp_on_negative_values(int32_t a, int integer_bits) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int frac_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t a_mod_quarter_minus_one_quarter = tq_wrap_sub(a & (one_quarter - 1), one_quarter);
    int32_t result = tq_exp_quarter_interval(tq_sat_shift_left(a_mod_quarter_minus_one_quarter, integer_bits));
    const int32_t remainder = tq_wrap_sub(a_mod_quarter_minus_one_quarter, a);
    for (int exponent = -2; exponent <= 4; ++exponent) {
        if (integer_bits > exponent && (remainder & (int32_t)(1u << (frac_bits + exponent))))
            result = tq_srdhm(result, barrel[exponent + 2]);
    }
    if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits))) result = 0;
    return a == 0 ? INT32_MAX : result;
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in and out. */
static inline int32_t tq_one_over_one_plus_x(int32_t a) {
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = tq_wrap_add(1515870810, tq_srdhm(half_denominator, -1010580540));   /* Q2.29 */
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = tq_wrap_sub(1 << 29, tq_srdhm(half_denominator, x));
        x = tq_wrap_add(x, tq_sat_shift_left(tq_srdhm(x, one_minus), 2));
    }
    return tq_sat_shift_left(x, 1);
}

static inline int tq_clz32(uint32_t x) {
    int n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) { x <<= 1; ++n; }
    return n;
}

/* TFLite GetReciprocal: 1/x as a Q0.31 scale and a power of two. */
static inline int32_t tq_reciprocal(int32_t x, int x_integer_digits, int *num_bits_over_unit) {
    const int headroom_plus_one = tq_clz32((uint32_t)x);
    *num_bits_over_unit = x_integer_digits - headroom_plus_one;
    const int32_t shifted_minus_one = (int32_t)(((uint32_t)x << headroom_plus_one) - (1u << 31));
    return tq_one_over_one_plus_x(shifted_minus_one);
}

/* gemmlowp logistic: input with `integer_bits`, result Q0.31. */
static inline int32_t tq_logistic_fixed(int32_t a, int integer_bits) {
    if (a == 0) return 1 << 30;
    const int32_t abs_a = a > 0 ? a : tq_wrap_sub(0, a);
    const int32_t positive = tq_one_over_one_plus_x(tq_exp_on_negative_values(tq_wrap_sub(0, abs_a), integer_bits));
    return a > 0 ? positive : tq_wrap_sub(INT32_MAX, positive);
}

#endif /* TQ_NN_H */
