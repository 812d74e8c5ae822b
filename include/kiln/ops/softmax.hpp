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
///   kiln::ops::softmax(kiln::gen::DType::bf16, h, g, rows, cols, stream);
///
///   // or through the factory, to see the kernel it chose:
///   const auto& k = kiln::ops::softmax_factory().get({kiln::gen::DType::f16, 4096, rows});
///   k.name();   // "softmax__f16__cols4096__t256v8"
///   k(stream, x_ptr, y_ptr, int(rows), nullptr, nullptr);   // its grid covers
///                                   // params().rows rows: for another row count,
///                                   // launch_config() anew; the last two arguments are a
///                                   // split config's slots and next slots (split_slots.hpp):
///                                   // detail::launch_softmax passes them as softmax() does
///
/// The output may be the input (in place). Under KILN_TUNE=model or full the candidates
/// (detail/softmax_configs.hpp) are timed once per problem and device, and the winner kept
/// in the tuning database.
///
/// The backward, from the forward's output y and the gradient dy of the loss with respect
/// to y (the same kernel source, its own factory "softmax_backward"):
///
///   kiln::ops::softmax_backward(y, dy, dx, rows, cols, stream);   // dx may be dy
///   // dx = y * (dy - sum over the row of dy * y), row by row

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
#include "../factory/factory.hpp"
#include "../jit/sources.hpp"
#include "../rt/launch.hpp"
#include "../rt/memory.hpp"
#include "detail/softmax_configs.hpp"
#include "split_slots.hpp"

