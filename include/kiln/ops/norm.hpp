#pragma once
/// LayerNorm and RMSNorm (forward) over the last dimension of a row-major (rows, cols)
/// matrix: f16, bf16 or f32 in and out, f32 math; weight and bias optional, epsilon a
/// run-time argument; optionally the per-row mean (LayerNorm) and reciprocal standard
/// deviation (f32) for a backward pass; optionally fused with a residual add
/// (h = x + residual, written; y = norm(h)). The kernel is kernels/norm.cu, compiled per
/// (kind, dtype, cols, residual, config); rows are a run-time argument.
///
///   kiln::rt::DeviceBuffer<kiln::bf16> x(rows * cols), y(rows * cols), w(cols), b(cols);
///   kiln::ops::layer_norm(x, y, rows, cols, {.weight = &w, .bias = &b}, stream);
///   kiln::ops::rms_norm(x, y, rows, cols, {.weight = &w, .epsilon = 1e-6f}, stream);
///
///   // Fused: h = x + r (here r itself, updated in place), y = rms_norm(h), rstd kept:
///   kiln::rt::DeviceBuffer<float> rstd(rows);
///   kiln::ops::rms_norm(x, y, rows, cols,
///                       {.weight = &w, .rstd = &rstd, .residual = &r, .h = &r}, stream);
///
///   // f16 / bf16 data held as 16-bit patterns, the type named explicitly:
///   kiln::ops::layer_norm(kiln::gen::DType::f16, x16, y16, rows, cols, {}, stream);
///
/// y may be x; h may be x or the residual (not y). Under KILN_TUNE=model or full the
/// candidates (detail/norm_configs.hpp, softmax's) are timed once per problem and device,
/// and the winner kept in the tuning database.
///
/// The backward passes (kernels/norm_backward.cu, then kernels/column_sum.cu for dweight
/// and dbias, summed in a fixed order: the same bits every run):
///
///   kiln::ops::layer_norm_backward(dy, x, dx, rows, cols,
///       {.weight = &w, .mean = &mean, .rstd = &rstd, .dweight = &dw, .dbias = &db}, stream);

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "../device/half.hpp"
#include "../error.hpp"
#include "../factory/factory.hpp"
#include "../rt/launch.hpp"
#include "../rt/memory.hpp"
#include "detail/norm_configs.hpp"
#include "softmax.hpp"
#include "split_slots.hpp"

