#pragma once
/// Programmatic dependent launch (sm_90): a kernel launched with
/// rt::LaunchConfig::programmatic may start while the kernel before it in its stream is
/// still running, so that its blocks are resident and waiting when that kernel ends rather
/// than launched after it. Before it reads anything the kernel before it wrote, it waits:
///
///   kiln::wait_prior_grid();      // every block of the grid before has finished, and
///                                 // its writes are visible
///   ... read what it wrote ...
///
/// and the kernel before it may let the dependent grid be scheduled before its own blocks
/// end (once each of its blocks has called this, or ended), typically when a block has no
/// more use for much of the GPU:
///
///   kiln::release_dependent_grid();
///
/// Neither call changes what a kernel computes: the wait returns at once where the launch
/// was an ordinary one (every kernel before it in the stream has then finished), and the
/// release only moves when the dependent grid may start. Below sm_90 and on HIP both do
/// nothing. Includes no standard library.

#include "../detail/portability.hpp"

namespace kiln {

#if KILN_GPU_COMPILER
/// Waits until the grid this one depends on (the kernel before it in the stream) has
/// finished and its memory operations are visible; at once for an ordinary launch.
KILN_DEVICE KILN_FORCEINLINE void wait_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

/// Lets the grid launched after this one with LaunchConfig::programmatic be scheduled
/// once every block of this grid has called this or ended.
KILN_DEVICE KILN_FORCEINLINE void release_dependent_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
#endif  // KILN_GPU_COMPILER

}  // namespace kiln
