/* Blocked dot products for the fast kernels (Arm DSP: SXTB16, SMLAD).
 *
 * Weights stay int8 and are widened in the loop; the generator stores them as
 * words in the order the loop reads them. Activations are widened once into
 * int16 columns whose words hold the pairs (x[k], x[k+2]) and (x[k+1], x[k+3])
 * of every four k: the halves SXTB16 and SXTB16-ROR8 leave a weight word's
 * bytes in, so one SMLAD multiplies two matching pairs with no repacking.
 * Sums are exact int32, as in the reference kernels. */
#ifndef TQ_GEMM_H
#define TQ_GEMM_H

#include "tq_nn.h"

/* One step (four k) of two rows by two columns. `w`: a word of row 0, then
 * one of row 1. `x`: the words (a02, b02, a13, b13) of columns a and b. On
 * Arm the step is written out so no accumulator is spilled: 15 instructions
 * for 16 multiply-accumulates. */
static inline void tq_step_2x2(const uint32_t **w, const uint32_t **x, int32_t s[4]) {
#if defined(__ARM_FEATURE_DSP)
    uint32_t wa, wb, xa, xb, t0, t1;
    __asm__("ldrd %[wa], %[wb], [%[w]], #8\n\t"
            "ldrd %[xa], %[xb], [%[x]], #8\n\t"
            "sxtb16 %[t0], %[wa]\n\t"
            "sxtb16 %[t1], %[wb]\n\t"
            "smlad %[s00], %[t0], %[xa], %[s00]\n\t"
            "smlad %[s01], %[t0], %[xb], %[s01]\n\t"
            "smlad %[s10], %[t1], %[xa], %[s10]\n\t"
            "smlad %[s11], %[t1], %[xb], %[s11]\n\t"
            "ldrd %[xa], %[xb], [%[x]], #8\n\t"
            "sxtb16 %[t0], %[wa], ror #8\n\t"
            "sxtb16 %[t1], %[wb], ror #8\n\t"
            "smlad %[s00], %[t0], %[xa], %[s00]\n\t"
            "smlad %[s01], %[t0], %[xb], %[s01]\n\t"
            "smlad %[s10], %[t1], %[xa], %[s10]\n\t"
            "smlad %[s11], %[t1], %[xb], %[s11]"
            : [w] "+r"(*w), [x] "+r"(*x), [s00] "+r"(s[0]), [s01] "+r"(s[1]), [s10] "+r"(s[2]), [s11] "+r"(s[3]),
              [wa] "=&r"(wa), [wb] "=&r"(wb), [xa] "=&r"(xa), [xb] "=&r"(xb), [t0] "=&r"(t0), [t1] "=&r"(t1)
            : "m"(*(const uint32_t(*)[2]) * w), "m"(*(const uint32_t(*)[4]) * x));
#else
    const uint32_t *wp = *w, *xp = *x;
    const uint32_t w0_02 = tq_sxtb16(wp[0]), w1_02 = tq_sxtb16(wp[1]);
    const uint32_t w0_13 = tq_sxtb16_ror8(wp[0]), w1_13 = tq_sxtb16_ror8(wp[1]);
    s[0] = tq_smlad(w0_13, xp[2], tq_smlad(w0_02, xp[0], s[0]));
    s[1] = tq_smlad(w0_13, xp[3], tq_smlad(w0_02, xp[1], s[1]));
    s[2] = tq_smlad(w1_13, xp[2], tq_smlad(w1_02, xp[0], s[2]));
    s[3] = tq_smlad(w1_13, xp[3], tq_smlad(w1_02, xp[1], s[3]));
    *w = wp + 2, *x = xp + 4;
#endif
}

/* One step (four k) of four rows by one column. `w`: a word of each row in
 * turn. `x`: the words (x02, x13). 19 instructions for 16 on Arm. */
