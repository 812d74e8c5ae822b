// Tensor-core fragments (kiln/device/mma.hpp) and ldmatrix addressing
// (kiln/device/ldmatrix.hpp) on the host: every lane's ownership against the PTX ISA's
// fragment figures (written out again here, independently of the headers), coverage of
// each matrix by the 32 lanes, ldmatrix simulated from the row addresses the lanes give,
// and the loads, stores and the warp-wide reference product through typed tensors.
#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

#include "kiln/device/ldmatrix.hpp"
#include "kiln/device/mma.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(J);
KILN_DIM(K);

using kiln::Extent;

struct RowCol {
  int row;
  int col;
};

// The PTX ISA's figures ("Matrix fragments for mma.m16n8k16 / mma.m16n8k8", 16-bit
// floating-point types), element i of lane l; group = l >> 2, tig = l % 4.
RowCol isa_a_k16(int lane, int i) {
  const int group = lane >> 2, tig = lane % 4;
  const int row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
  const int col = (i < 4) ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
  return {row, col};
}
RowCol isa_b_k16(int lane, int i) {  // row is k, col is n
  const int group = lane >> 2, tig = lane % 4;
  const int row = (i < 2) ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
  return {row, group};
}
RowCol isa_c(int lane, int i) {  // the f32 accumulator of both shapes
  const int group = lane >> 2, tig = lane % 4;
  const int row = (i < 2) ? group : group + 8;
  return {row, tig * 2 + (i & 1)};
}
RowCol isa_a_k8(int lane, int i) {
  const int group = lane >> 2, tig = lane % 4;
  return {(i < 2) ? group : group + 8, tig * 2 + (i & 1)};
}
RowCol isa_b_k8(int lane, int i) {
  const int group = lane >> 2, tig = lane % 4;
  return {tig * 2 + i, group};
}

// Checks Frag's coords against `isa` (rows in R, columns in C) for every lane and
// element, and that the lanes cover the rows x cols matrix exactly once.
template <class Frag, class R, class C, class Isa>
void check_ownership(int rows, int cols, Isa isa) {
  std::vector<int> seen(std::size_t(rows * cols), 0);
  for (int lane = 0; lane < kiln::mma_lanes; ++lane) {
    for (int e = 0; e < Frag::size; ++e) {
      CAPTURE(lane);
      CAPTURE(e);
      const auto at = Frag::coords(lane, e);
      const RowCol want = isa(lane, e);
      CHECK(kiln::get<R>(at) == R(want.row));
      CHECK(kiln::get<C>(at) == C(want.col));
      const int r = kiln::get<R>(at).get(), c = kiln::get<C>(at).get();
      REQUIRE((r >= 0 && r < rows && c >= 0 && c < cols));
      ++seen[std::size_t(r * cols + c)];
    }
  }
  for (int n : seen) CHECK(n == 1);
}

}  // namespace

TEST_CASE("fragment sizes are the registers the instructions take") {
  using A = kiln::MmaA<kiln::f16, I, K>;
  using B = kiln::MmaB<kiln::f16, K, J>;
  using C = kiln::MmaC<float, I, J>;
  static_assert(A::size == 8 && A::registers == 4 && A::tiles == 4);
  static_assert(B::size == 4 && B::registers == 2 && B::tiles == 2);
  static_assert(C::size == 4 && C::registers == 4);
  static_assert(kiln::MmaA<kiln::bf16, I, K, 8>::registers == 2);
  static_assert(kiln::MmaB<kiln::bf16, K, J, 8>::registers == 1);
  static_assert(sizeof(A) == 16 && alignof(A) >= 4 && sizeof(B) == 8 && sizeof(C) == 16);
  // B is (K, N) to the user and column major to the instruction: lanes spread over N.
  static_assert(kiln::detail::is_same<B::outer_dim, J> && kiln::detail::is_same<B::inner_dim, K>);
  C zero{};
  for (int e = 0; e < C::size; ++e) CHECK(zero[e] == 0.0f);
  CHECK(A::coords(5, 6) == I(1 + 8) + K(2 + 8));
}

