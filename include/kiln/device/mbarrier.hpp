#pragma once
/// Shared-memory barriers (mbarrier, sm_90): a 64-bit word in shared memory that completes
/// a phase when its expected arrivals have arrived and, for TMA copies, its expected bytes
/// have landed. Threads wait for a phase by its parity (0, 1, 0, ...).
///
///   // the producer of a pipeline stage (one thread)
///   bars.empty(kiln::RING_STAGE(k)).wait_for(kiln::BarrierRing<4>::reuse_parity(k));
///   bars.full(kiln::RING_STAGE(k)).arrive_expect_tx(bytes);   // then the TMA copies
///   // its consumers
///   bars.full(kiln::RING_STAGE(k)).wait_for(kiln::BarrierRing<4>::parity(k));
///   ... read the stage ...
///   if (elected) bars.empty(kiln::RING_STAGE(k)).arrive();
///
/// A BarrierRing<Stages> holds one full and one empty barrier per stage of a Ring and
/// names them by the same RING_STAGE values; the phase to wait for is worked out from the
/// running count k, so a loop carries one counter instead of a stage and a phase.
///
/// Includes no standard library. The instructions are issued under __CUDA_ARCH__ >= 900;
/// on other GPU targets the calls trap, on the host they do nothing.

#include "../dims/dim.hpp"
#include "shared_memory.hpp"
#include "thread.hpp"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define KILN_SM90 1
#else
#define KILN_SM90 0
#endif

namespace kiln {

namespace detail {
#if KILN_DEVICE_PASS && !KILN_SM90
KILN_DEVICE KILN_FORCEINLINE void trap_no_sm90() {
#if KILN_HIP
  __builtin_trap();
#else
  __trap();
#endif
}
#endif

#if KILN_GPU_COMPILER
/// The shared-window address of a shared-memory pointer, as the instructions take it.
KILN_DEVICE KILN_FORCEINLINE unsigned shared_window_address(const void* p) {
#if KILN_DEVICE_PASS && !KILN_HIP
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
#else
  return static_cast<unsigned>(reinterpret_cast<unsigned long long>(p));
#endif
}
#endif
}  // namespace detail

/// One mbarrier in shared memory. Cheap to copy (a pointer).
class Mbarrier {
 public:
  KILN_HOST_DEVICE constexpr explicit Mbarrier(unsigned long long* word) : word_(word) {}
  KILN_HOST_DEVICE constexpr unsigned long long* word() const { return word_; }

#if KILN_GPU_COMPILER
  KILN_DEVICE KILN_FORCEINLINE unsigned address() const {
    return detail::shared_window_address(word_);
  }
  /// Sets the arrivals a phase expects (one thread, before anyone uses the barrier; then
  /// fence_barrier_init() and a block or cluster barrier).
  KILN_DEVICE KILN_FORCEINLINE void init(int arrivals) const {
#if KILN_SM90
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(address()), "r"(arrivals)
                 : "memory");
#elif KILN_DEVICE_PASS
    (void)arrivals;
    detail::trap_no_sm90();
#endif
  }
  /// One arrival.
  KILN_DEVICE KILN_FORCEINLINE void arrive() const {
#if KILN_SM90
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(address()) : "memory");
#elif KILN_DEVICE_PASS
    detail::trap_no_sm90();
#endif
  }
  /// One arrival, and `bytes` more that the phase waits to land (TMA copies count them).
  KILN_DEVICE KILN_FORCEINLINE void arrive_expect_tx(int bytes) const {
#if KILN_SM90
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(address()),
                 "r"(bytes)
                 : "memory");
#elif KILN_DEVICE_PASS
    (void)bytes;
    detail::trap_no_sm90();
#endif
  }
  /// One arrival on the barrier at the same place in the shared memory of block `rank`
  /// of this cluster (rank may be this block's own).
  KILN_DEVICE KILN_FORCEINLINE void arrive_cluster(unsigned rank) const {
#if KILN_SM90
    asm volatile(
        "{\n .reg .b32 remote;\n mapa.shared::cluster.u32 remote, %0, %1;\n"
        " mbarrier.arrive.release.cluster.shared::cluster.b64 _, [remote];\n}\n" ::"r"(address()),
        "r"(rank)
        : "memory");
#elif KILN_DEVICE_PASS
    (void)rank;
    detail::trap_no_sm90();
#endif
  }
  /// One arrival on the barrier at the same place in the shared memory of block `rank`
  /// of this cluster, ordering only this thread's earlier accesses (CTA scope): enough to
  /// say "done reading this stage" once the reads have completed (wgmma_wait_group), and
  /// far cheaper than arrive_cluster's cluster-wide release, which also publishes this
  /// thread's writes to the other block.
  KILN_DEVICE KILN_FORCEINLINE void arrive_peer(unsigned rank) const {
#if KILN_SM90
    asm volatile(
        "{\n .reg .b32 remote;\n mapa.shared::cluster.u32 remote, %0, %1;\n"
        " mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(address()),
        "r"(rank)
        : "memory");
#elif KILN_DEVICE_PASS
    (void)rank;
    detail::trap_no_sm90();
#endif
  }
  /// Whether the phase of `parity` has completed (a bounded wait in hardware).
  KILN_DEVICE KILN_FORCEINLINE bool try_wait(int parity) const {
#if KILN_SM90
    unsigned done;
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        " selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address()), "r"(parity)
        : "memory");
    return done != 0;
