// out[row][col] = in[row][col] * scale[col] over (ROW: run-time, COL: COLS).
// The tensor types and COLS come from the header the host generates (spec.hpp).
// One block per row; each thread handles every block_size()-th column.
#include "spec.hpp"

KILN_KERNEL void scale_rows(In in, Scale scale, Out out) {
  using namespace kiln;
  const ROW row(block_index());
  if (row >= out.size<ROW>()) return;
  for (COL col : range(COL(COLS)).split(thread_index(), block_size())) {
    *out[row][col] = *in[col][row] * *scale[col];  // order-free: in[col][row] == in[row][col]
  }
}
