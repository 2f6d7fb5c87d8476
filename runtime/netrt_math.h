/* netrt_math.h: float exp, expm1, tanh, sigmoid, erf and log1p written for
 * vectorized loops (netrt_expf, netrt_expm1f, netrt_tanhf, netrt_sigmoidf,
 * netrt_erff, netrt_log1pf), and netrt_selectf, a select that gcc keeps
 * branch-free.
 *
 * The kernels netc emits apply activations elementwise, `for (i...) y[i] =
 * f(x[i])`.  With libm's expf, tanhf or erff in the body such a loop stays
 * scalar: each element is a call.  The functions here are static inline, use
 * only float and 32-bit integer arithmetic, no tables and no branches (the
 * cases are computed side by side and chosen with selects), so clang and gcc
 * at -O2 inline them and vectorize the loop (with zmm registers on AVX-512
 * targets; see "Vectorizing" below).  Nothing here calls libm; <math.h> is
 * included for INFINITY and NAN only.
 *
 * Accuracy, in ulps of the exact result (an ulp being the spacing of floats
 * at the result's magnitude, 2^-149 among the denormals).  "measured" is the
 * largest error over all 2^32 floats against double-precision libm, the
 * worst of clang 14 -O2 for generic x86-64 (no FMA), gcc 12 -O2 and clang 14
 * -O2 for x86-64-v4 (multiply-adds contracted into FMAs); "bound" is what
 * tests/unit/test_math.c enforces on a dense sweep and random bit patterns:
 *
 *     function        measured  bound   limits
 *     netrt_expf      0.90      1       0 below -103.98 (denormals from
 *                                       -87.34), +inf above 88.72
 *     netrt_expm1f    1.19      1.5     -1 below -17.33, +inf above 88.72
 *     netrt_tanhf     1.03      1.5     +-1 beyond +-9.01; odd, keeps -0
 *     netrt_sigmoidf  1.10      1.5     1 above 17.33; denormals below
 *                                       -87.34, 0 below -103.98
 *     netrt_erff      1.08      1.5     +-1 beyond +-3.92; odd, keeps -0
 *     netrt_log1pf    0.97      1.5     -inf at -1, NaN below -1, +inf at
 *                                       +inf; keeps -0
 *
 * NaN propagates through every function; +-inf give the limits.
 *
 * How they work, in short.  exp reduces x to r = x - n ln2, |r| <= ln2/2
 * (Cody-Waite: ln2 in two parts, the first short enough that n times it is
 * exact; the rounding of the second step is recovered exactly), takes e^r
 * from a polynomial whose coefficients are a minimax fit (Remez exchange in
 * high precision, then rounded to float) and applies 2^n as two power-of-two
 * factors, so that large n overflows to inf and very negative n lands in the
 * denormals in one rounding.  expm1 shares the reduction and sums
 * (2^n - 1) + 2^n r before the small rest, so that the "- 1" does not cancel
 * digits away.  sigmoid divides by 1 + e^-|x|, so that the exponential never
 * exceeds 1, and carries the rounding errors of e^r, of 1 + e and of the
 * quotient as corrections.  tanh is an odd polynomial for |x| < 0.55 and
 * 1 - 2 sigmoid(-2|x|) above.  erf is an odd polynomial for |x| < 0.875 and
 * 1 - e^-x^2 R(x) above, R a minimax polynomial for erfc(x) e^x^2.  log1p
 * forms u = 1 + x, keeps that sum's rounding error as a correction, and takes
 * log(u) = k ln2 + log(m), m in [sqrt2/2, sqrt2), from the series of atanh.
 * The derivation of each is beside its code.
 *
 * Vectorizing: clang -O2 vectorizes any such loop; for x86-64-v4 it picks
 * 256-bit vectors unless told -mprefer-vector-width=512 (its tuning for
 * that target), and then uses zmm registers.  gcc 12 at -O2 vectorizes only
 * loops that need no scalar remainder (its "very cheap" cost model), such as
 * the emitted kernels' loops over a constant NUMEL that the vector width
 * divides; -O3 or -fvect-cost-model=cheap lifts that.  Neither is about
 * these functions: a loop of y[i] = 2 * x[i] behaves the same way.
 *
 * They need IEEE semantics: compile without -ffast-math (no
 * -fassociative-math, which would undo the exact reduction steps, and no
 * -ffinite-math-only, which would fold away the NaN and inf selects).  FMA
 * contraction (-ffp-contract=fast, gcc's default in GNU mode) is fine: the
 * products that must be exact are exact either way, and where a fused
 * multiply-add replaces a product and a sum in a compensated step, the
 * correction it yields is as good (the figures above hold with and without). */
