// out[row][col] = in[row][col] * scale[col], over (ROW: run-time, COL: 256).
// One block per row; each thread handles every block_size()-th column.
#include "kiln/device.hpp"

KILN_DIM(ROW);
KILN_DIM(COL);

KILN_KERNEL void scale_rows(const float* in, const float* scale, float* out, int rows) {
  using namespace kiln;
  using Matrix = Tensor<const float, Extent<ROW, dynamic>, Extent<COL, 256>>;
  using Result = Tensor<float, Extent<ROW, dynamic>, Extent<COL, 256>>;
  Matrix x(in, ROW(rows));
  Result y(out, ROW(rows));
  Tensor<const float, Extent<COL, 256>> s(scale);

  const ROW row(block_index());
  if (row >= x.size<ROW>()) return;
  for (COL col : range(COL(256)).split(thread_index(), block_size())) {
    *y[row][col] = *x[col][row] * *s[col];  // order-free: x[col][row] == x[row][col]
  }
}
