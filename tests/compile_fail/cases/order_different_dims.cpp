// Values of different dimensions have no order.
// expect: deleted function .*operator<.*A = I; B = K.*different dimensions have no order
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
#ifdef KILN_COMPILE_FAIL
bool less = I(1) < K(2);
#else
bool less = I(1) < I(2);
#endif
int main() {
  return less ? 0 : 1;
}
