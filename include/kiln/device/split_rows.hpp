#pragma once
/// The rounds of a persistent grid that shares long rows among its blocks (the split row
/// ops: kernels/softmax.cu, kernels/norm.cu). Each row is cut into `row_slices` slices; in
/// round t block b reads slice t * grid + b and writes the slice it read a round before,
/// once the sums of that slice's row, which every block publishes in global memory as it
/// reads, are all in:
///
///   const kiln::SplitRounds rounds(rows * kSlices, kSlices);
///   for (long long t = 0;; ++t) {
///     const kiln::SplitRound r = rounds.round(t);
///     if (r.done) break;
///     if (r.reads) { ... read slice r.read, publish its sums ... }
///     ...barrier...
///     if (r.writes) { ... wait for the sums of r.written's row, write r.written ... }
///   }
///
/// A grid of at least `row_slices` blocks has read a row's every slice by the round after
/// it read the first, so no block waits on a slice no block is reading, provided every
/// block of the grid is resident (a cooperative launch).

#include "../detail/portability.hpp"
#include "thread.hpp"
#if KILN_GPU_COMPILER
#include "async_copy.hpp"
#include "global_memory.hpp"
#include "warp.hpp"
#endif

namespace kiln {

/// One round of a block of a split row op.
struct SplitRound {
  long long read;     ///< the slice read this round (where `reads`)
  long long written;  ///< the slice written, read a round before (where `writes`)
  bool reads;         ///< whether `read` is a slice (< total)
  bool writes;        ///< whether `written` is one (>= 0)
  bool done;          ///< whether the block has written its last slice (stop)
  int parity;         ///< the round's parity: for scratch double-buffered across rounds
};

/// Round `t` (from 0) of block `block` of a grid of `grid` blocks over `total` slices: the
/// schedule alone, host code too (tests simulate a whole grid with it).
KILN_HOST_DEVICE constexpr SplitRound split_round(long long t, long long grid, long long block,
                                                  long long total) {
  const long long s = t * grid + block;
  const long long o = s - grid;
  return {s, o, s < total, o >= 0, o >= total, int(t & 1)};
}

#if KILN_GPU_COMPILER
/// A slot word: a float published in the low half of a 64-bit word whose high half holds
/// the tag (a zero word is one no block has written yet).
inline constexpr unsigned long long split_slot_tag = 1ull << 32;
KILN_DEVICE KILN_FORCEINLINE unsigned long long split_slot_word(float v) {
  return split_slot_tag | __builtin_bit_cast(unsigned, v);
}
KILN_DEVICE KILN_FORCEINLINE float split_slot_float(unsigned long long w) {
  return __builtin_bit_cast(float, (unsigned)w);
}

/// A row's slot words as one warp gathers them: `Words` a slice, lane l holding those of
/// slices l, l + warp_size, ... (a row of `Slices` slices). load() issues the loads (a
/// word may not be there yet), wait() spins until every word carries the tag:
///
///   kiln::SplitRowSlots<kSlices, 2> got;
///   got.load(slots + row * kSlices * 2, lane);   // early, with the slice's loads
///   ...
///   got.wait(slots + row * kSlices * 2, lane);
///   for (int k = 0; k < got.lane_slices; ++k)
///     if (got.has(k, lane)) sum += got.value(k, 0);   // slice k * warp_size + lane's
template <int Slices, int Words>
struct SplitRowSlots {
  static constexpr int lane_slices = (Slices + warp_size - 1) / warp_size;
  unsigned long long word[lane_slices * Words];

