// Grouped 2-D convolution (channels last) on the tensor cores of sm_80 and later: each
// output channel k of group k / G sums R x S filter taps over the G input channels of its
// group. One kernel serves fprop and the data gradient (dgrad: dy correlated with the
// filters flipped and transposed within each group, kFlip, at stride 1; for stride 2 dy is
// read dilated, kDilate 2: a zero between each two of its rows and columns); the weight
// gradient's kernel (CONV_WGRAD) shares its ring of input rows.
//
// The host (include/kiln/ops/conv.hpp) generates spec.hpp with:
//   dimensions  H, W (input rows, columns), P, Q (output rows, columns), C (channels),
//               R, S (filter rows, columns), G (channel within a group), GRP (group within
//               a block's channels)
//   tensors     XImage (H, W, C) and YImage (P, Q, C): one image of the input and of the
//               output; ResidualImage (P, Q, C); Weights (C, R, S, G); Bias (C); DyImage
//               (P, Q, C), wgrad's dy
//   macro       CONV_WGRAD for the weight gradient's kernel (at the end of this file)
//   constants   kR, kS, kG, kStride, kPadH, kPadW, kFlip, kDilate; the config: kBP x kBQ x kBC
//               (output rows, columns, channels of a block), kWarpsQ x kWarpsC warps,
//               kStepRows (output rows a step computes), kAhead (steps whose input rows
//               are in flight); kCarry (the copies run on into a block's next item);
//               kRing (the input rows the ring holds); kChannels (C, the channels);
//               kMinBlocks (the blocks an SM keeps resident at least, so the registers a
//               thread may take); the
//               epilogue: kBias, kActivation (0 none, 1 ReLU, 2 SiLU), kResidual; wgrad's
//               warp split: kWgradPairsPerWarp, kWgradRowClasses, kWgradRowsPerWarp
//   KILN_KERNEL_NAME
//
// A block takes a strip of kBP output rows x kBQ output columns x kBC channels of one
// image. It stages its channels' weights once (flipped and transposed for dgrad; held in
// registers where they fit) and walks down the strip kStepRows output rows a step, keeping
// the input rows the step reads in a ring of shared-memory rows filled by cp.async
// (zero-filled outside the image: the padding), so each input row is read from memory once
// per strip. A ring row holds the window of input
// columns the block's output columns read, every pixel's kBC channels (16-byte chunks,
// XOR-swizzled so that ldmatrix of 8 pixels hits 8 different banks). For stride 2 the
// window's even columns come first, then its odd ones: each filter tap then reads
// consecutive slots, as for stride 1.
//
// Each warp owns (16 output columns x 8 channels) accumulator tiles: kTilesQ along the
// columns, kTilesC along the channels (whole groups), for each of the step's rows. For
// every filter tap (r, s) the A fragment (16 output columns x the group's channels) comes
// by ldmatrix straight from the ring row of input row p * stride + r, from slot
// q * stride + s (in the window's order), and serves every output row of the step that
// reads that input row; the B fragment (the group's input channels x 8 output channels) is
// the warp's weights. Groups of 8 pair filter columns s and s + 1 into one m16n8k16. The
// results pass through a shared output tile and leave 16 bytes a thread.
#include "kiln/device/async_copy.hpp"
#include "kiln/device/grid_dependency.hpp"
#include "kiln/device/ldmatrix.hpp"
#include "spec.hpp"

namespace conv {

// (filter column, input channel) pairs: the depth of fprop's tap-paired steps (8 channels
// at filter column s, then the same 8 at s + 1) and the rows of wgrad's mma (s * G + g).
KILN_DIM(TAPC);

using In = typename kiln::detail::RemoveConst<typename XImage::element_type>::type;
using Out = typename YImage::element_type;

constexpr int kWarps = kWarpsQ * kWarpsC;
constexpr int kThreads = 32 * kWarps;
[[maybe_unused]] constexpr int kTilesQ = kBQ / 16 / kWarpsQ;  // 16-column tiles a warp computes
constexpr int kWarpC = kBC / kWarpsC;                         // channels a warp computes
constexpr int kTilesC = kWarpC / 8;                           // 8-channel tiles a warp computes
constexpr int kDepth = kG >= 16 ? 16 : 8;  // the mma's depth: m16n8k8 or m16n8k16
constexpr int kSteps = kG / kDepth;        // mma steps through a group's input channels
constexpr int kGroups = kBC / kG;          // groups in a block's channels

#ifdef CONV_WGRAD
constexpr bool kWgrad = true;
#else
constexpr bool kWgrad = false;
#endif
// (The weight gradient's warps split its accumulators instead: see its kernel.)
static_assert(kWgrad || kBQ % (16 * kWarpsQ) == 0, "each warp takes whole 16-column tiles");
static_assert(kWgrad || kWarpC % kG == 0, "each warp takes whole groups");
static_assert(kG % 8 == 0 && kBC % kG == 0, "groups are whole 8-channel chunks");

// The window of input columns a row of kBQ output columns reads, and its slots.
constexpr int kWindow = (kBQ - 1) * kStride + kS;
constexpr int kHalf = kStride == 1 ? kWindow : (kWindow + 1) / 2;
constexpr int kSlots = (kStride * kHalf + 7) / 8 * 8;
// A step's output rows read kStepIn input rows, kAdvance rows on from the step before's.
// The ring (kRing rows, from the host's conv_ring_rows) holds a step's rows and kAhead
// steps more; with kCarry the copies run on into the block's next item, whose first step
// reads kStepIn new rows, not kAdvance, so the ring holds kStepIn - kAdvance more once.
constexpr int kStepIn = kR + kStride * (kStepRows - 1);
constexpr int kAdvance = kStride * kStepRows;
static_assert(kRing >= kStepIn + kAhead * kAdvance, "the ring holds the steps in flight");
constexpr int kChunks = kBC / 8;  // 16-byte chunks of a pixel's channels

// The slot of window column j.
KILN_HOST_DEVICE constexpr int slot_of(int j) {
  return kStride == 1 ? j : (j % 2) * kHalf + j / 2;
}

KILN_HOST_DEVICE constexpr int log2i(int v) {
  return v <= 1 ? 0 : 1 + log2i(v / 2);
}
// XOR a pixel's 16-byte chunk index with the bits of its 128-byte line (mod 8): eight
// consecutive pixels' same chunk land in eight different 16-byte bank groups.
constexpr int kChunkBits = log2i(kChunks);
using RowSwizzle =
    kiln::Swizzle<(kChunkBits < 3 ? kChunkBits : 3), 3, (kChunkBits > 3 ? kChunkBits : 3)>;

// One ring row: slots (typed Q: in a tap's view the slot advances one per output column)
// x the block's channels as (GRP, G).
using RowTile = kiln::SwizzledTensor<In, RowSwizzle, kiln::Extent<Q, kSlots>,
                                     kiln::Extent<GRP, kGroups>, kiln::Extent<G, kG>>;
using RowRing = kiln::Ring<RowTile, kRing>;
// Ring positions: a block keeps its position `at` (a step's first input row) reduced,
// 0 <= at < kRing, moving it on by kiln::ring_advance, and every row it names is at + t
// with 0 <= t < kRing (a step's rows, those kAhead steps on, and, carrying, the next
// item's: what conv_ring_rows sizes the ring for). So the stage of a position is one
// unsigned minimum (kiln::ring_reduce), with no division.
// The shared-memory address of the ring row at position `pos`, from the ring's own
// (`base`): one multiply-add, where a pointer to the row would need a 64-bit address and a
// conversion for each row.
KILN_DEVICE KILN_FORCEINLINE unsigned ring_row_address(unsigned base, int pos) {
  return base +
         unsigned(kiln::ring_reduce(pos, kRing)) * unsigned(RowRing::stage_stride * sizeof(In));
}
// One output row of the block, as y stores it (swizzled as the ring rows: a warp's 4-byte
// writes of 8 pixels' same channels, and 8 threads' 16-byte reads of a pixel, each hit
// different banks).
using OutTile = kiln::SwizzledTensor<Out, RowSwizzle, kiln::Extent<P, kStepRows>,
                                     kiln::Extent<Q, kBQ>, kiln::Extent<C, kBC>>;
// The block's weights: (R, S, output channel of the block, input channel of its group).
using WeightTile = kiln::Tensor<In, kiln::Extent<R, kR>, kiln::Extent<S, kS>, kiln::Extent<C, kBC>,
                                kiln::Extent<G, kG>>;

using FragA = kiln::MmaA<In, Q, G, kDepth>;
using FragB = kiln::MmaB<In, G, C, kDepth>;
using Acc = kiln::MmaC<float, Q, C>;
using ALoader = kiln::FragmentLoader<FragA, RowTile>;
[[maybe_unused]] constexpr int kWarpGroups = kWarpC / kG;  // groups a warp computes

// The warp's B fragments (its channels' weights for every tap and step): held in
// registers where they take at most 48 a thread, else loaded from the staged weights at
// each use.
constexpr int kBFragments = kR * kS * kSteps * kTilesC > 0 ? kR* kS* kSteps* kTilesC : 1;
constexpr bool kWeightsInRegisters = kBFragments * FragB::registers <= 48;

struct WarpWeights {
  FragB held[kWeightsInRegisters ? kBFragments : 1];
  WeightTile tile{nullptr};
  int wc = 0;

