// A read-only tensor never becomes a writable one (the other way converts implicitly).
// expect: from .BasicTensor<const float,.* to non-scalar type .BasicTensor<float,.* requested
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(K);
using Writable = kiln::Tensor<float, kiln::Extent<I, 4>, kiln::Extent<K, 8>>;
using ReadOnly = kiln::Tensor<const float, kiln::Extent<I, 4>, kiln::Extent<K, 8>>;
float data[32];
#ifdef KILN_COMPILE_FAIL
ReadOnly r(data);
Writable w = r;
#else
Writable w(data);
ReadOnly r = w;
#endif
int main() {
  return r.data() == w.data() ? 0 : 1;
}
