#pragma once
/// The CPU side of kiln's grouped convolution kernel (kernels/conv_grouped.cu): its configs
/// (ConvConfig), which exist for a problem, the shape the kernel runs for each pass, the
/// heuristic choice, kernel names and the generated header. No GPU is touched here;
/// include/kiln/ops/conv.hpp puts these together as kernel factories.
///
/// One kernel serves fprop and dgrad: it correlates an input image with R x S
/// filters of G channels a group. dgrad is the correlation of dy with the filters flipped
/// (r -> R - 1 - r, s -> S - 1 - s) and transposed within each group (output channel <->
/// input channel), padded by R - 1 - pad_h and S - 1 - pad_w; the kernel flips and
/// transposes the weights as it stages them (kFlip).
///
/// A block computes kBP output rows x kBQ output columns x kBC channels of one image. It
/// keeps the input rows those output rows read in a ring of shared-memory rows (each input
/// row read once for the whole strip) and its kBC channels' weights in shared memory, and
/// its warps compute (16 output columns x 8 channels) tiles with mma.sync: m16n8k8 per
/// filter tap for groups of 8, m16n8k16 for groups of 16 and 32.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "../../factory/gen_json.hpp"
#include "../../factory/hash.hpp"
#include "../../gen/spec.hpp"
#include "../../rt/device.hpp"
#include "conv_params.hpp"

