// A compound index's get<> takes only dimensions it covers.
// expect: these coordinates have no value for this dimension
#include "kiln/dims.hpp"
KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);
int main() {
  kiln::CompoundIndex<kiln::Extent<I, 4>, kiln::Extent<K, 8>> idx(13);
#ifdef KILN_COMPILE_FAIL
  return idx.get<J>().get();
#else
  return idx.get<K>().get() - 5;
#endif
}
