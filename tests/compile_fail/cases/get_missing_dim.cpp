// Coordinates have no value for a dimension they do not hold.
// expect: these coordinates have no value for this dimension
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  auto c = I(1) + K(2);
#ifdef KILN_COMPILE_FAIL
  return kiln::get<J>(c).get();
#else
  return kiln::get<K>(c).get() - 2;
#endif
}
