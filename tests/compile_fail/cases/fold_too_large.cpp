// A finer fold must fit under the next coarser fold of its dimension, or elements collide.
// expect: a finer fold's size must fit under the next coarser fold
#include "kiln/dims.hpp"
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;
int main() {
  float buf[64] = {};
#ifdef KILN_COMPILE_FAIL
  kiln::Tensor<float, kiln::Extent<K8, 4>, kiln::Extent<K, 16>> t(buf);
#else
  kiln::Tensor<float, kiln::Extent<K8, 4>, kiln::Extent<K, 8>> t(buf);
#endif
  return t.num_elements() > 0 ? 0 : 1;
}
