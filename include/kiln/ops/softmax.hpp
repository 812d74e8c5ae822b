#pragma once
/// Row softmax over the last dimension of a row-major (rows, cols) matrix: f16, bf16 or
/// f32 in and out, f32 math, max-subtracted (no overflow for large inputs). The kernel is
/// kernels/softmax.cu, compiled per (dtype, cols, config); rows are a run-time argument.
///
///   kiln::rt::DeviceBuffer<float> x(rows * cols), y(rows * cols);
///   kiln::ops::softmax(x, y, rows, cols, stream);            // y = softmax(x) by row
///
///   // f16 / bf16 data held as 16-bit patterns, the type named explicitly:
///   kiln::rt::DeviceBuffer<std::uint16_t> h(rows * cols), g(rows * cols);
///   kiln::ops::softmax(kiln::ops::SoftmaxDType::bf16, h, g, rows, cols, stream);
///
///   // or through the factory, to see the kernel it chose:
///   const auto& k = kiln::ops::softmax_factory().get({SoftmaxDType::f16, 4096, rows});
///   k.name();   // "softmax__f16__cols4096__t256v8"
///   k(stream, x_ptr, y_ptr, int(rows));   // its grid covers params().rows rows: for
///                                         // another row count, launch_config() anew
///
/// The output may be the input (in place). Under KILN_TUNE=model or full the candidates
/// (detail/softmax_configs.hpp) are timed once per problem and device, and the winner kept
/// in the tuning database.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "../device/half.hpp"
#include "../error.hpp"
#include "../factory/kernel_factory.hpp"
#include "../jit/sources.hpp"
#include "../rt/launch.hpp"
#include "../rt/memory.hpp"
#include "detail/softmax_configs.hpp"

namespace kiln::ops {

/// The softmax kernel factory. Use the process-wide one, softmax_factory().
class SoftmaxFactory : public factory::KernelFactory<SoftmaxParams, SoftmaxConfig> {
 public:
  /// Bump `kVersion` whenever kernels/softmax.cu or the configs change meaning.
  static constexpr int kVersion = 1;

  SoftmaxFactory() : KernelFactory("softmax", kVersion, jit::program_from_file("softmax.cu")) {}
  /// A factory over another copy of the kernel source (tests, embedded sources).
  explicit SoftmaxFactory(jit::Program program)
      : KernelFactory("softmax", kVersion, std::move(program)) {}

  void validate(const SoftmaxParams& p, const rt::DeviceProperties&) const override {
    detail::validate_softmax(p);
  }
  std::vector<SoftmaxConfig> configs(const SoftmaxParams& p,
                                     const rt::DeviceProperties& d) const override {
    return detail::softmax_configs(p, warp_size(d));
  }
  SoftmaxConfig heuristic(const SoftmaxParams& p, const std::vector<SoftmaxConfig>& candidates,
                          const rt::DeviceProperties&) const override {
    return detail::softmax_heuristic(p, candidates);
  }
  gen::Spec spec(const SoftmaxParams& p, const SoftmaxConfig& c,
                 const rt::DeviceProperties& d) const override {
    detail::validate_softmax(p);
    detail::validate_softmax_config(p, c, warp_size(d));
    return detail::softmax_spec(p, c);
  }
  rt::LaunchConfig launch_config(const SoftmaxParams& p, const SoftmaxConfig& c,
                                 const rt::DeviceProperties&) const override {
    // At least one block: a launch with rows = 0 then does nothing.
    const std::int64_t blocks =
        std::max<std::int64_t>(1, detail::ceil_div(p.rows, c.rows_per_block));
    return rt::LaunchConfig({unsigned(blocks)}, {unsigned(c.threads_per_row * c.rows_per_block)});
  }
  std::string kernel_name(const SoftmaxParams& p, const SoftmaxConfig& c) const override {
    return detail::softmax_kernel_name(p, c);
  }
  /// One read and one write of the matrix.
  double bytes(const SoftmaxParams& p) const override {
    return 2.0 * double(p.rows) * double(p.cols) * size_of(p.dtype);
  }
  /// Per element: max, subtract, scale, exp (twice) and sum, then the final scale.
  double flops(const SoftmaxParams& p) const override {
    return 8.0 * double(p.rows) * double(p.cols);
  }
  /// Times candidates on at most kTuningBytes of input (and as much output): a problem
  /// that large fills the GPU, and a bigger one need not fit twice in its memory.
  TuningRun tuning_run(const SoftmaxParams& p, const rt::Device& device) const override {
    const std::int64_t row_bytes = std::int64_t(p.cols) * size_of(p.dtype);
    const std::int64_t rows =
        std::clamp<std::int64_t>(kTuningBytes / row_bytes, 1, std::max<std::int64_t>(p.rows, 1));
    const std::size_t bytes = std::size_t(rows) * std::size_t(row_bytes);
    auto in = std::make_shared<rt::DeviceBuffer<unsigned char>>(bytes, device);
    auto out = std::make_shared<rt::DeviceBuffer<unsigned char>>(bytes, device);
    in->fill_bytes(0x3c);  // 1.0078 in f16, 0.0115 in f32 and bf16: finite everywhere
    const SoftmaxParams timed{p.dtype, p.cols, rows};
    const rt::DeviceProperties props = device.properties();
    return [this, in, out, timed, props](const KernelType& k, rt::StreamRef s) {
      rt::LaunchConfig lc = launch_config(timed, k.config(), props);
      lc.stream = s;
      k.launch(lc, *in, *out, int(timed.rows));
    };
  }
  static constexpr std::int64_t kTuningBytes = std::int64_t(256) << 20;