#ifndef NETRT_MATH_H
#define NETRT_MATH_H

#include <math.h>
#include <stdint.h>

#if defined(__GNUC__)
#define NETRT_MATH_FN static inline __attribute__((always_inline))
#else
#define NETRT_MATH_FN static inline
#endif

/* ---- bits ----------------------------------------------------------------- */

typedef union netrt_fbits_ {
    float f;
    uint32_t u;
} netrt_fbits_;

NETRT_MATH_FN uint32_t netrt_bits_(float x) {
    netrt_fbits_ b;
    b.f = x;
    return b.u;
}

NETRT_MATH_FN float netrt_float_(uint32_t u) {
    netrt_fbits_ b;
    b.u = u;
    return b.f;
}

/* 2^e for e in [-126, 127]. */
NETRT_MATH_FN float netrt_pow2_(int32_t e) { return netrt_float_(((uint32_t)e + 127u) << 23); }

NETRT_MATH_FN float netrt_absf_(float x) { return netrt_float_(netrt_bits_(x) & 0x7fffffffu); }

/* |v| with the sign of s. */
NETRT_MATH_FN float netrt_signed_(float v, float s) {
    return netrt_float_((netrt_bits_(v) & 0x7fffffffu) | (netrt_bits_(s) & 0x80000000u));
}

/* cond ? a : b, by masks; every choice in this header is made with it, and
 * kernels should use it too where an arm calls one of these functions (elu's
 * x > 0 ? x : alpha * expm1(x), softplus's threshold).  With ?: gcc turns
 * such choices into branches (it threads the clamps' cases, folding each
 * into a constant, or sinks an arm's computation, division included, into
 * the branch that uses it), and its vectorizer then gives up on the loop
 * ("control flow in loop"), as it will not speculate operations that may
 * trap under the default -ftrapping-math.  Masks leave nothing to branch on;
 * clang compiles both forms alike (a blend, or max/min for a clamp). */
NETRT_MATH_FN float netrt_selectf(int cond, float a, float b) {
    const uint32_t m = 0u - (uint32_t)(cond != 0);
    return netrt_float_((netrt_bits_(a) & m) | (netrt_bits_(b) & ~m));
}

/* ---- shared constants ------------------------------------------------------ */

/* log2(e) rounded to float; the rounding only decides which n is picked. */
#define NETRT_LOG2E_ 0x1.715476p+0f
/* ln 2 = LN2_HI + LN2_LO: LN2_HI has 15 significant bits, so n * LN2_HI is
 * exact for |n| < 512, and their sum is ln 2 within 6e-14. */
#define NETRT_LN2_HI_ 0x1.62e4p-1f
#define NETRT_LN2_LO_ 0x1.7f7d1cp-20f
/* Adding 1.5 * 2^23 to a float of magnitude below 2^22 rounds it to an
 * integer (to nearest, ties to even), and the low bits of the sum's
 * representation are then that integer plus the constant's bits. */
#define NETRT_ROUNDER_ 0x1.8p23f
#define NETRT_ROUNDER_BITS_ 0x4b400000u

/* ---- exp ------------------------------------------------------------------- */

