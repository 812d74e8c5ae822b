// Swizzles (kiln/dims/swizzle.hpp) and swizzled tensors (kiln/dims/tensor.hpp).
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <type_traits>
#include <vector>

#include "kiln/dims/swizzle.hpp"
#include "kiln/dims/tensor.hpp"

namespace {

KILN_DIM(ROW);
KILN_DIM(COL);
using COL8 = kiln::Fold<COL, 8>;
using kiln::Extent;

using Sw = kiln::Swizzle<3, 2, 4>;  // bits 6..8 (the row of a 64-float row) into bits 2..4
static_assert(!Sw::is_identity);
static_assert(Sw::contiguous == 4);
static_assert(Sw::mask == (7 << 6));
static_assert(Sw::apply(0) == 0);
static_assert(Sw::apply(5 * 64) == 5 * 64 + 5 * 4);
static_assert(Sw::apply(5 * 64 + 3) == 5 * 64 + 5 * 4 + 3);
static_assert(kiln::Swizzle<3, 3, 3>::contiguous == 8);
static_assert(kiln::Swizzle<0, 3, 3>::is_identity);
static_assert(kiln::NoSwizzle::is_identity);
static_assert(kiln::NoSwizzle::apply(12345) == 12345);

using Plain = kiln::Tensor<float, Extent<ROW, 8>, Extent<COL, 64>>;
using Tile = kiln::SwizzledTensor<float, Sw, Extent<ROW, 8>, Extent<COL, 64>>;
static_assert(std::is_same_v<Tile::swizzle_type, Sw>);
static_assert(std::is_same_v<Tile::layout_type, Plain::layout_type>);

int offset_in(const float* p, const float* base) {
  return static_cast<int>(p - base);
}

}  // namespace

TEST_CASE("swizzle: apply permutes offsets") {
  std::set<int> seen;
  for (int off = 0; off < 512; ++off) {
    const int s = Sw::apply(off);
    CHECK(s >= 0);
    CHECK(s < 512);
    seen.insert(s);
    CHECK(Sw::apply(s) == off);  // an XOR swizzle is its own inverse
    CHECK(s / 64 == off / 64);   // rows stay rows
    CHECK(s % 4 == off % 4);     // the low Base bits stay
  }
  CHECK(seen.size() == 512);
  CHECK(kiln::Swizzle<0, 3, 3>::apply(77) == 77);
}

TEST_CASE("swizzle: an 8x64 float tile maps to a permutation of offsets") {
  std::vector<float> buf(512);
  for (int e = 0; e < 512; ++e) buf[static_cast<std::size_t>(e)] = static_cast<float>(e + 1);
  Tile tile(buf.data());
  Plain plain(buf.data());
  std::vector<int> hits(512, 0);
  int moved = 0;
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 64; ++c) {
      // Indexed exactly like a plain tensor, in any order.
      const int off = offset_in(tile[ROW(r)][COL(c)].ptr(), buf.data());
      CHECK(tile[COL(c)][ROW(r)] == tile[ROW(r)][COL(c)]);
      CHECK(offset_in(tile[ROW(r) + COL(c)].ptr(), buf.data()) == off);
      REQUIRE(off >= 0);
      REQUIRE(off < 512);
      ++hits[static_cast<std::size_t>(off)];
      CHECK(off == Sw::apply(plain.offset(ROW(r) + COL(c))));
      CHECK(off == r * 64 + (c ^ (r << 2)));
      moved += off != r * 64 + c;
    }
  }
  for (int off = 0; off < 512; ++off) CHECK(hits[static_cast<std::size_t>(off)] == 1);
  CHECK(moved > 0);  // not the identity
  // Runs of `contiguous` elements along the row stay consecutive.
  for (int r = 0; r < 8; ++r) {
    for (int c0 = 0; c0 < 64; c0 += Sw::contiguous) {
      const float* first = tile[ROW(r)][COL(c0)].ptr();
      for (int j = 1; j < Sw::contiguous; ++j) CHECK(tile[ROW(r)][COL(c0 + j)].ptr() == first + j);
    }
  }
  // The point of the swizzle: one column read by 8 rows hits 8 different banks.
  for (int c = 0; c < 64; ++c) {
    std::set<int> banks;
    std::set<int> plain_banks;
    for (int r = 0; r < 8; ++r) {
      banks.insert(offset_in(tile[ROW(r)][COL(c)].ptr(), buf.data()) % 32);
      plain_banks.insert(offset_in(plain[ROW(r)][COL(c)].ptr(), buf.data()) % 32);
    }
    CHECK(banks.size() == 8);
    CHECK(plain_banks.size() == 1);
  }
  // Writes land where reads find them.
  *tile[ROW(3)][COL(5)] = -7.0f;
  CHECK(buf[static_cast<std::size_t>(3 * 64 + (5 ^ 12))] == -7.0f);
  CHECK(*tile[COL(5)][ROW(3)] == -7.0f);
}