  /// Whether the lane holds a k-th slice.
  static KILN_DEVICE KILN_FORCEINLINE bool has(int k, int lane) {
    return k * warp_size + lane < Slices;
  }
  KILN_DEVICE KILN_FORCEINLINE void load(const unsigned long long* row, int lane) {
#pragma unroll
    for (int k = 0; k < lane_slices; ++k) {
#pragma unroll
      for (int j = 0; j < Words; ++j) {
        if (has(k, lane))
          word[k * Words + j] = load_relaxed(row + (k * warp_size + lane) * Words + j);
      }
    }
  }
  KILN_DEVICE KILN_FORCEINLINE void wait(const unsigned long long* row, int lane) {
#pragma unroll
    for (int k = 0; k < lane_slices; ++k) {
      if (!has(k, lane)) continue;
#pragma unroll
      for (int j = 0; j < Words; ++j) {
        unsigned long long& w = word[k * Words + j];
        while ((w >> 32) != (split_slot_tag >> 32)) {
          w = load_relaxed(row + (k * warp_size + lane) * Words + j);
        }
      }
    }
    // The lanes leave their spins apart: together again before the warp sums that follow.
    // (Without it, ncu of LayerNorm's split on an H100 counted the gather's shuffles on
    // their divergent path in about 70% of the rounds.)
    sync_warp();
  }
  /// Word j of the lane's k-th slice, as a float.
  KILN_DEVICE KILN_FORCEINLINE float value(int k, int j) const {
    return split_slot_float(word[k * Words + j]);
  }
};

/// A round's sums over the block, of a pair of floats (a, b) each thread holds (`A`, `B`:
/// whether each is summed; one left out stays as it is, and comes out of
/// split_block_sums as 0): each warp's sums into `scratch` (2 floats a warp, lane 0
/// writes) by split_warp_sums; then, after a barrier, split_block_sums adds the `Warps`
/// warps' in every lane of warp 0 (the same bits in each, whatever the timing).
template <bool A, bool B>
KILN_DEVICE KILN_FORCEINLINE void split_warp_sums(float* scratch, int warp, int lane, float a,
                                                  float b) {
  if constexpr (A) a = warp_sum(a);
  if constexpr (B) b = warp_sum(b);
  if (lane == 0) {
    scratch[2 * warp] = a;
    scratch[2 * warp + 1] = b;
  }
}
template <int Warps, bool A, bool B>
KILN_DEVICE KILN_FORCEINLINE void split_block_sums(const float* scratch, int lane, float& a,
                                                   float& b) {
  a = A ? warp_sum(lane < Warps ? scratch[2 * lane] : 0.0f) : 0.0f;
  b = B ? warp_sum(lane < Warps ? scratch[2 * lane + 1] : 0.0f) : 0.0f;
}

/// This block's rounds over `total` slices, rows of `row_slices`. A grid of fewer blocks
/// than `row_slices` may spread a row over three rounds, whose first would wait forever on
/// slices no block has read: constructing the rounds traps instead (a grid one block short
/// never does that, but the rule stays simple).
class SplitRounds {
 public:
  KILN_DEVICE KILN_FORCEINLINE SplitRounds(long long total, int row_slices, int grid = grid_size())
      : grid_(grid), total_(total) {
    if (grid_ < row_slices) {
#if KILN_HIP
      __builtin_trap();
#else
      __trap();
#endif
    }
  }
  /// Round `t` (from 0) of this block.
  KILN_DEVICE KILN_FORCEINLINE SplitRound round(long long t) const {
    return split_round(t, grid_, block_index(), total_);
  }

 private:
  long long grid_;
  long long total_;
};

/// The copies of a ringed split (`Ring` > 0 slices a ring in shared memory; 0: none): each
/// thread copies its vectors of round t's read slice into slot slot(t) of its rings by
/// cp.async, `ahead` = Ring - 2 rounds before round t reads them there (for its sums) and
/// round t + 1 again (for its write); the slot is written again in the round after that.
/// Each thread reads back only its own copies, so no barrier orders them:
///
///   using Ring = kiln::SplitRing<kSplitRing>;
///   auto fetch = [&](long long t) {   // round t's read slice, a commit group
///     kiln::split_fetch<kIters>(rounds, t, [&](const kiln::SplitRound& q, int i) {
///       ... kiln::async_copy<16>(&ring[Ring::slot(t)][i], source of q.read's vector i, 16);
///     });
///   };
///   Ring::start(fetch);
///   for (long long t = 0;; ++t) {
///     ...
///     if constexpr (Ring::ringed) Ring::next(t, fetch);   // round t's copies have landed
template <int Ring>
struct SplitRing {
  static constexpr bool ringed = Ring > 0;
  static constexpr int slices = Ring > 0 ? Ring : 1;
  static constexpr int ahead = Ring > 0 ? Ring - 2 : 0;
  static_assert(Ring == 0 || ahead >= 1, "a split ring holds at least 3 slices");
  /// The slot of round t's slice.
  static KILN_DEVICE KILN_FORCEINLINE int slot(long long t) { return int(t % slices); }
  /// The copies of the first `ahead` rounds.
  template <class Fetch>
  static KILN_DEVICE KILN_FORCEINLINE void start(Fetch&& fetch) {
#pragma unroll
    for (int t = 0; t < ahead; ++t) fetch(t);
  }
  /// Round t + ahead's copies out, round t's landed (this thread's).
  template <class Fetch>
  static KILN_DEVICE KILN_FORCEINLINE void next(long long t, Fetch&& fetch) {
    fetch(t + ahead);
    async_wait_group<ahead>();
  }
};

/// Round t's copies of a ringed split as one commit group: `copy(q, i)` for each of the
/// thread's `Iters` vectors of the slice q = rounds.round(t) reads, none past the last
/// read (an empty group, so that every round commits one).
template <int Iters, class Copy>
KILN_DEVICE KILN_FORCEINLINE void split_fetch(const SplitRounds& rounds, long long t, Copy&& copy) {
  const SplitRound q = rounds.round(t);
  if (q.reads) {
#pragma unroll
    for (int i = 0; i < Iters; ++i) copy(q, i);
  }
  async_commit_group();
}
#endif

}  // namespace kiln
