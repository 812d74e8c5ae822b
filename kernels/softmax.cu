// Row softmax over the last dimension, with f32 math whatever the storage type:
//   out[row][col] = exp(in[row][col] - max_row) / sum_col exp(in[row][col] - max_row)
// Subtracting the row's maximum keeps every exponent <= 0, so no input overflows.
//
// The host (include/kiln/ops/softmax.hpp) generates spec.hpp with:
//   dimensions  ROW (rows of the problem), COL (columns) with COLV = Fold<COL, kVec>,
//               SLOT (a row's slot in a block), RANK (a thread's rank within its row)
//   tensors     In, Out: one row, (COL: kCols), f16 / bf16 / f32 storage
//   Threads     the block as (SLOT: kRowsPerBlock, RANK: kThreadsPerRow)
//   constants   kCols, kVec, kThreadsPerRow, kRowsPerBlock, kIters, kMultiPass, kCluster
//   KILN_KERNEL_NAME, e.g. softmax__f16__cols4096__t256v8
//   SOFTMAX_BACKWARD (defined for the backward kernel only)
//   SOFTMAX_STAGED (defined for staged configs: the row staged in shared memory), with
//               kMinBlocks (the launch bounds' blocks an SM) and kStagedHeld (the last of
//               a thread's kIters vectors, held in registers rather than staged)
//   SOFTMAX_SPLIT  (defined for split configs: rows shared by a persistent grid), with
//               kSplitMinBlocks (the launch bounds' blocks an SM) and kSplitRing (the
//               slices of a ringed split's ring in shared memory, else 0)
//
// One pass (kMultiPass == 0): kThreadsPerRow threads own a row; each keeps its kIters
// vectors of the row in registers, so the row is read once. Short rows share a warp
// (a sub-warp per row, several rows per block); long ones span several warps.
// Multi pass (kMultiPass == 1): a block per row streams it twice: an online max and sum
// (the sum rescaled whenever the maximum grows), then the normalized write. The second
// pass walks the row backwards, so its first reads hit what the first pass left in L2.
// Clusters (kCluster > 1, sm_90, forward only, one row per block): the kCluster blocks of
// a thread-block cluster share a row, block rank r taking the r-th of kCluster equal
// slices of its vectors (one pass or multi pass over the slice, as above); each block's
// (max, sum) goes to the others through distributed shared memory, and every block adds
// them up in rank order (the same bits in each).
//
// Backward (spec.hpp defines SOFTMAX_BACKWARD): dx = y * (dy - sum_col(dy * y)) by row,
// from the forward's output y and the gradient dy, f32 math; In views y and dy, Out dx
// (the kernel name starts softmax_backward__). The same configs: one pass holds the row's
// y and dy in registers (the host keeps that to 32 elements and 128 bytes of each a
// thread, 64 bytes in blocks of 1024, so that nothing spills); multi pass sums dy * y in
// one pass over the row and writes dx in a second, backwards; split (SOFTMAX_SPLIT too)
// shares rows across a persistent grid as the forward's split does.
// Its pointers carry no __restrict__: dx may be dy (or y); every element is read before
// the thread that reads it writes it.
//
// Rows are a run-time argument; tensors view one row at a time, because a whole matrix
// can pass 2^31 elements (kiln's tensors use 32-bit offsets): the row's start is 64-bit.
#include "kiln/device/async_copy.hpp"
#include "kiln/device/block.hpp"
#include "kiln/device/cluster.hpp"
#include "kiln/device/global_memory.hpp"
#include "kiln/device/half.hpp"
#include "kiln/device/math.hpp"
#include "kiln/device/shared_memory.hpp"
#include "kiln/device/split_rows.hpp"
#include "spec.hpp"