namespace kiln::ops {

/// The softmax kernel factory: a factory::Factory over SoftmaxParams and SoftmaxConfig. Use
/// the process-wide one, softmax_factory().
using SoftmaxFactory = factory::Factory<SoftmaxParams, SoftmaxConfig>;

namespace detail {

inline int warp_size(const rt::DeviceProperties& d) {
  return d.warp_size > 0 ? d.warp_size : 32;
}

/// A kernel's grid covers p.rows rows (at least one block: a launch over 0 rows does
/// nothing), cluster_blocks blocks a row in clusters of that many; a split config's is its
/// grid_blocks, launched cooperatively.
inline rt::LaunchConfig softmax_launch(const SoftmaxParams& p, const SoftmaxConfig& c) {
  if (c.strategy == SoftmaxStrategy::split) {  // the persistent grid, every block resident
    rt::LaunchConfig lc(rt::Dim3(unsigned(c.grid_blocks)), rt::Dim3(unsigned(c.threads_per_row)));
    lc.cooperative = true;
    lc.shared_bytes = unsigned(softmax_split_shared_bytes(c));  // a ringed block's ring
    return lc;
  }
  rt::LaunchConfig lc(
      std::max<std::int64_t>(1, ceil_div(p.rows, c.rows_per_block)) * std::max(1, c.cluster_blocks),
      c.threads_per_row * c.rows_per_block);
  lc.cluster = rt::Dim3(unsigned(std::max(1, c.cluster_blocks)));
  lc.shared_bytes = unsigned(softmax_shared_bytes(p, c));  // a staged block's slice
  return lc;
}

/// The backward's launch: the forward's (softmax_launch), a ringed split block with its
/// rings of y and dy (softmax_backward_split_shared_bytes).
inline rt::LaunchConfig softmax_backward_launch(const SoftmaxParams& p, const SoftmaxConfig& c) {
  rt::LaunchConfig lc = softmax_launch(p, c);
  if (c.strategy == SoftmaxStrategy::split) {
    lc.shared_bytes = unsigned(softmax_backward_split_shared_bytes(c));
  }
  return lc;
}

/// Whether `d` runs thread-block clusters (sm_90 and later, CUDA).
inline bool has_clusters(const rt::DeviceProperties& d) {
  return d.arch.rfind("sm_", 0) == 0 && d.compute_major >= 9;
}

/// Whether `d` runs rows split across the grid (softmax's and the norms' split strategy):
/// NVIDIA GPUs of sm_80 and later, whose loads carry L2 eviction policies.
inline bool has_split_rows(const rt::DeviceProperties& d) {
  return d.platform == rt::Platform::cuda && d.compute_major >= 8;
}

/// Whether `d`'s SMs hold `blocks` split blocks of `bytes` of dynamic shared memory each
/// (split_blocks_fit).
inline bool split_fits(std::int64_t bytes, int blocks, const rt::DeviceProperties& d) {
  return split_blocks_fit(bytes, blocks, std::int64_t(d.shared_per_block_optin),
                          std::int64_t(d.shared_per_multiprocessor));
}

/// Whether `d`'s SMs hold split config `c`'s blocks_per_sm blocks with their shared memory
/// (a ringed block's ring).
inline bool softmax_split_fits(const SoftmaxConfig& c, const rt::DeviceProperties& d) {
  return split_fits(softmax_split_shared_bytes(c), c.blocks_per_sm, d);
}

/// The split candidates kiln offers for `p` on `d` (the forward's): softmax_split_configs
/// where `d` has_split_rows, none elsewhere.
inline std::vector<SoftmaxConfig> softmax_split_candidates(const SoftmaxParams& p,
                                                           const rt::DeviceProperties& d) {
  if (!has_split_rows(d)) return {};
  std::vector<SoftmaxConfig> out;
  for (const SoftmaxConfig& c : softmax_split_configs(p, warp_size(d), d.multiprocessors)) {
    if (softmax_split_fits(c, d)) out.push_back(c);
  }
  return out;
}

/// Launches row kernel `k` (softmax's, or its backward's: `what` names it in errors) over
/// `rows` rows of its `buffers` (device pointers) on `stream`, as `lc` (softmax_launch's)
/// says: a split config with slots of kiln's (split_slots: zero when it starts, and the
/// next launch's zeroed by it), kept until the launch is queued. `info`: the profiler's,
/// where it is on.
template <class Kernel, class... Buffers>
void launch_row_kernel(const Kernel& k, const rt::Device& device, rt::LaunchConfig lc,
                       std::int64_t rows, rt::StreamRef stream, const rt::LaunchInfo* info,
                       const char* what, Buffers... buffers) {
  lc.stream = stream;
  SplitSlots split;  // (held until the launch is queued)
  if (k.config().strategy == SoftmaxStrategy::split) {
    const SoftmaxParams p{k.params().dtype, k.params().cols, rows};
    split = split_slots(device, stream, softmax_split_words(p, k.config()), what);
  }
  if (info) {
    k.launch(lc, *info, buffers..., int(rows), split.data(), split.next());
  } else {
    k.launch(lc, buffers..., int(rows), split.data(), split.next());
  }
  split.launched();
}

/// Launches softmax kernel `k` over `rows` rows of `in` into `out` (launch_row_kernel).
template <class Kernel>
void launch_softmax(const Kernel& k, const rt::Device& device, rt::LaunchConfig lc, const void* in,
                    void* out, std::int64_t rows, rt::StreamRef stream,
                    const rt::LaunchInfo* info = nullptr) {
  launch_row_kernel(k, device, lc, rows, stream, info, "softmax", in, out);
}

/// Launches softmax backward kernel `k` over `rows` rows of y and dy into dx
/// (launch_row_kernel).
template <class Kernel>
void launch_softmax_backward(const Kernel& k, const rt::Device& device, rt::LaunchConfig lc,
                             const void* y, const void* dy, void* dx, std::int64_t rows,
                             rt::StreamRef stream, const rt::LaunchInfo* info = nullptr) {
  launch_row_kernel(k, device, lc, rows, stream, info, "softmax_backward", y, dy, dx);
}

/// Candidates are timed on at most this much input (and as much output): a problem that
/// large fills the GPU, and a bigger one need not fit twice in its memory.
inline constexpr std::int64_t softmax_tuning_bytes = std::int64_t(256) << 20;

/// The rows a row op (softmax, the norms, their backward passes) times its candidates over:
/// as many rows of `cols` elements of `dtype` as softmax_tuning_bytes hold, at least 1 and
/// at most the problem's `rows` (or 1).
inline std::int64_t tuning_rows(gen::DType dtype, std::int32_t cols, std::int64_t rows) {
  const std::int64_t row_bytes = std::int64_t(cols) * gen::size_of(dtype);
  return std::clamp<std::int64_t>(softmax_tuning_bytes / row_bytes, 1,
                                  std::max<std::int64_t>(rows, 1));
}
/// The bytes of `rows` such rows.
inline std::size_t tuning_bytes(gen::DType dtype, std::int32_t cols, std::int64_t rows) {
  return std::size_t(rows) * std::size_t(cols) * std::size_t(gen::size_of(dtype));
}
/// A tuning run's buffer of `bytes` on `device`; an input is filled with 0x3c bytes (1.0078
/// in f16, 0.0115 in f32 and bf16: finite everywhere), an output left as it comes.
inline std::shared_ptr<rt::DeviceBuffer<unsigned char>> tuning_buffer(std::size_t bytes,
                                                                      const rt::Device& device,
                                                                      bool input) {
  auto b = std::make_shared<rt::DeviceBuffer<unsigned char>>(bytes, device);
  if (input) b->fill_bytes(0x3c);
  return b;
}

/// The description of kernels/softmax.cu as a factory (bump `version` whenever the kernel
/// or the configs change meaning).
inline SoftmaxFactory::Description softmax_description() {
  using TuningRun = SoftmaxFactory::TuningRun;
  return {
      .name = "softmax",
      .version = 7,  // 3: split configs, and the forward kernel's slots parameter; 4: its
                     // next_slots (split launches time without a memset); 5: ringed split
                     // candidates (split_ring); 6: rings of 4 and 5 slices, copying 2 and 3
                     // rounds ahead; 7: staged rows held partly in registers (staged_held)
      .source = "softmax.cu",
      .configs =
          [](const SoftmaxParams& p, const rt::DeviceProperties& d) {
            std::vector<SoftmaxConfig> out = softmax_configs(p, warp_size(d));
            if (has_clusters(d)) {
              const auto clusters = softmax_cluster_configs(p, warp_size(d));
              out.insert(out.end(), clusters.begin(), clusters.end());
            }
            // Staged rows on NVIDIA GPUs (on AMD ones they are yet to be run), and those
            // no block holds over the blocks of a cluster.
            if (d.platform == rt::Platform::cuda) {
              const auto staged =
                  softmax_staged_configs(p, warp_size(d), std::int64_t(d.shared_per_block_optin));
              out.insert(out.end(), staged.begin(), staged.end());
              if (has_clusters(d)) {
                const auto sliced = softmax_staged_cluster_configs(
                    p, warp_size(d), std::int64_t(d.shared_per_block_optin));
                out.insert(out.end(), sliced.begin(), sliced.end());
              }
            }
            const auto split = softmax_split_candidates(p, d);
            out.insert(out.end(), split.begin(), split.end());
            return out;
          },
      .spec =
          [](const SoftmaxParams& p, const SoftmaxConfig& c, const rt::DeviceProperties& d) {
            validate_softmax(p);
            validate_softmax_config(p, c, warp_size(d));
            if (c.cluster_blocks > 1 && !has_clusters(d)) {
              throw Error("kiln: softmax config " + nlohmann::json(c).dump() +
                          ": clusters need an sm_90 (or later) NVIDIA device, not " + d.arch);
            }
            if (c.strategy == SoftmaxStrategy::split && !softmax_split_fits(c, d)) {
              throw Error("kiln: softmax config " + nlohmann::json(c).dump() + ": " +
                          std::to_string(c.blocks_per_sm) + " blocks of " +
                          std::to_string(softmax_split_shared_bytes(c)) +
                          " bytes of shared memory do not fit an SM of " + d.name + " (" +
                          std::to_string(d.shared_per_multiprocessor) + " bytes)");
            }
            return softmax_spec(p, c);
          },
      .launch = softmax_launch,
      .validate = validate_softmax,
      .heuristic = softmax_forward_heuristic,
      .kernel_name = softmax_kernel_name,
      // One read and one write of the matrix; per element max, subtract, scale, exp (twice)
      // and sum, then the final scale.
      .bytes =
          [](const SoftmaxParams& p) {
            return 2.0 * double(p.rows) * double(p.cols) * gen::size_of(p.dtype);
          },
      .flops = [](const SoftmaxParams& p) { return 8.0 * double(p.rows) * double(p.cols); },
      .tuning_run = [](const SoftmaxParams& p, const rt::Device& device) -> TuningRun {
        const std::int64_t rows = tuning_rows(p.dtype, p.cols, p.rows);
        const std::size_t bytes = tuning_bytes(p.dtype, p.cols, rows);
        auto in = tuning_buffer(bytes, device, true);
        auto out = tuning_buffer(bytes, device, false);
        const SoftmaxParams timed{p.dtype, p.cols, rows};
        // Split configs' slots: two buffers of each config's words, used in turns as a
        // call uses kiln's (each launch zeroes the next one's).
        auto slots = std::make_shared<TuningSlots>(device);
        return [in, out, slots, timed](const SoftmaxFactory::KernelType& k, rt::StreamRef s) {
          rt::LaunchConfig lc = softmax_launch(timed, k.config());
          lc.stream = s;
          if (k.config().strategy != SoftmaxStrategy::split) {
            k.launch(lc, *in, *out, int(timed.rows), nullptr, nullptr);
            return;
          }
          slots->launch(softmax_split_words(timed, k.config()), s, "softmax",
                        [&](std::uint64_t* own, std::uint64_t* next) {
                          k.launch(lc, *in, *out, int(timed.rows), own, next);
                        });
        };
      },
  };
}

/// The description of the backward (kernels/softmax.cu with SOFTMAX_BACKWARD) as a
/// factory of its own name, so that its tuning records are its own (bump `version`
/// whenever the backward kernel or its configs change meaning).
inline SoftmaxFactory::Description softmax_backward_description() {
  using TuningRun = SoftmaxFactory::TuningRun;
  return {
      .name = "softmax_backward",
      .version = 3,  // 2: split configs, and the kernel's slots parameters; 3: ringed split
                     // candidates (split_ring)
      .source = "softmax.cu",
      .configs =
          [](const SoftmaxParams& p, const rt::DeviceProperties& d) {
            std::vector<SoftmaxConfig> out = softmax_backward_configs(p, warp_size(d));
            if (has_split_rows(d)) {
              const auto split = softmax_backward_split_configs(
                  p, warp_size(d), d.multiprocessors, std::int64_t(d.shared_per_multiprocessor),
                  std::int64_t(d.shared_per_block_optin));
              out.insert(out.end(), split.begin(), split.end());
            }
            return out;
          },
      .spec =
          [](const SoftmaxParams& p, const SoftmaxConfig& c, const rt::DeviceProperties& d) {
            validate_softmax_backward(p);
            validate_softmax_backward_config(p, c, warp_size(d));
            if (c.strategy == SoftmaxStrategy::split && !has_split_rows(d)) {
              throw Error("kiln: softmax_backward config " + nlohmann::json(c).dump() +
                          ": split rows need an sm_80 (or later) NVIDIA device, not " + d.arch);
            }
            if (c.strategy == SoftmaxStrategy::split &&
                !split_fits(softmax_backward_split_shared_bytes(c), c.blocks_per_sm, d)) {
              throw Error("kiln: softmax_backward config " + nlohmann::json(c).dump() + ": " +
                          std::to_string(c.blocks_per_sm) + " blocks of " +
                          std::to_string(softmax_backward_split_shared_bytes(c)) +
                          " bytes of shared memory do not fit an SM of " + d.name + " (" +
                          std::to_string(d.shared_per_multiprocessor) + " bytes)");
            }
            if (c.strategy == SoftmaxStrategy::split &&
                c.grid_blocks > std::int64_t(d.multiprocessors) * c.blocks_per_sm) {
              throw Error("kiln: softmax_backward config " + nlohmann::json(c).dump() +
                          ": a grid of " + std::to_string(c.grid_blocks) +
                          " blocks is not resident at once on " +
                          std::to_string(d.multiprocessors) + " SMs of " +
                          std::to_string(c.blocks_per_sm) + " blocks");
            }
            return softmax_backward_spec(p, c);
          },
      .launch = softmax_backward_launch,
      .validate = validate_softmax_backward,
      .heuristic = softmax_backward_heuristic,
      .kernel_name = softmax_backward_kernel_name,
      // Two reads (y, dy) and one write (dx) of the matrix; per element a multiply-add
      // for the row's sum, then a subtraction and a multiplication.
      .bytes =
          [](const SoftmaxParams& p) {
            return 3.0 * double(p.rows) * double(p.cols) * gen::size_of(p.dtype);
          },
      .flops = [](const SoftmaxParams& p) { return 4.0 * double(p.rows) * double(p.cols); },
      .tuning_run = [](const SoftmaxParams& p, const rt::Device& device) -> TuningRun {
        const std::int64_t rows = tuning_rows(p.dtype, p.cols, p.rows);
        const std::size_t bytes = tuning_bytes(p.dtype, p.cols, rows);
        auto y = tuning_buffer(bytes, device, true);
        auto dy = tuning_buffer(bytes, device, true);
        auto dx = tuning_buffer(bytes, device, false);
        const SoftmaxParams timed{p.dtype, p.cols, rows};
        // Split configs' slots: two buffers of each config's words, used in turns.
        auto slots = std::make_shared<TuningSlots>(device);
        return [y, dy, dx, timed, slots](const SoftmaxFactory::KernelType& k, rt::StreamRef s) {
          rt::LaunchConfig lc = softmax_backward_launch(timed, k.config());
          lc.stream = s;
          auto launch = [&](std::uint64_t* own, std::uint64_t* next) {
            k.launch(lc, *y, *dy, *dx, int(timed.rows), own, next);
          };
          if (k.config().strategy == SoftmaxStrategy::split) {
            slots->launch(softmax_split_words(timed, k.config()), s, "softmax_backward", launch);
          } else {
            launch(nullptr, nullptr);
          }
        };
      },
  };
}

}  // namespace detail

/// The process-wide softmax factory (its kernels are memoized for the process).
inline SoftmaxFactory& softmax_factory() {
  static SoftmaxFactory factory(detail::softmax_description());
  return factory;
}

/// The process-wide softmax backward factory (its kernels are memoized for the process).
inline SoftmaxFactory& softmax_backward_factory() {
  static SoftmaxFactory factory(detail::softmax_backward_description());
  return factory;
}

/// The dtype of host element type T: float, kiln::f16 or kiln::bf16.
template <class T>
constexpr gen::DType softmax_dtype_of() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, f16> || std::is_same_v<T, bf16>,
                "kiln::ops::softmax takes float, kiln::f16 or kiln::bf16 buffers (or "
                "std::uint16_t with the dtype named)");
  return gen::dtype_of<T>();
}