  KILN_DEVICE KILN_FORCEINLINE void load(const WeightTile& wt, int warp_c) {
    tile = wt;
    wc = warp_c;
    if constexpr (kWeightsInRegisters) {
#pragma unroll
      for (int r = 0; r < kR; ++r)
#pragma unroll
        for (int s = 0; s < kS; ++s)
#pragma unroll
          for (int ks = 0; ks < kSteps; ++ks)
#pragma unroll
            for (int j = 0; j < kTilesC; ++j)
              kiln::ldmatrix_fragment(held[((r * kS + s) * kSteps + ks) * kTilesC + j],
                                      wt[R(r) + S(s) + C(warp_c + 8 * j) + G(kDepth * ks)]);
    }
  }
  // The B fragment of tap (r, s), step ks, channel tile j.
  KILN_DEVICE KILN_FORCEINLINE FragB b(int r, int s, int ks, int j) const {
    if constexpr (kWeightsInRegisters) {
      return held[((r * kS + s) * kSteps + ks) * kTilesC + j];
    } else {
      FragB f;
      kiln::ldmatrix_fragment(f, tile[R(r) + S(s) + C(wc + 8 * j) + G(kDepth * ks)]);
      return f;
    }
  }
};

// The block's weights as they lie in memory: (output channel, R, S, input channel of its
// group), the order in which staging reads them, so that a warp's reads are contiguous.
using WeightSource = kiln::Tensor<In, kiln::Extent<C, kBC>, kiln::Extent<R, kR>,
                                  kiln::Extent<S, kS>, kiln::Extent<G, kG>>;

// The weights of channels [c0, c0 + kBC) into `wt`, read in memory order 16 bytes at a time:
// by cp.async for fprop; for dgrad by plain loads, each vector's 8 elements then stored
// flipped and transposed within their group:
//   wt[r, s, c, g] = w[group(c) * G + g, R - 1 - r, S - 1 - s, c mod G]
// Every block of a channel tile reads the same weights, at once as the kernel starts: each
// starts at a 128-byte line of its own (by its index), so that the blocks do not all queue
// at one line of L2.
KILN_DEVICE KILN_FORCEINLINE void stage_weights(const WeightTile& wt, const Weights& w, int c0) {
  constexpr int n = kR * kS * kBC * kG / 8;  // 16-byte vectors
  const int first = int(unsigned(kiln::block_index()) % unsigned((n + 7) / 8)) * 8;
  for (int u = kiln::thread_index(); u < n; u += kThreads) {
    const int v = u + first < n ? u + first : u + first - n;
    const auto at = typename WeightSource::layout_type().coords_of(8 * v);
    if constexpr (kFlip == 0) {
      kiln::async_copy_16(wt[at].ptr(), w[at + C(c0)].ptr(), 16);
    } else {
      // Element j of the vector is w[cc, rr, ss, gg + j] (cc = c0 + c): tap
      // (R - 1 - rr, S - 1 - ss), channel group(cc) * G + gg + j, input channel cc mod G.
      const kiln::Vec<In, 8> vec = *reinterpret_cast<const kiln::Vec<In, 8>*>(w[at + C(c0)].ptr());
      const int c = kiln::get<C>(at).get(), gg = kiln::get<G>(at).get();
      const auto tap = R(kR - 1 - kiln::get<R>(at).get()) + S(kS - 1 - kiln::get<S>(at).get());
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        *wt[tap + C(c - c % kG + gg + j) + G(c % kG)] = vec[j];
      }
    }
  }
}

// An image row as TileChunks::load reads it: its element offset in the image (the row
// clamped into the image: an address that exists) and whether it is inside the image
// (else the tile gets zeros). One image is under 2^31 elements (validate_conv_grouped).
struct RowSource {
  int offset;
  bool inside;
};