namespace {
template <class D, class A, class B>
constexpr bool mma_accepts = requires(D& d, const A& a, const B& b) {
  kiln::mma(d, a, b, d);
};
}  // namespace

// Each rejected combination is paired with the accepted one it differs from.
static_assert(
    mma_accepts<kiln::MmaC<float, I, J>, kiln::MmaA<kiln::f16, I, K>, kiln::MmaB<kiln::f16, K, J>>);
static_assert(
    !mma_accepts<kiln::MmaC<float, J, I>, kiln::MmaA<kiln::f16, I, K>, kiln::MmaB<kiln::f16, K, J>>,
    "C's rows must be A's rows");
static_assert(
    !mma_accepts<kiln::MmaC<float, I, J>, kiln::MmaA<kiln::f16, I, K>, kiln::MmaB<kiln::f16, J, K>>,
    "B's depth must be A's depth");
static_assert(mma_accepts<kiln::MmaC<float, I, J>, kiln::MmaA<kiln::bf16, I, K, 8>,
                          kiln::MmaB<kiln::bf16, K, J, 8>>);
static_assert(!mma_accepts<kiln::MmaC<float, I, J>, kiln::MmaA<kiln::bf16, I, K, 16>,
                           kiln::MmaB<kiln::bf16, K, J, 8>>,
              "A and B of one depth");

TEST_CASE("m16n8k16 fragments own what the PTX ISA's figures say, each element once") {
  check_ownership<kiln::MmaA<kiln::f16, I, K>, I, K>(16, 16, isa_a_k16);
  check_ownership<kiln::MmaB<kiln::f16, K, J>, K, J>(16, 8, isa_b_k16);
  check_ownership<kiln::MmaC<float, I, J>, I, J>(16, 8, isa_c);
  check_ownership<kiln::MmaA<kiln::bf16, I, K>, I, K>(16, 16, isa_a_k16);
}

TEST_CASE("m16n8k8 fragments own what the PTX ISA's figures say, each element once") {
  check_ownership<kiln::MmaA<kiln::f16, I, K, 8>, I, K>(16, 8, isa_a_k8);
  check_ownership<kiln::MmaB<kiln::f16, K, J, 8>, K, J>(8, 8, isa_b_k8);
}

TEST_CASE("a check of the ownership test itself: a wrong map is caught") {
  // A's figure read with the two middle registers swapped is not the ISA's A.
  int differences = 0;
  for (int lane = 0; lane < kiln::mma_lanes; ++lane) {
    for (int e = 0; e < 8; ++e) {
      const int swapped = (e >= 2 && e < 6) ? (e ^ 6) : e;  // 2,3 <-> 4,5
      const auto at = kiln::MmaA<kiln::f16, I, K>::coords(lane, swapped);
      const RowCol want = isa_a_k16(lane, e);
      differences += !(kiln::get<I>(at) == I(want.row) && kiln::get<K>(at) == K(want.col));
    }
  }
  CHECK(differences == 32 * 4);
}

