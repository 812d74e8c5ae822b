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

#include "thread.hpp"

#if KILN_GPU_COMPILER
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

/// This block's rounds over `total` slices, rows of `row_slices`. A grid of fewer blocks
/// than `row_slices` would wait forever on slices no block has read: constructing the
/// rounds traps instead.
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
    const long long s = t * grid_ + block_index();
    const long long o = s - grid_;
    return {s, o, s < total_, o >= 0, o >= total_, int(t & 1)};
  }

 private:
  long long grid_;
  long long total_;
};

}  // namespace kiln
#endif
