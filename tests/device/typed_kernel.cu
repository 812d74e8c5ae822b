// A small kernel over every device header, compiled by the nvrtc and hip tests.
// Its static_asserts re-check the typed-dimension rules under each GPU compiler.
#include "kiln/device.hpp"

KILN_DIM(I);
KILN_DIM(K);
KILN_DIM(WARP);
KILN_DIM(LANE);
using K8 = kiln::Fold<K, 8>;

namespace checks {
using namespace kiln;
static_assert(K8(3) + K(4) == K(28), "folds carry");
static_assert(fold<8>(K(28)) == K8(3), "fold");
static_assert(get<K>(I(1) + K8(1) + K(3)) == K(11), "coordinates carry");
static_assert((I(1) + K(2)) == (K(2) + I(1)), "coordinates are order-free");
using Tile = make_layout_t<Extent<K8, 4>, Extent<I, 16>, Extent<K, 8>>;
static_assert(Tile().offset(coords(K(12))) == 1 * 128 + 4, "fold split");
static_assert(Tile().offset(coords(K(7)) + K(5)) == Tile().offset(coords(K8(1)) + K(4)),
              "carry across folds");
static_assert(warp_size == 32 || warp_size == 64, "warp size comes from the target");
}  // namespace checks

// out[i][k] = in[k][i] * scale over a (I:rows, K:32) output with run-time rows; each
// block copies a (K:32, I:32) input tile into shared memory (swizzled) first.
KILN_KERNEL void kiln_typed_transpose(const float* in, float* out, int rows, float scale) {
  using namespace kiln;
  using In = Tensor<const float, Extent<K, 32>, Extent<I, dynamic>>;
  using Out = Tensor<float, Extent<I, dynamic>, Extent<K, 32>>;
  using Smem = SwizzledTensor<float, Swizzle<2, 2, 3>, Extent<K, 32>, Extent<I, 32>>;
  KILN_SHARED float smem_buf[32 * 32];

  In src(in, I(rows));
  Out dst(out, I(rows));
  Smem smem(smem_buf);

  const I row0(block_index() * 32);
  auto src_tile = src.slice<32>(row0);
  for (int k = 0; k < 32; ++k) {
    for (I i : range(I(32)).split(thread_index(), block_size())) {
      if ((src_tile[K(k)][i]).in_bounds() && row0 + i < I(rows))
        *smem[K(k)][i] = *src_tile[K(k)][i];
    }
  }
  sync_threads();

  using Threads = CompoundIndex<Extent<WARP, dynamic>, Extent<LANE, warp_size>>;
  Threads t(thread_index(), WARP(block_size() / warp_size));
  auto dst_tile = dst.slice<32>(row0);
  for (I i : range(I(32)).split(t.get<WARP>().get(), t.size<WARP>().get())) {
    for (K k : range(K(32)).split(t.get<LANE>().get(), warp_size)) {
      if (row0 + i < I(rows)) *dst_tile[i + k] = *smem[k][i] * scale;
    }
  }
}

// Wide loads: each thread moves 4 floats at once along the contiguous dimension.
KILN_KERNEL void kiln_typed_vector_copy(const float* in, float* out, int rows) {
  using namespace kiln;
  using T = Tensor<const float, Extent<I, dynamic>, Extent<K8, 4>, Extent<K, 8>>;
  using U = Tensor<float, Extent<I, dynamic>, Extent<K8, 4>, Extent<K, 8>>;
  static_assert(is_vectorizable<T, 4>, "an aligned run of 4 floats is one load");
  T src(in, I(rows));
  U dst(out, I(rows));
  const int n = rows * 8;  // vectors of 4
  for (int v = block_index() * block_size() + thread_index(); v < n;
       v += grid_size() * block_size()) {
    auto c = I(v / 8) + K((v % 8) * 4);
    store_vector<4>(dst[c], load_vector<4>(src[c]));
  }
}

// The whole-tensor helpers in device code: a (ROW:8, COL:32) tile is filled, copied
// transposed into shared memory and back, and scaled through for_each.
KILN_KERNEL void kiln_typed_tile_helpers(const float* in, float* out, float scale) {
  using namespace kiln;
  using Tile = Tensor<const float, Extent<I, 8>, Extent<K, 32>>;
  using OutTile = Tensor<float, Extent<I, 8>, Extent<K, 32>>;
  using Transposed = Tensor<float, Extent<K, 32>, Extent<I, 8>>;
  KILN_SHARED float buf[8 * 32];
  Tile src(in);
  OutTile dst(out);
  Transposed smem(buf);
  zero(smem, thread_index(), block_size());
  sync_threads();
  copy(smem, src, thread_index(), block_size());
  sync_threads();
  for_each(
      dst, [&](const coords_t<OutTile>& c) { *dst[c] = *smem[c] * scale; }, thread_index(),
      block_size());
}

// Indices on all three axes and warp reductions: each warp sums its lanes' values, the
// maximum and minimum over groups of 8 lanes, and lane 0 writes them, one slot per warp
// of each block of a three-dimensional grid of three-dimensional blocks.
KILN_KERNEL void kiln_typed_warp_reductions(const float* in, float* sums, float* extremes,
                                            int* counts) {
  using namespace kiln;
  const int block =
      block_index_x() + grid_size_x() * (block_index_y() + grid_size_y() * block_index_z());
  const int slot = block * block_warps() + warp_index();
  const float v = in[block * block_threads() + thread_rank()];
  const float total = warp_sum(v);
  const float hi = warp_max<8>(v);
  const float lo = warp_reduce<8>(v, Minimum{});
  const int n = warp_sum(v > 0.0f ? 1 : 0);
  sync_warp();
  if (lane_index() == 0) {
    sums[slot] = total;
    extremes[2 * slot] = hi;
    extremes[2 * slot + 1] = lo;
    counts[slot] = n;
  }
}
