// Typed tile copies (kiln/device/async_copy.hpp) on the host, where async_copy_16 is a
// plain copy: a (I: 10, K: 13) global tensor copied tile by tile into (I:4, K:8) shared
// tiles, the ragged edges zero-filled, every element of every tile checked.
#include <doctest/doctest.h>

#include <vector>

#include "kiln/device/async_copy.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(K);
using kiln::Extent;

// Rows padded to 16 elements (64 bytes), so every 4-float vector starts 16-byte aligned,
// as cp.async requires; the tensor itself is 13 columns wide. Rows of 14 floats (56 bytes)
// are only 8-byte aligned and rows of 13 only 4-byte: they take 8- and 4-byte copies.
template <int Stride>
using GlobalOf =
    kiln::Tensor<const float, Extent<I, kiln::dynamic, Stride>, Extent<K, kiln::dynamic>>;
using Tile = kiln::Tensor<float, Extent<I, 4>, Extent<K, 8>>;  // (I:4, K:8)
using SwTile = kiln::SwizzledTensor<float, kiln::Swizzle<1, 2, 3>, Extent<I, 4>, Extent<K, 8>>;

constexpr int kRows = 10;
constexpr int kCols = 13;

float value_at(int i, int k) {
  return float(i * 100 + k + 1);
}

// How the threads share a tile: at run time (any count), or by a compile-time count with
// bounds checked (the edges) or not (interior tiles only).
enum class Mode { dynamic_count, static_checked, static_unchecked };

template <class T, int Count = 0, Mode mode = Mode::dynamic_count, int Bytes = 16,
          int Stride = Bytes == 16  ? 16
                       : Bytes == 8 ? 14
                                    : 13>
void check_tiles(int threads) {
  static_assert(Bytes == 16 || mode != Mode::dynamic_count, "run-time counts copy 16 bytes");
  alignas(16) static float global[kRows * Stride];
  for (int i = 0; i < kRows; ++i) {
    for (int k = 0; k < Stride; ++k) global[i * Stride + k] = k < kCols ? value_at(i, k) : -1.0f;
  }
  const GlobalOf<Stride> g(global, I(kRows), K(kCols));
  for (int i0 = 0; i0 < kRows; i0 += 4) {
    for (int k0 = 0; k0 < 16; k0 += 8) {
      alignas(16) float smem[T::storage_size()];
      for (float& x : smem) x = -7.0f;  // poisoned
      const T tile(smem);
      // global (I: 10, K: 13) tile at (i0, k0) -> shared (I:4, K:8); `threads` threads
      const bool interior = i0 + 4 <= kRows && k0 + 8 <= kCols;
      if (mode == Mode::static_unchecked && !interior) continue;
      for (int rank = 0; rank < threads; ++rank) {
        if constexpr (mode == Mode::dynamic_count) {
          kiln::async_copy_tile(tile, g[I(i0) + K(k0)], rank, threads);
        } else {
          kiln::async_copy_tile<Count, mode == Mode::static_checked, Bytes>(tile, g[I(i0) + K(k0)],
                                                                            rank);
        }
      }
      kiln::async_commit_group();
      kiln::async_wait_group<0>();
      for (int i = 0; i < 4; ++i) {
        for (int k = 0; k < 8; ++k) {
          CAPTURE(i0 + i);
          CAPTURE(k0 + k);
          const bool inside = i0 + i < kRows && k0 + k < kCols;
          CHECK(*tile[I(i) + K(k)] == (inside ? value_at(i0 + i, k0 + k) : 0.0f));
        }
      }
    }
  }
}

}  // namespace

TEST_CASE("a tile copy zero-fills ragged rows and columns") {
  for (int threads : {1, 3, 8, 32}) {
    CAPTURE(threads);
    check_tiles<Tile>(threads);
  }
}

TEST_CASE("a tile copy into a swizzled tile lands every element at its swizzled place") {
  check_tiles<SwTile>(5);
}

TEST_CASE("a compile-time thread count copies the same, checked or (inside) unchecked") {
  // 8 vectors a tile: 2 threads take whole-row steps from their first vector, 8 one each,
  // 3 the general way (a remainder), 16 leave half the threads idle.
  check_tiles<Tile, 2, Mode::static_checked>(2);
  check_tiles<Tile, 8, Mode::static_checked>(8);
  check_tiles<Tile, 3, Mode::static_checked>(3);
  check_tiles<Tile, 16, Mode::static_checked>(16);
  check_tiles<SwTile, 2, Mode::static_checked>(2);
  check_tiles<Tile, 2, Mode::static_unchecked>(2);
  check_tiles<SwTile, 4, Mode::static_unchecked>(4);
}

TEST_CASE("8- and 4-byte copies serve rows only that aligned, edges zero-filled alike") {
  // Rows of 14 floats: 2-float vectors; rows of 13: one float a copy.
  check_tiles<Tile, 4, Mode::static_checked, 8>(4);
  check_tiles<Tile, 3, Mode::static_checked, 8>(3);
  check_tiles<SwTile, 16, Mode::static_checked, 8>(16);
  check_tiles<Tile, 8, Mode::static_unchecked, 8>(8);
  check_tiles<Tile, 32, Mode::static_checked, 4>(32);
  check_tiles<SwTile, 5, Mode::static_checked, 4>(5);
  check_tiles<Tile, 8, Mode::static_unchecked, 4>(8);
}

namespace {
// A copy of Bytes bytes given `bytes` of source (0 to Bytes, in steps of Step): the prefix
// copied, the rest of the Bytes zero-filled, nothing past them touched.
template <int Bytes, int Step, class Copy>
void check_prefix(const Copy& copy) {
  alignas(16) unsigned char src[16];
  alignas(16) unsigned char dst[16];
  for (int bytes = 0; bytes <= Bytes; bytes += Step) {
    for (int j = 0; j < 16; ++j) src[j] = static_cast<unsigned char>(j + 1);
    for (auto& x : dst) x = 0xee;
    copy(dst, src, bytes);
    for (int j = 0; j < Bytes; ++j) CHECK(dst[j] == (j < bytes ? j + 1 : 0));
    for (int j = Bytes; j < 16; ++j) CHECK(dst[j] == 0xee);
  }
}
}  // namespace

TEST_CASE("async copies of 16, 8 and 4 bytes copy a prefix and zero-fill the rest") {
  check_prefix<16, 4>([](void* d, const void* s, int n) { kiln::async_copy_16(d, s, n); });
  check_prefix<8, 2>([](void* d, const void* s, int n) { kiln::async_copy<8>(d, s, n); });
  check_prefix<4, 2>([](void* d, const void* s, int n) { kiln::async_copy<4>(d, s, n); });
}
