// A tensor with a run-time extent needs that extent, as a value of its dimension.
// expect: a dimension declared with a dynamic size needs its size
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  float buf[32] = {};
#ifdef KILN_COMPILE_FAIL
  kiln::Tensor<float, kiln::Extent<I, kiln::dynamic>, kiln::Extent<K, 8>> t(buf);
#else
  kiln::Tensor<float, kiln::Extent<I, kiln::dynamic>, kiln::Extent<K, 8>> t(buf, I(4));
#endif
  return t.num_elements() == 32 ? 0 : 1;
}