namespace softmax {

using Elem = Out::element_type;
constexpr int kVecs = kCols / kVec;           // vectors per row
constexpr int kSliceVecs = kVecs / kCluster;  // vectors of a row one block takes
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLowest = -3.402823466e38f;  // a finite start: -inf - -inf would be NaN

static_assert(kCols % kVec == 0, "the vector width divides the row");
static_assert((kThreadsPerRow & (kThreadsPerRow - 1)) == 0, "threads per row: a power of 2");
static_assert(kThreadsPerRow * kRowsPerBlock % kiln::warp_size == 0,
              "whole warps: every lane takes part in the shuffles");
static_assert(kMultiPass == 0 || kRowsPerBlock == 1, "multi-pass: one row per block");
static_assert(kCluster == 1 || (kRowsPerBlock == 1 && kVecs % kCluster == 0),
              "clusters: one row per block, equal slices of whole vectors");

// ---- f32 math over f16 / bf16 / f32 storage: kiln::to_float and kiln::from_float
// (kiln/device/half.hpp) ----
using kiln::from_float;
using kiln::to_float;
// 2^x to about 2 ulp (results below 2^-126 flush to zero: far under every tolerance).
using kiln::exp2_approx;

KILN_DEVICE KILN_FORCEINLINE float max_of(float a, float b) {
  return a > b ? a : b;
}
// exp(x - m), with x - m <= 0 (an overflowing difference gives -inf, hence 0).
KILN_DEVICE KILN_FORCEINLINE float exp_minus(float x, float m) {
  return exp2_approx((x - m) * kLog2e);
}

/// A partial softmax denominator: sum of exp(x - m) over some elements, m their maximum.
struct MaxSum {
  float m;
  float s;
};

/// max_of as an operation for kiln's warp reductions (kiln::Maximum keeps a NaN in its
/// first operand; this keeps the other one, as the row's own maximum loop does).
struct Max {
  KILN_DEVICE KILN_FORCEINLINE float operator()(float a, float b) const { return max_of(a, b); }
};
/// The whole of `Lanes` neighbouring lanes' parts, in every lane of the group (kiln's warp
/// reductions: Lanes is a power of 2, at most a warp): the maximum first, then each sum
/// rescaled to it.
template <int Lanes>
KILN_DEVICE KILN_FORCEINLINE MaxSum lanes_combine(MaxSum v) {
  const float m = kiln::warp_reduce<Lanes>(v.m, Max{});
  return {m, kiln::warp_sum<Lanes>(v.s * exp_minus(v.m, m))};
}

/// lanes_combine as kiln::row_reduce's Combine.
struct CombineMaxSum {
  template <int Lanes>
  static KILN_DEVICE KILN_FORCEINLINE MaxSum lanes(MaxSum v) {
    return lanes_combine<Lanes>(v);
  }
};

/// The MaxSum of a whole row from each of its threads' parts, in every thread of the row
/// (kiln::row_reduce over the block's (SLOT, RANK) layout: shuffles within a warp, shared
/// memory across the row's warps). Every thread of the block calls it (it may hold a
/// barrier).
KILN_DEVICE KILN_FORCEINLINE MaxSum reduce_row(MaxSum v) {
  return kiln::row_reduce<CombineMaxSum, kThreadsPerRow, kRowsPerBlock>(v);
}

using Vector = kiln::Vec<Elem, kVec>;

KILN_DEVICE KILN_FORCEINLINE float max_in(const Vector& v, float m) {
#pragma unroll
  for (int j = 0; j < kVec; ++j) m = max_of(m, to_float(v[j]));
  return m;
}
KILN_DEVICE KILN_FORCEINLINE float sum_exp(const Vector& v, float m, float s) {
#pragma unroll
  for (int j = 0; j < kVec; ++j) s += exp_minus(to_float(v[j]), m);
  return s;
}
KILN_DEVICE KILN_FORCEINLINE Vector normalized(const Vector& v, float m, float inv_sum) {
  Vector o;
#pragma unroll
  for (int j = 0; j < kVec; ++j) from_float(exp_minus(to_float(v[j]), m) * inv_sum, o[j]);
  return o;
}

/// Whether vector `c` lies in the row, or in the block's slice of it with clusters (known
/// true at compile time when the threads tile it).
template <int Step>
KILN_DEVICE KILN_FORCEINLINE bool in_row(COLV c) {
  return kSliceVecs % Step == 0 || c < COLV(kSliceVecs);
}

/// The row group (or row, with clusters) this block works on.
KILN_DEVICE KILN_FORCEINLINE int block_row() {
  return kiln::block_index() / kCluster;
}
/// Where this block's slice of its row starts, in elements (0 without clusters): block
/// rank r of a cluster (blockIdx.x % kCluster, clusters lying along x) takes slice r.
KILN_DEVICE KILN_FORCEINLINE long long slice_start() {
  return kCluster == 1 ? 0 : (long long)(kiln::block_index() % kCluster) * kSliceVecs * kVec;
}

/// The row's MaxSum from each block's (`v`, the same in every thread of the block): with
/// clusters through distributed shared memory, added up in rank order in every block;
/// without, `v`. Every thread of the cluster calls it, and with clusters then
/// cluster_done() before it leaves: the first kCluster threads of each block copy the
/// blocks' parts into its own shared memory and arrive on a cluster barrier that is waited
/// on only at the end, so that the writes do not wait for the slowest block's reads.
KILN_DEVICE KILN_FORCEINLINE MaxSum cluster_combine(MaxSum v) {
  if constexpr (kCluster == 1) {
    return v;
  } else {
    KILN_SHARED MaxSum mine;
    KILN_SHARED MaxSum parts[kCluster];
    const int t = kiln::thread_index();
    if (t == 0) mine = v;
    kiln::cluster_sync();  // every block's part written (release) and seen (acquire)
    if (t < kCluster) parts[t] = *kiln::cluster_shared(&mine, unsigned(t));
    kiln::cluster_arrive();  // done with the other blocks' shared memory
    kiln::sync_threads();    // parts seen by the whole block
    MaxSum total{kLowest, 0.0f};
#pragma unroll
    for (int r = 0; r < kCluster; ++r) total.m = max_of(total.m, parts[r].m);
#pragma unroll
    for (int r = 0; r < kCluster; ++r) total.s += parts[r].s * exp_minus(parts[r].m, total.m);
    return total;
  }
}
/// With clusters, the wait that matches cluster_combine's arrival: no block leaves (its
/// shared memory with it) while another may still read it.
KILN_DEVICE KILN_FORCEINLINE void cluster_done() {
  if constexpr (kCluster > 1) kiln::cluster_wait();
}

// One pass: thread (SLOT, RANK) holds vectors RANK, RANK + kThreadsPerRow, ... of row
// block * kRowsPerBlock + SLOT. Where 32 floats cover them, it keeps exp(x - its own max)
// too, so that each element costs one exp; otherwise the write recomputes it.
KILN_DEVICE KILN_FORCEINLINE void one_pass(const Elem* __restrict__ in, Elem* __restrict__ out,
                                           int rows) {
  constexpr bool kKeepExp = kIters * kVec <= 32;
  const Threads t(kiln::thread_index());
  const SLOT slot = t.get<SLOT>();
  const COLV first(t.get<RANK>().get());
  const ROW row(block_row() * kRowsPerBlock + slot.get());
  const bool valid = row < ROW(rows);
  const long long start = (long long)(valid ? row.get() : 0) * kCols + slice_start();
  const In x(in + start);
  const Out y(out + start);

  Vector v[kIters];
  MaxSum part{kLowest, 0.0f};
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (valid && in_row<kThreadsPerRow>(c)) {
      v[i] = kiln::load_vector<kVec>(x[c]);
      part.m = max_in(v[i], part.m);
    }
  }
  float e[kKeepExp ? kIters : 1][kVec];
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (!(valid && in_row<kThreadsPerRow>(c))) continue;
    if constexpr (kKeepExp) {
#pragma unroll
      for (int j = 0; j < kVec; ++j) part.s += (e[i][j] = exp_minus(to_float(v[i][j]), part.m));
    } else {
      part.s = sum_exp(v[i], part.m, part.s);
    }
  }
  const MaxSum total = cluster_combine(reduce_row(part));
  const float inv_sum = 1.0f / total.s;
  const float scale = exp_minus(part.m, total.m) * inv_sum;  // from this thread's max
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (!(valid && in_row<kThreadsPerRow>(c))) continue;
    if constexpr (kKeepExp) {
      Vector o;
#pragma unroll
      for (int j = 0; j < kVec; ++j) from_float(e[i][j] * scale, o[j]);
      kiln::store_vector<kVec>(y[c], o);
    } else {
      kiln::store_vector<kVec>(y[c], normalized(v[i], total.m, inv_sum));
    }
  }
  cluster_done();
}