namespace kiln::ops {

/// The norms' kernel factory: a factory::Factory over NormParams and NormConfig (both
/// kinds). Use the process-wide one, norm_factory().
using NormFactory = factory::Factory<NormParams, NormConfig>;

/// What a norm takes besides x and y. Pointers left null are absent: no weight (1), no
/// bias (0), no statistics written, no residual. Buffers must be on y's device.
template <class T>
struct NormArgs {
  const rt::DeviceBuffer<T>* weight = nullptr;  ///< cols elements
  const rt::DeviceBuffer<T>* bias = nullptr;    ///< cols elements (layer_norm only)
  float epsilon = 1e-5f;                        ///< added to the variance; positive, finite
  rt::DeviceBuffer<float>* mean = nullptr;      ///< rows floats (layer_norm only)
  rt::DeviceBuffer<float>* rstd = nullptr;      ///< rows floats: 1 / sqrt(var + epsilon)
  /// Both or neither: h = x + residual (rounded to T) is written, and y = norm(h).
  const rt::DeviceBuffer<T>* residual = nullptr;
  rt::DeviceBuffer<T>* h = nullptr;
};

namespace detail {

/// A kernel's grid covers p.rows rows (at least one block), as softmax's; a staged_ahead
/// config's, grid_blocks blocks at most.
inline rt::LaunchConfig norm_launch(const NormParams& p, const NormConfig& c) {
  if (c.strategy == NormStrategy::split) {  // the persistent grid, every block resident
    rt::LaunchConfig lc(rt::Dim3(unsigned(c.grid_blocks)), rt::Dim3(unsigned(c.threads_per_row)));
    lc.cooperative = true;
    lc.shared_bytes = unsigned(norm_split_shared_bytes(p, c));
    return lc;
  }
  rt::LaunchConfig lc = softmax_launch(norm_row(p), to_softmax(c));
  lc.shared_bytes = unsigned(norm_shared_bytes(p, c));  // a staged block's rows
  if (c.staged_ahead > 0) {
    lc.grid = rt::Dim3(unsigned(std::clamp<std::int64_t>(p.rows, 1, c.grid_blocks)));
  }
  return lc;
}

/// One read of x (and the residual), one write of y (and h), the weight and bias, the
/// statistics.
inline double norm_bytes(const NormParams& p) {
  const double matrix = double(p.rows) * double(p.cols) * gen::size_of(p.dtype);
  return (p.residual ? 4.0 : 2.0) * matrix + 2.0 * double(p.cols) * gen::size_of(p.dtype) +
         8.0 * double(p.rows);
}

/// The device pointer of an optional buffer (null where absent).
template <class T>
T* data_or_null(const rt::DeviceBuffer<T>* b) {
  return b ? b->data() : nullptr;
}

/// Whether `d`'s SMs hold split config `c`'s blocks_per_sm blocks of `p` with their shared
/// memory (norm_split_shared_bytes, and 2 KiB a block for the static scratch and what the
/// driver keeps): LayerNorm's weight and bias of 256 x 8 vectors take 64 KiB a block, 128
/// KiB an SM, which sm_86 and sm_89 (100 KiB) do not have.
inline bool norm_split_fits(const NormParams& p, const NormConfig& c,
                            const rt::DeviceProperties& d) {
  return split_fits(norm_split_shared_bytes(p, c), c.blocks_per_sm, d);
}

/// The split candidates kiln offers for `p` on `d`: norm_split_configs where `d`
/// has_split_rows and its SMs hold their blocks (norm_split_fits), none elsewhere.
inline std::vector<NormConfig> norm_split_candidates(const NormParams& p,
                                                     const rt::DeviceProperties& d) {
  if (!has_split_rows(d)) return {};
  std::vector<NormConfig> out;
  for (const NormConfig& c : norm_split_configs(p, warp_size(d), d.multiprocessors)) {
    if (norm_split_fits(p, c, d)) out.push_back(c);
  }
  return out;
}

/// The slot words a split launch of `c` over `p` exchanges its sums through.
inline std::size_t norm_split_words(const NormParams& p, const NormConfig& c) {
  return std::size_t(p.rows) * std::size_t(norm_split_slices(p, c) * norm_split_slot_words(p));
}

/// kiln's slots for a split launch of `c` over `p` on `stream` of `device` (split_slots).
inline SplitSlots norm_split_slots(const rt::Device& device, rt::StreamRef stream,
                                   const NormParams& p, const NormConfig& c) {
  return split_slots(device, stream, norm_split_words(p, c), norm_name(p.kind));
}

/// The description of kernels/norm.cu as a factory (bump `version` whenever the kernel
/// or the configs change meaning).
inline NormFactory::Description norm_description() {
  using TuningRun = NormFactory::TuningRun;
  return {
      .name = "norm",
      .version = 14,  // 3: split configs, and the kernel's slots parameter; 4: LayerNorm split;
                      // 5: the kernel's next_slots (split launches time without a memset);
                      // 6: LayerNorm's split weights ahead, and its rows of up to 8 slot
                      // words a lane (more split candidates); the staged rows' weights
                      // ahead as words, their writes fused; LayerNorm's split merge by
                      // gathered sums; 7: split blocks keep their columns' weights in
                      // shared memory (candidates whose blocks fit the SM's); 8: ringed split
                      // candidates (split_ring); 9: split candidates with the residual;
                      // 10: LayerNorm's sums about each thread's own shift, reduced in
                      // two steps (kiln::RowShiftedSums): no cancellation at outliers;
                      // 11: rings of 4 and 5 slices, copying 2 and 3 rounds ahead;
                      // 12: staged rows ahead (staged_ahead); 13: staged rows held partly
                      // in registers (staged_held); 14: split slices loaded a constant
                      // offset on from the thread's first vector
      .source = "norm.cu",
      .configs =
          [](const NormParams& p, const rt::DeviceProperties& d) {
            std::vector<NormConfig> out = norm_configs(p, warp_size(d));
            // Staged rows on NVIDIA GPUs (on AMD ones they are yet to be run).
            if (d.platform == rt::Platform::cuda) {
              const auto optin = std::int64_t(d.shared_per_block_optin);
              const auto staged = norm_staged_configs(p, warp_size(d), optin);
              out.insert(out.end(), staged.begin(), staged.end());
              const auto ahead = norm_staged_ahead_configs(
                  p, warp_size(d), optin, std::int64_t(d.shared_per_multiprocessor),
                  d.multiprocessors);
              out.insert(out.end(), ahead.begin(), ahead.end());
              const auto split = norm_split_candidates(p, d);
              out.insert(out.end(), split.begin(), split.end());
            }
            return out;
          },
      .spec =
          [](const NormParams& p, const NormConfig& c, const rt::DeviceProperties& d) {
            validate_norm(p);
            validate_norm_config(p, c, warp_size(d));
            if (c.strategy == NormStrategy::split && !norm_split_fits(p, c, d)) {
              throw Error(std::string("kiln: ") + norm_name(p.kind) + " config " +
                          nlohmann::json(c).dump() + ": " + std::to_string(c.blocks_per_sm) +
                          " blocks of " + std::to_string(norm_split_shared_bytes(p, c)) +
                          " bytes of shared memory do not fit an SM of " + d.name + " (" +
                          std::to_string(d.shared_per_multiprocessor) +
                          " bytes); take fewer blocks an SM or shorter slices");
            }
            return norm_spec(p, c);
          },
      .launch = norm_launch,
      .validate = validate_norm,
      .heuristic =
          [](const NormParams& p, const std::vector<NormConfig>& candidates,
             const rt::DeviceProperties& d) {
            // (Staged rows ahead where the memory is fast for the SMs:
            // norm_staged_ahead_bandwidth_per_sm.)
            return norm_heuristic(
                p, candidates,
                d.multiprocessors > 0 ? d.peak_bandwidth() / d.multiprocessors : 0.0);
          },
      .kernel_name = norm_kernel_name,
      .bytes = norm_bytes,
      // Per element: the add (residual), the sums, the deviation, scale, weight and bias.
      .flops = [](const NormParams& p) { return 8.0 * double(p.rows) * double(p.cols); },
      .tuning_run = [](const NormParams& p, const rt::Device& device) -> TuningRun {
        const std::int64_t rows = tuning_rows(p.dtype, p.cols, p.rows);
        const std::size_t bytes = tuning_bytes(p.dtype, p.cols, rows);
        auto x = tuning_buffer(bytes, device, true);
        auto y = tuning_buffer(bytes, device, false);
        auto h = tuning_buffer(p.residual ? bytes : 0, device, false);
        auto w = tuning_buffer(tuning_bytes(p.dtype, p.cols, 1), device, true);
        auto stats = std::make_shared<rt::DeviceBuffer<float>>(std::size_t(2 * rows), device);
        NormParams timed = p;
        timed.rows = rows;
        // Split configs' slots: two buffers of each config's words, used in turns as a
        // call uses kiln's (each launch zeroes the next one's).
        auto slots = std::make_shared<TuningSlots>(device);
        return [x, y, h, w, stats, slots, timed](const NormFactory::KernelType& k,
                                                 rt::StreamRef s) {
          rt::LaunchConfig lc = norm_launch(timed, k.config());
          lc.stream = s;
          // The residual is x itself; the weight serves as the bias too.
          const void* in = x->data();
          const void* res = timed.residual ? in : nullptr;
          const void* bias = timed.kind == NormKind::layer_norm ? w->data() : nullptr;
          float* mean = timed.kind == NormKind::layer_norm ? stats->data() : nullptr;
          auto launch = [&](std::uint64_t* own, std::uint64_t* next) {
            k.launch(lc, in, res, static_cast<const void*>(w->data()), bias,
                     static_cast<void*>(y->data()),
                     static_cast<void*>(timed.residual ? h->data() : nullptr), mean,
                     stats->data() + timed.rows, 1e-5f, int(timed.rows), own, next);
          };
          if (k.config().strategy == NormStrategy::split) {
            slots->launch(norm_split_words(timed, k.config()), s, norm_name(timed.kind), launch);
          } else {
            launch(nullptr, nullptr);
          }
        };
      },
  };
}

}  // namespace detail

/// The process-wide norm factory (its kernels are memoized for the process).
inline NormFactory& norm_factory() {
  static NormFactory factory(detail::norm_description());
  return factory;
}

namespace detail {

/// Throws kiln::Error unless `b`, when given, holds `n` elements on `device`.
template <class T>
void check_norm_buffer(const std::string& what, const char* name, const rt::DeviceBuffer<T>* b,
                       std::size_t n, int device) {
  if (!b) return;
  if (b->size() < n) {
    throw Error(what + name + " needs " + std::to_string(n) + " elements, but holds " +
                std::to_string(b->size()));
  }
  if (b->size() > 0 && b->device().ordinal() != device) {
    throw Error(what + name + " is on device " + std::to_string(b->device().ordinal()) +
                ", the output on device " + std::to_string(device));
  }
}

template <class T>
void norm_buffers(NormKind kind, gen::DType dtype, const rt::DeviceBuffer<T>& x,
                  rt::DeviceBuffer<T>& y, std::int64_t rows, std::int64_t cols,
                  const NormArgs<T>& args, rt::StreamRef stream) {
  const std::string what = std::string("kiln: ") + norm_name(kind) + ": ";
  if (sizeof(T) != std::size_t(gen::size_of(dtype))) {
    throw Error(what + "a " + std::string(gen::to_string(dtype)) + " norm needs " +
                std::to_string(gen::size_of(dtype)) + "-byte elements, not " +
                std::to_string(sizeof(T)) + "-byte ones");
  }
  if (cols < 1 || cols > softmax_max_cols) {
    throw Error(what + "cols = " + std::to_string(cols) +
                " is not supported; rows may have 1 to 1048576 (2^20) columns");
  }
  NormParams p{kind, dtype, std::int32_t(cols), args.residual != nullptr, rows};
  validate_norm(p);
  if (!(args.epsilon > 0.0f) || !std::isfinite(args.epsilon)) {
    throw Error(what + "epsilon = " + std::to_string(args.epsilon) +
                " is not supported; it must be positive and finite (1e-5 by default)");
  }
  if (kind == NormKind::rms_norm && args.bias) {
    throw Error(what + "RMSNorm has no bias; pass none (or use layer_norm)");
  }
  if (kind == NormKind::rms_norm && args.mean) {
    throw Error(what + "RMSNorm has no mean to write; ask for rstd alone");
  }
  if ((args.residual == nullptr) != (args.h == nullptr)) {
    throw Error(what +
                "the fused residual needs both .residual and .h (h = x + residual "
                "is written there), or neither");
  }
  if (args.h && args.h->data() == y.data() && y.size() > 0) {
    throw Error(what + "h and y are the same buffer; h may be x or the residual, not y");
  }
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  if (x.size() < n || y.size() < n) {
    throw Error(what + std::to_string(rows) + " x " + std::to_string(cols) + " needs " +
                std::to_string(n) + " elements, but the input holds " + std::to_string(x.size()) +
                " and the output " + std::to_string(y.size()));
  }
  const int device = y.device().ordinal();
  check_norm_buffer(what, "the input", &x, n, device);
  check_norm_buffer(what, "the residual", args.residual, n, device);
  check_norm_buffer(what, "h", args.h, n, device);
  check_norm_buffer(what, "the weight", args.weight, std::size_t(cols), device);
  check_norm_buffer(what, "the bias", args.bias, std::size_t(cols), device);
  check_norm_buffer(what, "the mean", args.mean, std::size_t(rows), device);
  check_norm_buffer(what, "rstd", args.rstd, std::size_t(rows), device);
  if (rows == 0) return;
  // One kernel (and one tuning) per power-of-two bucket of row counts, as for softmax.
  NormFactory& factory = norm_factory();
  NormParams bucket = p;
  bucket.rows = row_bucket(rows);
  const auto& k = factory.get(bucket, y.device());
  rt::LaunchConfig lc = norm_launch(p, k.config());
  lc.stream = stream;
  const T* in = x.data();
  const T* residual = data_or_null(args.residual);
  const T* weight = data_or_null(args.weight);
  const T* bias = data_or_null(args.bias);
  T* out = y.data();
  T* h = data_or_null(args.h);
  float* mean = data_or_null(args.mean);
  float* rstd = data_or_null(args.rstd);
  SplitSlots split;  // (held until the launch is queued)
  if (k.config().strategy == NormStrategy::split) {
    split = norm_split_slots(y.device(), stream, p, k.config());
  }
  std::uint64_t* slots = split.data();
  std::uint64_t* next_slots = split.next();
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(p).dump(), k.launch_info().config, factory.bytes(p),
                              factory.flops(p)};
    k.launch(lc, info, in, residual, weight, bias, out, h, mean, rstd, args.epsilon, int(rows),
             slots, next_slots);
  } else {
    k.launch(lc, in, residual, weight, bias, out, h, mean, rstd, args.epsilon, int(rows), slots,
             next_slots);
  }
  split.launched();
}

}  // namespace detail

