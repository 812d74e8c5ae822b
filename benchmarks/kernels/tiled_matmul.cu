// C = A x B over (M, N, K) in fp32: a typed-dimension tiled kernel of realistic size,
// used by benchmarks/jit_cache to time compiles and cache hits.
//
//   A: (M: rows, K: depth)   B: (K: depth, N: cols)   C: (M: rows, N: cols), run-time sizes
//   block tile (M:64, N:64), depth step K:16; 256 threads, each computing (M:4, N:4)
#include "kiln/device.hpp"

KILN_DIM(M);
KILN_DIM(N);
KILN_DIM(K);
KILN_DIM(TM);  // thread row within the block
KILN_DIM(TN);  // thread column within the block
KILN_DIM(BM);  // block row
KILN_DIM(BN);  // block column

namespace tile {
constexpr int m = 64, n = 64, k = 16, per_thread = 4;
}

KILN_KERNEL void tiled_matmul(const float* a, const float* b, float* c, int rows, int cols,
                              int depth) {
  using namespace kiln;
  Tensor<const float, Extent<M, dynamic>, Extent<K, dynamic>> A(a, M(rows), K(depth));
  Tensor<const float, Extent<K, dynamic>, Extent<N, dynamic>> B(b, K(depth), N(cols));
  Tensor<float, Extent<M, dynamic>, Extent<N, dynamic>> C(c, M(rows), N(cols));

  // Shared tiles; B's is padded by 4 floats per row against bank conflicts.
  KILN_SHARED float a_buf[tile::k * tile::m];
  KILN_SHARED float b_buf[tile::k * (tile::n + 4)];
  Tensor<float, Extent<K, tile::k>, Extent<M, tile::m>> As(a_buf);  // transposed on load
  Tensor<float, Extent<K, tile::k>, Extent<N, tile::n, tile::n + 4>> Bs(b_buf);

  using Blocks = CompoundIndex<Extent<BM, dynamic>, Extent<BN, dynamic>>;
  Blocks blk(block_index(), BM((rows + tile::m - 1) / tile::m), BN((cols + tile::n - 1) / tile::n));
  using Threads =
      CompoundIndex<Extent<TM, tile::m / tile::per_thread>, Extent<TN, tile::n / tile::per_thread>>;
  Threads thr(thread_index());

  const M m0(blk.get<BM>().get() * tile::m);
  const N n0(blk.get<BN>().get() * tile::n);
  const M tm(thr.get<TM>().get() * tile::per_thread);
  const N tn(thr.get<TN>().get() * tile::per_thread);

  float acc[tile::per_thread][tile::per_thread] = {};
  for (K k0 : range(K(0), K(depth), tile::k)) {
    // Stage the tiles: every thread loads its share; out-of-range elements read as zero.
    for (int i = thread_index(); i < As.num_elements(); i += block_size()) {
      const auto at = As.coords_of(i);
      const auto src = A[m0 + k0][at];
      *As[at] = src.in_bounds() ? *src : 0.0f;
    }
    for (int i = thread_index(); i < Bs.num_elements(); i += block_size()) {
      const auto at = Bs.coords_of(i);
      const auto src = B[n0 + k0][at];
      *Bs[at] = src.in_bounds() ? *src : 0.0f;
    }
    sync_threads();
    for (K k : range(K(tile::k))) {
      float av[tile::per_thread], bv[tile::per_thread];
      for (int i = 0; i < tile::per_thread; ++i) av[i] = *As[k][tm + M(i)];
      for (int j = 0; j < tile::per_thread; ++j) bv[j] = *Bs[k][tn + N(j)];
      for (int i = 0; i < tile::per_thread; ++i)
        for (int j = 0; j < tile::per_thread; ++j) acc[i][j] += av[i] * bv[j];
    }
    sync_threads();
  }
  for (int i = 0; i < tile::per_thread; ++i) {
    for (int j = 0; j < tile::per_thread; ++j) {
      auto out = C[m0 + tm + M(i)][n0 + tn + N(j)];
      if (out.in_bounds()) *out = acc[i][j];
    }
  }
}
