#pragma once
/// Scalar f32 math for kernels (and, the same code, for host C++: the unit tests measure it
/// there): the hardware's approximate 2^x and 1/x where there are such instructions, and
/// GELU's erf form built on them. Includes no standard library or vendor header.
///
///   kiln::exp2_approx(x)  2^x; on NVIDIA GPUs one `ex2.approx.ftz` (about 2 ulp; results
///                         under 2^-126 flush to zero)
///   kiln::rcp_approx(x)   1/x; on NVIDIA GPUs one `rcp.approx.ftz` (about 1 ulp)
///   kiln::gelu_erf(v)     v * Phi(v), Phi the standard normal CDF: GELU's exact (erf) form
///   kiln::gelu_erf_f16(v) the same, to the precision a result rounded to f16 keeps
///   kiln::gelu_erf_bf16(v) the same, to the precision a result rounded to bf16 keeps

#include "../detail/portability.hpp"

namespace kiln {

namespace detail {
// C's float functions as NVRTC has them built in (fmaf, fabsf, fminf, fmaxf), or by the
// __builtin_ spellings that host compilers and clang's HIP mode have (NVRTC lacks those).
#if KILN_GPU_COMPILER && !KILN_HIP
#define KILN_DETAIL_LIBM(f) f
#else
#define KILN_DETAIL_LIBM(f) __builtin_##f
#endif
// a * b + c rounded once; |x|; min and max that return the other operand where one is NaN.
KILN_HOST_DEVICE KILN_FORCEINLINE float fma_f32(float a, float b, float c) {
  return KILN_DETAIL_LIBM(fmaf)(a, b, c);
}
KILN_HOST_DEVICE KILN_FORCEINLINE float abs_f32(float x) {
  return KILN_DETAIL_LIBM(fabsf)(x);
}
KILN_HOST_DEVICE KILN_FORCEINLINE float min_f32(float a, float b) {
  return KILN_DETAIL_LIBM(fminf)(a, b);
}
KILN_HOST_DEVICE KILN_FORCEINLINE float max_f32(float a, float b) {
  return KILN_DETAIL_LIBM(fmaxf)(a, b);
}
#undef KILN_DETAIL_LIBM
// c[0] x^(N-1) + c[1] x^(N-2) + ... + c[N-1] by Horner's rule: N - 1 fmas, in that order.
template <int N>
KILN_HOST_DEVICE KILN_FORCEINLINE float horner(float x, const float (&c)[N]) {
  float s = c[0];
  KILN_UNROLL
  for (int i = 1; i < N; ++i) s = fma_f32(s, x, c[i]);
  return s;
}
}  // namespace detail

KILN_HOST_DEVICE KILN_FORCEINLINE float exp2_approx(float x) {
#if KILN_DEVICE_PASS && !KILN_HIP
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return __builtin_exp2f(x);
#endif
}

KILN_HOST_DEVICE KILN_FORCEINLINE float rcp_approx(float x) {
#if KILN_DEVICE_PASS && !KILN_HIP
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return 1.0f / x;
#endif
}

/// GELU(v) = v * Phi(v) = v / 2 * (1 + erf(v / sqrt 2)), without erff and without a branch.
///
/// With z = |v| / sqrt 2, Phi's tail q = erfc(z) / 2 is t * 2^(S(t) - z^2 log2 e) where
/// t = 1 / (1 + 0.38 z) and S is a degree-8 polynomial in t (a Chebyshev fit over
/// 0 <= z <= 10, whose error in S is 1.5e-7); Phi(v) is q for v < 0 and 1 - q otherwise.
/// Two approximate instructions (rcp, ex2) and 15 others, against erff's two polynomials,
/// selected per element around a branch. The negative tail keeps its relative precision,
/// where 1 + erf(v / sqrt 2) loses it to cancellation (all of it below v = -5.5).
/// Relative error, every f32 v with exact 1/x and 2^x (tests/device/math_test.cpp): under
/// 1.2e-6 for |v| <= 4, under 1e-5 everywhere; the GPU's rcp and ex2 add about 3e-7.
/// NaN gives NaN, +inf gives +inf, and -inf gives NaN (as v / 2 * (1 + erf) does). On
/// NVIDIA GPUs, whose 2^x flushes results under 2^-126 to zero, results under about 2^-122
/// (v below -13) are 0.
KILN_HOST_DEVICE KILN_FORCEINLINE float gelu_erf(float v) {
  const float t =
      rcp_approx(detail::fma_f32(detail::abs_f32(v), 0.26870057685088806f, 1.0f));  // 0.38 / sqrt 2
  const float c[] = {-0.36479410059691598f, 1.7780172927757488f,  -3.2780963276172212f,
                     2.8187975535780906f,   -1.4999915128928567f, 0.80691678465949928f,
                     0.50582189648747182f,  1.4556475592482035f,  -3.2223192281333537f};
  const float s = detail::horner(t, c);
  // z^2 log2 e = v^2 (log2 e) / 2
  const float q = t * exp2_approx(detail::fma_f32(v * -0.7213475204444817f, v, s));
  return v * (v < 0.0f ? q : 1.0f - q);
}

namespace detail {
// GELU(v) from p = log2(Phi(-|v|)), Phi's tail: max(v, 0) - |v| 2^p (v Phi(v) for either
// sign, since Phi(v) = 1 - Phi(-v)). |v| is capped at FLT_MAX where it multiplies, so
// that +inf gives +inf and -inf gives 0 (2^p is 0 there); NaN gives NaN through p.
KILN_HOST_DEVICE KILN_FORCEINLINE float gelu_from_log2_tail(float v, float p) {
  return fma_f32(-min_f32(abs_f32(v), 3.4028234663852886e38f), exp2_approx(p), max_f32(v, 0.0f));
}
}  // namespace detail

/// GELU's erf form for a result that is then rounded to f16: one approximate instruction
/// (ex2) and about ten others, where gelu_erf takes two and about fifteen.
///
/// log2 Phi(-a), a = |v|, is a degree-7 polynomial in a: a Chebyshev fit over
/// 0 <= a <= 5.9, whose error (1.1e-5) is a relative error in Phi's tail of 7.6e-6. Past
/// 5.9 the tail falls on towards 0 (the polynomial keeps falling), where GELU's f16 result
/// has rounded to 0 since a = 5.6. Relative error over the results of normal f16 size
/// (tests/device/math_test.cpp): under 1e-5, against f16's rounding error of up to
/// 4.9e-4; rounded to f16, the result is within one unit in the last place of the exact
/// result rounded.
/// +inf gives +inf, -inf gives 0, NaN gives NaN.
KILN_HOST_DEVICE KILN_FORCEINLINE float gelu_erf_f16(float v) {
  const float c[] = {-2.0137209969679433e-6f, 6.5284089923942264e-5f,  -9.6041582809252330e-4f,
                     8.6284934116045948e-3f,  -5.4211211622016860e-2f, -0.45821313199729535f,
                     -1.1513467377773196f,    -0.99998918590584974f};
  return detail::gelu_from_log2_tail(v, detail::horner(detail::abs_f32(v), c));
}

/// GELU's erf form for a result that is then rounded to bf16, as gelu_erf_f16 computes it
/// but over bf16's range: log2 Phi(-a) is a degree-9 polynomial in a, fitted over
/// 0 <= a <= 13.3 (past which GELU's bf16 result is under bf16's smallest normal value).
/// Relative error over the results of normal bf16 size: under 5e-5, against bf16's
/// rounding error of up to 2e-3; rounded to bf16, within one unit in the last place of the
/// exact result rounded. On NVIDIA GPUs, whose 2^x flushes results under 2^-126 to zero,
/// results under about 2^-122 (v below -13.1) are 0, as they are with gelu_erf.
KILN_HOST_DEVICE KILN_FORCEINLINE float gelu_erf_bf16(float v) {
  const float c[] = {-1.9317604316153821e-9f, 1.4137868649906157e-7f,  -4.5444184914197738e-6f,
                     8.4913249527559424e-5f,  -1.0327983118098062e-3f, 8.7335847914499661e-3f,
                     -5.4172729549678458e-2f, -0.45842586639897814f,   -1.1512372326561083f,
                     -0.99999356792771434f};
  return detail::gelu_from_log2_tail(v, detail::horner(detail::abs_f32(v), c));
}

}  // namespace kiln