/// y = LayerNorm(x) over each row of a row-major rows x cols matrix of float, kiln::f16
/// or kiln::bf16, on `stream` (returns at once): (x - mean) / sqrt(var + epsilon) ·
/// weight + bias, the variance biased (divided by cols). With args.residual and args.h,
/// h = x + residual is written and normalized instead of x. Throws kiln::Error for a
/// shape or an argument kiln does not support or the buffers do not hold, and whatever
/// compiling the kernel throws.
template <class T>
void layer_norm(const rt::DeviceBuffer<T>& x, rt::DeviceBuffer<T>& y, std::int64_t rows,
                std::int64_t cols, const NormArgs<T>& args = {}, rt::StreamRef stream = {}) {
  detail::norm_buffers(NormKind::layer_norm, softmax_dtype_of<T>(), x, y, rows, cols, args, stream);
}

/// y = RMSNorm(x) over each row: x / sqrt(mean(x²) + epsilon) · weight, as layer_norm
/// (no bias, no mean).
template <class T>
void rms_norm(const rt::DeviceBuffer<T>& x, rt::DeviceBuffer<T>& y, std::int64_t rows,
              std::int64_t cols, const NormArgs<T>& args = {}, rt::StreamRef stream = {}) {
  detail::norm_buffers(NormKind::rms_norm, softmax_dtype_of<T>(), x, y, rows, cols, args, stream);
}

/// The same over 16-bit patterns of f16 or bf16 (as `dtype` says), or 32-bit ones of f32:
/// for host code without a 16-bit float type.
template <class T>
requires(std::is_same_v<T, std::uint16_t> || std::is_same_v<T, std::uint32_t>) void layer_norm(
    gen::DType dtype, const rt::DeviceBuffer<T>& x, rt::DeviceBuffer<T>& y, std::int64_t rows,
    std::int64_t cols, const NormArgs<T>& args = {}, rt::StreamRef stream = {}) {
  detail::norm_buffers(NormKind::layer_norm, dtype, x, y, rows, cols, args, stream);
}
template <class T>
requires(std::is_same_v<T, std::uint16_t> || std::is_same_v<T, std::uint32_t>) void rms_norm(
    gen::DType dtype, const rt::DeviceBuffer<T>& x, rt::DeviceBuffer<T>& y, std::int64_t rows,
    std::int64_t cols, const NormArgs<T>& args = {}, rt::StreamRef stream = {}) {
  detail::norm_buffers(NormKind::rms_norm, dtype, x, y, rows, cols, args, stream);
}

// ---- The backward passes ----

/// The norms' backward kernel factory (kernels/norm_backward.cu), and the column sums'
/// that finish dweight and dbias (kernels/column_sum.cu). Use the process-wide ones,
/// norm_backward_factory() and column_sum_factory().
using NormBackwardFactory = factory::Factory<NormBackwardParams, NormConfig>;
using ColumnSumFactory = factory::Factory<ColumnSumParams, ColumnSumConfig>;
/// The weight-gradient kernel's factory (kernels/norm_weight_grad.cu): dweight's and
/// dbias' partial rows where the backward kernel runs in several passes. Its params'
/// rows are 0 (a run-time argument). Use norm_weight_grad_factory().
using NormWeightGradFactory = factory::Factory<NormBackwardParams, NormWeightGradConfig>;