// A thread's share of the 16-byte chunks of a shared tile of kRows rows x kPixels pixels x
// the block's kChunks chunks, which cp.async fills from an image in memory. Its k-th chunk
// (k < kEach) is chunk v = thread + k * kThreads: row v / (kPixels * kChunks), pixel
// v / kChunks mod kPixels. Where each chunk sits in the tile is the same for every copy,
// so it is worked out once (`place`); where it sits in the image is set at each item (its
// first image column and its channels). A copy then costs an address add and a select a
// chunk rather than the whole index arithmetic: a chunk outside the image (the padding)
// copies 0 bytes, zero-filling its slot, from a column clamped into the image (an address
// that exists). Pixel j is image column col0 + j, at a column step of kColumnStep (2: the
// dilated dy of dgrad at stride 2, whose odd columns are zeros).
template <int kRows, int kPixels, int kColumnStep>
struct TileChunks {
  static constexpr int kCount = kRows * kPixels * kChunks;
  static constexpr int kEach = (kCount + kThreads - 1) / kThreads;
  int tile_at[kEach];   // element offset in the tile (-1: the thread has no k-th chunk)
  int image_at[kEach];  // element offset from its image row's first pixel (clamped inside)
  bool inside[kEach];   // whether the chunk's column is inside the image (else zeros)

  template <class Place>
  KILN_DEVICE KILN_FORCEINLINE explicit TileChunks(const Place& place) {
    const int thread = kiln::thread_index();
#pragma unroll
    for (int k = 0; k < kEach; ++k) {
      const int v = thread + k * kThreads;
      tile_at[k] =
          v < kCount ? place(v / (kPixels * kChunks), v / kChunks % kPixels, v % kChunks) : -1;
      image_at[k] = 0;
      inside[k] = false;
    }
  }
  // The item's image, its columns from col0 (of `width`, along dimension Col) and its
  // channels from c0.
  template <class Col, class Image>
  KILN_DEVICE KILN_FORCEINLINE void start(const Image& image, int col0, int width, int c0) {
    const int thread = kiln::thread_index();
#pragma unroll
    for (int k = 0; k < kEach; ++k) {
      const int v = thread + k * kThreads;
      const int column = col0 + v / kChunks % kPixels;
      const int clamped = column < 0 ? 0 : column < width ? column : width - 1;
      image_at[k] =
          int(image[Col(clamped / kColumnStep) + C(c0 + 8 * (v % kChunks))].ptr() - image.data());
      inside[k] = column >= 0 && column < width && column % kColumnStep == 0;
    }
  }
  // Fills `tile` by cp.async from the item's image `image`: its row m from the image row
  // row_of(m) (a RowSource), zeros where that is outside the image.
  template <class T, class RowOf>
  KILN_DEVICE KILN_FORCEINLINE void load(T* tile, const T* image, const RowOf& row_of) const {
#pragma unroll
    for (int k = 0; k < kEach; ++k) {
      // (Only the last chunk may be missing, for some threads.)
      if (kCount % kThreads != 0 && k == kEach - 1 && tile_at[k] < 0) continue;
      const RowSource src =
          row_of(kRows == 1 ? 0 : (kiln::thread_index() + k * kThreads) / (kPixels * kChunks));
      // (A byte count of 16 or 0 by a select of the two: cp.async's predicated zero fill.)
      kiln::async_copy_16(tile + tile_at[k], image + (src.offset + image_at[k]),
                          src.inside && inside[k] ? 16 : 0);
    }
  }
};

// The chunks of an input row: the window's pixel j in slot slot_of(j) of a ring row.
using RowChunks = TileChunks<1, kWindow, kDilate>;
KILN_DEVICE KILN_FORCEINLINE RowChunks row_chunks() {
  return RowChunks([](int, int j, int chunk) {
    return RowTile(nullptr).element_offset(Q(slot_of(j)) + GRP(8 * chunk / kG) + G(8 * chunk % kG));
  });
}

// The input rows step p (output rows p .. p + kStepRows - 1) reads that the step before did
// not (all kStepIn of them for the strip's first step, p0) into the ring, whose position
// `at` holds the step's first input row (at + t its row t), from `x`, the item's image
// (`copies` started at it).
KILN_DEVICE KILN_FORCEINLINE void load_step_rows(const RowRing& ring, const RowChunks& copies,
                                                 const XImage& x, int p, int p0, int at, int in_h) {
  auto load = [&](int t) {
    // Dilated (kDilate 2, dgrad of stride 2): the image's row ih / 2 at even ih, zeros at odd.
    const int ih = p * kStride - kPadH + t;
    const bool inside = ih >= 0 && ih < in_h && ih % kDilate == 0;
    const int clamped = (ih < 0 ? 0 : ih < in_h ? ih : in_h - 1) / kDilate;
    const RowSource src{int(x[H(clamped)].ptr() - x.data()), inside};
    copies.load(ring.stage(kiln::ring_reduce(at + t, kRing)).data(), x.data(),
                [src](int) { return src; });
  };
  // Two loops of a count known at compile time, so each unrolls: a strip's first step
  // reads all its rows, every later one the kNew past the step before's.
  constexpr int kNew = kStepIn > kAdvance ? kAdvance : kStepIn;
  if (p == p0) {
#pragma unroll
    for (int t = 0; t < kStepIn; ++t) load(t);
  } else {
#pragma unroll
    for (int t = kStepIn - kNew; t < kStepIn; ++t) load(t);
  }
}

KILN_DEVICE KILN_FORCEINLINE float activate(float v) {
  if constexpr (kActivation == 1) {
    return v > 0.0f ? v : 0.0f;
  } else if constexpr (kActivation == 2) {
    return v / (1.0f + __expf(-v));
  } else {
    return v;
  }
}

// Groups of 8 pair filter columns s and s + 1 into one m16n8k16 step: its depth
// (TAPC: 8 channels of column s, then the same 8 of column s + 1) takes the A fragment's
// columns 8..15 from the pixels one tap on, and the B fragment is tap s's k8 fragment
// followed by tap s + 1's.
[[maybe_unused]] constexpr bool kPairTaps = kG == 8 && kS > 1;
using FragPair = kiln::MmaA<In, Q, TAPC, 16>;
using FragPairB = kiln::MmaB<In, TAPC, C, 16>;

KILN_DEVICE KILN_FORCEINLINE FragPairB pair_b(const FragB& first, const FragB& second) {
  FragPairB b;
  b.values[0] = first.values[0];
  b.values[1] = first.values[1];
  b.values[2] = second.values[0];
  b.values[3] = second.values[1];
  return b;
}