static inline void tq_step_4x1(const uint32_t **w, const uint32_t **x, int32_t s[4]) {
#if defined(__ARM_FEATURE_DSP)
    uint32_t wa, wb, x02, x13, t;
    __asm__("ldrd %[x02], %[x13], [%[x]], #8\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            "sxtb16 %[t], %[wa]\n\t"
            "smlad %[s0], %[t], %[x02], %[s0]\n\t"
            "sxtb16 %[t], %[wa], ror #8\n\t"
            "smlad %[s0], %[t], %[x13], %[s0]\n\t"
            "sxtb16 %[t], %[wb]\n\t"
            "smlad %[s1], %[t], %[x02], %[s1]\n\t"
            "sxtb16 %[t], %[wb], ror #8\n\t"
            "smlad %[s1], %[t], %[x13], %[s1]\n\t"
            "ldrd %[wa], %[wb], [%[w]], #8\n\t"
            "sxtb16 %[t], %[wa]\n\t"
            "smlad %[s2], %[t], %[x02], %[s2]\n\t"
            "sxtb16 %[t], %[wa], ror #8\n\t"
            "smlad %[s2], %[t], %[x13], %[s2]\n\t"
            "sxtb16 %[t], %[wb]\n\t"
            "smlad %[s3], %[t], %[x02], %[s3]\n\t"
            "sxtb16 %[t], %[wb], ror #8\n\t"
            "smlad %[s3], %[t], %[x13], %[s3]"
            : [w] "+r"(*w), [x] "+r"(*x), [s0] "+r"(s[0]), [s1] "+r"(s[1]), [s2] "+r"(s[2]), [s3] "+r"(s[3]),
              [wa] "=&r"(wa), [wb] "=&r"(wb), [x02] "=&r"(x02), [x13] "=&r"(x13), [t] "=&r"(t)
            : "m"(*(const uint32_t(*)[4]) * w), "m"(*(const uint32_t(*)[2]) * x));
#else
    const uint32_t *wp = *w, *xp = *x;
    for (int r = 0; r < 4; ++r)
        s[r] = tq_smlad(tq_sxtb16_ror8(wp[r]), xp[1], tq_smlad(tq_sxtb16(wp[r]), xp[0], s[r]));
    *w = wp + 4, *x = xp + 2;
#endif
}

/* Two rows by two columns over `quads` steps, four steps per loop iteration
 * (the loop test then costs two instructions per 64 multiply-accumulates). */
static inline void tq_dot_2x2(const uint32_t *w, const uint32_t *x, int32_t quads, int32_t acc[4]) {
    int32_t s[4] = {acc[0], acc[1], acc[2], acc[3]};
    const uint32_t *const end = w + 2 * quads;
    for (int32_t i = 0; i < (quads & 3); ++i) tq_step_2x2(&w, &x, s);
    while (w < end) {
        tq_step_2x2(&w, &x, s);
        tq_step_2x2(&w, &x, s);
        tq_step_2x2(&w, &x, s);
        tq_step_2x2(&w, &x, s);
    }
    acc[0] = s[0], acc[1] = s[1], acc[2] = s[2], acc[3] = s[3];
}

/* Four rows by one column over `quads` steps, four steps per loop iteration. */
static inline void tq_dot_4x1(const uint32_t *w, const uint32_t *x, int32_t quads, int32_t acc[4]) {
    int32_t s[4] = {acc[0], acc[1], acc[2], acc[3]};
    const uint32_t *const end = w + 4 * quads;
    for (int32_t i = 0; i < (quads & 3); ++i) tq_step_4x1(&w, &x, s);
    while (w < end) {
        tq_step_4x1(&w, &x, s);
        tq_step_4x1(&w, &x, s);
        tq_step_4x1(&w, &x, s);
        tq_step_4x1(&w, &x, s);
    }
    acc[0] = s[0], acc[1] = s[1], acc[2] = s[2], acc[3] = s[3];
}

/* --- int4 weights ----------------------------------------------------------
 * A weight word holds eight nibbles, low first. Masked into the high half of
 * each byte they keep their sign, so SXTB16 leaves 16 n in each lane: sums
 * come out 16 times too large, exactly (the kernels shift them back). The
 * columns these steps read hold, for every eight k, the words (x0, x4),
 * (x2, x6), (x1, x5), (x3, x7) -- the lanes of the masked words. */
static inline uint32_t tq_even_nibbles(uint32_t w) { return (w << 4) & 0xF0F0F0F0u; }
static inline uint32_t tq_odd_nibbles(uint32_t w) { return w & 0xF0F0F0F0u; }

