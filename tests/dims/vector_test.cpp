// Vector access (kiln/dims/vector.hpp): Vec alignment, is_vectorizable, load/store.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kiln/dims/vector.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(K);
using K8 = kiln::Fold<K, 8>;
using kiln::dynamic;
using kiln::Extent;
using kiln::Tensor;
using kiln::Vec;

// ---- Vec: alignof == min(16, bytes) for power-of-two sizes ------------------------------
static_assert(alignof(Vec<float, 1>) == 4 && sizeof(Vec<float, 1>) == 4);
static_assert(alignof(Vec<float, 2>) == 8 && sizeof(Vec<float, 2>) == 8);
static_assert(alignof(Vec<float, 4>) == 16 && sizeof(Vec<float, 4>) == 16);
static_assert(alignof(Vec<float, 8>) == 16 && sizeof(Vec<float, 8>) == 32);
static_assert(alignof(Vec<double, 2>) == 16);
static_assert(alignof(Vec<double, 4>) == 16);
static_assert(alignof(Vec<std::uint16_t, 2>) == 4);
static_assert(alignof(Vec<std::uint16_t, 8>) == 16);
static_assert(alignof(Vec<std::uint8_t, 1>) == 1);
static_assert(alignof(Vec<std::uint8_t, 4>) == 4);
static_assert(alignof(Vec<std::uint8_t, 16>) == 16);
static_assert(alignof(Vec<std::uint8_t, 32>) == 16);
// Other sizes: the largest power of two that divides the size.
static_assert(alignof(Vec<float, 3>) == 4 && sizeof(Vec<float, 3>) == 12);
static_assert(alignof(Vec<std::uint8_t, 6>) == 2);
static_assert(Vec<float, 4>::size == 4);
static_assert(kiln::detail::vector_alignment(12) == 4 && kiln::detail::vector_alignment(64) == 16);

// ---- is_vectorizable ---------------------------------------------------------------------
using Rows = Tensor<float, Extent<I, 4>, Extent<K, 32>>;
static_assert(kiln::is_vectorizable<Rows, 1>);
static_assert(kiln::is_vectorizable<Rows, 2>);
static_assert(kiln::is_vectorizable<Rows, 4>);
static_assert(!kiln::is_vectorizable<Rows, 8>, "32 bytes is wider than one access");
static_assert(!kiln::is_vectorizable<Rows, 3>, "12 bytes is no power-of-two access");
// N does not divide the contiguous size: a vector would cross a row.
using Six = Tensor<float, Extent<I, 4>, Extent<K, 6>>;
static_assert(kiln::is_vectorizable<Six, 2>);
static_assert(!kiln::is_vectorizable<Six, 4>);
// No dimension with a static stride of 1.
using Strided = Tensor<float, Extent<I, 4>, Extent<K, 8, 2>>;
static_assert(Strided::layout_type::contiguous_index == -1);
static_assert(!kiln::is_vectorizable<Strided, 1> && !kiln::is_vectorizable<Strided, 4>);
using DynStride = Tensor<float, Extent<I, 4>, Extent<K, 8, dynamic>>;
static_assert(!kiln::is_vectorizable<DynStride, 2>);
// A run-time contiguous size cannot be checked.
using DynInner = Tensor<float, Extent<I, 4>, Extent<K, dynamic>>;
static_assert(!kiln::is_vectorizable<DynInner, 4>);
// A packed stride over a run-time size is the run-time size times a static inner stride,
// so it is a multiple of that stride: (I:n, J:m, K:8) has I's stride m*8, J's 8.
KILN_DIM(J);
using TwoRuntime = Tensor<float, Extent<I, dynamic>, Extent<J, dynamic>, Extent<K, 8>>;
static_assert(TwoRuntime::layout_type::extent_at<0>::stride == kiln::detail::derived);
static_assert(kiln::detail::stride_factor<TwoRuntime::layout_type, 0>() == 8);
static_assert(kiln::is_vectorizable<TwoRuntime, 4>);
static_assert(kiln::is_vectorizable<TwoRuntime, 8> == false, "32 bytes is wider than one access");
using TwoRuntimeHalf = Tensor<std::uint16_t, Extent<I, dynamic>, Extent<J, dynamic>, Extent<K, 8>>;
static_assert(kiln::is_vectorizable<TwoRuntimeHalf, 8>);
// (I:n, J:m, K:6): the strides are multiples of 6, which 2 divides but 4 does not.
using Six2 = Tensor<float, Extent<I, dynamic>, Extent<J, dynamic>, Extent<K, 6>>;
static_assert(kiln::is_vectorizable<Six2, 2>);
static_assert(!kiln::is_vectorizable<Six2, 4>);
// A derived stride over a run-time stride proves nothing: (I:4, J:m stride ld, K:8).
using OverDyn = Tensor<float, Extent<I, 4>, Extent<J, dynamic, dynamic>, Extent<K, 8>>;
static_assert(!kiln::is_vectorizable<OverDyn, 4>);
// A run-time outer size is fine.
using DynOuter = Tensor<float, Extent<I, dynamic>, Extent<K, 32>>;
static_assert(kiln::is_vectorizable<DynOuter, 4>);
// The contiguous dimension need not be the last one.
using Transposed = Tensor<float, Extent<K, 32, 1>, Extent<I, 4, 32>>;
static_assert(kiln::is_vectorizable<Transposed, 4>);
// Element size counts.
static_assert(kiln::is_vectorizable<Tensor<double, Extent<K, 8>>, 2>);
static_assert(!kiln::is_vectorizable<Tensor<double, Extent<K, 8>>, 4>);
static_assert(kiln::is_vectorizable<Tensor<std::uint16_t, Extent<K, 8>>, 8>);
// Folds: the fold's carry ratio bounds the vector.
using Folded = Tensor<float, Extent<I, dynamic>, Extent<K8, 4>, Extent<K, 8>>;
static_assert(kiln::is_vectorizable<Folded, 4>);
static_assert(kiln::is_vectorizable<Tensor<const float, Extent<K8, 4>, Extent<K, 8>>, 4>);
static_assert(!kiln::is_vectorizable<Tensor<std::uint8_t, Extent<K8, 4>, Extent<K, 8>>, 16>);
// A swizzle keeps runs of `contiguous` elements only.
using Sw = kiln::Swizzle<3, 2, 4>;  // contiguous == 4
using Swizzled = kiln::SwizzledTensor<float, Sw, Extent<I, 8>, Extent<K, 64>>;
static_assert(kiln::is_vectorizable<Swizzled, 4>);
static_assert(
    !kiln::is_vectorizable<kiln::SwizzledTensor<std::uint16_t, Sw, Extent<I, 8>, Extent<K, 64>>, 8>,
    "a run of 8 would be broken by a swizzle that keeps runs of 4");