// A lane's ldmatrix .x4 address in a ring row, from its unswizzled element offset: the
// swizzle's XOR is worked out once, and moves by whole 16-column tiles and by groups keep
// it (as FragmentLoader's deltas), so each load is an add and an XOR. kTrans: ldmatrix
// .trans (wgrad's x^T fragments).
template <bool kTrans>
struct RowLane {
  int linear = 0;
  int xr = 0;
  RowLane() = default;
  KILN_DEVICE KILN_FORCEINLINE explicit RowLane(int offset)
      : linear(offset), xr(RowSwizzle::apply(offset) ^ offset) {}
  // The fragment of 16-column tile i and group `group` on from the lane's own.
  template <class Frag>
  KILN_DEVICE KILN_FORCEINLINE void load(Frag& a, unsigned row_address, int i, int group) const {
    const int element =
        (linear + typename RowTile::layout_type().offset(Q(16 * i) + GRP(group))) ^ xr;
    unsigned(&regs)[4] = *reinterpret_cast<unsigned(*)[4]>(a.values);
    kiln::ldmatrix<4, kTrans>(regs, row_address + unsigned(element) * unsigned(sizeof(In)));
  }
};

// The lane of a FragPair: lanes 0-15 give the 16 pixels' rows at filter column s, lanes
// 16-31 at column s + 1 (matrices 2 and 3: the fragment's depth 8..15).
KILN_DEVICE KILN_FORCEINLINE RowLane<false> tap_pair_lane(int s, int wq, int group, int lane) {
  return RowLane<false>(typename RowTile::layout_type().offset(
      Q(slot_of(s + lane / 16) + wq + lane % 16) + GRP(group)));
}

}  // namespace conv

#ifndef CONV_WGRAD
namespace conv {

// Whether a kernel asks for its first item's copies before the rest of its set-up where
// every block takes one item (see the kernel): fprop's kernels with 3 steps of 3 or 4 rows
// in flight, which the factory offers only where the items leave one block an SM. (Other
// kernels keep one path: holding both, ptxas took 8 registers more on 14 x 14 x 1024's
// and lost 1-2% there.)
constexpr bool kEarlyCopies = kFlip == 0 && kAhead >= 3 && kStepRows >= 3;

// A work item: one image's strip of output rows, column tile and channel tile.
struct Item {
  unsigned n;
  int c0, q0, p0, p_end;
};
// The items in order (image, strip, column tile, channel tile): a block takes every
// grid-th from its own index on, so that with a grid a multiple of the channel tiles it
// keeps its channel tile (and its staged weights) throughout. Item indices are 32-bit
// (the host's validate_conv_config refuses launches of 2^31 items or more): a 64-bit
// division is a long subroutine, and a block works out an item once per item.
struct Items {
  unsigned tiles_c, tiles_q, tiles_p;
  int out_h;
  KILN_DEVICE KILN_FORCEINLINE Item at(unsigned item) const {
    const unsigned cq = item / tiles_c;
    const unsigned rest = cq / tiles_q;
    const unsigned n = rest / tiles_p;
    const int p0 = int(rest - n * tiles_p) * kBP;
    return {n, int(item - cq * tiles_c) * kBC, int(cq - rest * tiles_q) * kBQ, p0,
            p0 + kBP < out_h ? p0 + kBP : out_h};
  }
};

}  // namespace conv

