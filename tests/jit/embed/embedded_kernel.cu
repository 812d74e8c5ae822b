// A kernel compiled into the test binary by kiln_embed_sources(); no file is read.
#include "kiln/device.hpp"
KILN_DIM(N);
KILN_KERNEL void embedded_fill(float* out, int n) {
  using namespace kiln;
  Tensor<float, Extent<N, dynamic>> t(out, N(n));
  for (N i :
       range(N(n)).split(block_index() * block_size() + thread_index(), grid_size() * block_size()))
    *t[i] = float(i.get());
}
