#pragma once
// The host side of tests/rt/kernels/scale_rows_test.cu: its tensors as host types, and the
// Spec made from them, for the kiln::kernel tests with and without a GPU.

#include "kiln/rt/kernel.hpp"

namespace scale_rows_test {

KILN_DIM(ROW);
KILN_DIM(COL);
constexpr int cols = 192;
using In = kiln::Tensor<const float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL, cols>>;
using Scale = kiln::Tensor<const float, kiln::Extent<COL, cols>>;
using Out = kiln::Tensor<float, kiln::Extent<ROW, kiln::dynamic>, kiln::Extent<COL, cols>>;

inline kiln::gen::Spec spec() {
  kiln::gen::Spec s;
  s.tensor<In>("In").tensor<Scale>("Scale").tensor<Out>("Out").constant("COLS", cols);
  return s;
}

}  // namespace scale_rows_test