/* The reduction that exp, expm1 and sigmoid share.  For x in [-104, 89]:
 *     x = n ln2 + r + rerr,  n = round(x / ln2),  |r| <= 0.3466,
 * r a float and rerr the small part of the remainder that r misses.
 * (|r| <= ln2/2 unless x / ln2 rounds the other way near a half; the fits
 * cover 0.3466.)
 *
 * x - n LN2_HI has no rounding error: n LN2_HI is exact, and x and it are
 * within a factor two of each other unless n = 0, where it is x.  Subtracting
 * n LN2_LO rounds, and (rh - r) - rl is that rounding error exactly whenever
 * |rh| >= |rl| (the two-sum of a larger and a smaller float); otherwise r is
 * below 5e-4 and its error below 2^-35, which does not matter next to 1. */
typedef struct netrt_exp_red_ {
    float r, rerr;
    int32_t n;
} netrt_exp_red_;

NETRT_MATH_FN netrt_exp_red_ netrt_exp_reduce_(float xc) {
    const float t = xc * NETRT_LOG2E_ + NETRT_ROUNDER_;
    const float k = t - NETRT_ROUNDER_;
    const float rh = xc - k * NETRT_LN2_HI_;
    const float rl = k * NETRT_LN2_LO_;
    netrt_exp_red_ d;
    d.n = (int32_t)(netrt_bits_(t) - NETRT_ROUNDER_BITS_);
    d.r = rh - rl;
    d.rerr = (rh - d.r) - rl;
    return d;
}

/* e^r - 1 - r = r^2/2 + r^3 q(r) for |r| <= 0.3466, q of degree 3 fitted by
 * Remez exchange to the relative error of e^r: below 4e-9 with the
 * coefficients rounded to float.  Keeping 1 + r + r^2/2 exact in form leaves
 * only the small terms to the fit. */
NETRT_MATH_FN float netrt_exp_tail_(float r) {
    const float q = 0x1.5554a4p-3f + r * (0x1.555688p-5f + r * (0x1.122f84p-7f + r * 0x1.6b6e44p-10f));
    return (r * r) * (0.5f + r * q);
}

/* e^x = 2^n e^(r + rerr), e^(r + rerr) = 1 + (r + (tail(r) + rerr)): the
 * terms are summed smallest first and the only rounding of any size is the
 * last, of 1 + (...), so the result is within about 0.6 ulp.
 *
 * x is first clamped to [-104, 89]: below -104, e^x is under half the least
 * denormal (2^-150 = e^-103.97) and the result is 0; above 89 it overflows.
 * With x clamped, n is in [-150, 128], outside float's exponents at both
 * ends, so 2^n is applied as 2^n1 * 2^n2 with n1 = floor(n/2): p * 2^n1 is
 * exact and normal, and the second product rounds once, to a denormal, a
 * normal or inf as the exact result would.
 *
 * NaN passes the clamps (every comparison with it is false) and turns r and
 * so the result into NaN, whatever the integer part makes of its bits. */
NETRT_MATH_FN float netrt_expf(float x) {
    float xc = netrt_selectf(x < -104.0f, -104.0f, x);
    xc = netrt_selectf(xc > 89.0f, 89.0f, xc);
    const netrt_exp_red_ d = netrt_exp_reduce_(xc);
    const float p = 1.0f + (d.r + (netrt_exp_tail_(d.r) + d.rerr));
    const int32_t n1 = d.n >> 1;
    return (p * netrt_pow2_(n1)) * netrt_pow2_(d.n - n1);
}

/* ---- expm1 ----------------------------------------------------------------- */

/* e^x - 1 with exp's reduction: e^x - 1 = 2^n (1 + u) - 1 with u = e^r - 1
 * (rerr included), written
 *     (2^n - 1) + 2^n r + 2^n tail,  tail = u - r = r^2/2 + r^3 q(r) + rerr e^r.
 * 2^n - 1 is exact for |n| <= 24 and 2^n r is exact, and those two are added
 * before the tail, which is at most 0.07 of u: the error is two roundings at
 * the result's scale and a small fraction of an ulp from the tail.  Summing
 * u first instead would scale u's rounding by 2^n and, where 2^n (1 + u) - 1
 * cancels (n = 1, u near -0.3), cost over 2 ulps.  From n = 25 on, 2^n - 1
 * is no longer a float, and the 1 is subtracted from the tail's term instead.
 *
 * q is fitted, as exp's but to the relative error of e^r - 1, with one more
 * term (degree 4): below 7e-10 over |r| <= 0.3466 (coefficients rounded one
 * by one, the rest refitted each time).
 *
 * x is clamped to [-18, 89]: below -17.33 the result rounds to -1 (and does
 * so from -18 too), above 88.73 it is inf.  n can then reach 128, so 2^n is
 * split as for exp: 2^n1 with n1 = min(n, 64) inside the sum and 2^(n-n1)
 * outside it.  Tiny |x| returns x itself, the exact result rounded, which
 * also keeps the sign of -0. */
