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