#ifdef SOFTMAX_STAGED
// Staged (forward, one row per block, kCluster blocks a row): the block copies its slice
// of the row (kSliceVecs vectors, thread t vectors t, t + kThreadsPerRow, ...) into
// shared memory by cp.async, all in flight at once, then makes one pass as one_pass does
// with its max and sum from the copies and the write from them again (each thread reads
// back only what its own copies wrote: no barrier between). A block holds up to 192 KiB
// where one_pass holds 64 KiB in registers, and an SM holds several blocks of rows up to
// 64 KiB at once, one loading while another writes. (Clusters of staged blocks, each with
// a slice, are valid, but were measured slower than one block a row.)
// Rows longer than the shared memory holds (up to 256 KiB) keep each thread's last
// kStagedHeld vectors in registers: loaded after the copies are issued, summed after the
// copies' groups, written after the staged vectors. The row still crosses DRAM once.
static_assert(kSliceVecs == kThreadsPerRow * kIters, "staged: the threads tile the slice");
static_assert(sizeof(Vector) == 4 || sizeof(Vector) == 8 || sizeof(Vector) == 16,
              "staged: cp.async copies vectors of 4, 8 or 16 bytes");
static_assert(kStagedHeld >= 0 && kStagedHeld < kIters, "staged: a thread stages a vector or more");
static_assert(kStagedHeld == 0 || kCluster == 1, "staged: held vectors in a block a row");
constexpr int kStagedIters = kIters - kStagedHeld;  // a thread's vectors in shared memory

// The launch bounds' blocks an SM: the host's kMinBlocks (threads and shared memory on an
// SM of 228 KiB), capped at what the target's SM holds.
#if KILN_HIP
constexpr int kStagedBlocks = kMinBlocks;
#else
constexpr int kStagedBlocks = kiln::detail::launch_min_blocks_shared(
    kThreadsPerRow, kMinBlocks, kThreadsPerRow* kStagedIters*(long long)sizeof(Vector));
#endif

// The copies go in commit groups (at most 8), all issued at once; the max and sum of each
// group's vectors are taken as soon as it lands, while the later groups are still in
// flight (the row's max kept online, as multi_pass does). With the whole row first, an SM
// holding one block of a long row did no loading while it summed. Each vector is read
// back from shared memory in one load (kiln::load_whole).
using Groups = kiln::CommitGroups<kStagedIters>;

KILN_DEVICE KILN_FORCEINLINE void staged_pass(const Elem* __restrict__ in, Elem* __restrict__ out) {
  Vector* const held = static_cast<Vector*>(kiln::dynamic_shared_memory());
  const int t = kiln::thread_index();
  const long long start = (long long)block_row() * kCols + slice_start();
#pragma unroll
  for (int g = 0; g < Groups::groups; ++g) {
#pragma unroll
    for (int i = Groups::first(g); i < Groups::end(g); ++i) {
      const int v = i * kThreadsPerRow + t;
      kiln::async_copy<int(sizeof(Vector))>(held + v, in + start + (long long)v * kVec,
                                            int(sizeof(Vector)));
    }
    kiln::async_commit_group();
  }
  const In x(in + start);
  Vector regs[kStagedHeld > 0 ? kStagedHeld : 1];
#pragma unroll
  for (int j = 0; j < kStagedHeld; ++j)
    regs[j] = kiln::load_vector<kVec>(x[COLV((kStagedIters + j) * kThreadsPerRow + t)]);
  MaxSum part{kLowest, 0.0f};
#pragma unroll
  for (int g = 0; g < Groups::groups; ++g) {
    kiln::async_wait_pending(Groups::groups - 1 - g);  // group g has landed
    float m = part.m;
#pragma unroll
    for (int i = Groups::first(g); i < Groups::end(g); ++i)
      m = max_in(kiln::load_whole(held + i * kThreadsPerRow + t), m);
    part.s *= exp_minus(part.m, m);  // rescale to the new maximum (1 when it did not grow)
    part.m = m;
#pragma unroll
    for (int i = Groups::first(g); i < Groups::end(g); ++i)
      part.s = sum_exp(kiln::load_whole(held + i * kThreadsPerRow + t), part.m, part.s);
  }
  if constexpr (kStagedHeld > 0) {
    float m = part.m;
#pragma unroll
    for (int j = 0; j < kStagedHeld; ++j) m = max_in(regs[j], m);
    part.s *= exp_minus(part.m, m);
    part.m = m;
#pragma unroll
    for (int j = 0; j < kStagedHeld; ++j) part.s = sum_exp(regs[j], part.m, part.s);
  }
  const MaxSum total = cluster_combine(reduce_row(part));
  const float inv_sum = 1.0f / total.s;
  const Out y(out + start);
  // (Unrolled by two: the vectors are in shared memory, and registers held for all of
  // them would leave room for fewer blocks.)
#pragma unroll 2
  for (int i = 0; i < kStagedIters; ++i) {
    const int v = i * kThreadsPerRow + t;
    kiln::store_vector<kVec>(y[COLV(v)], normalized(kiln::load_whole(held + v), total.m, inv_sum));
  }
#pragma unroll
  for (int j = 0; j < kStagedHeld; ++j) {
    kiln::store_vector<kVec>(y[COLV((kStagedIters + j) * kThreadsPerRow + t)],
                             normalized(regs[j], total.m, inv_sum));
  }
  cluster_done();
}
#endif