namespace {

// ldmatrix as the ISA defines it, from the row addresses the 32 lanes supply: register i
// of lane l holds row l / 4, elements 2 (l % 4) and + 1 of matrix i (transposed:
// elements (2 (l % 4) + j, l / 4)).
template <class Frag, class Tile>
Frag simulate_ldmatrix(const Tile& tile, int lane) {
  using T = typename Frag::element_type;
  const T* rows[kiln::mma_lanes];
  for (int l = 0; l < kiln::mma_lanes; ++l) rows[l] = kiln::ldmatrix_row<Frag>(tile, l);
  constexpr bool trans = kiln::ldmatrix_transposes<Frag, Tile>;
  Frag f{};
  for (int i = 0; i < Frag::tiles; ++i) {
    for (int j = 0; j < 2; ++j) {
      const int r = trans ? 2 * (lane % 4) + j : lane / 4;
      const int c = trans ? lane / 4 : 2 * (lane % 4) + j;
      f[2 * i + j] = rows[8 * i + r][c];
    }
  }
  return f;
}

// Every lane's simulated ldmatrix fragment holds tile[coords(lane, e)].
template <class Frag, class Tile>
void check_ldmatrix(const Tile& tile) {
  for (int lane = 0; lane < kiln::mma_lanes; ++lane) {
    Frag f = simulate_ldmatrix<Frag>(tile, lane);
    for (int e = 0; e < Frag::size; ++e) {
      CAPTURE(lane);
      CAPTURE(e);
      CHECK(f[e] == *tile[Frag::coords(lane, e)]);
    }
  }
}

// A distinct value per element (fits 16 bits).
std::vector<unsigned short> numbered(int n) {
  std::vector<unsigned short> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[std::size_t(i)] = static_cast<unsigned short>(i * 7 + 3);
  return v;
}

}  // namespace

TEST_CASE("ldmatrix row addresses load the A fragment from a (I:16, K:16) tile") {
  using Tile = kiln::Tensor<unsigned short, Extent<I, 16>, Extent<K, 16>>;
  using A = kiln::MmaA<unsigned short, I, K>;
  auto data = numbered(256);
  Tile tile(data.data());
  static_assert(!kiln::ldmatrix_transposes<A, Tile>);
  // lane 8t + r gives row r + 8 (t % 2) at column 8 (t / 2)
  CHECK(kiln::ldmatrix_row<A>(tile, 8 * 3 + 5) == tile[I(5 + 8) + K(8)].ptr());
  check_ldmatrix<A>(tile);
}

TEST_CASE("ldmatrix row addresses load A from a swizzled, padded and sliced shared tile") {
  // (I:32, K:64) with chunks of 8 XOR-swizzled by row: the slice at (I:16, K:24) is an A tile.
  using Smem =
      kiln::SwizzledTensor<unsigned short, kiln::Swizzle<3, 3, 3>, Extent<I, 32>, Extent<K, 64>>;
  using A = kiln::MmaA<unsigned short, I, K>;
  auto data = numbered(32 * 64);
  Smem smem(data.data());
  auto tile = smem.slice<16>(I(16)).template slice<16>(K(24));
  check_ldmatrix<A>(tile);
  check_ldmatrix<A>(smem[I(16) + K(24)]);  // a cursor at the origin works the same

  using Padded = kiln::Tensor<unsigned short, Extent<I, 16, 24>, Extent<K, 16>>;
  auto padded_data = numbered(16 * 24);
  check_ldmatrix<A>(Padded(padded_data.data()));
}

TEST_CASE("ldmatrix transposes exactly where B's tile is contiguous along N") {
  using B = kiln::MmaB<unsigned short, K, J>;
  // Row-major B (K:16, J:8): J contiguous, ldmatrix .x2.trans.
  using KJ = kiln::Tensor<unsigned short, Extent<K, 16>, Extent<J, 8>>;
  auto kj_data = numbered(128);
  KJ kj(kj_data.data());
  static_assert(kiln::ldmatrix_transposes<B, KJ>);
  CHECK(kiln::ldmatrix_row<B>(kj, 8 + 3) == kj[K(3 + 8) + J(0)].ptr());
  check_ldmatrix<B>(kj);
  // (J:8, K:16): K contiguous, plain ldmatrix .x2.
  using JK = kiln::Tensor<unsigned short, Extent<J, 8>, Extent<K, 16>>;
  auto jk_data = numbered(128);
  JK jk(jk_data.data());
  static_assert(!kiln::ldmatrix_transposes<B, JK>);
  check_ldmatrix<B>(jk);
  // k8 shapes: x2 for A, x1 for B.
  auto a_data = numbered(256);  // (I:16, K:16): jk_data holds only 128
  check_ldmatrix<kiln::MmaA<unsigned short, I, K, 8>>(
      kiln::Tensor<unsigned short, Extent<I, 16>, Extent<K, 16>>(a_data.data()));
  check_ldmatrix<kiln::MmaB<unsigned short, K, J, 8>>(kj);
}

