// out[row][col] = in[row][col] * scale[col] + bias, with the tensor types from spec.hpp
// (made by the host from its own kiln::Tensor types); scale_by<N> is a template kernel.
#include "spec.hpp"

KILN_KERNEL void scale_rows(In in, Scale scale, Out out, float bias) {
  using namespace kiln;
  const ROW row(block_index());
  if (row >= out.size<ROW>()) return;
  for (COL col : range(COL(COLS)).split(thread_index(), block_size())) {
    *out[row][col] = *in[col][row] * *scale[col] + bias;
  }
}

template <int N>
__global__ void scale_by(Out out) {
  using namespace kiln;
  const ROW row(block_index());
  for (COL col : range(COL(COLS)).split(thread_index(), block_size())) *out[row][col] *= float(N);
}
