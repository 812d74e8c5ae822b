#include <doctest/doctest.h>

#include "kiln/dims/dim.hpp"

KILN_DIM(I);
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;

TEST_CASE("folds carry into each other") {
  CHECK(K8(3) + K(4) == K(28));
}