static_assert(
    kiln::is_vectorizable<kiln::SwizzledTensor<std::uint16_t, Sw, Extent<I, 8>, Extent<K, 64>>, 4>);
static_assert(!kiln::is_vectorizable<
              kiln::SwizzledTensor<float, kiln::Swizzle<3, 1, 4>, Extent<I, 8>, Extent<K, 64>>, 4>);

std::vector<float> iota_buffer(int n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (int e = 0; e < n; ++e) v[static_cast<std::size_t>(e)] = static_cast<float>(1000 + e);
  return v;
}

}  // namespace

TEST_CASE("vector: load_vector reads N consecutive elements along the contiguous dim") {
  auto buf = iota_buffer(128);
  Rows t(buf.data());
  auto v = kiln::load_vector<4>(t[I(2)][K(8)]);
  static_assert(std::is_same_v<decltype(v), Vec<float, 4>>);
  for (int j = 0; j < 4; ++j) CHECK(v[j] == static_cast<float>(1000 + 2 * 32 + 8 + j));
  // The start may be given in any order and by coordinates.
  auto w = kiln::load_vector<4>(t[K(8) + I(2)]);
  for (int j = 0; j < 4; ++j) CHECK(w[j] == v[j]);
  // Along a transposed layout, the contiguous dimension is K, listed first.
  Transposed tt(buf.data());
  auto x = kiln::load_vector<2>(tt[I(3)][K(6)]);
  CHECK(x[0] == static_cast<float>(1000 + 3 * 32 + 6));
  CHECK(x[1] == static_cast<float>(1000 + 3 * 32 + 7));
}

TEST_CASE("vector: a const element tensor loads into a Vec of the plain type") {
  const auto buf = iota_buffer(128);
  Tensor<const float, Extent<I, 4>, Extent<K, 32>> t(buf.data());
  auto v = kiln::load_vector<4>(t[I(3)][K(28)]);
  static_assert(std::is_same_v<decltype(v), Vec<float, 4>>);
  for (int j = 0; j < 4; ++j) CHECK(v[j] == static_cast<float>(1000 + 3 * 32 + 28 + j));
}

TEST_CASE("vector: store_vector writes N consecutive elements and nothing else") {
  auto buf = iota_buffer(128);
  Rows t(buf.data());
  Vec<float, 4> v{{-1.0f, -2.0f, -3.0f, -4.0f}};
  kiln::store_vector<4>(t[I(1)][K(4)], v);
  for (int e = 0; e < 128; ++e) {
    const int j = e - (32 + 4);
    const float expected =
        (j >= 0 && j < 4) ? static_cast<float>(-1 - j) : static_cast<float>(1000 + e);
    CHECK(buf[static_cast<std::size_t>(e)] == expected);
  }
  auto back = kiln::load_vector<4>(t[I(1)][K(4)]);
  for (int j = 0; j < 4; ++j) CHECK(back[j] == v[j]);
}