/// What a norm's backward pass takes besides dy, the forward's input and dx. Buffers
/// must be on dx's device.
template <class T>
struct NormBackwardArgs {
  const rt::DeviceBuffer<T>* weight = nullptr;    ///< the forward's weight, or none (1)
  const rt::DeviceBuffer<float>* mean = nullptr;  ///< the forward's mean (layer_norm: needed)
  const rt::DeviceBuffer<float>* rstd = nullptr;  ///< the forward's rstd (needed)
  rt::DeviceBuffer<T>* dweight = nullptr;         ///< cols: the sum over rows of dy · x̂
  rt::DeviceBuffer<T>* dbias = nullptr;           ///< cols: the sum over rows of dy (layer_norm)
  /// Scratch for the partial sums of dweight and dbias: norm_backward_workspace_size()
  /// floats. Without one, a call that asks for them allocates its own, and waits for the
  /// stream before it frees it.
  rt::DeviceBuffer<float>* workspace = nullptr;
};

namespace detail {

/// A grid over every row group (cluster_blocks blocks each, in clusters of that many):
/// the factory's launch (no partial sums to bound).
inline rt::LaunchConfig norm_backward_launch(const NormBackwardParams& p, const NormConfig& c) {
  rt::LaunchConfig lc = norm_launch(norm_forward(p), c);
  if (c.strategy == NormStrategy::split) {  // the blocks' sums of dweight and dbias
    lc.shared_bytes = unsigned(norm_backward_split_shared_bytes(p, c));
  }
  return lc;
}

/// The backward's split candidates kiln offers for `p` on `d`: norm_backward_split_configs
/// where `d` has_split_rows, none elsewhere.
inline std::vector<NormConfig> norm_backward_split_candidates(const NormBackwardParams& p,
                                                              const rt::DeviceProperties& d) {
  if (!has_split_rows(d)) return {};
  return norm_backward_split_configs(p, warp_size(d), d.multiprocessors,
                                     std::int64_t(d.shared_per_multiprocessor),
                                     std::int64_t(d.shared_per_block_optin));
}

/// The slot words a backward split launch of `c` over `p` exchanges its sums through.
inline std::size_t norm_backward_split_words(const NormBackwardParams& p, const NormConfig& c) {
  return norm_split_words(norm_forward(p), c);
}

/// The blocks a backward launch takes: one per row group (cluster_blocks per row with
/// clusters), but with dweight or dbias only as many as stay resident together,
/// norm_backward_min_blocks an SM, in whole clusters (each block, or cluster, leaves a
/// partial row to add up, and walks rows block, block + grid, ...), and more than one
/// block (cluster) an SM only where each takes 4 row groups or more: on an H200, f16
/// LayerNorm 512 x 4096 and 1024 x 2048 went from 58% to 66-68% of a copy (partial rows
/// 264 -> 132 and 528 -> 256), RMSNorm from 68-71% to 74-75%. `fit`: the clusters the device
/// runs at once where the driver says (rt::max_active_clusters), else 0.
inline std::int64_t norm_backward_blocks(const NormBackwardParams& p, const NormConfig& c,
                                         const rt::DeviceProperties& d, int fit = 0) {
  if (c.strategy == NormStrategy::split) return c.grid_blocks;  // the persistent grid
  const std::int64_t k = std::max(1, c.cluster_blocks);
  const std::int64_t groups = std::max<std::int64_t>(1, ceil_div(p.rows, c.rows_per_block));
  if (!p.weight_grad && !p.bias_grad) return groups * k;
  const std::int64_t sms = std::max(1, d.multiprocessors);
  std::int64_t resident = std::max<std::int64_t>(1, sms * norm_backward_min_blocks(p, c) / k);
  if (fit > 0) resident = std::min<std::int64_t>(resident, fit);
  // More blocks than SMs only where each takes 4 row groups or more (the fewer partial rows).
  resident = std::min(resident, std::max(std::max<std::int64_t>(1, sms / k), ceil_div(groups, 4)));
  return std::min(groups, resident) * k;
}

/// The partial rows of dweight (and of dbias) a backward launch over `blocks` blocks of
/// config `c` leaves: one a block, a cluster, or (split) a row's slices' worth of blocks.
inline std::int64_t norm_backward_partial_rows(const NormBackwardParams& p, const NormConfig& c,
                                               std::int64_t blocks) {
  if (c.strategy == NormStrategy::split) {
    return blocks / std::max<std::int64_t>(1, norm_split_slices(norm_forward(p), c));
  }
  return blocks / std::max(1, c.cluster_blocks);
}

/// The floats of partial sums of dweight and dbias a backward launch over `blocks`
/// blocks of config `c` leaves: its partial rows of each.
inline std::int64_t norm_backward_partial_floats(const NormBackwardParams& p, const NormConfig& c,
                                                 std::int64_t blocks) {
  return norm_backward_partial_rows(p, c, blocks) * std::int64_t(p.cols) *
         (std::int64_t(p.weight_grad) + std::int64_t(p.bias_grad));
}

/// The clusters of backward kernel `k` the device runs at once (0: no clusters, or the
/// driver cannot tell).
inline int norm_backward_fit(const NormBackwardParams& p, const NormConfig& c,
                             const rt::Function& f) {
  if (c.cluster_blocks <= 1) return 0;
  return rt::max_active_clusters(f, norm_backward_launch(p, c));
}

/// Reads of dy and h, the write of dx, the weight, the statistics and dweight, dbias.
inline double norm_backward_bytes(const NormBackwardParams& p) {
  const double esize = gen::size_of(p.dtype);
  return 3.0 * double(p.rows) * double(p.cols) * esize +
         (1.0 + int(p.weight_grad) + int(p.bias_grad)) * double(p.cols) * esize +
         8.0 * double(p.rows);
}

/// What a backward call of `p` launches: the backward kernel over `blocks` blocks (dx, and
/// the partial rows of dweight and dbias unless `split`); where split, the weight-gradient
/// kernel over `groups` row groups of `rows_per_group` rows for those; then the column sum
/// of `partial_rows` partial rows, `partial_floats` floats in all. Where split, the
/// weight-gradient kernel also leaves `row_sum_parts` parts of each row's two sums (the
/// first `row_sum_floats` floats of the workspace, the partial rows after them), which the
/// multi-pass dx kernel adds up instead of reading h and dy for them. Over one row group
/// (`whole_sums`), the weight-gradient kernel writes dweight and dbias itself, with no
/// partial rows and no column sum, unless they overlap the weight, which dx still reads.
struct NormBackwardPlan {
  const NormBackwardFactory::KernelType* backward = nullptr;
  NormBackwardParams backward_params;  ///< the backward kernel's (without the sums if split)
  std::int64_t blocks = 1;
  const NormWeightGradFactory::KernelType* weight_grad = nullptr;  ///< where split
  NormWeightGradGrid groups{1, 1};
  std::int64_t partial_rows = 0;
  std::int64_t partial_floats = 0;
  bool whole_sums = false;
  std::int64_t row_sum_parts = 0;
  std::int64_t row_sum_floats = 0;
};
inline NormBackwardPlan norm_backward_split_plan(const NormBackwardParams& p,
                                                 const rt::Device& device);
inline void launch_norm_backward(const NormBackwardParams& p, const NormBackwardPlan& plan,
                                 const void* dy, const void* x, const void* weight,
                                 const float* mean, const float* rstd, void* dx, float* partial,
                                 void* dweight, void* dbias, bool whole, const rt::Device& device,
                                 rt::StreamRef stream);

/// The description of kernels/norm_backward.cu as a factory (bump `version` whenever the
/// kernel or the configs change meaning).
inline NormBackwardFactory::Description norm_backward_description() {
  using TuningRun = NormBackwardFactory::TuningRun;
  return {
      .name = "norm_backward",
      .version = 10,  // 3: rows shared by clusters (cluster_blocks); 4: no multi_pass step
                      // over the backward budget (softmax_backward_fits); 5: sum_parts; 6: with
                      // the sums, multi pass timed as the call splits it; 7: bf16 holds its
                      // weights; 8: split configs, and the kernel's slots parameters; 9:
                      // ringed split candidates (split_ring); 10: split slices loaded a
                      // constant offset on, f32's next slice before the first barrier
      .source = "norm_backward.cu",
      .configs =
          [](const NormBackwardParams& p, const rt::DeviceProperties& d) {
            std::vector<NormConfig> out = norm_backward_configs(p, warp_size(d), has_clusters(d));
            const auto split = norm_backward_split_candidates(p, d);
            out.insert(out.end(), split.begin(), split.end());
            return out;
          },
      .spec =
          [](const NormBackwardParams& p, const NormConfig& c, const rt::DeviceProperties& d) {
            validate_norm_backward(p);
            validate_norm_backward_config(p, c, warp_size(d));
            const std::string what = std::string("kiln: ") + norm_name(p.kind) +
                                     " backward config " + nlohmann::json(c).dump();
            if (c.cluster_blocks > 1 && !has_clusters(d)) {
              throw Error(what + ": clusters need an sm_90 (or later) NVIDIA device, not " +
                          d.arch);
            }
            if (c.strategy == NormStrategy::split) {
              if (!has_split_rows(d)) {
                throw Error(what + ": split rows need an sm_80 (or later) NVIDIA device, not " +
                            d.arch);
              }
              const std::int64_t bytes = norm_backward_split_shared_bytes(p, c);
              if (!split_fits(bytes, c.blocks_per_sm, d)) {
                throw Error(what + ": " + std::to_string(c.blocks_per_sm) + " blocks of " +
                            std::to_string(bytes) + " bytes of shared memory do not fit an SM of " +
                            d.name + " (" + std::to_string(d.shared_per_multiprocessor) +
                            " bytes); take fewer blocks an SM or shorter slices");
              }
              if (c.grid_blocks > std::int64_t(d.multiprocessors) * c.blocks_per_sm) {
                throw Error(what + ": a grid of " + std::to_string(c.grid_blocks) +
                            " blocks is not resident at once on " +
                            std::to_string(d.multiprocessors) + " SMs of " +
                            std::to_string(c.blocks_per_sm) + " blocks");
              }
            }
            return norm_backward_spec(p, c);
          },
      .launch = norm_backward_launch,
      .validate = validate_norm_backward,
      .heuristic = norm_backward_heuristic,
      .kernel_name = norm_backward_kernel_name,
      .bytes = norm_backward_bytes,
      // Per element: x̂, g, the two sums, dx, and dweight's and dbias' sums.
      .flops = [](const NormBackwardParams& p) { return 12.0 * double(p.rows) * double(p.cols); },
      .tuning_run = [](const NormBackwardParams& p, const rt::Device& device) -> TuningRun {
        const std::int64_t rows = tuning_rows(p.dtype, p.cols, p.rows);
        const std::size_t bytes = tuning_bytes(p.dtype, p.cols, rows);
        auto in = tuning_buffer(bytes, device, true);  // dy and h alike
        auto dx = tuning_buffer(bytes, device, false);
        auto w = tuning_buffer(tuning_bytes(p.dtype, p.cols, 1), device, true);
        auto stats = std::make_shared<rt::DeviceBuffer<float>>(std::size_t(2 * rows), device);
        stats->fill_bytes(0x3c);
        NormBackwardParams timed = p;
        timed.rows = rows;
        // Partial sums for the config with the most of them (a block's row slots, the grid).
        std::int64_t most = 0;
        const rt::DeviceProperties props = device.properties();
        std::vector<NormConfig> configs =
            norm_backward_configs(timed, warp_size(props), has_clusters(props));
        const auto split_rows = norm_backward_split_candidates(timed, props);
        configs.insert(configs.end(), split_rows.begin(), split_rows.end());
        for (const NormConfig& c : configs) {
          most = std::max(
              most, norm_backward_partial_floats(timed, c, norm_backward_blocks(timed, c, props)));
        }
        // With dweight or dbias a call splits where its config is multi pass (the
        // weight-gradient kernel, dx from the backward kernel without the sums, the column
        // sum: norm_backward_split_plan): such candidates are timed as the call runs them,
        // whatever their own kernel.
        std::shared_ptr<const NormBackwardPlan> split;
        std::shared_ptr<rt::DeviceBuffer<unsigned char>> grads;
        if ((timed.weight_grad || timed.bias_grad) &&
            std::any_of(configs.begin(), configs.end(),
                        [&](const NormConfig& c) { return norm_backward_split(timed, c); })) {
          split = std::make_shared<const NormBackwardPlan>(norm_backward_split_plan(timed, device));
          most = std::max(most, split->partial_floats);
          grads = tuning_buffer(2 * tuning_bytes(p.dtype, p.cols, 1), device, false);
        }
        auto partial = std::make_shared<rt::DeviceBuffer<float>>(std::size_t(most), device);
        // Split configs' slots: two buffers of each config's words, used in turns.
        auto slots = std::make_shared<TuningSlots>(device);
        return [in, dx, w, stats, partial, timed, props, split, grads, slots](
                   const NormBackwardFactory::KernelType& k, rt::StreamRef s) {
          const void* dy = in->data();
          float* mean = timed.kind == NormKind::layer_norm ? stats->data() : nullptr;
          const float* rstd = stats->data() + timed.rows;
          if (split && norm_backward_split(timed, k.config())) {
            unsigned char* dweight = timed.weight_grad ? grads->data() : nullptr;
            unsigned char* dbias = timed.bias_grad ? grads->data() + grads->size() / 2 : nullptr;
            launch_norm_backward(timed, *split, dy, dy, w->data(), mean, rstd, dx->data(),
                                 partial->data(), dweight, dbias, split->whole_sums, k.device(), s);
            return;
          }
          rt::LaunchConfig lc = norm_backward_launch(timed, k.config());
          lc.grid = rt::Dim3(norm_backward_blocks(
              timed, k.config(), props, norm_backward_fit(timed, k.config(), k.function())));
          lc.stream = s;
          auto launch = [&](std::uint64_t* own, std::uint64_t* next) {
            k.launch(lc, dy, dy, static_cast<const void*>(w->data()),
                     static_cast<const float*>(mean), rstd, static_cast<void*>(dx->data()),
                     timed.weight_grad || timed.bias_grad ? partial->data() : nullptr,
                     int(timed.rows), 0, own, next);
          };
          if (k.config().strategy == NormStrategy::split) {
            slots->launch(norm_backward_split_words(timed, k.config()), s,
                          std::string(norm_name(timed.kind)) + " backward", launch);
          } else {
            launch(nullptr, nullptr);
          }
        };
      },
  };
}

/// The description of kernels/column_sum.cu as a factory: one config.
inline ColumnSumFactory::Description column_sum_description() {
  return {
      .name = "column_sum",
      .version = 3,  // 3: few parts, 4 columns a thread; 2: four chains a thread; 32 groups
                     // where the columns are few
      .source = "column_sum.cu",
      .configs =
          [](const ColumnSumParams& p, const rt::DeviceProperties& props) {
            return std::vector<ColumnSumConfig>{column_sum_config(p.cols, props.multiprocessors)};
          },
      .spec = [](const ColumnSumParams& p, const ColumnSumConfig& c,
                 const rt::DeviceProperties&) { return column_sum_spec(p, c); },
      .launch =
          [](const ColumnSumParams& p, const ColumnSumConfig& c) {
            return rt::LaunchConfig(rt::Dim3(ceil_div(p.cols, c.cols_per_block)),
                                    c.cols_per_block * c.groups);
          },
      .validate =
          [](const ColumnSumParams& p) {
            validate_norm({NormKind::layer_norm, p.dtype, p.cols, false, 0});
          },
      .kernel_name = column_sum_kernel_name,
  };
}

/// The description of kernels/norm_weight_grad.cu as a factory: one config.
inline NormWeightGradFactory::Description norm_weight_grad_description() {
  return {
      .name = "norm_weight_grad",
      .version = 2,  // 2: parts of each row's sums for the multi-pass dx kernel
      .source = "norm_weight_grad.cu",
      .configs = [](const NormBackwardParams&,
                    const rt::DeviceProperties&) { return std::vector<NormWeightGradConfig>{{}}; },
      .spec = [](const NormBackwardParams& p, const NormWeightGradConfig& c,
                 const rt::DeviceProperties&) { return norm_weight_grad_spec(p, c); },
      .launch =
          [](const NormBackwardParams& p, const NormWeightGradConfig& c) {
            const std::int64_t vec = softmax_vector_width(norm_row(norm_forward(p)));
            return rt::LaunchConfig(rt::Dim3(ceil_div(std::int64_t(p.cols) / vec, c.threads)),
                                    c.threads);
          },
      .validate =
          [](const NormBackwardParams& p) {
            validate_norm_backward(p);
            if (!p.weight_grad && !p.bias_grad) {
              throw Error("kiln: norm_weight_grad: ask for dweight or dbias (or both)");
            }
          },
      .kernel_name = norm_weight_grad_kernel_name,
  };
}

}  // namespace detail