namespace {

// A FragmentLoader's offsets equal the generic path's (ldmatrix_row at origin + delta) for
// every lane, at every delta of whole fragments over the tile.
template <class Frag, class Tile, class Origin, int Count = 1>
void check_loader(const Tile& tile, Origin origin, int outer_steps, int inner_steps) {
  using O = typename Frag::outer_dim;
  using In = typename Frag::inner_dim;
  for (int lane = 0; lane < kiln::mma_lanes; ++lane) {
    const kiln::FragmentLoader<Frag, Tile, Count> loader(origin, lane);
    // Lanes past the first fragment's give the rows of the next one, 8 x outer_tiles on.
    const int stacked = (lane / (8 * Frag::tiles)) % Count;
    for (int o = 0; o < outer_steps; ++o) {
      for (int i = 0; i < inner_steps; ++i) {
        CAPTURE(lane);
        CAPTURE(o);
        CAPTURE(i);
        const auto delta = O(8 * Frag::outer_tiles * Count * o) + In(8 * Frag::inner_tiles * i);
        const auto* want = kiln::ldmatrix_row<Frag>(
            tile[origin + delta + O(8 * Frag::outer_tiles * stacked)], lane);
        CHECK(tile.data() + loader.element_offset(delta) == want);
      }
    }
  }
}

}  // namespace

TEST_CASE("a FragmentLoader addresses what the generic ldmatrix path does, in swizzled rings") {
  auto data = numbered(256 * 64);
  // A (I:128, K:64) K contiguous, Swizzle<3, 3, 3>: 4 A fragments down, 4 K steps.
  using ATile =
      kiln::SwizzledTensor<unsigned short, kiln::Swizzle<3, 3, 3>, Extent<I, 128>, Extent<K, 64>>;
  check_loader<kiln::MmaA<unsigned short, I, K>, ATile, I>(ATile(data.data()), I(64), 4, 4);
  // The same with rows of 32 (Swizzle<2, 3, 3>) and A stored (K, I): .trans.
  using ATile32 =
      kiln::SwizzledTensor<unsigned short, kiln::Swizzle<2, 3, 3>, Extent<I, 64>, Extent<K, 32>>;
  check_loader<kiln::MmaA<unsigned short, I, K>, ATile32, I>(ATile32(data.data()), I(32), 2, 2);
  using ATileT =
      kiln::SwizzledTensor<unsigned short, kiln::Swizzle<3, 3, 4>, Extent<K, 32>, Extent<I, 128>>;
  check_loader<kiln::MmaA<unsigned short, I, K>, ATileT, I>(ATileT(data.data()), I(64), 4, 2);
  // Pairs of B fragments (one .x4) from (J:256, K:64) and from (K:64, J:256) (.trans), and
  // single B fragments from the transposed tile, at a warp origin of J 32.
  using B = kiln::MmaB<unsigned short, K, J>;
  using BTile =
      kiln::SwizzledTensor<unsigned short, kiln::Swizzle<3, 3, 3>, Extent<J, 256>, Extent<K, 64>>;
  check_loader<B, BTile, J, 2>(BTile(data.data()), J(32), 4, 4);
  using BTileT =
      kiln::SwizzledTensor<unsigned short, kiln::Swizzle<3, 3, 5>, Extent<K, 64>, Extent<J, 256>>;
  check_loader<B, BTileT, J, 2>(BTileT(data.data()), J(32), 4, 4);
  check_loader<B, BTileT, J>(BTileT(data.data()), J(32), 8, 4);
}