/* Row word `w` (eight k) against the int4-order column words x[0], x[gap], x[2 gap], x[3 gap]. */
static inline int32_t tq_dot8_int4(uint32_t w, const uint32_t *x, int32_t gap, int32_t acc) {
    const uint32_t even = tq_even_nibbles(w), odd = tq_odd_nibbles(w);
    acc = tq_smlad(tq_sxtb16(even), x[0], acc);
    acc = tq_smlad(tq_sxtb16_ror8(even), x[gap], acc);
    acc = tq_smlad(tq_sxtb16(odd), x[2 * gap], acc);
    return tq_smlad(tq_sxtb16_ror8(odd), x[3 * gap], acc);
}

/* One int4 row word (eight k) against columns a and b (int4-order words a04, b04, a26, b26,
 * a15, b15, a37, b37 at x): 20 instructions for 16 multiply-accumulates on Arm. */
static inline void tq_step_int4_1x2(uint32_t w, const uint32_t *x, int32_t *sa, int32_t *sb) {
#if defined(__ARM_FEATURE_DSP)
    uint32_t nib, t, xa, xb;
    __asm__("lsl %[nib], %[w], #4\n\t"
            "and %[nib], %[nib], #0xF0F0F0F0\n\t"
            "sxtb16 %[t], %[nib]\n\t"
            "ldrd %[xa], %[xb], [%[x]]\n\t"
            "smlad %[sa], %[t], %[xa], %[sa]\n\t"
            "smlad %[sb], %[t], %[xb], %[sb]\n\t"
            "sxtb16 %[t], %[nib], ror #8\n\t"
            "ldrd %[xa], %[xb], [%[x], #8]\n\t"
            "smlad %[sa], %[t], %[xa], %[sa]\n\t"
            "smlad %[sb], %[t], %[xb], %[sb]\n\t"
            "and %[nib], %[w], #0xF0F0F0F0\n\t"
            "sxtb16 %[t], %[nib]\n\t"
            "ldrd %[xa], %[xb], [%[x], #16]\n\t"
            "smlad %[sa], %[t], %[xa], %[sa]\n\t"
            "smlad %[sb], %[t], %[xb], %[sb]\n\t"
            "sxtb16 %[t], %[nib], ror #8\n\t"
            "ldrd %[xa], %[xb], [%[x], #24]\n\t"
            "smlad %[sa], %[t], %[xa], %[sa]\n\t"
            "smlad %[sb], %[t], %[xb], %[sb]"
            : [sa] "+r"(*sa), [sb] "+r"(*sb), [nib] "=&r"(nib), [t] "=&r"(t), [xa] "=&r"(xa), [xb] "=&r"(xb)
            : [w] "r"(w), [x] "r"(x), "m"(*(const uint32_t(*)[8])x));
#else
    *sa = tq_dot8_int4(w, x, 2, *sa);
    *sb = tq_dot8_int4(w, x + 1, 2, *sb);
#endif
}

/* Two int4 rows by two columns, eight k per step: `w` a word of each row in turn, `x` the
 * int4-order words of columns a and b interleaved. Sums are 16x. */
static inline void tq_dot_2x2_int4(const uint32_t *w, const uint32_t *x, int32_t octets, int32_t acc[4]) {
    int32_t s00 = acc[0], s01 = acc[1], s10 = acc[2], s11 = acc[3];
    for (const uint32_t *const end = w + 2 * octets; w < end; w += 2, x += 8) {
        tq_step_int4_1x2(w[0], x, &s00, &s01);
        tq_step_int4_1x2(w[1], x, &s10, &s11);
    }
    acc[0] = s00, acc[1] = s01, acc[2] = s10, acc[3] = s11;
}

/* Four int4 rows by one column, eight k per step (`x`: x04, x26, x15, x37). Sums are 16x. */
static inline void tq_dot_4x1_int4(const uint32_t *w, const uint32_t *x, int32_t octets, int32_t acc[4]) {
    int32_t s0 = acc[0], s1 = acc[1], s2 = acc[2], s3 = acc[3];
    for (const uint32_t *const end = w + 4 * octets; w < end; w += 4, x += 4) {
        s0 = tq_dot8_int4(w[0], x, 1, s0);
        s1 = tq_dot8_int4(w[1], x, 1, s1);
        s2 = tq_dot8_int4(w[2], x, 1, s2);
        s3 = tq_dot8_int4(w[3], x, 1, s3);
    }
    acc[0] = s0, acc[1] = s1, acc[2] = s2, acc[3] = s3;
}

/* Widen `count` int8 values (a multiple of 8) into int4-order column words, `stride`
 * words per eight values (4 for one column, 8 for an interleaved pair). */