/// The process-wide norm weight-gradient factory.
inline NormWeightGradFactory& norm_weight_grad_factory() {
  static NormWeightGradFactory factory(detail::norm_weight_grad_description());
  return factory;
}

/// The process-wide norm backward factory (its kernels are memoized for the process).
inline NormBackwardFactory& norm_backward_factory() {
  static NormBackwardFactory factory(detail::norm_backward_description());
  return factory;
}
/// The process-wide column sum factory.
inline ColumnSumFactory& column_sum_factory() {
  static ColumnSumFactory factory(detail::column_sum_description());
  return factory;
}

namespace detail {

/// Launches column sum kernel `sum` (column_sum_factory()'s for the outputs' dtype and
/// columns) on `stream` over `parts` partial rows at `partial` into out0 and, unless null,
/// out1 (the rows of out1's sums following out0's): on the grid the kernel's path needs
/// (column_sum_blocks), programmatically, so that it is scheduled as the kernel before it
/// ends (it waits for it).
inline void launch_column_sum(const ColumnSumFactory::KernelType& sum, const float* partial,
                              std::int64_t parts, void* out0, void* out1, rt::StreamRef stream) {
  rt::LaunchConfig lc = sum.launch_config();
  lc.grid.x = unsigned(column_sum_blocks(sum.config(), sum.params().cols, parts, partial));
  lc.grid.y = out1 ? 2u : 1u;
  lc.stream = stream;
  lc.programmatic = true;
  sum.launch(lc, partial, out0, out1, int(parts));
}

/// The backward kernel for `p` on `device`, looked up (and tuned) for p's row bucket.
inline const NormBackwardFactory::KernelType& norm_backward_kernel(const NormBackwardParams& p,
                                                                   const rt::Device& device) {
  NormBackwardParams bucket = p;
  bucket.rows = row_bucket(p.rows);
  return norm_backward_factory().get(bucket, device);
}

/// The plan of a call of `p` (with dweight or dbias) that takes them from the
/// weight-gradient kernel: dx from the backward kernel without the sums (its own choice of
/// config: a one-pass one may hold a row without them). The factory's tuning run times
/// multi-pass candidates with the sums this way, as the call runs them.
inline NormBackwardPlan norm_backward_split_plan(const NormBackwardParams& p,
                                                 const rt::Device& device) {
  const rt::DeviceProperties& props = device.properties();
  const std::int64_t sums = std::int64_t(p.weight_grad) + std::int64_t(p.bias_grad);
  NormBackwardPlan plan;
  plan.backward_params = p;
  plan.backward_params.weight_grad = plan.backward_params.bias_grad = false;
  plan.backward = &norm_backward_kernel(plan.backward_params, device);
  plan.blocks = norm_backward_blocks(plan.backward_params, plan.backward->config(), props);
  NormBackwardParams wg = p;
  wg.rows = 0;  // a run-time argument
  plan.weight_grad = &norm_weight_grad_factory().get(wg, device);
  plan.groups = norm_weight_grad_grid(p, plan.weight_grad->config(), props.multiprocessors);
  plan.partial_rows = plan.groups.groups;
  plan.whole_sums = plan.groups.groups == 1;
  if (plan.backward->config().strategy == NormStrategy::multi_pass) {
    // A part of each row's sums from each warp of the weight-gradient launch's row of blocks.
    const rt::LaunchConfig wlc = plan.weight_grad->launch_config();
    plan.row_sum_parts = std::int64_t(wlc.grid.x) * (wlc.block.x / std::max(1, warp_size(props)));
    plan.row_sum_floats = std::max<std::int64_t>(1, p.rows) * plan.row_sum_parts * 2;
  }
  plan.partial_floats = plan.row_sum_floats + plan.groups.groups * std::int64_t(p.cols) * sums;
  return plan;
}

/// The plan of a call of `p` that runs backward kernel `k` (one of the factory's for p,
/// kept alive by the caller): `k` over its grid, the column sum of its partial rows; or,
/// where `k` is multi pass with dweight or dbias, the split plan (which does not run `k`).
inline NormBackwardPlan norm_backward_plan_for(const NormBackwardParams& p,
                                               const NormBackwardFactory::KernelType& k,
                                               const rt::Device& device) {
  const NormConfig& c = k.config();
  if (norm_backward_split(p, c)) return norm_backward_split_plan(p, device);
  const std::int64_t sums = std::int64_t(p.weight_grad) + std::int64_t(p.bias_grad);
  NormBackwardPlan plan;
  plan.backward_params = p;
  plan.backward = &k;
  plan.blocks =
      norm_backward_blocks(p, c, device.properties(), norm_backward_fit(p, c, k.function()));
  plan.partial_rows = sums > 0 ? norm_backward_partial_rows(p, c, plan.blocks) : 0;
  plan.partial_floats = norm_backward_partial_floats(p, c, plan.blocks);
  return plan;
}

/// The plan of a call of `p` on `device`: norm_backward_plan_for the kernel the factory
/// looks up (and tunes) for p's row bucket.
inline NormBackwardPlan norm_backward_plan(const NormBackwardParams& p, const rt::Device& device) {
  return norm_backward_plan_for(p, norm_backward_kernel(p, device), device);
}

/// Launches what `plan` says a backward call of `p` launches, on `stream`: dy, x, dx of
/// p.rows rows; `partial`: plan.partial_floats floats where p asks for dweight or dbias
/// (where `whole`, over one row group, the weight-gradient kernel writes dweight and dbias
/// itself and uses only the row sums' part, if any); dweight, dbias: p.cols elements, or
/// null where not asked for. The caller keeps `partial` until the stream has run them.
inline void launch_norm_backward(const NormBackwardParams& p, const NormBackwardPlan& plan,
                                 const void* dy, const void* x, const void* weight,
                                 const float* mean, const float* rstd, void* dx, float* partial,
                                 void* dweight, void* dbias, bool whole, const rt::Device& device,
                                 rt::StreamRef stream) {
  const auto& k = *plan.backward;
  rt::LaunchConfig lc = norm_backward_launch(plan.backward_params, k.config());
  lc.grid = rt::Dim3(plan.blocks);
  lc.stream = stream;
  float* kernel_partial = plan.weight_grad ? nullptr : partial;
  int sum_parts = 0;
  if (plan.weight_grad) {
    // dx may be dy or x: the sums read them before the backward kernel writes dx.
    float* row_sums = plan.row_sum_floats > 0 ? partial : nullptr;
    if (row_sums) {  // the multi pass adds them up
      kernel_partial = row_sums;
      sum_parts = int(plan.row_sum_parts);
    }
    rt::LaunchConfig wlc = plan.weight_grad->launch_config();
    wlc.grid.y = unsigned(plan.groups.groups);
    wlc.stream = stream;
    plan.weight_grad->launch(wlc, dy, x, weight, mean, rstd,
                             whole ? nullptr : partial + plan.row_sum_floats,
                             whole ? dweight : nullptr, whole ? dbias : nullptr, row_sums,
                             int(p.rows), int(plan.groups.rows_per_group));
  }
  SplitSlots split;  // (held until the launch is queued)
  if (k.config().strategy == NormStrategy::split) {
    split = split_slots(device, stream, norm_backward_split_words(plan.backward_params, k.config()),
                        std::string(norm_name(p.kind)) + " backward");
  }
  std::uint64_t* slots = split.data();
  std::uint64_t* next_slots = split.next();
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const NormBackwardParams& bp = plan.backward_params;
    const rt::LaunchInfo info{nlohmann::json(bp).dump(), k.launch_info().config,
                              norm_backward_factory().bytes(bp), norm_backward_factory().flops(bp)};
    k.launch(lc, info, dy, x, weight, mean, rstd, dx, kernel_partial, int(p.rows), sum_parts, slots,
             next_slots);
  } else {
    k.launch(lc, dy, x, weight, mean, rstd, dx, kernel_partial, int(p.rows), sum_parts, slots,
             next_slots);
  }
  split.launched();
  if ((!p.weight_grad && !p.bias_grad) || whole) return;
  // dweight and dbias from the plan.partial_rows partial rows.
  void* first = dweight ? dweight : dbias;
  void* second = dweight && dbias ? dbias : nullptr;
  launch_column_sum(column_sum_factory().get({p.dtype, p.cols}, device),
                    partial + plan.row_sum_floats, plan.partial_rows, first, second, stream);
}