TEST_CASE("swizzle: the documented 16-byte-chunk example, with folds") {
  // (ROW:8, COL8:8, COL:8) halves: chunk c of row r at r*64 + c*8 moves to chunk c ^ r.
  std::vector<std::uint16_t> buf(512);
  using Halves = kiln::SwizzledTensor<std::uint16_t, kiln::Swizzle<3, 3, 3>, Extent<ROW, 8>,
                                      Extent<COL8, 8>, Extent<COL, 8>>;
  Halves t(buf.data());
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 8; ++c) {
      for (int h = 0; h < 8; ++h) {
        const int off = static_cast<int>(t[ROW(r)][COL8(c)][COL(h)].ptr() - buf.data());
        CHECK(off == r * 64 + (c ^ r) * 8 + h);
        CHECK(t[ROW(r)][COL(c * 8 + h)] == t[ROW(r)][COL8(c)][COL(h)]);
      }
    }
  }
  CHECK(t[ROW(2)][COL(7)][COL(5)] == t[ROW(2)][COL8(1)][COL(4)]);
  CHECK(t[ROW(2)][COL(12)].ptr() == buf.data() + 2 * 64 + (1 ^ 2) * 8 + 4);
}

TEST_CASE("swizzle: slices of a swizzled tensor agree with the parent") {
  std::vector<float> buf(512);
  Tile tile(buf.data());
  SUBCASE("static slice along rows") {
    auto s = tile.slice<4>(ROW(2));
    static_assert(std::is_same_v<decltype(s)::swizzle_type, Sw>);
    CHECK(s.size<ROW>() == ROW(4));
    CHECK(s.data() == buf.data());  // the tile's start: offsets swizzle from there
    for (int r = 0; r < 4; ++r)
      for (int c = 0; c < 64; ++c) CHECK(s[ROW(r)][COL(c)].ptr() == tile[ROW(r + 2)][COL(c)].ptr());
  }
  SUBCASE("run-time slice along columns") {
    auto s = tile.slice(COL(8), COL(16));
    CHECK(s.size<COL>() == COL(16));
    for (int r = 0; r < 8; ++r)
      for (int c = 0; c < 16; ++c) CHECK(s[ROW(r)][COL(c)].ptr() == tile[ROW(r)][COL(c + 8)].ptr());
    CHECK_FALSE(s[COL(16)].in_bounds());
  }
  SUBCASE("slices of slices") {
    auto s = tile.slice<6>(ROW(1)).slice<32>(COL(16)).slice(ROW(2), ROW(3)).slice<8>(COL(4));
    CHECK(s.size<ROW>() == ROW(3));
    CHECK(s.size<COL>() == COL(8));
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 8; ++c)
        CHECK(s[ROW(r)][COL(c)].ptr() == tile[ROW(r + 3)][COL(c + 20)].ptr());
    *s[ROW(1)][COL(1)] = 9.0f;
    CHECK(*tile[ROW(4)][COL(21)] == 9.0f);
    CHECK(buf[static_cast<std::size_t>(4 * 64 + (21 ^ (4 << 2)))] == 9.0f);
  }
}

TEST_CASE("swizzle: element_offset is the swizzled offset a cursor's pointer has") {
  std::vector<float> buf(512);
  Tile tile(buf.data());
  Plain plain(buf.data());
  // Worked out once from a tile at nullptr, the offsets serve any tile of that layout.
  constexpr int at = Tile(nullptr).element_offset(ROW(5) + COL(3));
  static_assert(at == 5 * 64 + 5 * 4 + 3);
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 64; ++c) {
      CHECK(tile.data() + tile.element_offset(ROW(r) + COL(c)) == tile[ROW(r)][COL(c)].ptr());
      CHECK(plain.element_offset(COL(c) + ROW(r)) == r * 64 + c);
    }
  }
  // A slice's offsets are from the whole tile's start, as its data() is.
  const auto s = tile.slice<4>(ROW(2));
  CHECK(s.data() + s.element_offset(ROW(1) + COL(9)) == tile[ROW(3)][COL(9)].ptr());
  CHECK(s.element_offset(ROW(1) + COL(9)) != plain.element_offset(ROW(3) + COL(9)));
}
