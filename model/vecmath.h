// Internal to model/: element-wise math that the compiler can vectorise (no calls into libm,
// no branches; only +, ×, fma, selects and bit casts), for the hot loops of GELU and softmax.
// Accuracy is a few float ulp, like the libm functions they replace; the coefficients below
// were fitted for this project (Chebyshev/Lawson fits in double precision).
#ifndef TIJEPA_MODEL_VECMATH_H
#define TIJEPA_MODEL_VECMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

// e^y, relative error ≈ 1 ulp for y in [−87.3, 88.7]; 0 below −87.3 (where e^y would leave the
// normal range). y = k·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to r⁷ (truncation
// below 6e-9), 2^k assembled in the exponent bits.
static inline float vec_exp(float y) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693145751953125f,
                ln2_lo = 1.42860682030941723e-6f, round_magic = 12582912.0f; // 1.5·2²³
    float yc = y < -87.3f ? -87.3f : (y > 88.7f ? 88.7f : y);
    float kf = (yc * log2e + round_magic) - round_magic; // nearest integer, exactly
    float r = fmaf(kf, -ln2_hi, yc);
    r = fmaf(kf, -ln2_lo, r);
    float p = 1.0f / 5040.0f;
    p = fmaf(p, r, 1.0f / 720.0f);
    p = fmaf(p, r, 1.0f / 120.0f);
    p = fmaf(p, r, 1.0f / 24.0f);
    p = fmaf(p, r, 1.0f / 6.0f);
    p = fmaf(p, r, 0.5f);
    p = fmaf(p, r, 1.0f);
    p = fmaf(p, r, 1.0f);
    int32_t bits = ((int32_t)kf + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof(scale));
    return y < -87.3f ? 0.0f : p * scale;
}

// erfc(a) for a ≥ 0, relative error ≈ 2e-7: with t = 1/(1 + a/2),
// erfc(a) = t·exp(−a² + f(t)), f a degree-11 polynomial in s = 2t − 1 (fitted max error 1e-8).
static inline float vec_erfc_nonneg(float a) {
    float t = 1.0f / fmaf(0.5f, a, 1.0f);
    float s = fmaf(2.0f, t, -1.0f);
    float f = -8.456081559415907e-05f;
    f = fmaf(f, s, 6.852499154774705e-06f);
    f = fmaf(f, s, 0.0005666283541359007f);
    f = fmaf(f, s, -0.00022514838201459497f);
    f = fmaf(f, s, -0.002282032510265708f);
    f = fmaf(f, s, 0.0017917603254318237f);
    f = fmaf(f, s, 0.008806086145341396f);
    f = fmaf(f, s, -0.00987924262881279f);
    f = fmaf(f, s, -0.04689319431781769f);
    f = fmaf(f, s, 0.047343797981739044f);
    f = fmaf(f, s, 0.6726431250572205f);
    f = fmaf(f, s, -0.6717941164970398f);
    return t * vec_exp(fmaf(-a, a, f));
}

// Standard normal CDF Φ(x) = ½·erfc(−x/√2), computed without cancellation on both sides.
static inline float vec_normal_cdf(float x) {
    const float inv_sqrt2 = 0.70710678118654752f;
    float q = 0.5f * vec_erfc_nonneg(fabsf(x) * inv_sqrt2);
    return x >= 0.0f ? 1.0f - q : q;
}

#endif // TIJEPA_MODEL_VECMATH_H