#elif KILN_DEVICE_PASS
    (void)parity;
    detail::trap_no_sm90();
    return true;
#else
    (void)parity;
    return true;
#endif
  }
  /// Waits until the phase of `parity` has completed.
  KILN_DEVICE KILN_FORCEINLINE void wait_for(int parity) const {
    while (!try_wait(parity)) {
    }
  }
  /// try_wait with cluster-wide acquire: what other blocks of the cluster wrote before
  /// their (remote) arrivals is visible after it returns true.
  KILN_DEVICE KILN_FORCEINLINE bool try_wait_cluster(int parity) const {
#if KILN_SM90
    unsigned done;
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], "
        "%2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(address()), "r"(parity)
        : "memory");
    return done != 0;
#elif KILN_DEVICE_PASS
    (void)parity;
    detail::trap_no_sm90();
    return true;
#else
    (void)parity;
    return true;
#endif
  }
  /// Waits (cluster-wide acquire) until the phase of `parity` has completed.
  KILN_DEVICE KILN_FORCEINLINE void wait_for_cluster(int parity) const {
    while (!try_wait_cluster(parity)) {
    }
  }
#endif

 private:
  unsigned long long* word_;
};

#if KILN_GPU_COMPILER
/// Makes barrier initialisation visible to the async proxy (TMA) and the cluster; follow
/// it with a block (or cluster) barrier.
KILN_DEVICE KILN_FORCEINLINE void fence_barrier_init() {
#if KILN_SM90
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
#endif
}
#endif

/// A full and an empty barrier for each stage of a Stages-deep Ring, named by the ring's
/// RING_STAGE values (modulo Stages). Carved from shared memory like a tile:
/// `smem.take<kiln::BarrierRing<4>>()`.
///
/// With a running count k of stages filled (k = 0, 1, 2, ... across every tile a block
/// works on), stage k's contents are ready when full(k) completes phase parity(k), and
/// the producer may refill it once empty(k) completed reuse_parity(k) (for the first
/// Stages fills that is the phase before the first, which counts as complete).
template <int Stages>
class BarrierRing {
  static_assert(Stages > 0, "a barrier ring has at least one stage");

 public:
  using element_type = unsigned long long;
  static constexpr int stages = Stages;
  KILN_HOST_DEVICE constexpr explicit BarrierRing(unsigned long long* words) : words_(words) {}
  /// Two barriers a stage.
  KILN_HOST_DEVICE static constexpr int storage_size() { return 2 * Stages; }

  template <class D>
  KILN_HOST_DEVICE constexpr Mbarrier full(D k) const {
    return Mbarrier(words_ + stage_of(k));
  }
  template <class D>
  KILN_HOST_DEVICE constexpr Mbarrier empty(D k) const {
    return Mbarrier(words_ + Stages + stage_of(k));
  }
  /// The parity of the phase of full() that holds fill k.
  KILN_HOST_DEVICE static constexpr int parity(int k) { return (k / Stages) & 1; }
  /// The parity of the phase of empty() that frees the stage for fill k.
  KILN_HOST_DEVICE static constexpr int reuse_parity(int k) { return ((k / Stages) & 1) ^ 1; }

#if KILN_GPU_COMPILER
  /// Sets every full barrier to expect `producers` arrivals and every empty one
  /// `consumers` (one thread; then fence_barrier_init() and a barrier).
  KILN_DEVICE KILN_FORCEINLINE void init(int producers, int consumers) const {
    for (int s = 0; s < Stages; ++s) {
      Mbarrier(words_ + s).init(producers);
      Mbarrier(words_ + Stages + s).init(consumers);
    }
  }
#endif

 private:
  template <class D>
  KILN_HOST_DEVICE static constexpr int stage_of(D k) {
    static_assert(is_dim<D> && same_dimension<D, RING_STAGE>,
                  "a barrier ring is indexed by RING_STAGE values, as its Ring is");
    return dim_cast<Module<RING_STAGE, Stages>>(k).get();
  }
  unsigned long long* words_;
};

}  // namespace kiln