namespace detail {
template <class T>
void softmax_buffers(gen::DType dtype, const rt::DeviceBuffer<T>& in, rt::DeviceBuffer<T>& out,
                     std::int64_t rows, std::int64_t cols, rt::StreamRef stream) {
  if (sizeof(T) != std::size_t(gen::size_of(dtype))) {
    throw Error("kiln: softmax: a " + std::string(gen::to_string(dtype)) + " softmax needs " +
                std::to_string(gen::size_of(dtype)) + "-byte elements, not " +
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
  const rt::LaunchConfig lc = softmax_launch(p, k.config());
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(p).dump(), k.launch_info().config, factory.bytes(p),
                              factory.flops(p)};
    launch_softmax(k, out.device(), lc, in.data(), out.data(), rows, stream, &info);
  } else {
    launch_softmax(k, out.device(), lc, in.data(), out.data(), rows, stream);
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
    gen::DType dtype, const rt::DeviceBuffer<T>& in, rt::DeviceBuffer<T>& out, std::int64_t rows,
    std::int64_t cols, rt::StreamRef stream = {}) {
  detail::softmax_buffers(dtype, in, out, rows, cols, stream);
}

namespace detail {
template <class T>
void softmax_backward_buffers(gen::DType dtype, const rt::DeviceBuffer<T>& y,
                              const rt::DeviceBuffer<T>& dy, rt::DeviceBuffer<T>& dx,
                              std::int64_t rows, std::int64_t cols, rt::StreamRef stream) {
  if (sizeof(T) != std::size_t(gen::size_of(dtype))) {
    throw Error("kiln: softmax_backward: a " + std::string(gen::to_string(dtype)) +
                " softmax_backward needs " + std::to_string(gen::size_of(dtype)) +
                "-byte elements, not " + std::to_string(sizeof(T)) + "-byte ones");
  }
  if (cols < 1 || cols > softmax_max_cols) {
    throw Error("kiln: softmax_backward: cols = " + std::to_string(cols) +
                " is not supported; rows may have 1 to 1048576 (2^20) columns");
  }
  SoftmaxParams p{dtype, std::int32_t(cols), rows};
  validate_softmax_backward(p);
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  if (y.size() < n || dy.size() < n || dx.size() < n) {
    throw Error("kiln: softmax_backward: " + std::to_string(rows) + " x " + std::to_string(cols) +
                " needs " + std::to_string(n) + " elements, but y holds " +
                std::to_string(y.size()) + ", dy " + std::to_string(dy.size()) + " and dx " +
                std::to_string(dx.size()));
  }
  if (y.size() > 0 && dy.size() > 0 && dx.size() > 0 &&
      (y.device().ordinal() != dx.device().ordinal() ||
       dy.device().ordinal() != dx.device().ordinal())) {
    throw Error("kiln: softmax_backward: y is on device " + std::to_string(y.device().ordinal()) +
                ", dy on device " + std::to_string(dy.device().ordinal()) + " and dx on device " +
                std::to_string(dx.device().ordinal()) + "; all three must be on one device");
  }
  if (rows == 0) return;
  // As the forward: one kernel (and one tuning) per power-of-two bucket of row counts.
  SoftmaxFactory& factory = softmax_backward_factory();
  const auto& k =
      factory.get(SoftmaxParams{dtype, std::int32_t(cols), row_bucket(rows)}, dx.device());
  const rt::LaunchConfig lc = softmax_backward_launch(p, k.config());
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(p).dump(), k.launch_info().config, factory.bytes(p),
                              factory.flops(p)};
    launch_softmax_backward(k, dx.device(), lc, y.data(), dy.data(), dx.data(), rows, stream,
                            &info);
  } else {
    launch_softmax_backward(k, dx.device(), lc, y.data(), dy.data(), dx.data(), rows, stream);
  }
}
}  // namespace detail

