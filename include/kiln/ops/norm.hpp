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

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "../device/half.hpp"
#include "../error.hpp"
#include "../factory/factory.hpp"
#include "../rt/launch.hpp"
#include "../rt/memory.hpp"
#include "detail/norm_configs.hpp"
#include "softmax.hpp"

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

/// A kernel's grid covers p.rows rows (at least one block), as softmax's.
inline rt::LaunchConfig norm_launch(const NormParams& p, const NormConfig& c) {
  return softmax_launch(norm_row(p), to_softmax(c));
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

/// The description of kernels/norm.cu as a factory (bump `version` whenever the kernel
/// or the configs change meaning).
inline NormFactory::Description norm_description() {
  using TuningRun = NormFactory::TuningRun;
  return {
      .name = "norm",
      .version = 1,
      .source = "norm.cu",
      .configs = [](const NormParams& p,
                    const rt::DeviceProperties& d) { return norm_configs(p, warp_size(d)); },
      .spec =
          [](const NormParams& p, const NormConfig& c, const rt::DeviceProperties& d) {
            validate_norm(p);
            validate_norm_config(p, c, warp_size(d));
            return norm_spec(p, c);
          },
      .launch = norm_launch,
      .validate = validate_norm,
      .heuristic = norm_heuristic,
      .kernel_name = norm_kernel_name,
      .bytes = norm_bytes,
      // Per element: the add (residual), the sums, the deviation, scale, weight and bias.
      .flops = [](const NormParams& p) { return 8.0 * double(p.rows) * double(p.cols); },
      .tuning_run = [](const NormParams& p, const rt::Device& device) -> TuningRun {
        const std::int64_t esize = gen::size_of(p.dtype);
        const std::int64_t row_bytes = std::int64_t(p.cols) * esize;
        const std::int64_t rows = std::clamp<std::int64_t>(softmax_tuning_bytes / row_bytes, 1,
                                                           std::max<std::int64_t>(p.rows, 1));
        const std::size_t bytes = std::size_t(rows) * std::size_t(row_bytes);
        using Bytes = rt::DeviceBuffer<unsigned char>;
        auto x = std::make_shared<Bytes>(bytes, device);
        auto y = std::make_shared<Bytes>(bytes, device);
        auto h = std::make_shared<Bytes>(p.residual ? bytes : 0, device);
        auto w = std::make_shared<Bytes>(std::size_t(row_bytes), device);
        auto stats = std::make_shared<rt::DeviceBuffer<float>>(std::size_t(2 * rows), device);
        x->fill_bytes(0x3c);  // 1.0078 in f16, 0.0115 in f32 and bf16: finite everywhere
        w->fill_bytes(0x3c);
        NormParams timed = p;
        timed.rows = rows;
        return [x, y, h, w, stats, timed](const NormFactory::KernelType& k, rt::StreamRef s) {
          rt::LaunchConfig lc = norm_launch(timed, k.config());
          lc.stream = s;
          // The residual is x itself; the weight serves as the bias too.
          const void* in = x->data();
          const void* res = timed.residual ? in : nullptr;
          const void* bias = timed.kind == NormKind::layer_norm ? w->data() : nullptr;
          float* mean = timed.kind == NormKind::layer_norm ? stats->data() : nullptr;
          k.launch(lc, in, res, static_cast<const void*>(w->data()), bias,
                   static_cast<void*>(y->data()),
                   static_cast<void*>(timed.residual ? h->data() : nullptr), mean,
                   stats->data() + timed.rows, 1e-5f, int(timed.rows));
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
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(p).dump(), k.launch_info().config, factory.bytes(p),
                              factory.flops(p)};
    k.launch(lc, info, in, residual, weight, bias, out, h, mean, rstd, args.epsilon, int(rows));
  } else {
    k.launch(lc, in, residual, weight, bias, out, h, mean, rstd, args.epsilon, int(rows));
  }
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

}  // namespace kiln::ops
