// A function taking an I does not take a K.
// expect: could not convert .*K.* to .I.
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int twice(I i) {
  return 2 * i.get();
}
#ifdef KILN_COMPILE_FAIL
int v = twice(K(3));
#else
int v = twice(I(3));
#endif
int main() {
  return v == 6 ? 0 : 1;
}