 private:
  static int warp_size(const rt::DeviceProperties& d) { return d.warp_size > 0 ? d.warp_size : 32; }
};

/// The process-wide softmax factory (its kernels are memoized for the process).
inline SoftmaxFactory& softmax_factory() {
  static SoftmaxFactory factory;
  return factory;
}

/// The dtype of host element type T: float, kiln::f16 or kiln::bf16.
template <class T>
constexpr SoftmaxDType softmax_dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, f16> || std::is_same_v<T, bf16>,
                "kiln::ops::softmax takes float, kiln::f16 or kiln::bf16 buffers (or "
                "std::uint16_t with the dtype named)");
  if constexpr (std::is_same_v<T, float>) return SoftmaxDType::f32;
  if constexpr (std::is_same_v<T, f16>) return SoftmaxDType::f16;
  return SoftmaxDType::bf16;
}

namespace detail {
template <class T>
void softmax_buffers(SoftmaxDType dtype, const rt::DeviceBuffer<T>& in, rt::DeviceBuffer<T>& out,
                     std::int64_t rows, std::int64_t cols, rt::StreamRef stream) {
  if (sizeof(T) != std::size_t(size_of(dtype))) {
    throw Error(std::string("kiln: softmax: a ") + to_string(dtype) + " softmax needs " +
                std::to_string(size_of(dtype)) + "-byte elements, not " +
                std::to_string(sizeof(T)) + "-byte ones");
  }
  if (cols < 1 || cols > softmax_max_cols) {
    throw Error("kiln: softmax: cols = " + std::to_string(cols) +
                " is not supported; rows may have 1 to 1048576 (2^20) columns");
  }
  SoftmaxParams p{dtype, std::int32_t(cols), rows};
  validate_softmax(p);
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  if (in.size() < n || out.size() < n) {
    throw Error("kiln: softmax: " + std::to_string(rows) + " x " + std::to_string(cols) +
                " needs " + std::to_string(n) + " elements, but the input holds " +
                std::to_string(in.size()) + " and the output " + std::to_string(out.size()));
  }
  if (in.size() > 0 && out.size() > 0 && in.device().ordinal() != out.device().ordinal()) {
    throw Error("kiln: softmax: the input is on device " + std::to_string(in.device().ordinal()) +
                " and the output on device " + std::to_string(out.device().ordinal()));
  }
  if (rows == 0) return;
  // One kernel (and one tuning) per power-of-two bucket of row counts, launched over the
  // rows given: the kernel takes rows as a run-time argument, and its config depends on
  // cols alone.
  SoftmaxFactory& factory = softmax_factory();
  const auto& k =
      factory.get(SoftmaxParams{dtype, std::int32_t(cols), row_bucket(rows)}, in.device());
  rt::LaunchConfig lc = factory.launch_config(p, k.config(), in.device().properties());
  lc.stream = stream;
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(p).dump(), k.launch_info().config, factory.bytes(p),
                              factory.flops(p)};
    k.launch(lc, info, in, out, int(rows));
  } else {
    k.launch(lc, in, out, int(rows));
  }
}
}  // namespace detail

/// out = softmax(in) over each row of a row-major rows x cols matrix of float, kiln::f16
/// or kiln::bf16, on `stream` (returns at once). `out` may be `in`. Throws kiln::Error for
/// a shape the buffers do not hold or kiln does not support (cols 1 to 2^20, rows 0 to
/// 2^31 - 1), and whatever compiling the kernel throws.
template <class T>
void softmax(const rt::DeviceBuffer<T>& in, rt::DeviceBuffer<T>& out, std::int64_t rows,
             std::int64_t cols, rt::StreamRef stream = {}) {
  detail::softmax_buffers(softmax_dtype_of<T>(), in, out, rows, cols, stream);
}

/// The same over 16-bit patterns of f16 or bf16 (as `dtype` says), or 32-bit ones of f32:
/// for host code without a 16-bit float type.
template <class T>
requires(std::is_same_v<T, std::uint16_t> || std::is_same_v<T, std::uint32_t>) void softmax(
    SoftmaxDType dtype, const rt::DeviceBuffer<T>& in, rt::DeviceBuffer<T>& out, std::int64_t rows,
    std::int64_t cols, rt::StreamRef stream = {}) {
  detail::softmax_buffers(dtype, in, out, rows, cols, stream);
}

}  // namespace kiln::ops
