// Column sums of f32 partial rows, written in the storage type: for each of kOutputs
// (blockIdx.y) matrices of `parts` rows of kCols floats,
//   out[c] = sum over p of partial[p][c]
// added in an order fixed by the launch alone (the same bits on every run): a block's
// (GROUP: kGroups) x (COL: kColsPerBlock) threads each take the partial rows
// p = GROUP, GROUP + kGroups, ... in four chains (the j-th of every four such rows to
// chain j, so that four loads are in flight, not one), add the chains as
// (c0 + c1) + (c2 + c3), then thread GROUP 0 adds the groups' sums in group order.
// A column's reads are consecutive across a warp's lanes. With fewer partial rows than
// groups (a split backward leaves 2 or 4) most of those threads would have nothing to add:
// there, where the rows are whole 16-byte vectors from a 16-byte aligned base
// (kiln::ops::detail::column_sum_few, which the host's grid follows), each thread takes 4
// columns of its own and every partial row in order, in the same four chains, loading a
// vector of 4 floats a row. (On an H100 the grouped kernel took 61 us, a quarter of
// LayerNorm's 64 x 1M backward, to add 2 partial rows of 1M columns: 65536 blocks each
// loading 64 floats.)
//
// The host (include/kiln/ops/norm.hpp: the norms' dweight and dbias) generates spec.hpp:
//   tensors     Out: (COL: kCols), f16 / bf16 / f32 storage (its element type is used)
//   constants   kCols, kColsPerBlock, kGroups
//   KILN_KERNEL_NAME, e.g. column_sum__f16__cols8192, column_sum__f16__cols512__g32
#include "kiln/device/grid_dependency.hpp"
#include "kiln/device/half.hpp"
#include "spec.hpp"

namespace column_sum {
using Elem = Out::element_type;
constexpr int kThreads = kColsPerBlock * kGroups;
static_assert(kThreads <= 1024, "a block of at most 1024 threads");
using Quad = kiln::Vec<float, 4>;

/// The few-parts path (include/kiln/ops/detail/norm_configs.hpp's column_sum_few says when):
/// thread t of the grid adds columns 4t to 4t + 3.
KILN_DEVICE KILN_FORCEINLINE void few_parts(const float* in, Elem* out, int parts) {
  const long long col = ((long long)kiln::block_index_x() * kThreads + kiln::thread_index()) * 4;
  if (col >= kCols) return;
  const Quad* at = reinterpret_cast<const Quad*>(in + col);
  Quad chain[4] = {};
  auto add = [&](int j, int p) {
    const Quad v = at[(long long)p * (kCols / 4)];
#pragma unroll
    for (int e = 0; e < 4; ++e) chain[j][e] += v[e];
  };
  int p = 0;
  for (; p + 3 < parts; p += 4) {
#pragma unroll
    for (int j = 0; j < 4; ++j) add(j, p + j);
  }
#pragma unroll
  for (int j = 0; j < 3; ++j) {
    if (p + j < parts) add(j, p + j);
  }
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    kiln::from_float((chain[0][e] + chain[1][e]) + (chain[2][e] + chain[3][e]), out[col + e]);
  }
}
}  // namespace column_sum

/// partial: gridDim.y matrices of parts x kCols floats, one after the other; out0, out1:
/// kCols elements each, out1 used where gridDim.y is 2. Launched with kColsPerBlock x
/// kGroups threads (x fastest) and (ceil(kCols / kColsPerBlock), outputs) blocks, or,
/// where column_sum_few holds, (ceil(kCols / (4 kColsPerBlock kGroups)), outputs).
KILN_KERNEL void KILN_KERNEL_NAME(const float* partial, column_sum::Elem* out0,
                                  column_sum::Elem* out1, int parts) {
  using column_sum::Elem;
  KILN_SHARED float sums[kGroups][kColsPerBlock];
  const int x = kiln::thread_index() % kColsPerBlock;
  const int group = kiln::thread_index() / kColsPerBlock;
  const int col = kiln::block_index_x() * kColsPerBlock + x;
  const int which = kiln::block_index_y();
  const float* in = partial + (long long)which * parts * kCols;
  // (Launched programmatically after the kernel that writes `partial`: wait for it.)
  kiln::wait_prior_grid();
  if constexpr (kCols % 4 == 0) {
    // (The host's column_sum_few: the same test for every thread.)
    if (parts < kGroups && reinterpret_cast<unsigned long long>(partial) % 16 == 0) {
      column_sum::few_parts(in, which == 0 ? out0 : out1, parts);
      return;
    }
  }
  float chain[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (col < kCols) {
    const float* at = in + col;
    int p = group;
    for (; p + 3 * kGroups < parts; p += 4 * kGroups) {
#pragma unroll
      for (int j = 0; j < 4; ++j) chain[j] += at[(long long)(p + j * kGroups) * kCols];
    }
#pragma unroll
    for (int j = 0; j < 3; ++j) {
      if (p + j * kGroups < parts) chain[j] += at[(long long)(p + j * kGroups) * kCols];
    }
  }
  sums[group][x] = (chain[0] + chain[1]) + (chain[2] + chain[3]);
  kiln::sync_threads();
  if (group != 0 || col >= kCols) return;
  float total = sums[0][x];
#pragma unroll
  for (int g = 1; g < kGroups; ++g) total += sums[g][x];
  Elem* out = which == 0 ? out0 : out1;
  kiln::from_float(total, out[col]);
}
