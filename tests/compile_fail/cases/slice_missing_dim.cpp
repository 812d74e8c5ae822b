// A tensor is sliced only along a dimension it has.
// expect: slice: this tensor has no dimension of that type
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  float buf[32] = {};
  kiln::Tensor<float, kiln::Extent<I, 4>, kiln::Extent<K, 8>> t(buf);
#ifdef KILN_COMPILE_FAIL
  auto s = t.slice<2>(J(1));
#else
  auto s = t.slice<2>(I(1));
#endif
  return s.num_elements() == 16 ? 0 : 1;
}