/// The softmax's backward: dx = y * (dy - sum over the row of dy * y), row by row, for a
/// row-major rows x cols matrix of float, kiln::f16 or kiln::bf16, where y = softmax(x)
/// (the forward's output) and dy is the gradient of the loss with respect to y; f32 math.
/// On `stream` (returns at once). `dx` may be `dy` (in place) or `y`. Throws kiln::Error
/// as the forward does (buffers too small, on different devices, cols outside 1 to 2^20,
/// rows outside 0 to 2^31 - 1), and whatever compiling the kernel throws.
template <class T>
void softmax_backward(const rt::DeviceBuffer<T>& y, const rt::DeviceBuffer<T>& dy,
                      rt::DeviceBuffer<T>& dx, std::int64_t rows, std::int64_t cols,
                      rt::StreamRef stream = {}) {
  detail::softmax_backward_buffers(softmax_dtype_of<T>(), y, dy, dx, rows, cols, stream);
}

/// The same over 16-bit patterns of f16 or bf16 (as `dtype` says), or 32-bit ones of f32.
template <class T>
requires(std::is_same_v<T, std::uint16_t> ||
         std::is_same_v<T, std::uint32_t>) void softmax_backward(gen::DType dtype,
                                                                 const rt::DeviceBuffer<T>& y,
                                                                 const rt::DeviceBuffer<T>& dy,
                                                                 rt::DeviceBuffer<T>& dx,
                                                                 std::int64_t rows,
                                                                 std::int64_t cols,
                                                                 rt::StreamRef stream = {}) {
  detail::softmax_backward_buffers(dtype, y, dy, dx, rows, cols, stream);
}

}  // namespace kiln::ops
