// Values of different dimensions do not compare.
// expect: deleted function .*operator==.*A = I; B = K.*different dimensions never compare
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
#ifdef KILN_COMPILE_FAIL
bool same = I(1) == K(1);
#else
bool same = I(1) == I(1);
#endif
int main() {
  return same ? 0 : 1;
}
