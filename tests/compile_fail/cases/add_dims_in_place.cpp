// += takes only the same dimension.
// expect: no match for .operator\+=.|cannot convert
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  I i(1);
#ifdef KILN_COMPILE_FAIL
  i += K(1);
#else
  i += I(1);
#endif
  return i.get() == 2 ? 0 : 1;
}