// Multi pass: the block (SLOT: 1, RANK: kThreadsPerRow) streams its row in steps of
// kIters vectors per thread.
KILN_DEVICE KILN_FORCEINLINE void multi_pass(const Elem* __restrict__ in, Elem* __restrict__ out) {
  constexpr int kStep = kThreadsPerRow * kIters;  // vectors per step
  constexpr int kSteps = (kSliceVecs + kStep - 1) / kStep;
  const Threads t(kiln::thread_index());
  const COLV first(t.get<RANK>().get());
  const ROW row(block_row());
  const long long start = (long long)row.get() * kCols + slice_start();
  const In x(in + start);
  const Out y(out + start);

  MaxSum part{kLowest, 0.0f};
  for (int step = 0; step < kSteps; ++step) {
    Vector v[kIters];
    float m = part.m;
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (in_row<kStep>(c)) {
        v[i] = kiln::load_vector<kVec>(x[c]);
        m = max_in(v[i], m);
      }
    }
    part.s *= exp_minus(part.m, m);  // rescale to the new maximum (1 when it did not grow)
    part.m = m;
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (in_row<kStep>(c)) part.s = sum_exp(v[i], part.m, part.s);
    }
  }
  const MaxSum total = cluster_combine(reduce_row(part));
  const float inv_sum = 1.0f / total.s;
  for (int step = kSteps - 1; step >= 0; --step) {
    Vector v[kIters];
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (in_row<kStep>(c)) v[i] = kiln::load_vector<kVec>(x[c]);
    }
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (in_row<kStep>(c)) kiln::store_vector<kVec>(y[c], normalized(v[i], total.m, inv_sum));
    }
  }
  cluster_done();
}

#ifdef SOFTMAX_SPLIT
// Split (SoftmaxStrategy::split, the forward): rows too long for a block's registers or
// shared memory (64 x 1M), shared by the whole GPU, as kernels/norm.cu's split rows are.
// The grid is persistent (every block resident: a cooperative launch) and walks the rows'
// slices of kSplitVecs vectors in rounds: in round t block b reads slice s = t * grid + b
// (row s / kSlices), publishes the slice's MaxSum in slot s, and writes slice s - grid,
// which it read a round before. A grid of at least kSlices blocks has by then read every
// slice of that row, so its slots are mostly there already; the slice's second read hits
// L2 (loaded with evict_last the first time, evict_first the second, as y is stored), so
// a row crosses DRAM once each way, where multi pass reads it twice.
// A slot is one 64-bit word, the slice's maximum in the high half and its sum of
// exp(x - max) in the low one: a slice's sum is at least 1 (its maximum's own term), or 0
// where every element is -inf with the maximum left at kLowest, so a word some block
// wrote is never 0. The slots are zero when the launch starts: the launch before zeroed
// them (`next_slots`: as a block publishes a slice's word, it zeroes the same word of the
// buffer the next launch takes, kiln's two buffers used in turns), or the host did (where
// next_slots is null, the launches of a captured graph). Warp 0 loads its row's slots
// once the block's own MaxSum is in, spins until none is 0, and combines them in slice
// order (the same bits every run).
static_assert(sizeof(Vector) == 16, "split slices are read in 16-byte vectors");
static_assert(kRowsPerBlock == 1 && kCluster == 1, "a split block takes one slice at a time");

constexpr int kSplitVecs = kThreadsPerRow * kIters;
constexpr int kSlices = (kVecs + kSplitVecs - 1) / kSplitVecs;  // a row's
constexpr int kLaneWords = (kSlices + kiln::warp_size - 1) / kiln::warp_size;
// A ringed split's copies (kiln::SplitRing: R - 2 rounds ahead).
using Ring = kiln::SplitRing<kSplitRing>;
constexpr int kWarps = kThreadsPerRow / kiln::warp_size;
static_assert(kLaneWords <= 8, "warp 0 holds a row's slots, 8 words a lane");
// Whether a slice's second read is issued before the block waits for its row's slots
// (sm_86 and later) or only as its values are written (sm_80, where issued before, 16-bit
// slices spilled 12 to 28 bytes a thread).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 860
constexpr bool kEarlySecondRead = false;
#else
constexpr bool kEarlySecondRead = true;
#endif

KILN_DEVICE KILN_FORCEINLINE unsigned long long slot_word(MaxSum v) {
  return (unsigned long long)__float_as_uint(v.m) << 32 | __float_as_uint(v.s);
}
KILN_DEVICE KILN_FORCEINLINE MaxSum slot_value(unsigned long long w) {
  return {__uint_as_float(unsigned(w >> 32)), __uint_as_float(unsigned(w))};
}
KILN_DEVICE KILN_FORCEINLINE const Vector* vector_at(const Elem* p) {
  return reinterpret_cast<const Vector*>(p);
}
// A thread's vector i of a split slice whose first vector is at `first`: a constant offset
// on from there, which the compiler folds into the load, where each vector's own 64-bit
// address from its row's start and its column took about 4 instructions a load.
KILN_DEVICE KILN_FORCEINLINE const Vector* slice_vector(const Elem* first, int i) {
  return vector_at(In(first)[COLV(i * kThreadsPerRow)].ptr());
}
// max_in, sum_exp and normalized a pair of elements at a time (kiln::to_float_pair: a
// 16-bit pair read as one word), so that few converted values are live at once: over
// whole vectors the 16-bit slices spilled 12 to 312 bytes a thread.
KILN_DEVICE KILN_FORCEINLINE float pairs_max(const Vector& v, float m) {
#pragma unroll
  for (int j = 0; j < kVec; j += 2) {
    float lo, hi;
    kiln::to_float_pair(v.v, j, lo, hi);
    m = max_of(max_of(m, lo), hi);
  }
  return m;
}
KILN_DEVICE KILN_FORCEINLINE float pairs_sum_exp(const Vector& v, float m, float s) {
#pragma unroll
  for (int j = 0; j < kVec; j += 2) {
    float lo, hi;
    kiln::to_float_pair(v.v, j, lo, hi);
    s += exp_minus(lo, m);
    s += exp_minus(hi, m);
  }
  return s;
}
KILN_DEVICE KILN_FORCEINLINE Vector pairs_normalized(const Vector& v, float m, float inv_sum) {
  Vector o;
#pragma unroll
  for (int j = 0; j < kVec; j += 2) {
    float lo, hi;
    kiln::to_float_pair(v.v, j, lo, hi);
    kiln::from_float_pair(exp_minus(lo, m) * inv_sum, exp_minus(hi, m) * inv_sum, o.v, j);
  }
  return o;
}

