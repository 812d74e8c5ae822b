// y = a * x + y in place over n elements: each call changes y, so a factory that times
// candidates on a call's own arguments must restore y afterwards. VEC elements a thread.
#include "spec.hpp"

KILN_KERNEL void KILN_KERNEL_NAME(X x, Y y, float a) {
  using namespace kiln;
  const int n = y.size<N>().get();
  const int first = (block_index() * block_size() + thread_index()) * VEC;
  for (int v = 0; v < VEC; ++v) {
    const N i(first + v);
    if (i.get() < n) *y[i] = a * *x[i] + *y[i];
  }
}