template <class T>
void norm_backward_buffers(NormKind kind, gen::DType dtype, const rt::DeviceBuffer<T>& dy,
                           const rt::DeviceBuffer<T>& x, rt::DeviceBuffer<T>& dx, std::int64_t rows,
                           std::int64_t cols, const NormBackwardArgs<T>& args,
                           rt::StreamRef stream) {
  const std::string what = std::string("kiln: ") + norm_name(kind) + " backward: ";
  if (sizeof(T) != std::size_t(gen::size_of(dtype))) {
    throw Error(what + "a " + std::string(gen::to_string(dtype)) + " norm needs " +
                std::to_string(gen::size_of(dtype)) + "-byte elements, not " +
                std::to_string(sizeof(T)) + "-byte ones");
  }
  if (cols < 1 || cols > softmax_max_cols) {
    throw Error(what + "cols = " + std::to_string(cols) +
                " is not supported; rows may have 1 to 1048576 (2^20) columns");
  }
  const NormBackwardParams p{
      kind, dtype, std::int32_t(cols), args.dweight != nullptr, args.dbias != nullptr, rows};
  validate_norm_backward(p);
  if (!args.rstd) {
    throw Error(what +
                "needs .rstd, the reciprocal standard deviations the forward pass "
                "saved (NormArgs::rstd)");
  }
  if (kind == NormKind::layer_norm && !args.mean) {
    throw Error(what + "needs .mean, the means the forward pass saved (NormArgs::mean)");
  }
  if (kind == NormKind::rms_norm && args.mean) {
    throw Error(what + "RMSNorm has no mean; pass rstd alone");
  }
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  if (dy.size() < n || x.size() < n || dx.size() < n) {
    throw Error(what + std::to_string(rows) + " x " + std::to_string(cols) + " needs " +
                std::to_string(n) + " elements, but dy holds " + std::to_string(dy.size()) +
                ", x " + std::to_string(x.size()) + " and dx " + std::to_string(dx.size()));
  }
  const int device = dx.device().ordinal();
  check_norm_buffer(what, "dy", &dy, n, device);
  check_norm_buffer(what, "x", &x, n, device);
  check_norm_buffer(what, "the weight", args.weight, std::size_t(cols), device);
  check_norm_buffer(what, "the mean", args.mean, std::size_t(rows), device);
  check_norm_buffer(what, "rstd", args.rstd, std::size_t(rows), device);
  check_norm_buffer(what, "dweight", args.dweight, std::size_t(cols), device);
  check_norm_buffer(what, "dbias", args.dbias, std::size_t(cols), device);
  for (const rt::DeviceBuffer<T>* g : {args.dweight, args.dbias}) {
    if (g && g->size() > 0 &&
        (g->data() == dx.data() || g->data() == dy.data() || g->data() == x.data())) {
      throw Error(what + "dweight and dbias need buffers of their own (not dx, dy or x)");
    }
  }
  if (args.dweight && args.dbias && args.dweight->data() == args.dbias->data() &&
      args.dweight->size() > 0) {
    throw Error(what + "dweight and dbias are the same buffer; give each its own");
  }
  if (args.workspace && args.workspace->size() > 0 &&
      args.workspace->device().ordinal() != device) {
    throw Error(what + "the workspace is on device " +
                std::to_string(args.workspace->device().ordinal()) + ", dx on device " +
                std::to_string(device));
  }
  const bool grads = p.weight_grad || p.bias_grad;
  if (rows == 0) {
    if (grads) {  // sums over no rows
      if (args.dweight) args.dweight->fill_bytes(0, stream);
      if (args.dbias) args.dbias->fill_bytes(0, stream);
    }
    return;
  }
  const NormBackwardPlan plan = norm_backward_plan(p, dx.device());
  const std::int64_t floats = plan.partial_floats;
  // Sums the weight-gradient kernel writes whole, before dx: not where dweight or dbias
  // overlap the weight, which the backward kernel reads after it.
  auto overlaps_weight = [&](const rt::DeviceBuffer<T>* g) {
    if (!g || !args.weight) return false;
    const T* w = args.weight->data();
    return g->data() < w + cols && w < g->data() + cols;
  };
  const bool whole = plan.weight_grad && plan.whole_sums && !overlaps_weight(args.dweight) &&
                     !overlaps_weight(args.dbias);
  rt::DeviceBuffer<float> own;
  float* partial = nullptr;
  if (grads && (!whole || plan.row_sum_floats > 0)) {
    if (args.workspace) {
      if (args.workspace->size() < std::size_t(floats)) {
        throw Error(what + "the workspace holds " + std::to_string(args.workspace->size()) +
                    " floats; this call needs " + std::to_string(floats) +
                    " (norm_backward_workspace_size)");
      }
      partial = args.workspace->data();
    } else {
      own = rt::DeviceBuffer<float>(std::size_t(floats), dx.device());
      partial = own.data();
    }
  }
  const float* mean = args.mean ? args.mean->data() : nullptr;
  launch_norm_backward(p, plan, dy.data(), x.data(), data_or_null(args.weight), mean,
                       args.rstd->data(), dx.data(), partial, data_or_null(args.dweight),
                       data_or_null(args.dbias), whole, dx.device(), stream);
  if (own.size() > 0) {
    // The partial sums are read on the stream: wait for it before `own` is freed.
    rt::ContextGuard g(dx.device().context());
    rt::driver().check(rt::driver().stream_synchronize(stream.handle), "stream_synchronize",
                       std::string("waiting for ") + norm_name(kind) +
                           " backward's partial sums before freeing them");
  }
}

}  // namespace detail

