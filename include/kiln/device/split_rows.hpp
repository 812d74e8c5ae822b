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
/// This block's rounds over `total` slices, rows of `row_slices`. A grid of fewer blocks
/// than `row_slices` may spread a row over three rounds, whose first would wait forever on
/// slices no block has read: constructing the rounds traps instead (a grid one block short
/// never does that, but the rule stays simple).
class SplitRounds {
 public:
  KILN_DEVICE KILN_FORCEINLINE SplitRounds(long long total, int row_slices)
      : grid_(grid_size()), total_(total) {
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
#endif

}  // namespace kiln
