#pragma once
/// Global-memory accesses with a say in how they are cached and ordered, for kernels
/// whose blocks talk through global memory (kernels/norm.cu's split rows):
///
///   const auto keep = kiln::l2_evict_last();    // an L2 eviction policy (sm_80 and later)
///   Vec v = kiln::load_hinted(p, keep);         // a 16-byte load under that policy
///   kiln::store_hinted(q, v, kiln::l2_evict_first());
///   kiln::store_relaxed(slot, word);            // 64-bit, relaxed, GPU scope
///   while (kiln::load_relaxed(slot) != word) {}
///
/// A relaxed 64-bit access is single-copy atomic: a reader sees a whole word some block
/// wrote, never half of one, and a tag in one half vouches for the value in the other.
/// On AMD GPUs and below sm_80 the policies are 0 and the hinted accesses plain ones.

#include "thread.hpp"

#if !KILN_HIP && !(defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800)
#define KILN_L2_HINTS_ 1  // createpolicy and .L2::cache_hint: sm_80 and later
#else
#define KILN_L2_HINTS_ 0
#endif

namespace kiln {

/// An L2 eviction policy (createpolicy): lines loaded or stored under it are evicted
/// last (kept for a read soon after) or first (streamed through).
KILN_DEVICE KILN_FORCEINLINE unsigned long long l2_evict_last() {
  unsigned long long p = 0;
#if KILN_L2_HINTS_
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(p));
#endif
  return p;
}
KILN_DEVICE KILN_FORCEINLINE unsigned long long l2_evict_first() {
  unsigned long long p = 0;
#if KILN_L2_HINTS_
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
#endif
  return p;
}

/// A 16-byte load from global memory under L2 policy `policy`, not kept in L1.
template <class V>
KILN_DEVICE KILN_FORCEINLINE V load_hinted(const V* p, unsigned long long policy) {
  static_assert(sizeof(V) == 16, "load_hinted moves 16-byte vectors");
#if !KILN_L2_HINTS_
  (void)policy;
  return *p;
#else
  V v;
  unsigned* r = reinterpret_cast<unsigned*>(&v);  // (as load_vector reads a Vec)
  asm volatile("ld.global.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "l"(p), "l"(policy));
  return v;
#endif
}

/// A 16-byte store to global memory under L2 policy `policy`.
template <class V>
KILN_DEVICE KILN_FORCEINLINE void store_hinted(V* p, const V& v, unsigned long long policy) {
  static_assert(sizeof(V) == 16, "store_hinted moves 16-byte vectors");
#if !KILN_L2_HINTS_
  (void)policy;
  *p = v;
#else
  const unsigned* r = reinterpret_cast<const unsigned*>(&v);
  asm volatile("st.global.L2::cache_hint.v4.u32 [%0], {%1, %2, %3, %4}, %5;" ::"l"(p), "r"(r[0]),
               "r"(r[1]), "r"(r[2]), "r"(r[3]), "l"(policy)
               : "memory");
#endif
}

/// A relaxed 64-bit load and store at GPU scope: what other blocks store is seen, whole,
/// without a fence (and orders nothing else).
KILN_DEVICE KILN_FORCEINLINE unsigned long long load_relaxed(const unsigned long long* p) {
#if KILN_HIP
  return __hip_atomic_load(p, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
#else
  unsigned long long v;
  asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
#endif
}
KILN_DEVICE KILN_FORCEINLINE void store_relaxed(unsigned long long* p, unsigned long long v) {
#if KILN_HIP
  __hip_atomic_store(p, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_AGENT);
#else
  asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
#endif
}

}  // namespace kiln