TEST_CASE("vector: folded tensors, as in the vector-copy kernel") {
  const int rows = 3;
  auto in = iota_buffer(rows * 32);
  std::vector<float> out(static_cast<std::size_t>(rows * 32), 0.0f);
  Tensor<const float, Extent<I, dynamic>, Extent<K8, 4>, Extent<K, 8>> src(in.data(), I(rows));
  Tensor<float, Extent<I, dynamic>, Extent<K8, 4>, Extent<K, 8>> dst(out.data(), I(rows));
  for (int v = 0; v < rows * 8; ++v) {
    auto c = I(v / 8) + K((v % 8) * 4);
    kiln::store_vector<4>(dst[c], kiln::load_vector<4>(src[c]));
  }
  for (int e = 0; e < rows * 32; ++e)
    CHECK(out[static_cast<std::size_t>(e)] == in[static_cast<std::size_t>(e)]);
}

TEST_CASE("vector: the element-wise path carries across folds and padding") {
  // (K8:4, I:3 padded to 10, K:8): a vector of 4 from K(6) runs K 6, 7 then K8 + 1, K 0, 1.
  auto buf = iota_buffer(4 * 30);
  using T = Tensor<float, Extent<K8, 4>, Extent<I, 3, 10>, Extent<K, 8>>;
  T t(buf.data());
  auto v = kiln::load_vector<4>(t[I(2)][K(6)]);
  CHECK(v[0] == static_cast<float>(1000 + 0 * 30 + 2 * 10 + 6));
  CHECK(v[1] == static_cast<float>(1000 + 0 * 30 + 2 * 10 + 7));
  CHECK(v[2] == static_cast<float>(1000 + 1 * 30 + 2 * 10 + 0));
  CHECK(v[3] == static_cast<float>(1000 + 1 * 30 + 2 * 10 + 1));
  for (int j = 0; j < 4; ++j) CHECK(v[j] == *t[I(2)][K(6 + j)]);
  Vec<float, 4> w{{1.5f, 2.5f, 3.5f, 4.5f}};
  kiln::store_vector<4>(t[I(1)][K(14)], w);
  CHECK(buf[1 * 30 + 10 + 6] == 1.5f);
  CHECK(buf[1 * 30 + 10 + 7] == 2.5f);
  CHECK(buf[2 * 30 + 10 + 0] == 3.5f);
  CHECK(buf[2 * 30 + 10 + 1] == 4.5f);
  CHECK(buf[1 * 30 + 10 + 8] == static_cast<float>(1000 + 48));  // padding untouched
}

TEST_CASE("vector: swizzled tiles") {
  std::vector<float> buf(512);
  for (int e = 0; e < 512; ++e) buf[static_cast<std::size_t>(e)] = static_cast<float>(e + 1);
  Swizzled t(buf.data());
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 64; c += 4) {
      auto v = kiln::load_vector<4>(t[I(r)][K(c)]);
      for (int j = 0; j < 4; ++j) CHECK(v[j] == *t[I(r)][K(c + j)]);
      // And the run is consecutive in memory, as a wide access needs.
      CHECK(v[0] == static_cast<float>(r * 64 + (c ^ (r << 2)) + 1));
    }
  }
  // An 8-wide element-wise load crosses the run boundary and still matches element for element.
  auto w = kiln::load_vector<8>(t[I(5)][K(8)]);
  for (int j = 0; j < 8; ++j) CHECK(w[j] == *t[I(5)][K(8 + j)]);
}

TEST_CASE(
    "vector: odd or run-time outer strides are not vectorizable (aligned starts would not stay "
    "aligned)") {
  CHECK_FALSE(kiln::is_vectorizable<Tensor<float, Extent<I, 4, 33>, Extent<K, 32>>, 4>);
  CHECK_FALSE(kiln::is_vectorizable<Tensor<float, Extent<I, 4, dynamic>, Extent<K, 32>>, 4>);
  CHECK(kiln::is_vectorizable<Tensor<float, Extent<I, 4, 36>, Extent<K, 32>>, 4>);
  CHECK(kiln::is_vectorizable<Tensor<float, Extent<I, dynamic>, Extent<K, 32>>, 4>);
}

TEST_CASE("vector: store_run writes a run of floats whatever its alignment, nothing else") {
  alignas(16) float buf[24];
  const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  // Aligned to 16 bytes (two 16-byte stores), to 8 only and to 4 only (element stores), for
  // runs of 8, 6 (8-byte stores), 3 and 1.
  for (int offset : {0, 2, 1}) {
    for (float& f : buf) f = -1.0f;
    kiln::store_run<8>(buf + 4 + offset, v);
    for (int i = 0; i < 24; ++i) {
      CAPTURE(offset);
      CAPTURE(i);
      const int j = i - 4 - offset;
      CHECK(buf[i] == (j >= 0 && j < 8 ? v[j] : -1.0f));
    }
  }
  for (float& f : buf) f = -1.0f;
  const float three[3] = {9, 10, 11};
  kiln::store_run<6>(buf + 2, v);
  kiln::store_run<3>(buf + 9, three);
  kiln::store_run<1>(buf + 13, v + 7);
  const float want[16] = {-1, -1, 1, 2, 3, 4, 5, 6, -1, 9, 10, 11, -1, 8, -1, -1};
  for (int i = 0; i < 16; ++i) {
    CAPTURE(i);
    CHECK(buf[i] == want[i]);
  }
}
