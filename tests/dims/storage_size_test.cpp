// Tensor::storage_size (kiln/dims/tensor.hpp): the elements a static tile spans.
#include <doctest/doctest.h>

#include <set>

#include "kiln/dims/tensor.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;
using kiln::Extent;

// Packed: the product of the sizes.
static_assert(kiln::Tensor<float, Extent<I, 64>, Extent<K, 32>>::storage_size() == 64 * 32);
static_assert(kiln::Tensor<float, Extent<K, 7>>::storage_size() == 7);
// Padded rows: the last row ends at its last column, not at its padded end.
static_assert(kiln::Tensor<float, Extent<I, 64, 40>, Extent<K, 32>>::storage_size() ==
              63 * 40 + 32);
// Column-major: K outermost.
static_assert(kiln::Tensor<float, Extent<K, 32>, Extent<I, 16>>::storage_size() == 32 * 16);
// Two folds of K: (K8:4, I:16, K:8) spans 4 * 128.
static_assert(kiln::Tensor<float, Extent<K8, 4>, Extent<I, 16>, Extent<K, 8>>::storage_size() ==
              4 * 16 * 8);
// A broadcast dimension (stride 0) adds nothing.
static_assert(kiln::Tensor<float, Extent<I, 8, 0>, Extent<K, 32>>::storage_size() == 32);
// A const view spans the same.
static_assert(kiln::Tensor<const float, Extent<I, 4>, Extent<K, 4>>::storage_size() == 16);

// Every element's address of a tensor of type T, as offsets from its data.
template <class T>
std::set<int> offsets_of(const T& t) {
  std::set<int> out;
  for (int i = 0; i < t.template size<I>().get(); ++i) {
    for (int k = 0; k < t.template size<K>().get(); ++k) {
      out.insert(static_cast<int>(t[I(i) + K(k)].ptr() - t.data()));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("storage_size is one past the largest offset of a padded tile") {
  using T = kiln::Tensor<float, Extent<I, 5, 12>, Extent<K, 9>>;
  float buf[T::storage_size()] = {};
  auto offsets = offsets_of(T(buf));
  CHECK(*offsets.rbegin() + 1 == T::storage_size());
  CHECK(*offsets.begin() == 0);
}

TEST_CASE("a swizzled tile's storage_size covers every swizzled offset") {
  // Swizzle<3, 2, 4> moves bits 6..8 into bits 2..4: a (I:8, K:64) tile stays a
  // permutation of [0, 512).
  using Full = kiln::SwizzledTensor<float, kiln::Swizzle<3, 2, 4>, Extent<I, 8>, Extent<K, 64>>;
  static_assert(Full::storage_size() == 8 * 64);
  float full[Full::storage_size()] = {};
  auto all = offsets_of(Full(full));
  CHECK(all.size() == 8 * 64);
  CHECK(*all.rbegin() + 1 == Full::storage_size());

  // (I:17, K:4) spans [0, 68), but the last row (offsets 64..67, bit 6 set) moves to
  // 68..71 once swizzled: the storage rounds up to 72.
  using Ragged = kiln::SwizzledTensor<float, kiln::Swizzle<3, 2, 4>, Extent<I, 17>, Extent<K, 4>>;
  static_assert(Ragged::storage_size() == 72);
  float ragged[Ragged::storage_size()] = {};
  auto some = offsets_of(Ragged(ragged));
  CHECK(some.size() == 17 * 4);
  CHECK(*some.rbegin() == 71);
}
