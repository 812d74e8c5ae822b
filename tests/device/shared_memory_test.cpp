// Shared-memory carving and rings (kiln/device/shared_memory.hpp) on the host: the
// arithmetic the kernel and shared_bytes() share, over an ordinary aligned buffer.
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "kiln/device/shared_memory.hpp"

namespace {

KILN_DIM(I);
KILN_DIM(K);
using kiln::Extent;

using ATile = kiln::Tensor<float, Extent<I, 64>, Extent<K, 32>>;      // 8192 bytes
using Odd = kiln::Tensor<short, Extent<I, 3>, Extent<K, 5>>;          // 30 bytes
using Padded = kiln::Tensor<double, Extent<I, 2, 10>, Extent<K, 3>>;  // 13 * 8 bytes
using Ring3 = kiln::Ring<Odd, 3>;                                     // 3 x 32 bytes

static_assert(kiln::shared_bytes<ATile>() == 8192);
static_assert(kiln::shared_bytes<Odd>() == 30);
// Each tile starts at the next multiple of 16: 30 -> 32, then 32 + 104 = 136.
static_assert(kiln::shared_bytes<Odd, Padded>() == 136);
static_assert(kiln::shared_bytes<Odd, Odd, Odd>() == 32 + 32 + 30);
static_assert(kiln::shared_bytes<Odd, Padded>(64) == 64 + 104);
static_assert(Ring3::stage_stride == 16);  // 30 bytes rounded to 32, in shorts
static_assert(Ring3::storage_size() == 48);
static_assert(kiln::shared_bytes<Ring3, ATile>() == 96 + 8192);

std::ptrdiff_t bytes_from(const void* p, const void* base) {
  return static_cast<const unsigned char*>(p) - static_cast<const unsigned char*>(base);
}

}  // namespace

TEST_CASE("the carver hands out aligned tiles in order, as shared_bytes counts them") {
  alignas(128) unsigned char buffer[1024] = {};  // aligned to the largest Align taken
  kiln::SharedCarver smem(buffer);
  Odd a = smem.take<Odd>();
  Padded b = smem.take<Padded>();
  Odd c = smem.take<Odd>();
  CHECK(bytes_from(a.data(), buffer) == 0);
  CHECK(bytes_from(b.data(), buffer) == 32);
  CHECK(bytes_from(c.data(), buffer) == 144);
  CHECK(smem.used_bytes() == 174);
  CHECK(smem.used_bytes() == kiln::shared_bytes<Odd, Padded, Odd>());
  // A larger alignment for one tile.
  ATile d = smem.take<ATile, 128>();
  CHECK(bytes_from(d.data(), buffer) == 256);
  CHECK(reinterpret_cast<std::uintptr_t>(d.data()) % 128 == 0);
  // The tiles do not overlap: the last element of each lies before the next tile.
  CHECK(bytes_from(a[I(2) + K(4)].ptr() + 1, buffer) <= 32);
  CHECK(bytes_from(b[I(1) + K(2)].ptr() + 1, buffer) <= 144);
}

TEST_CASE("a ring's stages wrap by type") {
  alignas(16) short buffer[Ring3::storage_size()] = {};
  Ring3 ring(buffer);
  using Stage = kiln::Module<kiln::RING_STAGE, 3>;
  static_assert(std::is_same_v<Ring3::stage_type, Stage>);
  for (int s = -6; s < 12; ++s) {
    CAPTURE(s);
    const int expected = ((s % 3) + 3) % 3;
    CHECK(ring[kiln::RING_STAGE(s)].data() == buffer + expected * 16);
    CHECK(ring[kiln::RING_STAGE(s)].data() == ring[kiln::RING_STAGE(s + 3)].data());
    CHECK(reinterpret_cast<std::uintptr_t>(ring[kiln::RING_STAGE(s)].data()) % 16 == 0);
  }
  // A pipeline of 3 stages writes stage k + 2 while reading stage k: never the same tile.
  for (int k = 0; k < 9; ++k) {
    CHECK(ring[kiln::RING_STAGE(k)].data() != ring[kiln::RING_STAGE(k + 2)].data());
    CHECK(ring[kiln::RING_STAGE(k + 3)].data() == ring[kiln::RING_STAGE(k)].data());
  }
  // The stage dimension's own folds index it too.
  CHECK(ring[Stage(1)].data() == buffer + 16);
}

TEST_CASE("a reduced ring position: its stages without a modulo, as operator[] gives them") {
  alignas(16) short buffer[Ring3::storage_size()] = {};
  Ring3 ring(buffer);
  // Every position below twice the ring: the stage is the position modulo the stages.
  for (int stages : {1, 2, 3, 7, 13, 16}) {
    CAPTURE(stages);
    for (int pos = 0; pos < 2 * stages; ++pos)
      CHECK(kiln::ring_reduce(pos, stages) == pos % stages);
    // A position kept reduced, moved on by steps forward and back, stays the modulo.
    for (int by = -stages + 1; by <= stages; ++by) {
      CAPTURE(by);
      int at = 0;
      long long total = 0;
      for (int k = 0; k < 3 * stages; ++k) {
        at = kiln::ring_advance(at, by, stages);
        total += by;
        CHECK(at == int(((total % stages) + stages) % stages));
      }
    }
  }
  for (int pos = 0; pos < 6; ++pos) {
    CHECK(ring.stage(kiln::ring_reduce(pos, 3)).data() == ring[kiln::RING_STAGE(pos)].data());
  }
  static_assert(kiln::ring_reduce(5, 3) == 2 && kiln::ring_advance(2, -2, 3) == 0);
}