NETRT_MATH_FN float netrt_expm1f(float x) {
    float xc = netrt_selectf(x < -18.0f, -18.0f, x);
    xc = netrt_selectf(xc > 89.0f, 89.0f, xc);
    const netrt_exp_red_ d = netrt_exp_reduce_(xc);
    const float r = d.r;
    const float q =
        0x1.555554p-3f + r * (0x1.5554eap-5f + r * (0x1.1113acp-7f + r * (0x1.6d4e3cp-10f + r * 0x1.9c331ap-13f)));
    const float tail = (r * r) * (0.5f + r * q) + d.rerr * (1.0f + r);
    const int32_t n1 = d.n < 64 ? d.n : 64;
    const float s = netrt_pow2_(n1);
    const float one = netrt_selectf(n1 <= 24, 1.0f, 0.0f);
    const float y = ((s - one) + s * r) + (s * tail - (1.0f - one));
    const float res = y * netrt_pow2_(d.n - n1);
    return netrt_selectf(netrt_absf_(x) < 0x1p-25f, x, res);
}

/* ---- sigmoid --------------------------------------------------------------- */

/* 1 / (1 + e^-x), from e = e^-|x| <= 1 so that nothing overflows:
 * sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0 (the top and
 * bottom of 1 / (1 + e^|x|) multiplied by e).
 *
 * Done plainly, with exp's result, this is off by up to 2.3 ulps for x < 0:
 * exp's ulp and the rounding of 1 + e both reach the quotient whole, and a
 * relative error that is one ulp where e's mantissa is near 1 is two where
 * the quotient's is near 2.  So the pieces carry their rounding errors:
 *   - e^r as hi + lo (1 + w and what that sum drops, w = r + tail(r) and what
 *     that sum drops, and rerr), good to about 2^-30;
 *   - 1 + e as den + derr, derr recovered by a two-sum;
 *   - the quotient N / (den + derr), N = 1 or e, as q = N / den and the
 *     first-order correction (N's lo - q derr) / den.  1/den needs only a few
 *     digits there: it is q itself when N = 1 and 1 - q 2^n when N = e.
 * For x < 0 the division is done on e^r (between 0.7 and 1.42), the scale
 * 2^n applied after, so the quotient stays normal and rounds to a denormal
 * once, at the end.  What is left is the rounding of q and of the sum: about
 * an ulp at most. */
typedef struct netrt_pair_ {
    float hi, lo;
} netrt_pair_;

NETRT_MATH_FN netrt_pair_ netrt_exp_pair_(netrt_exp_red_ d) {
    const float r = d.r;
    const float t = netrt_exp_tail_(r);
    const float w = r + t;
    netrt_pair_ p;
    p.hi = 1.0f + w;
    p.lo = ((1.0f - p.hi) + w) + (((r - w) + t) + d.rerr * p.hi);
    return p;
}

NETRT_MATH_FN float netrt_sigmoidf(float x) {
    float m = -netrt_absf_(x);
    m = netrt_selectf(m < -104.0f, -104.0f, m);
    const netrt_exp_red_ d = netrt_exp_reduce_(m);
    const netrt_pair_ p = netrt_exp_pair_(d);
    const int32_t n1 = d.n >> 1;
    const float s1 = netrt_pow2_(n1), s2 = netrt_pow2_(d.n - n1);
    const float eh = (p.hi * s1) * s2;
    const float el = (p.lo * s1) * s2;
    const float den = 1.0f + eh;
    const float derr = ((1.0f - den) + eh) + el;
    const int pos = x >= 0.0f;
    const float nh = netrt_selectf(pos, 1.0f, p.hi);
    const float nl = netrt_selectf(pos, 0.0f, p.lo);
    const float q = nh / den;
    const float inv = netrt_selectf(pos, q, 1.0f - (q * s1) * s2);
    const float y = q + (nl - q * derr) * inv;
    return netrt_selectf(pos, y, (y * s1) * s2);
}