KILN_DEVICE KILN_FORCEINLINE void split_pass(const Elem* in, Elem* out, int rows,
                                             unsigned long long* slots,
                                             unsigned long long* next_slots) {
  // Per buffer (by the round's parity): each warp's MaxSum, then the row's.
  __shared__ MaxSum scratch[2][kWarps + 1];
  const int tid = kiln::thread_index();
  const int lane = tid % kiln::warp_size, warp = tid / kiln::warp_size;
  const unsigned long long keep = kiln::l2_evict_last(), once = kiln::l2_evict_first();
  // (A grid of fewer blocks than a row's slices traps: kiln's configs never launch one,
  // SoftmaxConfig::grid_blocks.)
  const kiln::SplitRounds rounds((long long)rows * kSlices, kSlices);
  // Ringed (kSplitRing > 0): each thread copies its vectors of round t's slice into slot
  // t % kSplitRing of a ring in dynamic shared memory kSplitRing - 2 rounds ahead
  // (kiln::SplitRing: cp.async, a commit group a round) and reads them back there, for the
  // max and sum and, a round later, for the write: no second read from L2, no slice in
  // registers across the barriers. (A thread reads back only its own vectors.)
  Vector* const ring = static_cast<Vector*>(kiln::dynamic_shared_memory());
  auto ring_at = [&](long long t, int i) -> Vector& {
    return ring[Ring::slot(t) * kSplitVecs + i * kThreadsPerRow + tid];
  };
  auto fetch = [&](long long t) {  // round t's read slice into its slot
    kiln::split_fetch<kIters>(rounds, t, [&](const kiln::SplitRound& q, int i) {
      const COLV c((int)(q.read % kSlices) * kSplitVecs + tid + i * kThreadsPerRow);
      if (in_row<kSplitVecs>(c)) {
        kiln::async_copy<16>(&ring_at(t, i), In(in + (q.read / kSlices) * kCols)[c].ptr(), 16);
      }
    });
  };
  if constexpr (Ring::ringed) Ring::start(fetch);
  for (long long t = 0;; ++t) {
    const kiln::SplitRound r = rounds.round(t);
    if (r.done) break;
    const long long s = r.read, o = r.written;
    const bool reads = r.reads, writes = r.writes;
    MaxSum* red = scratch[r.parity];
    const In x(in + (s / kSlices) * kCols);
    const COLV first((int)(s % kSlices) * kSplitVecs + tid);
    const long long out_row = o / kSlices;
    const In x_again(in + out_row * kCols);
    const Out y(out + out_row * kCols);
    const COLV out_first((int)(o % kSlices) * kSplitVecs + tid);

    Vector v[kIters], h[kIters];
    if constexpr (Ring::ringed) {
      Ring::next(t, fetch);  // a later round's slice on its way; this round's landed
    } else if (reads) {
      const Elem* const x0 = x[first].ptr();
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (in_row<kSplitVecs>(c)) v[i] = kiln::load_hinted(slice_vector(x0, i), keep);
      }
    }
    unsigned long long got[kLaneWords];
    const unsigned long long* row_slots = slots + out_row * kSlices;
    if (reads) {
      MaxSum part{kLowest, 0.0f};
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (in_row<kSplitVecs>(c))
          part.m = pairs_max(kSplitRing > 0 ? ring_at(t, i) : v[i], part.m);
      }
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (in_row<kSplitVecs>(c)) {
          part.s = pairs_sum_exp(kSplitRing > 0 ? ring_at(t, i) : v[i], part.m, part.s);
        }
      }
      part = lanes_combine<kiln::warp_size>(part);
      if (lane == 0) red[warp] = part;
    }
    // The second read once the first's vectors are spent, in flight while the block waits
    // below (sm_80's code issues it after the wait: see kEarlySecondRead).
    if (kSplitRing == 0 && kEarlySecondRead && writes) {
      const Elem* const x0 = x_again[out_first].ptr();
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = out_first + COLV(i * kThreadsPerRow);
        if (in_row<kSplitVecs>(c)) h[i] = kiln::load_hinted(slice_vector(x0, i), once);
      }
    }
    // Warp 0 gathers the written row's MaxSum before the round's one barrier (the second
    // read in flight) and leaves it in shared memory; after it, warp 0 publishes the
    // slice's while the other warps write.
    if (writes && warp == 0) {
      // (Loaded with the slice's loads, as RMSNorm's are, the slots spilled 16-bit
      // slices 12 to 312 bytes a thread.)
#pragma unroll
      for (int k = 0; k < kLaneWords; ++k) {
        const int at = k * kiln::warp_size + lane;
        if (at < kSlices) got[k] = kiln::load_relaxed(row_slots + at);
      }
      MaxSum mine{kLowest, 0.0f};  // this lane's slices, in order
#pragma unroll
      for (int k = 0; k < kLaneWords; ++k) {
        const int at = k * kiln::warp_size + lane;
        if (at >= kSlices) continue;
        while (got[k] == 0) got[k] = kiln::load_relaxed(row_slots + at);
        const MaxSum part = slot_value(got[k]);
        const float m = max_of(mine.m, part.m);
        mine.s = mine.s * exp_minus(mine.m, m) + part.s * exp_minus(part.m, m);
        mine.m = m;
      }
      kiln::sync_warp();  // (the lanes leave their spins apart)
      const MaxSum row = lanes_combine<kiln::warp_size>(mine);
      if (lane == 0) red[kWarps] = row;
    }
    kiln::sync_threads();
    if (warp == 0 && reads) {
      // The block's MaxSum, its warps in order (the same in every lane).
      MaxSum b{kLowest, 0.0f};
#pragma unroll
      for (int w = 0; w < kWarps; ++w) b.m = max_of(b.m, red[w].m);
#pragma unroll
      for (int w = 0; w < kWarps; ++w) b.s += red[w].s * exp_minus(red[w].m, b.m);
      if (lane == 0) {
        kiln::store_relaxed(slots + s, slot_word(b));
        if (next_slots) next_slots[s] = 0;  // for the next launch
      }
    }
    if (writes) {
      const MaxSum row = red[kWarps];
      const float inv_sum = 1.0f / row.s;
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = out_first + COLV(i * kThreadsPerRow);
        if (!in_row<kSplitVecs>(c)) continue;
        if (kSplitRing == 0 && !kEarlySecondRead) {
          h[i] = kiln::load_hinted(vector_at(x_again[c].ptr()), once);
        }
        const Vector o =
            pairs_normalized(kSplitRing > 0 ? ring_at(t - 1, i) : h[i], row.m, inv_sum);
        kiln::store_hinted(reinterpret_cast<Vector*>(y[c].ptr()), o, once);
      }
    }
  }
}
#endif

}  // namespace softmax