TEST_CASE("store_fragment writes each element where its coordinates say") {
  using C = kiln::MmaC<float, I, J>;
  using Out = kiln::Tensor<float, Extent<I, kiln::dynamic>, Extent<J, 24>>;
  static_assert(kiln::detail::stores_pairs<Out, J, float>(), "pairs along J are one store");
  using Transposed = kiln::Tensor<float, Extent<J, 24>, Extent<I, 32>>;
  static_assert(!kiln::detail::stores_pairs<Transposed, J, float>());

  std::vector<float> out(32 * 24, -1.0f), out_t(24 * 32, -1.0f);
  Out o(out.data(), I(32));
  Transposed ot(out_t.data());
  for (int lane = 0; lane < kiln::mma_lanes; ++lane) {
    C c{};
    for (int e = 0; e < C::size; ++e) c[e] = float(100 * lane + e);
    kiln::store_fragment(c, o.slice<16>(I(16)).slice<8>(J(8)), lane);
    kiln::store_fragment(c, ot[I(16) + J(8)], lane);
  }
  int written = 0;
  for (int lane = 0; lane < kiln::mma_lanes; ++lane) {
    for (int e = 0; e < C::size; ++e) {
      const RowCol rc = isa_c(lane, e);
      CHECK(*o[I(16 + rc.row) + J(8 + rc.col)] == float(100 * lane + e));
      CHECK(*ot[I(16 + rc.row) + J(8 + rc.col)] == float(100 * lane + e));
      ++written;
    }
  }
  CHECK(written == 128);
  int untouched = 0;
  for (float v : out) untouched += v == -1.0f;
  CHECK(untouched == 32 * 24 - 128);
}

#if KILN_NATIVE_F16
TEST_CASE("mma_reference multiplies a warp's fragments loaded from and stored to tensors") {
  using A = kiln::MmaA<kiln::f16, I, K>;
  using B = kiln::MmaB<kiln::f16, K, J>;
  using C = kiln::MmaC<float, I, J>;
  // Small integers: every product and sum is exact in f16 inputs and f32 sums.
  std::vector<kiln::f16> a_data(16 * 16), b_data(16 * 8);
  std::vector<float> c_data(16 * 8), d_data(16 * 8, -1.0f);
  kiln::Tensor<kiln::f16, Extent<I, 16>, Extent<K, 16>> ta(a_data.data());
  kiln::Tensor<kiln::f16, Extent<K, 16>, Extent<J, 8>> tb(b_data.data());
  kiln::Tensor<float, Extent<I, 16>, Extent<J, 8>> tc(c_data.data()), td(d_data.data());
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 16; ++k) *ta[I(i) + K(k)] = kiln::f16((i * 3 + k) % 7 - 3);
  for (int k = 0; k < 16; ++k)
    for (int j = 0; j < 8; ++j) *tb[K(k) + J(j)] = kiln::f16((k + 5 * j) % 5 - 2);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) *tc[I(i) + J(j)] = float(i - j);

  A a[kiln::mma_lanes];
  B b[kiln::mma_lanes];
  C c[kiln::mma_lanes], d[kiln::mma_lanes];
  for (int l = 0; l < kiln::mma_lanes; ++l) {
    kiln::load_fragment(a[l], ta, l);
    kiln::load_fragment(b[l], tb, l);
    kiln::load_fragment(c[l], tc, l);
  }
  kiln::mma_reference(d, a, b, c);
  for (int l = 0; l < kiln::mma_lanes; ++l) kiln::store_fragment(d[l], td, l);

  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double want = double(i - j);
      for (int k = 0; k < 16; ++k)
        want += double((i * 3 + k) % 7 - 3) * double((k + 5 * j) % 5 - 2);
      CAPTURE(i);
      CAPTURE(j);
      CHECK(double(*td[I(i) + J(j)]) == want);
    }
  }
}
#endif
