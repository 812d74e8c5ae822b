#pragma once
/// 16-bit floating-point element types with one spelling everywhere: kiln::f16 (IEEE
/// binary16) and kiln::bf16 (bfloat16).
///
///   CUDA (nvcc, NVRTC)   __half and __nv_bfloat16, from <cuda_fp16.h> and <cuda_bf16.h>
///                        (under NVRTC, pass -I<CUDA include dir>)
///   HIP (clang, hipRTC)  the compiler's _Float16 and __bf16; no HIP header is needed
///   host C++             _Float16 and __bf16 where the compiler has them (g++ 12 has
///                        _Float16 but not __bf16; g++ >= 13 and clang >= 17 have both);
///                        otherwise a 16-bit storage struct holding the raw bits
///
/// The storage fallbacks only hold bits (no arithmetic): they let host code size, copy
/// and lay out buffers of a kernel's element type. kiln::has_native_f16 and
/// kiln::has_native_bf16 say which one a compiler got. Includes no standard library.

#include "../detail/portability.hpp"

#if KILN_GPU_COMPILER && !KILN_HIP
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define KILN_NATIVE_F16 1
#define KILN_NATIVE_BF16 1
#elif KILN_HIP
#define KILN_NATIVE_F16 1
#define KILN_NATIVE_BF16 1
#else
#if defined(__FLT16_MANT_DIG__)
#define KILN_NATIVE_F16 1
#else
#define KILN_NATIVE_F16 0
#endif
#if defined(__BFLT16_MANT_DIG__) || \
    (defined(__clang__) && __clang_major__ >= 17 && (defined(__x86_64__) || defined(__aarch64__)))
#define KILN_NATIVE_BF16 1
#else
#define KILN_NATIVE_BF16 0
#endif
#endif

namespace kiln {

#if KILN_GPU_COMPILER && !KILN_HIP
using f16 = __half;
using bf16 = __nv_bfloat16;
#else
#if KILN_NATIVE_F16
using f16 = _Float16;
#else
/// The raw bits of an IEEE binary16 value (this host compiler has no _Float16).
struct alignas(2) f16 {
  unsigned short bits;
};
#endif
#if KILN_NATIVE_BF16
using bf16 = __bf16;
#else
/// The raw bits of a bfloat16 value (this host compiler has no __bf16).
struct alignas(2) bf16 {
  unsigned short bits;
};
#endif
#endif

/// Whether f16 / bf16 are the compiler's own types (or CUDA's), rather than storage structs.
inline constexpr bool has_native_f16 = KILN_NATIVE_F16;
inline constexpr bool has_native_bf16 = KILN_NATIVE_BF16;

static_assert(sizeof(f16) == 2 && alignof(f16) == 2, "kiln::f16 is 16 bits");
static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2, "kiln::bf16 is 16 bits");

#if KILN_GPU_COMPILER
// ---- f32 math over f16 / bf16 / f32 storage, in device code: to_float(x) and
// from_float(x, out), rounding to nearest even; a NaN stays a (quiet) NaN. ----
KILN_DEVICE KILN_FORCEINLINE float to_float(float x) {
  return x;
}
KILN_DEVICE KILN_FORCEINLINE void from_float(float x, float& out) {
  out = x;
}
#if KILN_HIP
KILN_DEVICE KILN_FORCEINLINE float to_float(f16 x) {
  return float(x);
}
KILN_DEVICE KILN_FORCEINLINE void from_float(float x, f16& out) {
  out = f16(x);
}
KILN_DEVICE KILN_FORCEINLINE float to_float(bf16 x) {
  return __builtin_bit_cast(float, unsigned(__builtin_bit_cast(unsigned short, x)) << 16);
}
KILN_DEVICE KILN_FORCEINLINE void from_float(float x, bf16& out) {
  const unsigned bits = __builtin_bit_cast(unsigned, x);
  const unsigned rounded = (bits & 0x7fffffffu) > 0x7f800000u
                               ? (bits | 0x00400000u)
                               : bits + 0x7fffu + ((bits >> 16) & 1u);
  out = __builtin_bit_cast(bf16, (unsigned short)(rounded >> 16));
}
#else
KILN_DEVICE KILN_FORCEINLINE float to_float(__half x) {
  return __half2float(x);
}
KILN_DEVICE KILN_FORCEINLINE void from_float(float x, __half& out) {
  out = __float2half_rn(x);
}
KILN_DEVICE KILN_FORCEINLINE float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
KILN_DEVICE KILN_FORCEINLINE void from_float(float x, __nv_bfloat16& out) {
  out = __float2bfloat16_rn(x);
}
#endif
#endif  // KILN_GPU_COMPILER

}  // namespace kiln