// ---- Backward: dx = y * (dy - sum(dy * y)) (compiled into the backward kernel only) ----
#ifdef SOFTMAX_BACKWARD
namespace softmax {

/// s + sum of y[j] * dy[j] over a vector.
KILN_DEVICE KILN_FORCEINLINE float sum_product(const Vector& y, const Vector& dy, float s) {
#pragma unroll
  for (int j = 0; j < kVec; ++j) s += to_float(y[j]) * to_float(dy[j]);
  return s;
}
/// y * (dy - dot) for a vector, in the storage type.
KILN_DEVICE KILN_FORCEINLINE Vector gradient(const Vector& y, const Vector& dy, float dot) {
  Vector o;
#pragma unroll
  for (int j = 0; j < kVec; ++j) from_float(to_float(y[j]) * (to_float(dy[j]) - dot), o[j]);
  return o;
}

/// y and dy at vectors base + i · kThreadsPerRow (i < kIters) of their row, where `valid`
/// and they lie in the row (in_row<Step>).
template <int Step>
KILN_DEVICE KILN_FORCEINLINE void load_pair(const In& y, const In& dy, COLV base, bool valid,
                                            Vector (&vy)[kIters], Vector (&vdy)[kIters]) {
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = base + COLV(i * kThreadsPerRow);
    if (valid && in_row<Step>(c)) {
      vy[i] = kiln::load_vector<kVec>(y[c]);
      vdy[i] = kiln::load_vector<kVec>(dy[c]);
    }
  }
}

// One pass, laid out as the forward's: each thread holds its kIters vectors of y and of dy.
KILN_DEVICE KILN_FORCEINLINE void one_pass_backward(const Elem* y_in, const Elem* dy_in,
                                                    Elem* dx_out, int rows) {
  const Threads t(kiln::thread_index());
  const COLV first(t.get<RANK>().get());
  const ROW row(kiln::block_index() * kRowsPerBlock + t.get<SLOT>().get());
  const bool valid = row < ROW(rows);
  const long long start = (long long)(valid ? row.get() : 0) * kCols;
  const In y(y_in + start);
  const In dy(dy_in + start);
  const Out dx(dx_out + start);

  Vector vy[kIters], vdy[kIters];
  load_pair<kThreadsPerRow>(y, dy, first, valid, vy, vdy);
  float part = 0.0f;
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (valid && in_row<kThreadsPerRow>(c)) part = sum_product(vy[i], vdy[i], part);
  }
  const float dot = kiln::row_reduce<kiln::RowSum, kThreadsPerRow, kRowsPerBlock>(part);
#pragma unroll
  for (int i = 0; i < kIters; ++i) {
    const COLV c = first + COLV(i * kThreadsPerRow);
    if (valid && in_row<kThreadsPerRow>(c)) {
      kiln::store_vector<kVec>(dx[c], gradient(vy[i], vdy[i], dot));
    }
  }
}

// Multi pass: the block streams its row in steps of kIters vectors per thread, summing
// dy * y, then again backwards (its first reads hit what the first pass left in L2),
// writing dx.
KILN_DEVICE KILN_FORCEINLINE void multi_pass_backward(const Elem* y_in, const Elem* dy_in,
                                                      Elem* dx_out) {
  constexpr int kStep = kThreadsPerRow * kIters;  // vectors per step
  constexpr int kSteps = (kVecs + kStep - 1) / kStep;
  const Threads t(kiln::thread_index());
  const COLV first(t.get<RANK>().get());
  const long long start = (long long)kiln::block_index() * kCols;
  const In y(y_in + start);
  const In dy(dy_in + start);
  const Out dx(dx_out + start);

  float part = 0.0f;
  for (int step = 0; step < kSteps; ++step) {
    Vector vy[kIters], vdy[kIters];
    load_pair<kStep>(y, dy, first + COLV(step * kStep), true, vy, vdy);
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (in_row<kStep>(c)) part = sum_product(vy[i], vdy[i], part);
    }
  }
  const float dot = kiln::row_reduce<kiln::RowSum, kThreadsPerRow, kRowsPerBlock>(part);
  for (int step = kSteps - 1; step >= 0; --step) {
    Vector vy[kIters], vdy[kIters];
    load_pair<kStep>(y, dy, first + COLV(step * kStep), true, vy, vdy);
#pragma unroll
    for (int i = 0; i < kIters; ++i) {
      const COLV c = first + COLV(step * kStep + i * kThreadsPerRow);
      if (in_row<kStep>(c)) kiln::store_vector<kVec>(dx[c], gradient(vy[i], vdy[i], dot));
    }
  }
}

