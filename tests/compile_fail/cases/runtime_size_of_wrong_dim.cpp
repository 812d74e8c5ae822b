// A run-time size given as the wrong dimension is rejected, not used for another.
// expect: takes only the run-time sizes
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  float buf[32] = {};
#ifdef KILN_COMPILE_FAIL
  kiln::Tensor<float, kiln::Extent<I, kiln::dynamic>, kiln::Extent<K, 8>> t(buf, I(4), K(8));
#else
  kiln::Tensor<float, kiln::Extent<I, kiln::dynamic>, kiln::Extent<K, 8>> t(buf, I(4));
#endif
  return t.num_elements() == 32 ? 0 : 1;
}