static inline void tq_widen_int4_order(const int8_t *src, int32_t count, uint32_t *dst, int32_t stride) {
    const int32_t gap = stride / 4;
    for (const int8_t *const end = src + count; src < end; src += 8, dst += stride) {
        const uint32_t lo = tq_load32(src), hi = tq_load32(src + 4);
        const uint32_t a = tq_sxtb16(lo), b = tq_sxtb16(hi), c = tq_sxtb16_ror8(lo), d = tq_sxtb16_ror8(hi);
        dst[0] = (a & 0xFFFFu) | (b << 16);
        dst[gap] = (a >> 16) | (b & 0xFFFF0000u);
        dst[2 * gap] = (c & 0xFFFFu) | (d << 16);
        dst[3 * gap] = (c >> 16) | (d & 0xFFFF0000u);
    }
}

/* Widen `count` int8 values (count a multiple of 4) into column words, `stride`
 * words apart for every four values: stride 2 for one column, 4 for a column
 * pair (the second column starts one word later). */
static inline void tq_widen(const int8_t *src, int32_t count, uint32_t *dst, int32_t stride) {
    for (const int8_t *const end = src + count; src < end; src += 4, dst += stride) {
        const uint32_t v = tq_load32(src);
        dst[0] = tq_sxtb16(v);
        dst[stride / 2] = tq_sxtb16_ror8(v);
    }
}

/* Per-channel requantization table (one entry when per_channel is 0). A layer
 * outside tq_requant_apply's conditions is `exact`: its table holds TFLM's
 * (multiplier, shift, output offset) and tq_output takes the reference
 * arithmetic. Both flags are constants once a layer is specialized. */
typedef struct { const tq_requant *channel; int32_t per_channel, exact; } tq_requant_params;

/* Output channel `o`: requantize (output offset included) and clamp. */
static inline int8_t tq_output(int32_t acc, const tq_requant_params *q, int32_t o, tq_activation act) {
    const tq_requant *r = &q->channel[q->per_channel ? o : 0];
    if (q->exact) return tq_clamp_s8(tq_requantize(acc, r->multiplier, r->shift) + r->high, act);
    return tq_clamp_s8(tq_requant_apply(acc, r), act);
}

/* --- int16 activations (16x8) ----------------------------------------------
 * The int16 columns are the activations as they are, two k per word, and the
 * weight words hold their bytes in the order (k0, k2, k1, k3) so that SXTB16
 * and SXTB16-ROR8 give the pairs (w0, w1) and (w2, w3): the same steps as
 * above then multiply matching pairs. TFLM sums in int64; 256 k of int8 x int16
 * stay below 2^30, so the steps sum exactly in int32 over 64 of them at a time
 * and each partial sum is added into int64: the same integers as TFLM's. */
#define TQ_S16_CHUNK 64   /* steps of four k summed in int32 before widening */

static inline void tq_dot_2x2_s16(const uint32_t *w, const uint32_t *x, int32_t quads, int64_t acc[4]) {
    for (int32_t done = 0; done < quads; done += TQ_S16_CHUNK) {
        int32_t s[4] = {0, 0, 0, 0};
        tq_dot_2x2(w + 2 * done, x + 4 * done, TQ_MIN(quads - done, TQ_S16_CHUNK), s);
        acc[0] += s[0], acc[1] += s[1], acc[2] += s[2], acc[3] += s[3];
    }
}

static inline void tq_dot_4x1_s16(const uint32_t *w, const uint32_t *x, int32_t quads, int64_t acc[4]) {
    for (int32_t done = 0; done < quads; done += TQ_S16_CHUNK) {
        int32_t s[4] = {0, 0, 0, 0};
        tq_dot_4x1(w + 4 * done, x + 2 * done, TQ_MIN(quads - done, TQ_S16_CHUNK), s);
        acc[0] += s[0], acc[1] += s[1], acc[2] += s[2], acc[3] += s[3];
    }
}

/* Output channel `o` of a 16x8 layer: TFLM's int64 requantization (the output
 * zero point is 0) and the clamp. */
static inline int16_t tq_output_s16(int64_t acc, const tq_per_channel_quant_params *q, int32_t o, tq_activation act) {
    const int32_t i = q->per_channel ? o : 0;
    return tq_sat16(tq_requantize64(acc, q->multiplier[i], q->shift[i]), act.min, act.max);
}

#endif /* TQ_GEMM_H */
