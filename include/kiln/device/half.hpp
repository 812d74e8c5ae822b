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

// ---- Two elements at a time, j and j + 1 of an array (a kiln::Vec's `v`; j even):
// to_float_pair(in, j, lo, hi) and from_float_pair(lo, hi, out, j), and whole arrays:
// to_floats(in, out) and from_floats(in, out). bf16 pairs are read as one 32-bit word
// (the low element a shift, the high one a mask: one instruction an element, where the
// element-by-element conversion extracts each half first), and on NVIDIA GPUs f16 and
// bf16 pairs are rounded by one packed conversion (cvt.rn.{f16x2,bf16x2}.f32) rather than
// two and a merge. The values are to_float's and from_float's. (Converting a vector pair
// by pair inside the arithmetic keeps fewer values live than whole arrays first: a
// LayerNorm write over whole arrays spilled where the pairs do not.) ----
namespace detail {
template <class T>
struct StoragePair {
  T lo, hi;
};
}  // namespace detail

template <class T, int N>
KILN_DEVICE KILN_FORCEINLINE void to_float_pair(const T (&in)[N], int j, float& lo, float& hi) {
  lo = to_float(in[j]);
  hi = to_float(in[j + 1]);
}
template <int N>
KILN_DEVICE KILN_FORCEINLINE void to_float_pair(const bf16 (&in)[N], int j, float& lo, float& hi) {
  const unsigned word = __builtin_bit_cast(unsigned, detail::StoragePair<bf16>{in[j], in[j + 1]});
  lo = __builtin_bit_cast(float, word << 16);
  hi = __builtin_bit_cast(float, word & 0xffff0000u);
}

template <class T, int N>
KILN_DEVICE KILN_FORCEINLINE void from_float_pair(float lo, float hi, T (&out)[N], int j) {
  from_float(lo, out[j]);
  from_float(hi, out[j + 1]);
}
#if !KILN_HIP
template <int N>
KILN_DEVICE KILN_FORCEINLINE void from_float_pair(float lo, float hi, __nv_bfloat16 (&out)[N],
                                                  int j) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
  out[j] = pair.x;
  out[j + 1] = pair.y;
}
template <int N>
KILN_DEVICE KILN_FORCEINLINE void from_float_pair(float lo, float hi, __half (&out)[N], int j) {
  const __half2 pair = __floats2half2_rn(lo, hi);
  out[j] = pair.x;
  out[j + 1] = pair.y;
}
#endif

template <class T, int N>
KILN_DEVICE KILN_FORCEINLINE void to_floats(const T (&in)[N], float (&out)[N]) {
#pragma unroll
  for (int j = 0; j + 1 < N; j += 2) to_float_pair(in, j, out[j], out[j + 1]);
  if constexpr (N % 2 != 0) out[N - 1] = to_float(in[N - 1]);
}
template <class T, int N>
KILN_DEVICE KILN_FORCEINLINE void from_floats(const float (&in)[N], T (&out)[N]) {
#pragma unroll
  for (int j = 0; j + 1 < N; j += 2) from_float_pair(in[j], in[j + 1], out, j);
  if constexpr (N % 2 != 0) from_float(in[N - 1], out[N - 1]);
}
#endif  // KILN_GPU_COMPILER

}  // namespace kiln