/* ---- tanh ------------------------------------------------------------------ */

/* tanh is odd: computed at a = |x|, the sign put back at the end (so -0 stays
 * -0 and NaN stays NaN).
 *
 * Below 0.55: tanh(a) = a + a^3 P(a^2), P of degree 4 fitted by Remez
 * exchange to the relative error of tanh on [0, 0.55] (below 1.2e-9 with
 * float coefficients, rounded one by one and the rest refitted each time).
 * The a^3 P term is at most a tenth of a, so its rounding errors hardly
 * show.
 *
 * From 0.55 on: tanh(a) = (1 - e)/(1 + e) = 1 - 2e/(1 + e) with e = e^-2a,
 * that is 1 - 2 sigmoid(-2a).  There tanh >= 0.5 and 2 sigmoid(-2a) <= 0.5,
 * so sigmoid's ulp is at most half of the result's.  (1 - 2/(e^2a + 1) with
 * exp's result costs up to 1.4 ulps next to the break, for want of sigmoid's
 * compensated quotient.)  For large a, e^-2a vanishes and the result is 1. */
NETRT_MATH_FN float netrt_tanhf(float x) {
    const float a = netrt_absf_(x);
    const float s = a * a;
    const float p = -0x1.55554ap-2f +
                    s * (0x1.110ceep-3f + s * (-0x1.b91e7ep-5f + s * (0x1.58e518p-6f + s * -0x1.9921a2p-8f)));
    const float small = a + a * (s * p);
    const float large = 1.0f - 2.0f * netrt_sigmoidf(-2.0f * a);
    return netrt_signed_(netrt_selectf(a < 0.55f, small, large), x);
}

/* ---- erf ------------------------------------------------------------------- */

/* erf is odd: computed at a = |x|, the sign put back at the end.
 *
 * Below 0.875: erf(a) = a + a P(a^2), P of degree 6 fitted by Remez
 * exchange to the relative error of erf on [0, 0.875] (below 1e-9 with float
 * coefficients, the coefficients rounded one by one, the rest refitted each
 * time); P(0) = 2/sqrt(pi) - 1, so the leading term a is exact.
 *
 * From 0.875 on: erf(a) = 1 - erfc(a), erfc(a) = e^-a^2 R(a), where R(a) =
 * erfc(a) e^a^2 falls smoothly from 0.46 to 0.14 over [0.875, 4] and is
 * approximated by a polynomial of degree 8 in t = a - 0.875, fitted to the
 * absolute error of erf (that is, to R's error weighted by e^-a^2): below
 * 7e-9.  Centred at the left end, where erfc is largest and matters most,
 * Horner's rule rounds little there (t is small); centred mid-interval, its
 * terms would be larger than R and cost half an ulp of the result.
 * e^-a^2 is taken as hi + lo from sigmoid's compensated e^r (with exp's
 * reduction; a <= 4, so 2^n is one factor), which takes exp's own rounding
 * out of the sum; a^2's rounding, a relative 2^-24 a^2 in e^-a^2, remains,
 * but erfc(0.875) = 0.22, so that moves the result by 0.2 ulp at most.  The
 * break is where the two sides' errors meet: the polynomial's grow with a
 * (a^2's rounding reaches it through P'(a^2) a^2), the other side's as a
 * falls and erfc grows.
 *
 * a is clamped to 4: erfc(3.92) is half an ulp of 1, so from there on the
 * result is 1, and R is not used outside its fit. */
