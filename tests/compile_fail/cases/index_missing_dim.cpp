// A single dimension the tensor lacks does not index it (Coords would ignore it).
// expect: check_index\(\) \[with X = J;.*this tensor has no dimension of that type
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  float buf[32] = {};
  kiln::Tensor<float, kiln::Extent<I, 4>, kiln::Extent<K, 8>> t(buf);
#ifdef KILN_COMPILE_FAIL
  return *t[J(1)] == 0.0f ? 0 : 1;
#else
  return *t[I(1) + J(1)] == 0.0f ? 0 : 1;
#endif
}