extern "C" __global__ void KILN_LAUNCH_BOUNDS(conv::kThreads, kMinBlocks)
    KILN_KERNEL_NAME(const conv::In* __restrict__ x_data, const conv::In* __restrict__ w_data,
                     conv::Out* __restrict__ y_data, const conv::Out* __restrict__ bias_data,
                     const conv::Out* __restrict__ residual_data, int images, int in_h, int in_w,
                     int out_h, int out_w, int /* channels: kChannels */) {
  using namespace conv;
  // (The kernel is built for one channel count, as its name says: a constant, so that the
  // strides and the walk's channel tiles fold into the code.)
  constexpr int channels = kChannels;
  kiln::SharedCarver smem(kiln::dynamic_shared_memory());
  const RowRing ring = smem.take<RowRing>();
  const unsigned ring_base = kiln::shared_address(ring.data());
  const WeightTile wt = smem.take<WeightTile>();
  const OutTile staged = smem.take<OutTile>();

  const Weights w(w_data, C(channels));
  const Bias bias(bias_data, C(channels));
  const int lane = kiln::lane_index();
  const int warp = kiln::thread_index() / 32;
  const int wq = warp % kWarpsQ * (kTilesQ * 16);  // the warp's first column in the block
  const int wc = warp / kWarpsQ * kWarpC;          // and its first channel

  const Items walk{unsigned(channels / kBC), unsigned((out_w + kBQ - 1) / kBQ),
                   unsigned((out_h + kBP - 1) / kBP), out_h};
  const unsigned items = unsigned(images) * walk.tiles_p * walk.tiles_q * walk.tiles_c;
  // The image's own rows and columns (in_h x in_w count the dilated ones: 2 P - 1 for P).
  const int src_h = (in_h + kDilate - 1) / kDilate, src_w = (in_w + kDilate - 1) / kDilate;
  const long long in_image = (long long)src_h * src_w * channels;
  const long long out_image = (long long)out_h * out_w * channels;
  const unsigned grid = kiln::grid_size();

  // The copies run kAhead steps ahead of the compute. A step (output rows p ..
  // p + kStepRows - 1) reads input rows from p * kStride - kPadH on, which sit in the ring
  // from position `at` on: kAdvance further on than the step before's, and an item's first
  // step (kStepIn new rows) kStepIn further on than its last step before. Past an item's
  // end the copies fetch the next item's first steps (kCarry; every item has at least
  // kAhead steps then), or nothing (empty commit groups, so that the waits count alike).
  // `copies` follow the item whose rows they fetch: started at the block's first item and,
  // carrying, at each next item's first step, else at each item's start.
  RowChunks copies = row_chunks();
  auto image_of = [&](const Item& it) {
    return XImage(x_data + it.n * in_image, H(src_h), W(src_w), C(channels));
  };
  auto start_copies = [&](const Item& it) {
    copies.start<W>(image_of(it), it.q0 * kStride - kPadW, in_w, it.c0);
  };
  // `next`: the block's next item, where there is one (has_next).
  auto load_ahead = [&](const Item& it, bool has_next, const Item& next, int lp, int l_at) {
    if (lp < it.p_end) {
      load_step_rows(ring, copies, image_of(it), lp, it.p0, l_at, in_h);
    } else if (kCarry && has_next) {
      // Step j of the block's next item.
      const int j = (lp - it.p0) / kStepRows - (it.p_end - it.p0 + kStepRows - 1) / kStepRows;
      if (j == 0) start_copies(next);
      load_step_rows(ring, copies, image_of(next), next.p0 + j * kStepRows, next.p0,
                     l_at + kStepIn - kAdvance, in_h);
    }
    kiln::async_commit_group();
  };

  // A block's first item: its first step's rows are asked for first (from memory, the
  // longest wait), then the weights (from L2 once a block has read them), then the next
  // steps' rows. Where every block takes one item (`early`, a single wave, whose start no
  // other block hides) and the kernel is one for that (kEarlyCopies), it asks for them
  // here, before anything else: the rest of the set-up (the addresses the steps reuse,
  // which the compiler works out ahead of the walk, hundreds of instructions) then runs
  // while they are on their way, where it had held them back by about 0.7 us. Otherwise,
  // and in dgrad (whose weights come by plain loads, which would hold up the thread
  // here), they go out in the walk, as the first item's.
  Item cur = walk.at(kiln::block_index());
  const bool early = kEarlyCopies && grid >= items;
  if (early && kiln::block_index() < items) {
    // (Here every block takes one item, so there is no next item: has_next is false and
    // `next` is never read. The general form is kept as it was measured on the H200;
    // dropping it is left for a change that is timed again.)
    const bool has_next = kiln::block_index() + grid < items;
    const bool reaches_next = cur.p0 + (kAhead - 1) * kStepRows >= cur.p_end;
    const Item next = has_next && reaches_next ? walk.at(kiln::block_index() + grid) : cur;
    start_copies(cur);
    load_ahead(cur, has_next, next, cur.p0, 0);
    stage_weights(wt, w, cur.c0);
    kiln::async_commit_group();
    for (int a = 1; a < kAhead; ++a) {
      load_ahead(cur, has_next, next, cur.p0 + a * kStepRows, a * kAdvance);
    }
  }

  WarpWeights weights;
  int staged_c0 = -1;
  int at = 0;
  for (unsigned item = kiln::block_index(); item < items; item += grid) {
    const bool has_next = item + grid < items;
    const Item next = has_next ? walk.at(item + grid) : cur;
    const int c0 = cur.c0, q0 = cur.q0, p0 = cur.p0, p_end = cur.p_end;
    const YImage y(y_data + cur.n * out_image, P(out_h), Q(out_w), C(channels));
    const ResidualImage residual(residual_data + (kResidual ? cur.n * out_image : 0), P(out_h),
                                 Q(out_w), C(channels));
    // The item's first steps (where the item before's copies did not carry into them).
    auto load_first_steps = [&] {
      start_copies(cur);
      for (int a = 0; a < kAhead; ++a) {
        load_ahead(cur, has_next, next, p0 + a * kStepRows, at + a * kAdvance);
      }
    };
    // The block's weights into shared memory, then (in registers where they fit) the warp's
    // B fragments: once for a grid that is a multiple of the channel tiles, else again for
    // each item of another channel tile, once every warp is done with the old.
    if (item == kiln::block_index()) {
      // The first item: its first step waits for its rows and the weights.
      if (!early) {
        start_copies(cur);
        load_ahead(cur, has_next, next, p0, at);
        stage_weights(wt, w, c0);
        kiln::async_commit_group();
        for (int a = 1; a < kAhead; ++a) {
          load_ahead(cur, has_next, next, p0 + a * kStepRows, at + a * kAdvance);
        }
      }
      kiln::async_wait_group<kAhead - 1>();
      kiln::sync_threads();
      weights.load(wt, wc);
      staged_c0 = c0;
    } else {
      if (c0 != staged_c0) {
        kiln::sync_threads();
        stage_weights(wt, w, c0);
        kiln::async_commit_group();
        kiln::async_wait_group<0>();
        kiln::sync_threads();
        weights.load(wt, wc);
        staged_c0 = c0;
      }
      if (!kCarry) load_first_steps();
    }

    for (int p = p0; p < p_end; p += kStepRows, at = kiln::ring_advance(at, kAdvance, kRing)) {
      // The step's input rows have landed for every thread, and every warp is done with the
      // step before, whose oldest ring rows the copies kAhead steps on now refill.
      kiln::async_wait_group<kAhead - 1>();
      kiln::sync_threads();
      load_ahead(cur, has_next, next, p + kAhead * kStepRows, at + kAhead * kAdvance);

      Acc acc[kStepRows][kTilesQ][kTilesC] = {};
#pragma unroll
      for (int t = 0; t < kStepIn; ++t) {
        // Input row t of the step (ring position at + t) is filter row t - m * kStride of
        // output row p + m.
        const unsigned row_address = ring_row_address(ring_base, at + t);
        // Groups of 8: filter columns s and s + 1 together, one m16n8k16 step.
        if constexpr (kPairTaps) {
#pragma unroll
          for (int s = 0; s + 1 < kS; s += 2) {
            const RowLane<false> pair = tap_pair_lane(s, wq, wc / kG, lane);
#pragma unroll
            for (int i = 0; i < kTilesQ; ++i) {
#pragma unroll
              for (int gi = 0; gi < kWarpGroups; ++gi) {
                FragPair a;
                pair.load(a, row_address, i, gi);
#pragma unroll
                for (int m = 0; m < kStepRows; ++m) {
                  const int r = t - m * kStride;
                  if (r < 0 || r >= kR) continue;
                  kiln::mma(acc[m][i][gi], a,
                            pair_b(weights.b(r, s, 0, gi), weights.b(r, s + 1, 0, gi)),
                            acc[m][i][gi]);
                }
              }
            }
          }
        }
#pragma unroll
        for (int s = kPairTaps ? kS - kS % 2 : 0; s < kS; ++s) {
          // Filter column s reads the ring row from slot s (in the window's order) on; the
          // loader's lane address is the same for every row (hoisted out of the row loop).
          const ALoader a_loader(Q(slot_of(s) + wq) + GRP(wc / kG), lane);
#pragma unroll
          for (int ks = 0; ks < kSteps; ++ks) {
#pragma unroll
            for (int i = 0; i < kTilesQ; ++i) {
#pragma unroll
              for (int gi = 0; gi < kWarpGroups; ++gi) {
                FragA a;
                a_loader.load(&a, row_address, Q(16 * i) + GRP(gi) + G(kDepth * ks));
#pragma unroll
                for (int m = 0; m < kStepRows; ++m) {
                  const int r = t - m * kStride;
                  if (r < 0 || r >= kR) continue;
#pragma unroll
                  for (int j = gi * (kG / 8); j < (gi + 1) * (kG / 8); ++j) {
                    kiln::mma(acc[m][i][j], a, weights.b(r, s, ks, j), acc[m][i][j]);
                  }
                }
              }
            }
          }
        }
      }

      // The epilogue: bias, residual and activation on the accumulators, the results into
      // the block's output tile; then the tile to y, 16 bytes a thread (each pixel's kBC
      // channels contiguous), so that the stores fill whole lines.
#pragma unroll
      for (int m = 0; m < kStepRows; ++m) {
#pragma unroll
        for (int i = 0; i < kTilesQ; ++i) {
#pragma unroll
          for (int j = 0; j < kTilesC; ++j) {
#pragma unroll
            for (int e = 0; e < Acc::size; e += 2) {
              const auto local = P(m) + Q(wq + 16 * i) + C(wc + 8 * j) + Acc::coords(lane, e);
              float v0 = acc[m][i][j][e];
              float v1 = acc[m][i][j][e + 1];
              if constexpr (kBias) {
                v0 += float(*bias[kiln::get<C>(local) + C(c0)]);
                v1 += float(*bias[kiln::get<C>(local) + C(c0 + 1)]);
              }
              if constexpr (kResidual) {
                if (q0 + kiln::get<Q>(local).get() < out_w && p + m < p_end) {
                  const kiln::Vec<Out, 2> r = *reinterpret_cast<const kiln::Vec<Out, 2>*>(
                      residual[local + P(p) + Q(q0) + C(c0)].ptr());
                  v0 += float(r[0]);
                  v1 += float(r[1]);
                }
              }
              const kiln::Vec<Out, 2> pair{{Out(activate(v0)), Out(activate(v1))}};
              *reinterpret_cast<kiln::Vec<Out, 2>*>(staged[local].ptr()) = pair;
            }
          }
        }
      }
      kiln::sync_threads();
      {
        // The step's first output element in y, and each chunk's offset from it in 32 bits,
        // its indices by unsigned shifts (kBQ and kChunks are powers of 2): the offsets are
        // the same at every step of an item.
        Out* const step_y = y[P(p) + Q(q0) + C(c0)].ptr();
        const unsigned rows = unsigned(p_end - p), cols = unsigned(out_w - q0);
        constexpr unsigned kOut = kStepRows * kBQ * kChunks;
#pragma unroll
        for (unsigned k = 0; k < (kOut + kThreads - 1) / kThreads; ++k) {
          const unsigned v = unsigned(kiln::thread_index()) + k * kThreads;
          const unsigned m = v / (kBQ * kChunks);
          const unsigned q = v / kChunks % kBQ;
          const unsigned chunk = v % kChunks;
          if ((kOut % kThreads != 0 && v >= kOut) || q >= cols || m >= rows) continue;
          *reinterpret_cast<kiln::Vec<Out, 8>*>(
              step_y + ((m * unsigned(out_w) + q) * unsigned(channels) + 8 * chunk)) =
              *reinterpret_cast<const kiln::Vec<Out, 8>*>(
                  staged[P(int(m)) + Q(int(q)) + C(int(8 * chunk))].ptr());
        }
      }
    }
    at = kiln::ring_advance(at, kStepIn - kAdvance, kRing);
    if (!kCarry) {
      // Every copy landed and every warp done with the ring before the next item refills it.
      kiln::async_wait_group<0>();
      kiln::sync_threads();
    }
    cur = next;
  }
  kiln::async_wait_group<0>();
}
#else  // CONV_WGRAD