/// The floats of workspace a norm backward call with these arguments needs for the
/// partial sums of dweight and dbias (0 without them): pass a buffer that large as
/// NormBackwardArgs::workspace to keep the call from allocating and waiting. (Rows a
/// multi-pass kernel takes need room for parts of each row's sums too, and a call whose
/// dweight and dbias come whole from one row group, 64 x 1M say, uses only that, unless
/// they overlap the weight.) Looks up (compiling, or tuning under KILN_TUNE) the kernel
/// the call will use.
inline std::size_t norm_backward_workspace_size(NormKind kind, gen::DType dtype, std::int64_t rows,
                                                std::int64_t cols, bool dweight, bool dbias,
                                                const rt::Device& device = rt::Device(0)) {
  if (cols < 1 || cols > detail::softmax_max_cols) {
    throw Error(std::string("kiln: ") + detail::norm_name(kind) +
                " backward: cols = " + std::to_string(cols) +
                " is not supported; rows may have 1 to 1048576 (2^20) columns");
  }
  const NormBackwardParams p{kind, dtype, std::int32_t(cols), dweight, dbias, rows};
  detail::validate_norm_backward(p);
  if ((!dweight && !dbias) || rows == 0) return 0;
  return std::size_t(detail::norm_backward_plan(p, device).partial_floats);
}