#ifdef SOFTMAX_SPLIT
// Split (the backward's): the forward's split rows (above), each slice's y and dy read in
// one round with evict_last, its sum of dy * y published in its slot (kiln::split_slot_word:
// a tagged word, a zero word no block's yet), and read again (from L2, evict_first) in the
// next, dx written once the row's slots are all in. Converted a pair of elements at a
// time, as the forward's (kiln::to_float_pair). Ringed (kSplitRing = R > 0), as the
// forward's ringed split: each thread copies its vectors of y and dy of round t's slice
// into slot t % R of two rings in dynamic shared memory (y's, then dy's) R - 2 rounds
// ahead (cp.async, a commit group a round) and reads them back there, for the sum and, a
// round later, for dx: no second read from L2, and R - 2 slices of each in flight while
// the block sums and writes.
using BackwardSlots = kiln::SplitRowSlots<kSlices, 1>;

KILN_DEVICE KILN_FORCEINLINE float pairs_sum_product(const Vector& y, const Vector& dy, float s) {
#pragma unroll
  for (int j = 0; j < kVec; j += 2) {
    float y0, y1, d0, d1;
    kiln::to_float_pair(y.v, j, y0, y1);
    kiln::to_float_pair(dy.v, j, d0, d1);
    s += y0 * d0;
    s += y1 * d1;
  }
  return s;
}
KILN_DEVICE KILN_FORCEINLINE Vector pairs_gradient(const Vector& y, const Vector& dy, float dot) {
  Vector o;
#pragma unroll
  for (int j = 0; j < kVec; j += 2) {
    float y0, y1, d0, d1;
    kiln::to_float_pair(y.v, j, y0, y1);
    kiln::to_float_pair(dy.v, j, d0, d1);
    kiln::from_float_pair(y0 * (d0 - dot), y1 * (d1 - dot), o.v, j);
  }
  return o;
}

KILN_DEVICE KILN_FORCEINLINE void split_pass_backward(const Elem* y_in, const Elem* dy_in,
                                                      Elem* dx_out, int rows,
                                                      unsigned long long* slots,
                                                      unsigned long long* next_slots) {
  // Per buffer (by the round's parity): each warp's sum (two floats a warp), then the row's.
  __shared__ float scratch[2][2 * kWarps + 2];
  const int tid = kiln::thread_index();
  const int lane = tid % kiln::warp_size, warp = tid / kiln::warp_size;
  const unsigned long long keep = kiln::l2_evict_last(), once = kiln::l2_evict_first();
  // (A grid of fewer blocks than a row's slices traps: kiln's configs never launch one.)
  const kiln::SplitRounds rounds((long long)rows * kSlices, kSlices);
  // Ringed: vector i of this thread's y (`which` 0) or dy (1) of round t's slice.
  Vector* const rings = static_cast<Vector*>(kiln::dynamic_shared_memory());
  auto ring_at = [&](int which, long long t, int i) -> Vector& {
    return rings[(which * Ring::slices + Ring::slot(t)) * kSplitVecs + i * kThreadsPerRow + tid];
  };
  auto fetch = [&](long long t) {  // round t's slices of y and dy into their slots
    kiln::split_fetch<kIters>(rounds, t, [&](const kiln::SplitRound& q, int i) {
      const long long at = (q.read / kSlices) * kCols;
      const COLV c((int)(q.read % kSlices) * kSplitVecs + tid + i * kThreadsPerRow);
      if (!in_row<kSplitVecs>(c)) return;
      kiln::async_copy<16>(&ring_at(0, t, i), In(y_in + at)[c].ptr(), 16);
      kiln::async_copy<16>(&ring_at(1, t, i), In(dy_in + at)[c].ptr(), 16);
    });
  };
  if constexpr (Ring::ringed) Ring::start(fetch);
  for (long long t = 0;; ++t) {
    const kiln::SplitRound r = rounds.round(t);
    if (r.done) break;
    float* red = scratch[r.parity];
    const long long row = r.read / kSlices, out_row = r.written / kSlices;
    const In y(y_in + row * kCols), dy(dy_in + row * kCols);
    const In y_again(y_in + out_row * kCols), dy_again(dy_in + out_row * kCols);
    const Out dx(dx_out + out_row * kCols);
    const COLV first((int)(r.read % kSlices) * kSplitVecs + tid);
    const COLV out_first((int)(r.written % kSlices) * kSplitVecs + tid);
    Vector vy[kIters], vdy[kIters], wy[kIters], wdy[kIters];
    if constexpr (Ring::ringed) {
      Ring::next(t, fetch);  // a later round's slices on their way; this round's landed
      if (r.reads) {
#pragma unroll
        for (int i = 0; i < kIters; ++i) {
          const COLV c = first + COLV(i * kThreadsPerRow);
          if (!in_row<kSplitVecs>(c)) continue;
          vy[i] = ring_at(0, t, i);
          vdy[i] = ring_at(1, t, i);
        }
      }
    } else if (r.reads) {
      const Elem* const y0 = y[first].ptr();
      const Elem* const dy0 = dy[first].ptr();
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (!in_row<kSplitVecs>(c)) continue;
        vy[i] = kiln::load_hinted(slice_vector(y0, i), keep);
        vdy[i] = kiln::load_hinted(slice_vector(dy0, i), keep);
      }
    }
    if (!Ring::ringed && r.writes) {
      const Elem* const y0 = y_again[out_first].ptr();
      const Elem* const dy0 = dy_again[out_first].ptr();
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = out_first + COLV(i * kThreadsPerRow);
        if (!in_row<kSplitVecs>(c)) continue;
        wy[i] = kiln::load_hinted(slice_vector(y0, i), once);
        wdy[i] = kiln::load_hinted(slice_vector(dy0, i), once);
      }
    }
    const unsigned long long* row_slots = slots + out_row * kSlices;
    BackwardSlots got;
    // (Loaded early where a lane holds at most 4 words, as the norms' split rows do.)
    constexpr bool kEarly = BackwardSlots::lane_slices <= 4;
    if (kEarly && r.writes && warp == 0) got.load(row_slots, lane);
    if (r.reads) {
      float part = 0.0f;
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = first + COLV(i * kThreadsPerRow);
        if (in_row<kSplitVecs>(c)) part = pairs_sum_product(vy[i], vdy[i], part);
      }
      kiln::split_warp_sums<true, false>(red, warp, lane, part, 0.0f);
    }
    kiln::sync_threads();
    if (warp == 0) {
      if (r.reads) {
        float sum, unused;
        kiln::split_block_sums<kWarps, true, false>(red, lane, sum, unused);
        if (lane == 0) {
          kiln::store_relaxed(slots + r.read, kiln::split_slot_word(sum));
          if (next_slots) next_slots[r.read] = 0;  // the same word, for the next launch
        }
      }
      if (r.writes) {
        if (!kEarly) got.load(row_slots, lane);
        got.wait(row_slots, lane);
        float dot = 0.0f;  // the lane's slices in order, then the lanes'
#pragma unroll
        for (int k = 0; k < BackwardSlots::lane_slices; ++k) {
          if (got.has(k, lane)) dot += got.value(k, 0);
        }
        dot = kiln::warp_sum(dot);
        if (lane == 0) red[2 * kWarps] = dot;
      }
    }
    kiln::sync_threads();
    if (r.writes) {
      const float dot = red[2 * kWarps];
#pragma unroll
      for (int i = 0; i < kIters; ++i) {
        const COLV c = out_first + COLV(i * kThreadsPerRow);
        if (!in_row<kSplitVecs>(c)) continue;
        if constexpr (Ring::ringed) {
          wy[i] = ring_at(0, t - 1, i);
          wdy[i] = ring_at(1, t - 1, i);
        }
        kiln::store_hinted(reinterpret_cast<Vector*>(dx[c].ptr()),
                           pairs_gradient(wy[i], wdy[i], dot), once);
      }
    }
  }
}
#endif

}  // namespace softmax
#endif

