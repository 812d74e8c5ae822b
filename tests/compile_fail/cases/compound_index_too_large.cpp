// A compound index whose static sizes multiply past int (the linear index it decomposes).
// expect: a compound index spans at most 2\^31 - 1 points
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
int main() {
#ifdef KILN_COMPILE_FAIL
  using Big = kiln::CompoundIndex<kiln::Extent<I, 65536>, kiln::Extent<J, 65536>>;
#else
  using Big = kiln::CompoundIndex<kiln::Extent<I, 32768>, kiln::Extent<J, 65535>>;
#endif
  Big b(70000);
  return b.get<J>().get() == 70000 % 65535 && b.get<I>().get() == 1 ? 0 : 1;
}
