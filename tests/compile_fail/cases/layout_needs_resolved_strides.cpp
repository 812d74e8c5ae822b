// Layout takes resolved strides; a packed one would be silently zero, so it is refused.
// expect: Layout takes resolved strides
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(K);
int main() {
#ifdef KILN_COMPILE_FAIL
  kiln::Layout<kiln::Extent<I, 4>, kiln::Extent<K, 8>> l;
#else
  kiln::make_layout_t<kiln::Extent<I, 4>, kiln::Extent<K, 8>> l;
#endif
  return l.stride<I>() == 8 ? 0 : 1;
}