NETRT_MATH_FN float netrt_erff(float x) {
    float a = netrt_absf_(x);
    a = netrt_selectf(a > 4.0f, 4.0f, a);
    const float s = a * a;
    const float p =
        0x1.06eba8p-3f +
        s * (-0x1.81274p-2f +
             s * (0x1.ce2d5cp-4f +
                  s * (-0x1.b7ff9p-6f + s * (0x1.54318ep-8f + s * (-0x1.a4d10ep-11f + s * 0x1.4a0074p-14f)))));
    const float small = a + a * p;
    const float t = a - 0.875f;
    const float rp =
        0x1.db747ep-2f +
        t * (-0x1.43697cp-2f +
             t * (0x1.80db32p-3f +
                  t * (-0x1.9c1658p-4f +
                       t * (0x1.8e7ef6p-5f +
                            t * (-0x1.4e07d6p-6f +
                                 t * (0x1.b47a06p-8f + t * (-0x1.73915p-10f + t * 0x1.25a04ep-13f)))))));
    const netrt_exp_red_ d = netrt_exp_reduce_(-s);
    const netrt_pair_ e = netrt_exp_pair_(d);
    const float sc = netrt_pow2_(d.n);
    const float large = (1.0f - (e.hi * sc) * rp) - (e.lo * sc) * rp;
    return netrt_signed_(netrt_selectf(a < 0.875f, small, large), x);
}

/* ---- log1p ----------------------------------------------------------------- */

/* log(1 + x).  u = 1 + x is rounded, but its error c = (1 + x) - u is exact
 * and cheap: x - (u - 1) while x < 1 (u <= 2, and u - 1 is exact), and
 * 1 - (u - x) from x >= 1 on (u - x is then exact).  log(1 + x) = log(u) + log(1 + c/u)
 * = log(u) + c/u to far below an ulp.
 *
 * u = 2^k m with m in [sqrt2/2, sqrt2), read off u's bits: subtracting the
 * bits of sqrt2/2 makes k the exponent field and the rest m's offset.  With
 * f = m - 1 (exact) and s = f / (2 + f), |s| <= 0.1716:
 *     log(m) = log((1 + s) / (1 - s)) = 2 atanh(s) = 2s + s T(s^2),
 *     T(z) = z (2/3 + 2/5 z + 2/7 z^2 + ...),
 * and since f - 2s = f^2 / (2 + f) = s f, 2s = f - s f, so
 *     log(m) = f - s (f - T(s^2)).
 * The exact f carries the value and s (f - T) is at most 0.2 f, so the
 * division's rounding is attenuated.  T's series is replaced by a Remez fit
 * of degree 2 in z (relative error of log(m) below 1e-9).  The result is
 * k LN2_HI (exact) + (log(m) + k LN2_LO + c/u), the large part added last.
 *
 * Outside (-1, inf) the selects give log1p(-1) = -inf, NaN below -1, and
 * x itself for +inf and NaN; tiny |x| gives x, which keeps -0. */
NETRT_MATH_FN float netrt_log1pf(float x) {
    const float u = 1.0f + x;
    const float c = netrt_selectf(x < 1.0f, x - (u - 1.0f), 1.0f - (u - x));
    const uint32_t iu = netrt_bits_(u) - 0x3f3504f3u;
    const int32_t k = (int32_t)iu >> 23;
    const float m = netrt_float_((iu & 0x007fffffu) + 0x3f3504f3u);
    const float f = m - 1.0f;
    const float sv = f / (2.0f + f);
    const float z = sv * sv;
    const float tz = z * (0x1.55557ap-1f + z * (0x1.995edp-2f + z * 0x1.31e0dep-2f));
    const float kf = (float)k;
    const float lo = kf * NETRT_LN2_LO_ + c / u;
    const float lm = f - (sv * (f - tz) - lo);
    float res = kf * NETRT_LN2_HI_ + lm;
    res = netrt_selectf(netrt_absf_(x) < 0x1p-25f, x, res);
    const float special = netrt_selectf(x < -1.0f, NAN, netrt_selectf(x <= -1.0f, -INFINITY, x));
    return netrt_selectf((x > -1.0f) & (x < INFINITY), res, special);
}

#endif
