#pragma once
/// Thread-block clusters (sm_90): the blocks of one cluster run at once on one GPU
/// processing cluster, can wait for each other, and can reach each other's shared memory
/// (distributed shared memory). A launch asks for clusters with rt::LaunchConfig::cluster.
///
///   const unsigned rank = kiln::cluster_block_rank();     // 0 .. cluster_blocks() - 1
///   kiln::cluster_sync();                                 // every thread of every block
///   float* theirs = kiln::cluster_shared(mine, rank ^ 1); // the same place, the neighbour's
///
/// Outside a cluster launch a block is a cluster of one. Includes no standard library; on
/// other targets the calls trap, on the host rank is 0 and a cluster is one block.

#include "mbarrier.hpp"

namespace kiln {

#if KILN_GPU_COMPILER
/// This block's rank in its cluster.
KILN_DEVICE KILN_FORCEINLINE unsigned cluster_block_rank() {
#if KILN_SM90
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
  return 0;
#else
  return 0;
#endif
}

/// Blocks in this block's cluster.
KILN_DEVICE KILN_FORCEINLINE unsigned cluster_blocks() {
#if KILN_SM90
  unsigned n;
  asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(n));
  return n;
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
  return 1;
#else
  return 1;
#endif
}

/// Arrives at the cluster barrier (release: this thread's writes before it are visible to
/// the threads that wait); cluster_wait() waits for every thread of the cluster to arrive.
KILN_DEVICE KILN_FORCEINLINE void cluster_arrive() {
#if KILN_SM90
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
#endif
}
KILN_DEVICE KILN_FORCEINLINE void cluster_wait() {
#if KILN_SM90
  asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#elif KILN_DEVICE_PASS
  detail::trap_no_sm90();
#endif
}
/// Every thread of every block of the cluster meets here.
KILN_DEVICE KILN_FORCEINLINE void cluster_sync() {
  cluster_arrive();
  cluster_wait();
}

/// The address of `p` (in this block's shared memory) in the shared memory of block
/// `rank` of the cluster: plain loads and stores through it reach that block's copy.
template <class T>
KILN_DEVICE KILN_FORCEINLINE T* cluster_shared(T* p, unsigned rank) {
#if KILN_SM90
  unsigned long long out;
  asm volatile("mapa.u64 %0, %1, %2;\n" : "=l"(out) : "l"(p), "r"(rank));
  return reinterpret_cast<T*>(out);
#elif KILN_DEVICE_PASS
  (void)rank;
  detail::trap_no_sm90();
  return p;
#else
  (void)rank;
  return p;
#endif
}

/// Stores a and b at `p` (8-byte aligned, in this block's shared memory) in the shared
/// memory of block `rank` of the cluster, and completes 8 bytes of transactions on the
/// barrier at `bar`'s place in that block when they land (st.async): the receiver waits
/// for them on its barrier (expecting the bytes, Mbarrier::arrive_expect_tx), with no
/// cluster barrier and no fence on this thread's other memory accesses.
KILN_DEVICE KILN_FORCEINLINE void store_async_cluster(float* p, float a, float b,
                                                      const Mbarrier& bar, unsigned rank) {
#if KILN_SM90
  asm volatile(
      "{\n .reg .b32 ra, rb;\n mapa.shared::cluster.u32 ra, %0, %4;\n"
      " mapa.shared::cluster.u32 rb, %1, %4;\n"
      " st.async.shared::cluster.mbarrier::complete_tx::bytes.v2.b32 [ra], {%2, %3}, [rb];\n}\n" ::
          "r"(detail::shared_window_address(p)),
      "r"(bar.address()), "f"(a), "f"(b), "r"(rank)
      : "memory");
#elif KILN_DEVICE_PASS
  (void)p;
  (void)a;
  (void)b;
  (void)bar;
  (void)rank;
  detail::trap_no_sm90();
#endif
}
#endif

}  // namespace kiln