namespace kiln::ops {

/// How one kernel is shaped. Threads: 32 x warps_q x warps_c.
struct ConvConfig {
  std::int32_t block_p = 8;    ///< output rows a block computes (its strip), >= 1
  std::int32_t block_q = 64;   ///< output columns a block computes: 16, 32, 64 or 128
  std::int32_t block_c = 64;   ///< channels a block computes: 8 to 128, a power of 2 and a
                               ///< multiple of the group width that divides the channels
  std::int32_t warps_q = 4;    ///< warps across the columns (each whole 16-column tiles)
  std::int32_t warps_c = 2;    ///< warps across the channels (each whole groups)
  std::int32_t ahead = 2;      ///< steps whose input rows are in flight: 1 to 4
  std::int32_t step_rows = 1;  ///< output rows a step computes (sharing their input rows): 1, 2
  bool operator==(const ConvConfig&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ConvConfig, block_p, block_q, block_c, warps_q, warps_c, ahead,
                                   step_rows)

namespace detail {

/// What the kernel computes for a pass: an input image of in_h x in_w correlated with
/// (possibly flipped) filters at `stride` into out_h x out_w, padded by pad_h x pad_w. With
/// `dilate` 2 the input is read dilated: in_h x in_w counts the image's rows and columns
/// with a zero between each two (2 P - 1 for P rows), so that its odd rows and columns
/// are zero.
struct ConvGeometry {
  std::int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  std::int32_t pad_h = 0, pad_w = 0;
  bool flip = false;
  std::int32_t stride = 1;
  std::int32_t dilate = 1;
};

/// fprop and wgrad: x at the problem's stride. dgrad: dy correlated at stride 1 with the
/// flipped filters, padded by R - 1 - pad; for stride 2, dy dilated (dx[h] takes dy[p] w[r]
/// where h = 2 p + r - pad: in the dilated dy that is row h + pad - r, filter row r).
inline ConvGeometry conv_geometry(const ConvGroupedParams& p) {
  if (p.pass == ConvPass::dgrad) {
    const std::int32_t d = p.stride;
    return {d * (conv_out_h(p) - 1) + 1,
            d * (conv_out_w(p) - 1) + 1,
            p.h,
            p.w,
            p.filter_h - 1 - p.pad_h,
            p.filter_w - 1 - p.pad_w,
            true,
            1,
            d};
  }
  return {p.h, p.w, conv_out_h(p), conv_out_w(p), p.pad_h, p.pad_w, false, p.stride, 1};
}

/// Throws kiln::Error unless the kernel serves `p` (the problem, and no epilogue but fprop's).
inline void validate_conv_kernel_problem(const ConvGroupedParams& p) {
  validate_conv_grouped(p);
  if (p.pass != ConvPass::fprop && (p.bias || p.activation != ConvActivation::none || p.residual)) {
    throw Error(
        "kiln: conv2d_grouped: a fused epilogue (bias, activation, residual) is for "
        "fprop only; leave it out of " +
        conv_pass_name(p.pass));
  }
}

constexpr int conv_log2(int v) {
  return v <= 1 ? 0 : 1 + conv_log2(v / 2);
}

/// Window columns (input columns) a block's row reads, and the shared-memory slots a row
/// takes: for stride 2 the even window columns come first, then the odd ones, so that each
/// filter tap reads consecutive slots; rounded up to whole periods of the swizzle (8 slots).
inline int conv_window(const ConvGroupedParams& p, const ConvConfig& c) {
  return (c.block_q - 1) * conv_geometry(p).stride + p.filter_w;
}
inline int conv_half_window(const ConvGroupedParams& p, const ConvConfig& c) {
  return conv_geometry(p).stride == 1 ? conv_window(p, c) : (conv_window(p, c) + 1) / 2;
}
inline int conv_slots(const ConvGroupedParams& p, const ConvConfig& c) {
  return (conv_geometry(p).stride * conv_half_window(p, c) + 7) / 8 * 8;
}
/// Items of at most this many steps carry: the copies run on into a block's next item.
inline constexpr int conv_carry_steps = 8;

/// Whether fprop's and dgrad's copies run on into a block's next item (the kernel's
/// kCarry): for short items, whose first rows would otherwise arrive with nothing to
/// overlap them, where every item (the last strip's too) has at least `ahead` steps (the
/// copies then cross one item's end at a time). The ring then holds the rows a first
/// step reads past a later one's once more (conv_ring_rows).
inline bool conv_carries(const ConvGroupedParams& p, const ConvConfig& c) {
  if (p.pass == ConvPass::wgrad || c.block_p < 1 || c.step_rows < 1) return false;
  const std::int64_t out_h = conv_geometry(p).out_h;
  const std::int64_t rows = std::min<std::int64_t>(c.block_p, out_h);
  const std::int64_t last = out_h - (out_h - 1) / c.block_p * c.block_p;  // the last strip's
  auto steps = [&](std::int64_t r) { return (r + c.step_rows - 1) / c.step_rows; };
  return steps(rows) <= conv_carry_steps && steps(last) >= c.ahead;
}

/// Input rows the ring holds (the kernel's kRing): one step's (step_in = R + stride x
/// (step_rows - 1)) and `ahead` steps' new ones (advance = stride x step_rows each). Where
/// the copies carry into the next item, its first step's rows sit step_in - advance
/// further on; the steps in flight cross at most one item's end (every item has at least
/// `ahead` steps), so that is needed once.
inline int conv_ring_rows(const ConvGroupedParams& p, const ConvConfig& c) {
  const int stride = conv_geometry(p).stride;
  const int step_in = p.filter_h + stride * (c.step_rows - 1);
  const int advance = stride * c.step_rows;
  return step_in + c.ahead * advance + (conv_carries(p, c) ? std::max(step_in - advance, 0) : 0);
}

/// Dynamic shared memory of a config: the ring of input rows, the block's weights and one
/// output row of the block.
inline std::int64_t conv_shared_bytes(const ConvGroupedParams& p, const ConvConfig& c) {
  auto align16 = [](std::int64_t v) { return (v + 15) / 16 * 16; };
  const std::int64_t row = align16(std::int64_t(conv_slots(p, c)) * c.block_c * 2);
  if (p.pass == ConvPass::wgrad) {
    // wgrad: the ring of input rows and a ring of ahead + 1 steps of dy rows; at the end,
    // where warps_q > 1, the block's sums in f32 in the same memory.
    const std::int64_t dy = align16(std::int64_t(c.step_rows) * c.block_q * c.block_c * 2);
    const std::int64_t sums =
        c.warps_q > 1 ? std::int64_t(c.block_c) * p.filter_h * p.filter_w * p.group_width * 4 : 0;
    return std::max(row * conv_ring_rows(p, c) + dy * (c.ahead + 1), sums);
  }
  const std::int64_t weights =
      align16(std::int64_t(p.filter_h) * p.filter_w * c.block_c * p.group_width * 2);
  const std::int64_t out = align16(std::int64_t(c.step_rows) * c.block_q * c.block_c * 2);
  return row * conv_ring_rows(p, c) + weights + out;
}

inline int conv_threads(const ConvConfig& c) {
  return 32 * c.warps_q * c.warps_c;
}

/// The blocks an SM keeps at least, by the registers the kernel's launch bounds leave each
/// thread (its kMinBlocks): enough rows in flight to cover the memory's latency, 640
/// threads' worth with one output row a step, 512 with more. (wgrad once asked for as many
/// blocks as an estimate of its registers left room for: 3 of 256 threads on
/// 32 x 64 x 64 x 64, where ptxas then spilled 20 bytes a thread at 80 registers; it
/// takes 120 without spills at 2, and ran 21.0 against 22.0 us on an H200.)
inline int conv_min_blocks(const ConvConfig& c) {
  return std::max(1, (c.step_rows == 1 ? 640 : 512) / conv_threads(c));
}

/// Whether wgrad's strips of `block_p` rows (of images of `out_h` output rows) are long
/// enough for steps of three rows: the candidates offer them there, and the heuristic takes
/// them (on an H200 they were 1-4% slower than two rows on strips of 14 to 32 rows, 3-8%
/// faster on whole 56-row images).
inline bool conv_wgrad_long_strip(std::int64_t block_p, std::int64_t out_h) {
  return std::min(block_p, out_h) >= 48;
}

/// How wgrad's warps_c warps share a block's (group, 8-channel tile) pairs and filter rows:
/// as many as there are pairs split the pairs; more split the filter rows too, into
/// `row_classes` (rows r with r mod row_classes alike).
struct ConvWgradSplit {
  int pairs_per_warp, row_classes, rows_per_warp, tiles_per_warp;
};
inline ConvWgradSplit conv_wgrad_split(const ConvGroupedParams& p, const ConvConfig& c) {
  const int pairs = c.block_c / 8;
  const int pair_warps = std::min(c.warps_c, pairs);
  ConvWgradSplit s{};
  s.pairs_per_warp = pairs / std::max(pair_warps, 1);
  s.row_classes = c.warps_c / std::max(pair_warps, 1);
  s.rows_per_warp = (p.filter_h + s.row_classes - 1) / s.row_classes;
  // Accumulator tiles: a 16-row fragment for each two 8-row chunks of (filter column,
  // input channel) of each row; with odd chunks the last chunk of two rows shares one.
  const int chunks = p.filter_w * p.group_width / 8;
  s.tiles_per_warp = s.pairs_per_warp * (s.rows_per_warp * (chunks / 2) +
                                         (chunks % 2 == 1 ? (s.rows_per_warp + 1) / 2 : 0));
  return s;
}
inline constexpr int conv_wgrad_max_tiles = 24;

inline bool conv_power_of_2(std::int64_t v) {
  return v > 0 && (v & (v - 1)) == 0;
}

/// The blocks of a launch: images x strips of rows x tiles of columns x tiles of channels.
inline std::int64_t conv_work_items(const ConvGroupedParams& p, const ConvConfig& c) {
  const ConvGeometry g = conv_geometry(p);
  return p.n * ((g.out_h + c.block_p - 1) / c.block_p) * ((g.out_w + c.block_q - 1) / c.block_q) *
         (p.channels / c.block_c);
}

/// Throws kiln::Error unless the kernel can run `p` with `c` (on a device with
/// `shared_optin` bytes of shared memory a block; 0: unchecked).
inline void validate_conv_config(const ConvGroupedParams& p, const ConvConfig& c,
                                 std::int64_t shared_optin = 0) {
  const std::string what = "kiln: conv2d_grouped config " + nlohmann::json(c).dump() + " for " +
                           conv_pass_name(p.pass) + " of " + std::to_string(p.channels) +
                           " channels in groups of " + std::to_string(p.group_width) + ": ";
  if (c.block_p < 1) throw Error(what + "block_p must be at least 1 output row");
  if (c.block_q != 16 && c.block_q != 32 && c.block_q != 64 && c.block_q != 128) {
    throw Error(what + "block_q must be 16, 32, 64 or 128 output columns");
  }
  if (!conv_power_of_2(c.block_c) || c.block_c < 8 || c.block_c > 128 ||
      c.block_c % p.group_width != 0 || p.channels % c.block_c != 0) {
    throw Error(what +
                "block_c must be a power of 2 from 8 to 128 that is a multiple of the "
                "group width and divides the channels");
  }
  if (c.warps_q < 1 || c.warps_c < 1 || !conv_power_of_2(c.warps_q) ||
      !conv_power_of_2(c.warps_c) || c.warps_q * c.warps_c > 16) {
    throw Error(what + "warps_q and warps_c must be powers of 2, at most 16 warps in all");
  }
  if (c.ahead < 1 || c.ahead > 4) throw Error(what + "ahead must be 1 to 4");
  if (c.step_rows < 1 || c.step_rows > 4) {
    throw Error(what + "step_rows must be 1 to 4");
  }
  if (p.pass != ConvPass::wgrad) {
    if ((c.block_q / 16) % c.warps_q != 0) {
      throw Error(what +
                  "each of the warps_q warps takes whole 16-column tiles: block_q / 16 "
                  "must be a multiple of warps_q");
    }
    if ((c.block_c / c.warps_c) % p.group_width != 0) {
      throw Error(what +
                  "each of the warps_c warps takes whole groups: block_c / warps_c must "
                  "be a multiple of the group width");
    }
  } else {
    const ConvWgradSplit split = conv_wgrad_split(p, c);
    if ((c.block_q / 16) % c.warps_q != 0) {
      throw Error(what +
                  "wgrad's warps_q warps split the 16-column tiles: block_q / 16 must be a "
                  "multiple of warps_q");
    }
    if (split.row_classes > p.filter_h) {
      throw Error(what + "wgrad's warps_c warps split the block's " +
                  std::to_string(c.block_c / 8) + " 8-channel tiles and then the " +
                  std::to_string(p.filter_h) + " filter rows: at most " +
                  std::to_string(c.block_c / 8 * p.filter_h) + " warps");
    }
    if (split.tiles_per_warp > conv_wgrad_max_tiles) {
      throw Error(what + "each warp would hold " + std::to_string(split.tiles_per_warp) +
                  " accumulator tiles (its 8-channel tiles x filter rows x 16-row filter "
                  "fragments), more than " +
                  std::to_string(conv_wgrad_max_tiles) + "; use more warps_c or a smaller block_c");
    }
  }
  if (conv_work_items(p, c) >= (std::int64_t(1) << 31)) {
    throw Error(what + std::to_string(conv_work_items(p, c)) +
                " work items (images x strips x column tiles x channel tiles) exceed the "
                "kernel's 2^31 - 1; use a larger block_p, block_q or block_c");
  }
  if (shared_optin > 0 && conv_shared_bytes(p, c) > shared_optin) {
    throw Error(what + std::to_string(conv_shared_bytes(p, c)) +
                " bytes of shared memory exceed the device's " + std::to_string(shared_optin) +
                " a block; use a smaller block_q or block_c");
  }
}

/// wgrad's rounds on a device of `sms` multiprocessors: the blocks of each channel tile,
/// each walking every rounds-th item of it and leaving one partial row of sums (about 4
/// blocks an SM in all, at most one a item).
inline std::int64_t conv_wgrad_rounds(const ConvGroupedParams& p, const ConvConfig& c, int sms) {
  const std::int64_t tiles_c = p.channels / c.block_c;
  const std::int64_t items = std::max<std::int64_t>(1, conv_work_items(p, c) / tiles_c);
  const std::int64_t target = 4 * std::int64_t(std::max(sms, 1));
  return std::clamp<std::int64_t>((target + tiles_c - 1) / tiles_c, 1, items);
}

/// The floats of wgrad's partial rows: rounds x C x R x S x G.
inline std::int64_t conv_wgrad_partial_floats(const ConvGroupedParams& p, const ConvConfig& c,
                                              int sms) {
  return conv_wgrad_rounds(p, c, sms) * conv_weight_elements(p);
}

/// Every candidate config of `p` that fits `shared_optin` bytes (0: any): column tiles of
/// the smallest of 16, 32, 64 that spans the output row (64 for wider rows, and 128 too) and
/// half of it; the three largest channel tiles; 4 and 8 warps spread over the columns
/// first (fewer where the tile has too few columns and groups for them); strips of 32
/// output rows (16 for images of at most 32) and whole images; steps of one and two output
/// rows, with as many steps in flight as fit up to three (two) rows' worth. On a device of
/// `sms` multiprocessors (0: not known), steps of 3 or 4 rows take up to 3 steps in flight
/// where the config's items are no more than the SMs: one block an SM then, with nothing
/// beside it to hide its rows' latency.
inline std::vector<ConvConfig> conv_configs(const ConvGroupedParams& p,
                                            std::int64_t shared_optin = 0, int sms = 0) {
  const ConvGeometry g = conv_geometry(p);
  int span = 16;
  while (span < 64 && span < g.out_w) span *= 2;
  std::vector<int> column_tiles{span};
  if (span >= 32) column_tiles.push_back(span / 2);
  if (g.out_w > 64) column_tiles.push_back(128);
  std::vector<int> channel_tiles;
  for (int bc : {128, 64, 32, 16, 8}) {
    if (bc % p.group_width == 0 && p.channels % bc == 0 && channel_tiles.size() < 3) {
      channel_tiles.push_back(bc);
    }
  }
  std::vector<std::int64_t> strips;
  for (std::int64_t bp : {g.out_h <= 32 ? std::int64_t(16) : std::int64_t(32), g.out_h}) {
    if (bp <= g.out_h && std::find(strips.begin(), strips.end(), bp) == strips.end()) {
      strips.push_back(bp);
    }
  }
  std::vector<ConvConfig> out;
  if (p.pass == ConvPass::wgrad) {
    // Warps (warps_q x warps_c): 8 or 16, the column tiles split 1, 2 or 4 ways; fewer
    // where none of those fits. Whole images a block (wgrad's blocks walk items anyway,
    // and no input row is read twice); strips of 32 rows too for taller ones. Two rows a
    // step with three steps ahead, and for strips of 48 rows or more three rows a step with
    // two ahead (on an H200 these beat two rows two ahead, the one step there was, on every
    // benchmark problem: 32 x 64 x 64 x 64 19.1 against 21.7 us, 56 x 56 x 256 x 5 x 5
    // 188.5 against 205 us; three rows were 1-4% slower on strips of 14 to 32 rows).
    std::vector<std::int64_t> wgrad_strips{g.out_h};
    if (g.out_h > 32) wgrad_strips.push_back(32);
    for (int bq : column_tiles) {
      if (bq > 64) continue;
      for (int bc : channel_tiles) {
        const std::size_t before = out.size();
        for (const auto& [wq, wc] : std::initializer_list<std::pair<int, int>>{
                 {1, 8}, {2, 4}, {4, 4}, {2, 8}, {1, 4}, {4, 2}, {2, 2}, {1, 2}, {1, 1}}) {
          if (wq * wc < 8 && out.size() > before) break;  // fewer warps only where none fit
          for (std::int64_t bp : wgrad_strips) {
            for (const auto& [ahead, step] :
                 std::initializer_list<std::pair<int, int>>{{3, 2}, {2, 3}}) {
              if (step == 3 && !conv_wgrad_long_strip(bp, g.out_h)) continue;
              const ConvConfig c{std::int32_t(bp), bq, bc, wq, wc, ahead, step};
              try {
                validate_conv_config(p, c, shared_optin);
              } catch (const Error&) {
                continue;
              }
              out.push_back(c);
            }
          }
        }
      }
    }
    return out;
  }
  for (int bq : column_tiles) {
    for (int bc : channel_tiles) {
      for (int warps : {8, 4}) {
        // Warps across the columns first, then across the channels (whole groups each).
        const int wq = std::min(bq / 16, warps);
        const int wc = std::min(warps / wq, bc / p.group_width);
        // A step's accumulator tiles (16 columns x 8 channels, 4 floats a thread) a row.
        const int tiles = bq / 16 / wq * (bc / wc / 8);
        for (std::int64_t bp : strips) {
          // Steps of two output rows and of one; and, where a step's accumulators stay
          // within 32 floats a thread, the longer step of 3 or 4 rows that computes the
          // fewest rows past the strip's end (4 where they tie).
          const std::int64_t rows = std::min<std::int64_t>(bp, g.out_h);
          auto past = [&](int step) { return (rows + step - 1) / step * step - rows; };
          const int long_step = past(3) < past(4) ? 3 : 4;
          for (int step : {2, long_step, 1}) {
            if (step == long_step && long_step * tiles * 4 > 32) continue;
            // As many steps ahead as fit: up to 3 of one row, 2 of more; 3 of 3 or 4 rows
            // where the blocks are no more than the SMs, one a block (32 x 64 x 64 x 64,
            // p32_q32_c64_w2x4_r4 on an H200, f16: fprop 16.3-16.4 us against 17.5 with 2
            // ahead, since a single wave's blocks ask for their first rows before the rest of
            // their set-up; dgrad 15.8-15.9 against 16.3-16.4 with 4 ahead, and 4 had beaten
            // 2: 18.4-18.5 against 19.3-19.4 us).
            const bool alone = sms > 0 && p.pass != ConvPass::wgrad && step == long_step &&
                               conv_work_items(p, {std::int32_t(bp), bq, bc, wq, wc, 1, step}) <=
                                   std::int64_t(sms);
            for (int ahead = step == 1 || alone ? 3 : 2; ahead >= 1; --ahead) {
              const ConvConfig c{std::int32_t(bp), bq, bc, wq, wc, ahead, step};
              try {
                validate_conv_config(p, c, shared_optin);
              } catch (const Error&) {
                continue;
              }
              if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
              break;
            }
          }
        }
      }
    }
  }
  return out;
}

/// The config taken without timing (KILN_TUNE=off), for a device of `sms` multiprocessors,
/// from what sweeps on an H200 showed: whole images a block (no input row read twice)
/// unless that leaves fewer blocks than SMs, then strips; 64 channels a block (128 for
/// rows of at most 16 columns), at least 16 a warp; two to four output rows a step; 8 warps
/// spread over the columns first; the column tile that spans the row (up to 64) with the
/// fewest idle columns.
inline ConvConfig conv_heuristic(const ConvGroupedParams& p, const std::vector<ConvConfig>& cs,
                                 int sms = 132) {
  if (cs.empty()) throw Error("kiln: conv2d_grouped: no config fits this problem and device");
  const ConvGeometry g = conv_geometry(p);
  int span = 16;
  while (span < 64 && span < g.out_w) span *= 2;
  if (p.pass == ConvPass::wgrad) {
    // From sweeps on an H200 (3 x 3 and 5 x 5, groups of 8): above all an item for each
    // SM, or all but a few (a block takes at most one item a round); then 32-column tiles
    // for rows wider than 32 (the spanning tile for narrower ones), 64 channels a block
    // (128 for rows of at most 16; half that next best), 8 warps, 2 x 4 where there are
    // two column tiles and items for two blocks an SM, else 1 x 8 (32 x 64 x 64 x 64: 128
    // items of p32_q32_c64_w1x8 in 20.9-21.1 us, f16 and bf16, against 22.4-22.5 for
    // w2x4 and 22.9-23.2 for 256 items of c32_w2x4), and whole images (no input row read
    // twice) where they leave items enough, but 64 channels a block before them (the
    // same 128 items as p64_c32_w1x8 in 28.5-28.7 us).
    const int want_q = span >= 64 ? 32 : span;
    const int want_c = std::min(want_q <= 16 ? 128 : 64, int(p.channels));
    const double sm_count = double(std::max(sms, 1));
    auto score = [&](const ConvConfig& c) {
      const double items = double(conv_work_items(p, c));
      // Steps of three rows where a block's strip is long, else two rows three ahead (on
      // an H200, f16: three rows took 56 x 56 x 256 x 3 x 3 from 127.3 to 123.8 us and
      // 5 x 5 from 201.0 to 188.5; two rows three ahead were 1-2% faster on 28 x 28,
      // 14 x 14 and strips of 32 rows of 64 x 64).
      const int want_step = conv_wgrad_long_strip(c.block_p, g.out_h) ? 3 : 2;
      const int want_wq = want_q >= 32 && items >= 2.0 * sm_count ? 2 : 1;
      return 8.0 * std::min(1.0, items / (sm_count - sm_count / 16.0)) +
             (c.block_q == want_q ? 2 : 0) +
             (c.block_c == want_c       ? 1
              : c.block_c * 2 == want_c ? 0.75
                                        : 0) +
             (c.warps_q * c.warps_c == 8 ? 0.5 : 0) + (c.warps_q == want_wq ? 0.25 : 0) +
             (c.block_p == g.out_h ? 0.2 : 0) + (c.step_rows == want_step ? 0.1 : 0);
    };
    return *std::max_element(cs.begin(), cs.end(), [&](const ConvConfig& a, const ConvConfig& b) {
      return score(a) < score(b);
    });
  }
  // Blocks enough for one an SM: where the items are few (32 x 64 x 64 x 64 f16 on an
  // H200, 256 or 128 of them), 128 blocks of 8 warps with 16 channels a warp (17.8 us)
  // beat 256 with 8 channels a warp (19.7 us), two an SM.
  const std::int64_t target = std::int64_t(std::max(sms, 1));
  ConvConfig best = cs.front();
  double best_score = -1e300;
  for (const ConvConfig& c : cs) {
    const std::int64_t blocks = conv_work_items(p, c);
    const std::int64_t strips = (g.out_h + c.block_p - 1) / c.block_p;
    // Re-read halo rows per output row, idle columns, too few blocks: each costs.
    const double halo =
        double(std::max(0, p.filter_h - g.stride)) * double(strips - 1) / double(g.out_h);
    const double idle =
        double((g.out_w + c.block_q - 1) / c.block_q * c.block_q - g.out_w) / double(g.out_w);
    const double fill = std::min(1.0, double(blocks) / double(target));
    double score = fill - 0.5 * halo - 0.5 * idle;
    if (c.block_q == span) score += 0.01;
    // 64 channels a block; 128 for rows of at most 16 columns, whose steps are short (more
    // bytes in flight and mma work between a step's barriers: 1.5x on 14 x 14 x 1024).
    if (c.block_c == (span == 16 ? 128 : 64)) score += 0.03;
    // Two output rows a step, and for stride 1 three or four where offered (fewer barriers
    // and fragment loads a row: 1.1x on 28 x 28 x 512 and 14 x 14 x 1024; not measured at
    // stride 2).
    if (c.step_rows >= 2) score += 0.02;
    if (c.step_rows > 2 && p.stride == 1) score += 0.03;
    // 8 warps (on 64 x 64 x 64, 8 warps and half the blocks beat 4 and all of them).
    if (c.warps_q * c.warps_c == 8) score += 0.04;
    // At least two groups of 8 channels a warp: more mma work between a step's barriers.
    if (c.block_c / c.warps_c >= 16) score += 0.03;
    score += 0.002 * c.ahead;
    if (score > best_score) {
      best_score = score;
      best = c;
    }
  }
  return best;
}

/// "conv_grouped__fprop__f16__g8_c256__3x3_s1_p1x1__p16_q64_c64_w4x2_a2" with
/// "__bias", "__relu" / "__silu" and "__res" for the fused epilogue.
inline std::string conv_kernel_name(const ConvGroupedParams& p, const ConvConfig& c) {
  std::string name = "conv_grouped__" + conv_pass_name(p.pass) + "__" +
                     std::string(gen::to_string(p.dtype)) + "__g" + std::to_string(p.group_width) +
                     "_c" + std::to_string(p.channels) + "__" + std::to_string(p.filter_h) + "x" +
                     std::to_string(p.filter_w) + "_s" + std::to_string(p.stride) + "_p" +
                     std::to_string(p.pad_h) + "x" + std::to_string(p.pad_w) + "__p" +
                     std::to_string(c.block_p) + "_q" + std::to_string(c.block_q) + "_c" +
                     std::to_string(c.block_c) + "_w" + std::to_string(c.warps_q) + "x" +
                     std::to_string(c.warps_c) + "_a" + std::to_string(c.ahead) +
                     (c.step_rows > 1 ? "_r" + std::to_string(c.step_rows) : std::string());
  if (p.bias) name += "__bias";
  if (p.activation == ConvActivation::relu) name += "__relu";
  if (p.activation == ConvActivation::silu) name += "__silu";
  if (p.residual) name += "__res";
  return name;
}

/// The header kernels/conv_grouped.cu includes as "spec.hpp" (its comment lists what it
/// uses).
inline gen::Spec conv_spec(const ConvGroupedParams& p, const ConvConfig& c) {
  using gen::dynamic;
  const ConvGeometry g = conv_geometry(p);
  gen::Spec s;
  s.dim("H").dim("W").dim("P").dim("Q").dim("C").dim("R").dim("S").dim("G").dim("GRP");
  gen::TensorSpec x("XImage", p.dtype), w("Weights", p.dtype), y("YImage", p.dtype),
      res("ResidualImage", p.dtype), bias("Bias", p.dtype), dy("DyImage", p.dtype);
  x.read_only().dim("H", dynamic).dim("W", dynamic).dim("C", dynamic);
  w.read_only().dim("C", dynamic).dim("R", p.filter_h).dim("S", p.filter_w).dim("G", p.group_width);
  y.dim("P", dynamic).dim("Q", dynamic).dim("C", dynamic);
  res.read_only().dim("P", dynamic).dim("Q", dynamic).dim("C", dynamic);
  bias.read_only().dim("C", dynamic);
  dy.read_only().dim("P", dynamic).dim("Q", dynamic).dim("C", dynamic);
  s.tensor(x).tensor(w).tensor(y).tensor(res).tensor(bias).tensor(dy);
  if (p.pass == ConvPass::wgrad) {
    const ConvWgradSplit split = conv_wgrad_split(p, c);
    s.macro("CONV_WGRAD", "1")
        .constant("kWgradPairsPerWarp", split.pairs_per_warp)
        .constant("kWgradRowClasses", split.row_classes)
        .constant("kWgradRowsPerWarp", split.rows_per_warp);
  }
  s.constant("kR", int(p.filter_h))
      .constant("kS", int(p.filter_w))
      .constant("kG", int(p.group_width))
      .constant("kStride", int(g.stride))
      .constant("kDilate", int(g.dilate))
      .constant("kPadH", int(g.pad_h))
      .constant("kPadW", int(g.pad_w))
      .constant("kFlip", g.flip ? 1 : 0)
      .constant("kChannels", int(p.channels))
      .constant("kBP", int(c.block_p))
      .constant("kBQ", int(c.block_q))
      .constant("kBC", int(c.block_c))
      .constant("kWarpsQ", int(c.warps_q))
      .constant("kWarpsC", int(c.warps_c))
      .constant("kAhead", int(c.ahead))
      .constant("kStepRows", int(c.step_rows))
      .constant("kCarry", conv_carries(p, c) ? 1 : 0)
      .constant("kRing", conv_ring_rows(p, c))
      .constant("kMinBlocks", conv_min_blocks(c))
      .constant("kBias", p.bias ? 1 : 0)
      .constant("kActivation", int(p.activation))
      .constant("kResidual", p.residual ? 1 : 0);
  return s;
}

}  // namespace detail
}  // namespace kiln::ops

/// The factory's memo hashes ConvGroupedParams field by field.
template <>
struct std::hash<kiln::ops::ConvGroupedParams> {
  std::size_t operator()(const kiln::ops::ConvGroupedParams& p) const noexcept {
    return kiln::factory::hash_combine(
        0, {std::int64_t(p.pass), std::int64_t(p.dtype), std::int64_t(p.group_width),
            std::int64_t(p.channels), std::int64_t(p.filter_h), std::int64_t(p.filter_w),
            std::int64_t(p.stride), std::int64_t(p.pad_h), std::int64_t(p.pad_w), p.n,
            std::int64_t(p.h), std::int64_t(p.w), std::int64_t(p.bias), std::int64_t(p.activation),
            std::int64_t(p.residual)});
  }
};
