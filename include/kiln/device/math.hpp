#pragma once
/// Scalar f32 math for kernels (and, the same code, for host C++: the unit tests measure it
/// there): the hardware's approximate 2^x and 1/x where there are such instructions, and
/// GELU's erf form built on them. Includes no standard library or vendor header.
///
///   kiln::exp2_approx(x)  2^x; on NVIDIA GPUs one `ex2.approx.ftz` (about 2 ulp; results
///                         under 2^-126 flush to zero)
///   kiln::rcp_approx(x)   1/x; on NVIDIA GPUs one `rcp.approx.ftz` (about 1 ulp)
///   kiln::gelu_erf(v)     v * Phi(v), Phi the standard normal CDF: GELU's exact (erf) form

#include "../detail/portability.hpp"

namespace kiln {

namespace detail {
// a * b + c rounded once, and |x| (NVRTC has fmaf and fabsf built in, but not the
// compilers' __builtin_ spellings, which host compilers and clang's HIP mode have).
KILN_HOST_DEVICE KILN_FORCEINLINE float fma_f32(float a, float b, float c) {
#if KILN_GPU_COMPILER && !KILN_HIP
  return fmaf(a, b, c);
#else
  return __builtin_fmaf(a, b, c);
#endif
}
KILN_HOST_DEVICE KILN_FORCEINLINE float abs_f32(float x) {
#if KILN_GPU_COMPILER && !KILN_HIP
  return fabsf(x);
#else
  return __builtin_fabsf(x);
#endif
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
/// NaN gives NaN, +inf gives +inf, and -inf gives NaN (as v / 2 * (1 + erf) does).
KILN_HOST_DEVICE KILN_FORCEINLINE float gelu_erf(float v) {
  const float t =
      rcp_approx(detail::fma_f32(detail::abs_f32(v), 0.26870057685088806f, 1.0f));  // 0.38 / sqrt 2
  float s = -0.36479410059691598f;
  s = detail::fma_f32(s, t, 1.7780172927757488f);
  s = detail::fma_f32(s, t, -3.2780963276172212f);
  s = detail::fma_f32(s, t, 2.8187975535780906f);
  s = detail::fma_f32(s, t, -1.4999915128928567f);
  s = detail::fma_f32(s, t, 0.80691678465949928f);
  s = detail::fma_f32(s, t, 0.50582189648747182f);
  s = detail::fma_f32(s, t, 1.4556475592482035f);
  s = detail::fma_f32(s, t, -3.2223192281333537f);
  // z^2 log2 e = v^2 (log2 e) / 2
  const float q = t * exp2_approx(detail::fma_f32(v * -0.7213475204444817f, v, s));
  return v * (v < 0.0f ? q : 1.0f - q);
}

}  // namespace kiln