/// dx of y = layer_norm(x) (x: the input the forward normalized, h in the fused residual
/// variant) from dy, on `stream` (returns at once, unless dweight or dbias is asked for
/// without a workspace): rstd · (g - mean(g) - x̂ · mean(g · x̂)) with g = dy · weight and
/// x̂ = (x - mean) · rstd, from the forward's saved mean and rstd. With args.dweight and
/// args.dbias, their sums over rows too, the same bits on every run (no atomics). dx may
/// be dy or x. Throws kiln::Error for a shape or an argument kiln does not support or the
/// buffers do not hold, and whatever compiling the kernel throws.
template <class T>
void layer_norm_backward(const rt::DeviceBuffer<T>& dy, const rt::DeviceBuffer<T>& x,
                         rt::DeviceBuffer<T>& dx, std::int64_t rows, std::int64_t cols,
                         const NormBackwardArgs<T>& args, rt::StreamRef stream = {}) {
  detail::norm_backward_buffers(NormKind::layer_norm, softmax_dtype_of<T>(), dy, x, dx, rows, cols,
                                args, stream);
}

/// dx of y = rms_norm(x): rstd · (g - x̂ · mean(g · x̂)), x̂ = x · rstd; as
/// layer_norm_backward (no mean, no dbias).
template <class T>
void rms_norm_backward(const rt::DeviceBuffer<T>& dy, const rt::DeviceBuffer<T>& x,
                       rt::DeviceBuffer<T>& dx, std::int64_t rows, std::int64_t cols,
                       const NormBackwardArgs<T>& args, rt::StreamRef stream = {}) {
  detail::norm_backward_buffers(NormKind::rms_norm, softmax_dtype_of<T>(), dy, x, dx, rows, cols,
                                args, stream);
}

/// The same over 16-bit patterns of f16 or bf16 (as `dtype` says), or 32-bit ones of f32.
template <class T>
requires(std::is_same_v<T, std::uint16_t> ||
         std::is_same_v<T, std::uint32_t>) void layer_norm_backward(gen::DType dtype,
                                                                    const rt::DeviceBuffer<T>& dy,
                                                                    const rt::DeviceBuffer<T>& x,
                                                                    rt::DeviceBuffer<T>& dx,
                                                                    std::int64_t rows,
                                                                    std::int64_t cols,
                                                                    const NormBackwardArgs<T>& args,
                                                                    rt::StreamRef stream = {}) {
  detail::norm_backward_buffers(NormKind::layer_norm, dtype, dy, x, dx, rows, cols, args, stream);
}
template <class T>
requires(std::is_same_v<T, std::uint16_t> ||
         std::is_same_v<T, std::uint32_t>) void rms_norm_backward(gen::DType dtype,
                                                                  const rt::DeviceBuffer<T>& dy,
                                                                  const rt::DeviceBuffer<T>& x,
                                                                  rt::DeviceBuffer<T>& dx,
                                                                  std::int64_t rows,
                                                                  std::int64_t cols,
                                                                  const NormBackwardArgs<T>& args,
                                                                  rt::StreamRef stream = {}) {
  detail::norm_backward_buffers(NormKind::rms_norm, dtype, dy, x, dx, rows, cols, args, stream);
}

}  // namespace kiln::ops
