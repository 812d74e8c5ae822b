// A pipelined kernel over the shared-memory, async-copy and block headers, compiled by
// the async nvrtc test (sm_80, sm_90) and the hip compile test (gfx942, where the copies
// are synchronous). It sums a (I: rows, K: cols) matrix's tiles, in kStages stages.
#include "kiln/device/async_copy.hpp"
#include "kiln/device/block.hpp"
#include "kiln/device/shared_memory.hpp"
#include "kiln/dims/range.hpp"

KILN_DIM(I);
KILN_DIM(K);

namespace async_kernel {
using namespace kiln;
constexpr int kStages = 3;
constexpr int kThreads = 128;
using Global = Tensor<const float, Extent<I, dynamic>, Extent<K, dynamic>>;
using Tile = Tensor<float, Extent<I, 64>, Extent<K, 32>>;  // (I:64, K:32)
using Staged = Ring<Tile, kStages>;  // (RING_STAGE: 3 wrapping) x (I:64, K:32)
using Swizzled = SwizzledTensor<float, Swizzle<3, 2, 5>, Extent<I, 8>, Extent<K, 32>>;
static_assert(Tile::storage_size() == 64 * 32, "a packed tile");
static_assert(shared_bytes<Staged, Swizzled>() == 3 * 64 * 32 * 4 + 8 * 32 * 4, "carving");
}  // namespace async_kernel

// out[block] = the sum of rows [64 * block, 64 * block + 64) of `in`, all columns, the
// K tiles streamed through a 3-stage ring; launched with kThreads threads and
// shared_bytes<Staged, Swizzled>() bytes of dynamic shared memory.
KILN_KERNEL void KILN_LAUNCH_BOUNDS(async_kernel::kThreads, 1)
    kiln_async_tile_sum(const float* in, float* out, int rows, int cols) {
  using namespace async_kernel;
  SharedCarver smem(dynamic_shared_memory());
  Staged ring = smem.take<Staged>();
  Swizzled extra = smem.take<Swizzled>();
  const Global a(in, I(rows), K(cols));
  const I i0(block_index() * 64);
  const int k_tiles = (cols + 31) / 32;

  // Prologue: stages 0 .. kStages - 2 in flight, a group each (empty groups past the end).
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_tiles)
      async_copy_tile(ring[RING_STAGE(s)], a[i0 + K(32 * s)], thread_index(), kThreads);
    async_commit_group();
  }
  float sum = 0.0f;
  for (int k = 0; k < k_tiles; ++k) {
    // global (I: rows, K: cols) tile at (i0, 32 (k + 2)) -> shared stage k + 2 (mod 3)
    const int next = k + kStages - 1;
    if (next < k_tiles) {
      async_copy_tile(ring[RING_STAGE(next)], a[i0 + K(32 * next)], thread_index(), kThreads);
    }
    async_commit_group();
    async_wait_group<kStages - 1>();  // stage k has landed (for this thread)
    sync_threads();                   // ... and for every thread
    const Tile t = ring[RING_STAGE(k)];
    for (I i : range(I(64)).split(thread_index(), kThreads)) {
      for (int c = 0; c < 32; ++c) sum += *t[i + K(c)];
    }
    sync_threads();  // stage k is read before it is refilled
  }
  async_wait_group<0>();
  async_copy_tile(extra, a[i0], thread_index(), kThreads);
  async_commit_group();
  async_wait_group<0>();
  sync_threads();
  sum += *extra[I(thread_index() % 8) + K(thread_index() / 8 % 32)];
  const float total = block_sum<kThreads>(sum);
  if (thread_index() == 0) out[block_index()] = total;
}
