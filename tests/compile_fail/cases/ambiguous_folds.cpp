// Two folds of one dimension with the same unit make indexing ambiguous.
// expect: a layout may hold each fold of a dimension once
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  float buf[64] = {};
#ifdef KILN_COMPILE_FAIL
  kiln::Tensor<float, kiln::Extent<kiln::Module<K, 8>, 8>, kiln::Extent<K, 8>> t(buf);
#else
  kiln::Tensor<float, kiln::Extent<kiln::Fold<K, 8>, 8>, kiln::Extent<K, 8>> t(buf);
#endif
  return t.num_elements() == 64 ? 0 : 1;
}
