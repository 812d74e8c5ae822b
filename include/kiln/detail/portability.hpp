#pragma once
/// Portability macros shared by host code, CUDA (nvcc, NVRTC) and HIP (clang, hipRTC).
/// It sits below both dims/ and device/ (neither includes the other); it is the one
/// header of kiln/detail/ that device code includes.
///
/// Everything here compiles without any standard library or vendor header, so a
/// kernel source can include kiln's device headers under NVRTC, hipRTC or clang's
/// HIP mode unchanged, and host unit tests can include them as plain C++.

#if defined(__CUDACC__) || defined(__HIPCC__) || defined(__CUDACC_RTC__) || defined(__HIPCC_RTC__)
#define KILN_GPU_COMPILER 1
#else
#define KILN_GPU_COMPILER 0
#endif

/// Asks a GPU compiler to unroll the loop that follows (host compilers ignore it quietly).
#if KILN_GPU_COMPILER
#define KILN_UNROLL _Pragma("unroll")
#else
#define KILN_UNROLL
#endif

#if defined(__HIP__) || defined(__HIPCC__) || defined(__HIPCC_RTC__)
#define KILN_HIP 1
#else
#define KILN_HIP 0
#endif

/// True while compiling code that runs on the GPU (the device pass of a GPU compiler).
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define KILN_DEVICE_PASS 1
#else
#define KILN_DEVICE_PASS 0
#endif

#if KILN_GPU_COMPILER && !KILN_HIP
// nvcc and NVRTC predefine the CUDA execution-space keywords.
#define KILN_DEVICE __device__
#define KILN_HOST_DEVICE __host__ __device__
#define KILN_GLOBAL __global__
#define KILN_SHARED __shared__
#define KILN_FORCEINLINE __forceinline__
#elif KILN_GPU_COMPILER
// clang's HIP mode and hipRTC understand the attributes even without the HIP headers.
#define KILN_DEVICE __attribute__((device))
#define KILN_HOST_DEVICE __attribute__((host)) __attribute__((device))
#define KILN_GLOBAL __attribute__((global))
#define KILN_SHARED __attribute__((shared))
#define KILN_FORCEINLINE inline __attribute__((always_inline))
#else
#define KILN_DEVICE
#define KILN_HOST_DEVICE
#define KILN_GLOBAL
#define KILN_SHARED
#define KILN_FORCEINLINE inline
#endif

/// A kernel entry point with an unmangled name, for launching by name:
///   KILN_KERNEL void my_kernel(float* out) { ... }
#define KILN_KERNEL extern "C" KILN_GLOBAL

/// The number of threads that execute in lock step: 32 on NVIDIA GPUs, 64 on CDNA
/// (gfx9) GPUs. Host code has no warp; it sees KILN_WARP_SIZE if defined, else 32, so
/// that host-side unit tests of device helpers can run. Never write 32 in device code.
#if defined(__AMDGCN_WAVEFRONT_SIZE__)
#define KILN_WARP_SIZE_VALUE __AMDGCN_WAVEFRONT_SIZE__
#elif defined(__AMDGCN_WAVEFRONT_SIZE)
#define KILN_WARP_SIZE_VALUE __AMDGCN_WAVEFRONT_SIZE
#elif defined(KILN_WARP_SIZE)
#define KILN_WARP_SIZE_VALUE KILN_WARP_SIZE
#else
#define KILN_WARP_SIZE_VALUE 32
#endif

namespace kiln {

/// Threads per warp (wavefront) on the target being compiled.
inline constexpr int warp_size = KILN_WARP_SIZE_VALUE;

}  // namespace kiln