// The weight gradient: dw[k, r, s, g] = sum over n, p, q of dy[n, p, q, k] *
// x[n, p * stride + r - pad_h, q * stride + s - pad_w, group(k) * G + g]. Blocks walk the
// same items as fprop (x's rows through the same ring), with dy's rows beside them, and
// each keeps its channels' sums in registers across all its items; at the end it writes
// them as one partial row, and kernels/column_sum.cu adds the rows in a fixed order.
//
// The mma's rows are (filter column, input channel) pairs: F = s * G + g, 8-row chunks of
// one filter column's 8 channels (kFFrags 16-row fragments, the last maybe half used); its
// depth is 16 pixels, its columns 8 output channels (a "pair": a group and one of its
// 8-channel tiles j). A = x^T by ldmatrix .trans from a ring row (a chunk's 8 rows are 8
// pixels of one column s, read at slot s + q); B = dy by ldmatrix .trans from dy's row.
//
// Warps: kWarpsQ split the block's 16-pixel column tiles; kWarpsC split its pairs and,
// where there are more warps than pairs, the filter rows (warp class wr takes rows r with
// r mod kWarpsR = wr). Each A fragment (an input row, a filter-column fragment, a group)
// is loaded once and serves every output row of the step and every pair of its group that
// the warp holds; each B fragment serves every filter row and column fragment. Warps of
// different column tiles add their sums through shared memory at the end.
namespace conv {

using DyTile = kiln::SwizzledTensor<In, RowSwizzle, kiln::Extent<P, kStepRows>,
                                    kiln::Extent<Q, kBQ>, kiln::Extent<C, kBC>>;
using DyRing = kiln::Ring<DyTile, kAhead + 1>;
using DyChunks = TileChunks<kStepRows, kBQ, 1>;  // a step's dy rows in a DyTile
// The dy stage of the step `rows` output rows into a strip (never negative: unsigned
// division and remainder, with no fix-ups).
KILN_DEVICE KILN_FORCEINLINE kiln::RING_STAGE dy_stage(int rows) {
  return kiln::RING_STAGE(int(unsigned(rows) / kStepRows % unsigned(kAhead + 1)));
}

constexpr int kFChunks = kS * kG / 8;  // 8-row chunks of F
constexpr int kFFull = kFChunks / 2;   // 16-row A fragments of two chunks
// Where the chunks are odd (groups of 8, odd filters), the last chunk of two filter rows of
// the warp (its rows rr = 2k and 2k + 1) share one 16-row fragment: rows 0-7 from input row
// t, rows 8-15 from input row t + kWarpsR, both times the same dy row (filter rows r and
// r + kWarpsR of one output row). kLeft of them; the last one's lower half unused where the
// warp's rows are odd.
constexpr bool kLeftover = kFChunks % 2 == 1;
constexpr int kJ = kG / 8;       // 8-channel tiles of a group
constexpr int kPairs = kBC / 8;  // (group, j) pairs of the block
// The host's split of the pairs and filter rows (conv_wgrad_split, which its tests check):
constexpr int kPW = kWgradPairsPerWarp;        // pairs a warp holds
constexpr int kWarpsR = kWgradRowClasses;      // filter-row classes
constexpr int kRW = kWgradRowsPerWarp;         // filter rows a warp holds
constexpr int kWarpsPair = kWarpsC / kWarpsR;  // warps that split the pairs
constexpr int kWG = kPW > kJ ? kPW / kJ : 1;   // groups a warp holds
constexpr int kWJ = kPW < kJ ? kPW : kJ;       // and tiles j of each
constexpr int kTilesQW = kBQ / 16 / kWarpsQ;   // 16-pixel column tiles a warp reads
static_assert(kWarpsR <= kR && kWarpsPair * kPW == kPairs && kRW * kWarpsR >= kR &&
                  kBQ % (16 * kWarpsQ) == 0,
              "wgrad's warps split the pairs, the filter rows and the column tiles evenly");
static_assert(kWG * kWJ == kPW, "a warp's pairs are whole groups or part of one");

constexpr int kLeft = kLeftover ? (kRW + 1) / 2 : 0;

using FragX = kiln::MmaA<In, TAPC, Q, 16>;  // (F: 16 rows, Q: 16 pixels)
using FragDy = kiln::MmaB<In, Q, C, 16>;    // (Q: 16 pixels, C: 8 output channels)
using AccW = kiln::MmaC<float, TAPC, C>;
using DyLoader = kiln::FragmentLoader<FragDy, DyTile>;
// The block's sums, as the partial row holds them: (C, R, F).
using SumTile =
    kiln::Tensor<float, kiln::Extent<C, kBC>, kiln::Extent<R, kR>, kiln::Extent<TAPC, kS * kG>>;

// The lane of an x^T fragment of a group over 16 pixels from a ring row: lanes 8m .. 8m + 7
// give matrix m's 8 pixel rows (matrices: F rows 0-7 and 8-15 of pixels 0-7, then of pixels
// 8-15), each at its chunk's filter column: chunks 2 ff and 2 ff + 1 for full fragment ff,
// the last chunk in both halves for a stacked one (ff = kFFull).
KILN_DEVICE KILN_FORCEINLINE RowLane<true> xt_lane(int ff, int group, int q, int lane) {
  const int chunk = ff < kFFull ? 2 * ff + (lane / 8) % 2 : kFChunks - 1;
  const int s = chunk * 8 / kG;
  const int g = chunk * 8 % kG;
  const int pixel = 8 * (lane / 16) + lane % 8;
  return RowLane<true>(
      typename RowTile::layout_type().offset(Q(slot_of(s) + q + pixel) + GRP(group) + G(g)));
}

}  // namespace conv