/// in, out (backward: y, dy, dx): rows x kCols elements, row-major, each row starting at
/// a multiple of kVec elements from a 16-byte aligned base. Launched with kThreadsPerRow *
/// kRowsPerBlock threads and ceil(rows / kRowsPerBlock) * kCluster blocks, in clusters of
/// kCluster blocks along x; split configs (the backward's too): kThreadsPerRow threads,
/// the config's grid_blocks, cooperatively, with rows x kSlices zeroed slots (null for the
/// others) and, unless null, as many more that it zeroes for the next launch
/// (`next_slots`).
// The block size bounds the registers (64 a thread at 1024 threads), so that every
// config launches.
// `out` may be `in` (in place), yet both keep __restrict__: every element is read before
// any thread writes it and never read again after, so the read-only loads it allows
// (ld.global.nc, in 143 of 178 forward kernels' PTX on sm_90) see no write. Without it
// those loads are plain ones, not yet measured.
#ifndef SOFTMAX_BACKWARD
#if defined(SOFTMAX_SPLIT)
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, kSplitMinBlocks)
#elif defined(SOFTMAX_STAGED)
// Staged: as many blocks an SM as its threads and shared memory take (kStagedBlocks).
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, softmax::kStagedBlocks)
#else
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow* kRowsPerBlock, 1)
#endif
    KILN_KERNEL_NAME(const softmax::Elem* __restrict__ in, softmax::Elem* __restrict__ out,
                     int rows, unsigned long long* slots, unsigned long long* next_slots) {
  (void)slots;  // split configs' only
  (void)next_slots;
#if defined(SOFTMAX_SPLIT)
  softmax::split_pass(in, out, rows, slots, next_slots);
#elif defined(SOFTMAX_STAGED)
  if (softmax::block_row() >= rows) return;  // the whole cluster: before any barrier
  softmax::staged_pass(in, out);
#else
  if constexpr (kMultiPass) {
    if (softmax::block_row() >= rows) return;  // the whole cluster: before any barrier
    softmax::multi_pass(in, out);
  } else {
    softmax::one_pass(in, out, rows);
  }
#endif
}
#else
#if defined(SOFTMAX_SPLIT)
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow, kSplitMinBlocks)
#else
KILN_KERNEL void KILN_LAUNCH_BOUNDS(kThreadsPerRow* kRowsPerBlock, 1)
#endif
    KILN_KERNEL_NAME(const softmax::Elem* y, const softmax::Elem* dy, softmax::Elem* dx, int rows,
                     unsigned long long* slots, unsigned long long* next_slots) {
  (void)slots;  // split configs' only
  (void)next_slots;
#if defined(SOFTMAX_SPLIT)
  softmax::split_pass_backward(y, dy, dx, rows, slots, next_slots);
#else
  if constexpr (kMultiPass) {
    if (kiln::block_index() >= rows) return;  // the whole block: before any barrier
    softmax::multi_pass_backward(y, dy, dx);
  } else {
    softmax::one_pass_backward(y, dy, dx, rows);
  }
#endif
}
#endif
