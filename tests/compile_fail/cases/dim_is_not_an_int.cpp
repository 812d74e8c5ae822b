// A dimension value does not silently become a plain int.
// expect: cannot convert .I. to .int.
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
#ifdef KILN_COMPILE_FAIL
int v = I(3);
#else
int v = I(3).get();
#endif
int main() {
  return v == 3 ? 0 : 1;
}