extern "C" __global__ void KILN_LAUNCH_BOUNDS(conv::kThreads, kMinBlocks)
    KILN_KERNEL_NAME(const conv::In* __restrict__ x_data, const conv::In* __restrict__ dy_data,
                     float* __restrict__ partial, int images, int in_h, int in_w, int out_h,
                     int out_w, int /* channels: kChannels */) {
  using namespace conv;
  constexpr int channels = kChannels;
  kiln::SharedCarver smem(kiln::dynamic_shared_memory());
  const RowRing ring = smem.take<RowRing>();
  const unsigned ring_base = kiln::shared_address(ring.data());
  const DyRing dy_ring = smem.take<DyRing>();
  const int lane = kiln::lane_index();
  const int warp = kiln::thread_index() / 32;
  const int wq = warp % kWarpsQ;   // the warp's column tiles: [wq kTilesQW, + kTilesQW)
  const int wcw = warp / kWarpsQ;  // its pairs and filter-row class
  const int wr = wcw % kWarpsR;
  const int pair0 = wcw / kWarpsR * kPW;
  const int group0 = pair0 / kJ;
  const int q_w = 16 * kTilesQW * wq;  // the warp's first pixel in the block's columns

  const int tiles_c = channels / kBC;
  const int tiles_q = (out_w + kBQ - 1) / kBQ;
  const int tiles_p = (out_h + kBP - 1) / kBP;
  // Block b takes channel tile b mod tiles_c and every rounds-th item of it from b / tiles_c.
  const int rounds = kiln::grid_size() / tiles_c;
  const int ct = kiln::block_index() % tiles_c;
  const int round = kiln::block_index() / tiles_c;
  const int c0 = ct * kBC;
  const unsigned items = unsigned(images) * unsigned(tiles_p) * unsigned(tiles_q);
  // The image's own rows and columns (in_h x in_w count the dilated ones: 2 P - 1 for P).
  const int src_h = (in_h + kDilate - 1) / kDilate, src_w = (in_w + kDilate - 1) / kDilate;
  const long long in_image = (long long)src_h * src_w * channels;
  const long long out_image = (long long)out_h * out_w * channels;

  // ([kFFull]: the stacked fragment's lane, where there is one.)
  RowLane<true> xt[kWG][kFFull + 1];
#pragma unroll
  for (int wg = 0; wg < kWG; ++wg)
#pragma unroll
    for (int ff = 0; ff <= kFFull; ++ff) xt[wg][ff] = xt_lane(ff, group0 + wg, q_w, lane);
  const DyLoader dy_loader(Q(q_w) + C(8 * pair0), lane);
  const bool lower_lane = (lane / 8) % 2 == 1;  // gives a stacked fragment's rows 8-15

  RowChunks x_copies = row_chunks();
  DyChunks dy_copies([](int m, int q, int chunk) {
    return DyTile(nullptr).element_offset(P(m) + Q(q) + C(8 * chunk));
  });

  AccW acc[kWG][kWJ][kRW][kFFull > 0 ? kFFull : 1] = {};
  AccW left[kWG][kWJ][kLeft > 0 ? kLeft : 1] = {};
  // (32-bit: validate_conv_config refuses 2^31 items or more.)
  for (unsigned item = round; item < items; item += unsigned(rounds)) {
    const unsigned qp = item / unsigned(tiles_q);
    const unsigned n = qp / unsigned(tiles_p);
    const int tq = int(item - qp * unsigned(tiles_q));
    const int tp = int(qp - n * unsigned(tiles_p));
    const int q0 = tq * kBQ;
    const int p0 = tp * kBP;
    const int p_end = p0 + kBP < out_h ? p0 + kBP : out_h;
    const XImage x(x_data + n * in_image, H(src_h), W(src_w), C(channels));
    const DyImage dy(dy_data + n * out_image, P(out_h), Q(out_w), C(channels));
    x_copies.start<W>(x, q0 * kStride - kPadW, in_w, c0);
    dy_copies.start<Q>(dy, q0, out_w, c0);

    // As fprop: a step's new input rows (from ring position `pos` on), and its dy rows
    // (zero past the strip and the image, so that they add nothing), one commit group per
    // step. The ring is empty at an item's start: its first step's rows go from position 0.
    auto load_for = [&](int p, int pos) {
      if (p < p_end) {
        load_step_rows(ring, x_copies, x, p, p0, pos, in_h);
        dy_copies.load(dy_ring[dy_stage(p - p0)].data(), dy.data(), [&](int m) {
          return RowSource{int(dy[P(p + m < p_end ? p + m : p_end - 1)].ptr() - dy.data()),
                           p + m < p_end};
        });
      }
      kiln::async_commit_group();
    };
    for (int a = 0; a < kAhead; ++a) load_for(p0 + a * kStepRows, a * kAdvance);

    for (int p = p0, at = 0; p < p_end;
         p += kStepRows, at = kiln::ring_advance(at, kAdvance, kRing)) {
      kiln::async_wait_group<kAhead - 1>();
      kiln::sync_threads();
      load_for(p + kAhead * kStepRows, at + kAhead * kAdvance);
      const DyTile d = dy_ring[dy_stage(p - p0)];
      unsigned rows[kStepIn];
#pragma unroll
      for (int t = 0; t < kStepIn; ++t) {
        rows[t] = ring_row_address(ring_base, at + t);
      }
#pragma unroll
      for (int i = 0; i < kTilesQW; ++i) {
        FragDy b[kWG][kWJ][kStepRows];
#pragma unroll
        for (int wg = 0; wg < kWG; ++wg)
#pragma unroll
          for (int wj = 0; wj < kWJ; ++wj)
#pragma unroll
            for (int m = 0; m < kStepRows; ++m)
              dy_loader.load(&b[wg][wj][m], d, P(m) + Q(16 * i) + C(8 * (wg * kJ + wj)));
#pragma unroll
        for (int t = 0; t < kStepIn; ++t) {
          // Input row t of the step is filter row t - m * kStride of output row p + m.
          bool used = false;
#pragma unroll
          for (int m = 0; m < kStepRows; ++m) {
            const int r = t - m * kStride;
            used = used || (r >= 0 && r < kR && r % kWarpsR == wr);
          }
          if (!used) continue;  // (warp-uniform)
          // The stacked fragment at t serves the output rows whose filter row here is an
          // upper one (rr even); its lower rows come from input row t + kWarpsR (any row
          // in the ring where that has no filter row: its sums are never stored).
          bool upper = false;
#pragma unroll
          for (int m = 0; m < kStepRows; ++m) {
            const int r = t - m * kStride;
            upper = upper || (r >= 0 && r < kR && r % kWarpsR == wr && r / kWarpsR % 2 == 0);
          }
          const int lower = t + kWarpsR < kStepIn ? t + kWarpsR : t;
#pragma unroll
          for (int wg = 0; wg < kWG; ++wg) {
#pragma unroll
            for (int ff = 0; ff <= kFFull; ++ff) {
              if (ff == kFFull && !(kLeftover && upper)) continue;  // (warp-uniform)
              FragX a;
              xt[wg][ff].load(a, ff == kFFull && lower_lane ? rows[lower] : rows[t], i, 0);
#pragma unroll
              for (int m = 0; m < kStepRows; ++m) {
                const int r = t - m * kStride;
                if (r < 0 || r >= kR || r % kWarpsR != wr) continue;
                const int rr = r / kWarpsR;
                if (ff == kFFull && rr % 2 != 0) continue;
#pragma unroll
                for (int wj = 0; wj < kWJ; ++wj) {
                  AccW& c = ff < kFFull ? acc[wg][wj][rr][ff] : left[wg][wj][rr / 2];
                  kiln::mma(c, a, b[wg][wj][m], c);
                }
              }
            }
          }
        }
      }
    }
    kiln::async_wait_group<0>();
    kiln::sync_threads();
  }
  // The column sums launched after this kernel (programmatically, on sm_90) may now be
  // scheduled: they wait for this grid to end before they read the partial rows.
  kiln::release_dependent_grid();

  // The block's partial row: dw's layout (C, R, S, G) for its channels. With more than one
  // warp a pair (warps_q > 1) the warps' sums are added first through shared memory (the
  // ring's, free now), column tile by column tile in order (the same bits every run).
  float* row = partial + (long long)round * channels * kR * kS * kG + (long long)c0 * kR * kS * kG;
  float* sums = kWarpsQ == 1 ? row : reinterpret_cast<float*>(kiln::dynamic_shared_memory());
#pragma unroll 1
  for (int turn = 0; turn < kWarpsQ; ++turn) {
    if (wq == turn) {
#pragma unroll
      for (int wg = 0; wg < kWG; ++wg) {
#pragma unroll
        for (int wj = 0; wj < kWJ; ++wj)
#pragma unroll
          for (int rr = 0; rr < kRW; ++rr) {
            const int r = rr * kWarpsR + wr;
            if (r >= kR) continue;
#pragma unroll
            for (int ff = 0; ff < kFFull; ++ff)
#pragma unroll
              for (int e = 0; e < AccW::size; ++e) {
                const auto at = AccW::coords(lane, e);
                const int f = 16 * ff + kiln::get<TAPC>(at).get();
                float& to = sums[SumTile::layout_type().offset(C(8 * (pair0 + wg * kJ + wj)) +
                                                               kiln::get<C>(at) + R(r) + TAPC(f))];
                const float v = acc[wg][wj][rr][ff][e];
                to = turn == 0 ? v : to + v;
              }
          }
          // The stacked fragments: rows 0-7 filter row rr = 2k, rows 8-15 rr = 2k + 1, each
          // the last chunk of F.
#pragma unroll
        for (int wj = 0; wj < kWJ; ++wj)
#pragma unroll
          for (int k = 0; k < kLeft; ++k)
#pragma unroll
            for (int e = 0; e < AccW::size; ++e) {
              const auto at = AccW::coords(lane, e);
              const int row = kiln::get<TAPC>(at).get();
              const int rr = 2 * k + row / 8;
              const int r = rr * kWarpsR + wr;
              if (rr >= kRW || r >= kR) continue;  // no lower filter row
              const int f = 8 * (kFChunks - 1) + row % 8;
              float& to = sums[SumTile::layout_type().offset(C(8 * (pair0 + wg * kJ + wj)) +
                                                             kiln::get<C>(at) + R(r) + TAPC(f))];
              const float v = left[wg][wj][k][e];
              to = turn == 0 ? v : to + v;
            }
      }
    }
    if (kWarpsQ > 1) kiln::sync_threads();
  }
  if (kWarpsQ > 1) {
    constexpr int kSums = kBC * kR * kS * kG;
    for (int v = kiln::thread_index(); v < kSums / 4; v += kThreads) {
      reinterpret_cast<float4*>(row)[v] = reinterpret_cast<const float4*>(sums)[v];
    }
  }
}
#endif  // CONV_WGRAD
