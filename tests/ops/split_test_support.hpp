#pragma once
// What the tests of the row ops' split configs (softmax's and the norms', rows split across
// a persistent grid) share: the checks every split config passes on the host, the rules
// every op's validation names, and the shapes the GPU tests run every split config on.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/gen/dtype.hpp"
#include "kiln/ops/softmax.hpp"
#include "kiln/ops/split_slots.hpp"
#include "kiln/rt/launch.hpp"

namespace kiln_test {

/// The columns the host tests take split candidates at: rows of 16, 32 and 64 KiB and more
/// in f16, a ragged length and the longest (2^20).
inline constexpr int split_test_cols[] = {8192, 16384, 32768, 65536, 100000, 1 << 20};

/// Checks split config `c` of a row op as a device of `sms` SMs runs it: `vec`-element
/// (16-byte) vectors, a grid of its blocks an SM on every SM, at least a row's `slices`,
/// and `lc` (the op's launch) a cooperative launch of that grid.
template <class Config>
void check_split_config(const Config& c, int vec, int sms, std::int64_t slices,
                        const kiln::rt::LaunchConfig& lc) {
  CHECK(c.strategy == decltype(c.strategy)::split);
  CHECK(c.vector_width == vec);
  CHECK(c.grid_blocks == sms * c.blocks_per_sm);
  CHECK(c.grid_blocks >= slices);
  CHECK(lc.grid.x == unsigned(c.grid_blocks));
  CHECK(lc.block.x == unsigned(c.threads_per_row));
  CHECK(lc.cooperative);
}

/// Checks the untuned choice `h` of a row op: split (256 threads of 8 vectors, `blocks`
/// blocks an SM) where `split` says it should be, anything else otherwise.
template <class Config>
void check_split_heuristic(const Config& h, bool split, int blocks = 2) {
  using S = decltype(h.strategy);
  if (split) {
    CHECK(h.strategy == S::split);
    CHECK(h.threads_per_row == 256);
    CHECK(h.vectors_per_thread == 8);
    CHECK(h.blocks_per_sm == blocks);
  } else {
    CHECK(h.strategy != S::split);
  }
}

/// Checks that `refused(config, rule)` holds for the split configs no row op runs f16 rows
/// of 1M with, each with the words of the rule it breaks (`refused` checks the op's
/// validation throws, naming the rule).
template <class Config, class Refused>
void check_split_rules(Refused refused) {
  using S = decltype(Config::strategy);
  refused(Config{S::split, 128, 4, 1, 8, 1, 4, 528}, "16-byte vectors");
  refused(Config{S::split, 128, 8, 1, 8, 1, 4, 100}, "fewer than a row's 128 slices");
  refused(Config{S::split, 512, 8, 1, 8, 1, 2, 264}, "64, 128 or 256 threads");
  refused(Config{S::split, 128, 8, 1, 3, 1, 4, 528}, "4, 8 or 16 vectors");
  refused(Config{S::split, 128, 8, 2, 8, 1, 4, 528}, "one slice at a time");
  refused(Config{S::split, 128, 8, 1, 8, 2, 4, 528}, "one slice at a time");
  refused(Config{S::split, 256, 8, 1, 8, 1, 8, 1056}, "at most 1024 threads an SM");
  refused(Config{S::split, 128, 8, 1, 8, 1, 0, 528}, "blocks_per_sm must be at least 1");
  refused(Config{S::multi_pass, 1024, 8, 1, 8, 1, 4, 528}, "split configs'");
}

/// A shape the GPU tests run every split config of a row op on. `every`: in each dtype and
/// on every kind of the test's data; otherwise in `dtype` only, on one kind (the long
/// ones, which take most of the time).
struct SplitShape {
  kiln::gen::DType dtype;
  int cols;
  std::int64_t rows;
  bool every;
};
/// Rows of 1M, 1 and 3 of them (the grid's blocks outnumber the slices) and 64 of f16 (many
/// rounds); of 100000 (the last slice ragged); of 65536, 37 and, in f32 (256 KiB rows),
/// 1024 of them (many rounds).
inline constexpr SplitShape split_row_shapes[] = {
    {kiln::gen::DType::f32, 1 << 20, 1, true},   {kiln::gen::DType::f32, 1 << 20, 3, true},
    {kiln::gen::DType::f32, 100000, 37, true},   {kiln::gen::DType::f32, 65536, 37, true},
    {kiln::gen::DType::f16, 1 << 20, 64, false}, {kiln::gen::DType::f32, 65536, 1024, false}};

/// kiln::ops::SlotPair for launching a split kernel directly, as kiln's calls use theirs
/// (a launch's own words zeroed on the stream where they are not known zero, else left as
/// the launch before zeroed them), checked: both buffers start full of `stale` words
/// (tagged, as an earlier launch leaves them: no launch may take them for its own), the
/// next buffer is filled with them again before each launch, and after it check_launched()
/// checks the kernel zeroed exactly its first `words` words, then passes the turn.
class TurnSlots {
 public:
  TurnSlots(std::size_t capacity, std::uint64_t stale, const kiln::rt::Device& gpu)
      : pair_(capacity, gpu), stale_(capacity, stale) {
    pair_.own_buffer().copy_from(stale_);
  }
  /// The slots and next slots of a launch of `words` words on `stream`.
  std::pair<std::uint64_t*, std::uint64_t*> take(std::size_t words, kiln::rt::StreamRef stream) {
    words_ = words;
    // The next buffer is the one the launch before read (finished: the caller waits for
    // each launch before check_launched()), so nothing of it is known zero.
    pair_.next_buffer().copy_from(stale_);
    return pair_.take(words, stream, "test");
  }
  /// After the launch of the last take() has finished.
  void check_launched(const std::string& what) {
    const std::vector<std::uint64_t> after = pair_.next_buffer().to_vector();
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < after.size(); ++i) {
      if (after[i] != (i < words_ ? 0 : stale_[i])) ++wrong;
    }
    CHECK_MESSAGE(wrong == 0, what << ": " << wrong << " words of the next launch's slots not "
                                   << "zeroed (of " << words_ << ") or changed past them");
    pair_.launched(words_);
  }

 private:
  kiln::ops::SlotPair pair_;
  std::vector<std::uint64_t> stale_;
  std::size_t words_ = 0;
};

/// Whether `gpu` runs split configs (NVIDIA, sm_80 and later); says so where it does not.
inline bool runs_split_rows(const kiln::rt::Device& gpu) {
  if (kiln::ops::detail::has_split_rows(gpu.properties())) return true;
  MESSAGE("split configs run on NVIDIA GPUs of sm_80 and later only");
  return false;
}

}  // namespace kiln_test
