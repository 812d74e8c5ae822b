#pragma once
/// Grouped 2-D convolution, channels last (NHWC), groups of 8, 16 or 32 channels (as many
/// output channels as input channels), f16 or bf16 with f32 accumulation, on NVIDIA tensor
/// cores (sm_80 and later). Filters R x S of 1, 3, 5 or 7 taps each way, stride 1 or 2,
/// any padding below the filter's extent; N, H and W are run-time sizes. The kernel is
/// kernels/conv_grouped.cu, compiled per (pass, type, channels, filter, stride, padding,
/// epilogue, config). Layouts and the arithmetic: detail/conv_params.hpp.
///
///   kiln::ops::ConvGroupedParams p{.group_width = 8, .channels = 256, .filter_h = 3,
///                                  .filter_w = 3, .stride = 1, .pad_h = 1, .pad_w = 1,
///                                  .n = 128, .h = 56, .w = 56};
///   kiln::rt::DeviceBuffer<kiln::f16> x(conv_input_elements(p)), w(conv_weight_elements(p)),
///       y(conv_output_elements(p)), bias(256);
///   kiln::ops::conv2d_grouped(x, w, y, p, stream);                         // y = x * w
///   kiln::ops::conv2d_grouped(x, w, y, p, {.bias = &bias,                  // fused epilogue
///                             .activation = kiln::ops::ConvActivation::relu}, stream);
///   kiln::ops::conv2d_grouped_dgrad(dy, w, dx, p, stream);                 // dx
///   kiln::ops::conv2d_grouped_wgrad(x, dy, dw, p, stream);                 // dw
///
/// The functions set p.pass, p.dtype and the epilogue fields themselves. The epilogue is
/// y = activation(conv(x, w) + bias[k] + residual[n, p, q, k]), each part optional; the
/// residual may be y itself. Under KILN_TUNE=model or full the configs
/// (detail/conv_configs.hpp) are timed once per problem and device and the winner kept in
/// the tuning database.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "../device/half.hpp"
#include "../error.hpp"
#include "../factory/factory.hpp"
#include "../rt/launch.hpp"
#include "../rt/memory.hpp"
#include "detail/conv_configs.hpp"
#include "norm.hpp"
#include "softmax.hpp"

namespace kiln::ops {

/// The convolution's kernel factory. Use the process-wide one, conv_grouped_factory().
using ConvFactory = factory::Factory<ConvGroupedParams, ConvConfig>;

/// fprop's fused epilogue: y = activation(conv + bias + residual). Buffers must be on y's
/// device: bias of `channels` elements, residual shaped as y (it may be y).
template <class T>
struct ConvEpilogue {
  const rt::DeviceBuffer<T>* bias = nullptr;
  ConvActivation activation = ConvActivation::none;
  const rt::DeviceBuffer<T>* residual = nullptr;
};

namespace detail {

/// The most blocks a launch takes (grid.x's limit); a larger problem's blocks walk the rest.
inline constexpr std::int64_t conv_max_grid = (std::int64_t(1) << 31) - 1;

/// fprop and dgrad: as many blocks as the device's `sms` multiprocessors hold at once,
/// `resident` each (0: unknown, then a block an item), rounded down to a multiple of the
/// channel tiles so that each block keeps one (its weights staged once), and at most one
/// an item; blocks walk the rest. wgrad: rounds x the channel tiles (conv_wgrad_rounds).
inline rt::LaunchConfig conv_launch(const ConvGroupedParams& p, const ConvConfig& c, int sms = 132,
                                    int resident = 0) {
  std::int64_t blocks = 0;
  if (p.pass == ConvPass::wgrad) {
    blocks = conv_wgrad_rounds(p, c, sms) * (p.channels / c.block_c);
  } else {
    const std::int64_t items = conv_work_items(p, c);
    const std::int64_t tiles_c = p.channels / c.block_c;
    std::int64_t capacity = std::int64_t(std::max(resident, 0)) * std::max(sms, 1);
    if (capacity >= tiles_c) capacity = capacity / tiles_c * tiles_c;
    blocks = std::clamp<std::int64_t>(capacity > 0 ? std::min(items, capacity) : items, 1,
                                      conv_max_grid);
  }
  return rt::LaunchConfig(blocks, conv_threads(c), unsigned(conv_shared_bytes(p, c)));
}

/// Blocks of kernel `k` (a factory's kernel of `p`'s pass) an SM of its device holds at
/// once (asked of the driver once, then remembered).
template <class Kernel>
int conv_resident(const ConvGroupedParams& p, const Kernel& k) {
  return k.function().occupancy(conv_threads(k.config()),
                                std::size_t(conv_shared_bytes(p, k.config())));
}

/// fprop's and dgrad's blocks an SM of `d` holds at least, from what the config alone
/// says (no compiled kernel to ask): the blocks its launch bounds keep (conv_min_blocks),
/// fewer where the SM's shared memory (less 1 KiB a block the driver keeps) or threads
/// hold fewer. The factory's own launch config (Kernel::launch_config) uses it; the real
/// residency (conv_resident) is never smaller.
inline int conv_resident_at_least(const ConvGroupedParams& p, const ConvConfig& c,
                                  const rt::DeviceProperties& d) {
  const std::int64_t shared = conv_shared_bytes(p, c) + 1024;
  const std::int64_t by_shared = std::int64_t(d.shared_per_multiprocessor) / shared;
  const std::int64_t by_threads = d.max_threads_per_multiprocessor / conv_threads(c);
  return int(std::max<std::int64_t>(
      1, std::min({std::int64_t(conv_min_blocks(c)), by_shared, by_threads})));
}

/// conv_launch for kernel `k` on its device: fprop and dgrad with conv_resident's blocks an
/// SM.
template <class Kernel>
rt::LaunchConfig conv_launch_for(const ConvGroupedParams& p, const Kernel& k) {
  const int sms = k.device().properties().multiprocessors;
  return conv_launch(p, k.config(), sms, p.pass == ConvPass::wgrad ? 0 : conv_resident(p, k));
}

/// Throws kiln::Error unless `d` has the tensor cores the kernel uses (mma.sync, ldmatrix
/// and cp.async: NVIDIA sm_80 and later).
inline void check_conv_device(const rt::DeviceProperties& d) {
  if (d.platform != rt::Platform::cuda || d.compute_major < 8) {
    throw Error(
        "kiln: conv2d_grouped runs on NVIDIA GPUs of compute capability 8.0 or later "
        "(mma.sync, ldmatrix and cp.async); this device is " +
        d.name);
  }
}

/// The bytes of each tensor a tuning run allocates at most: larger batches are timed on
/// fewer images (the kernel's speed per image does not depend on the batch once it fills
/// the GPU).
inline constexpr std::int64_t conv_tuning_bytes = std::int64_t(512) << 20;

/// The problem a tuning run times: `p` with at most as many images as conv_tuning_bytes
/// hold (at least 1).
inline ConvGroupedParams conv_tuning_problem(const ConvGroupedParams& p) {
  ConvGroupedParams t = p;
  t.n = 1;
  const std::int64_t per_image =
      std::max(conv_input_elements(t), conv_output_elements(t)) * gen::size_of(p.dtype);
  t.n = std::clamp<std::int64_t>(conv_tuning_bytes / std::max<std::int64_t>(per_image, 1), 1,
                                 std::max<std::int64_t>(p.n, 1));
  return t;
}

/// The description of kernels/conv_grouped.cu as a factory (bump `version` whenever the
/// kernel or the configs change meaning).
inline ConvFactory::Description conv_grouped_description() {
  using TuningRun = ConvFactory::TuningRun;
  return {
      .name = "conv_grouped",
      .version = 2,
      .source = "conv_grouped.cu",
      .configs =
          [](const ConvGroupedParams& p, const rt::DeviceProperties& d) {
            check_conv_device(d);
            return conv_configs(p, std::int64_t(d.shared_per_block_optin), d.multiprocessors);
          },
      .spec =
          [](const ConvGroupedParams& p, const ConvConfig& c, const rt::DeviceProperties& d) {
            validate_conv_kernel_problem(p);
            validate_conv_config(p, c, std::int64_t(d.shared_per_block_optin));
            return conv_spec(p, c);
          },
      .launch =
          [](const ConvGroupedParams& p, const ConvConfig& c, const rt::DeviceProperties& d) {
            return conv_launch(p, c, d.multiprocessors,
                               p.pass == ConvPass::wgrad ? 0 : conv_resident_at_least(p, c, d));
          },
      .validate = [](const ConvGroupedParams& p) { validate_conv_kernel_problem(p); },
      .heuristic =
          [](const ConvGroupedParams& p, const std::vector<ConvConfig>& cs,
             const rt::DeviceProperties& d) { return conv_heuristic(p, cs, d.multiprocessors); },
      .kernel_name = conv_kernel_name,
      .bytes = [](const ConvGroupedParams& p) { return double(conv_min_bytes(p)); },
      .flops = [](const ConvGroupedParams& p) { return double(conv_flops(p)); },
      .tuning_run = [](const ConvGroupedParams& p, const rt::Device& device) -> TuningRun {
        const ConvGroupedParams t = conv_tuning_problem(p);
        const ConvGeometry g = conv_geometry(t);
        const std::size_t esize = std::size_t(gen::size_of(t.dtype));
        // fprop and wgrad read x (wgrad also dy, in `out`); dgrad reads dy and writes dx.
        const bool dgrad = t.pass == ConvPass::dgrad;
        const std::size_t in_bytes =
            std::size_t(dgrad ? conv_output_elements(t) : conv_input_elements(t)) * esize;
        const std::size_t out_bytes =
            std::size_t(dgrad ? conv_input_elements(t) : conv_output_elements(t)) * esize;
        const int sms = device.properties().multiprocessors;
        const bool wgrad = t.pass == ConvPass::wgrad;
        auto in = tuning_buffer(in_bytes, device, true);
        auto out = tuning_buffer(out_bytes, device, wgrad);  // wgrad: dy, an input
        auto w = tuning_buffer(std::size_t(conv_weight_elements(t)) * esize, device, true);
        auto bias = tuning_buffer(std::size_t(t.channels) * esize, device, true);
        // wgrad's partial rows: at most 4 x sms rounds (one channel tile).
        auto partial = tuning_buffer(
            wgrad ? std::size_t(4 * std::max(sms, 1)) * std::size_t(conv_weight_elements(t)) * 4
                  : 0,
            device, false);
        return [in, out, w, bias, partial, t, g, wgrad](const ConvFactory::KernelType& k,
                                                        rt::StreamRef s) {
          rt::LaunchConfig lc = conv_launch_for(t, k);
          lc.stream = s;
          if (wgrad) {
            k.launch(lc, static_cast<const void*>(in->data()),
                     static_cast<const void*>(out->data()), static_cast<void*>(partial->data()),
                     int(t.n), int(g.in_h), int(g.in_w), int(g.out_h), int(g.out_w),
                     int(t.channels));
            return;
          }
          // The residual, where compiled in, is the output itself.
          k.launch(lc, static_cast<const void*>(in->data()), static_cast<const void*>(w->data()),
                   static_cast<void*>(out->data()), static_cast<const void*>(bias->data()),
                   static_cast<const void*>(out->data()), int(t.n), int(g.in_h), int(g.in_w),
                   int(g.out_h), int(g.out_w), int(t.channels));
        };
      },
  };
}

}  // namespace detail

/// The process-wide convolution factory (its kernels are memoized for the process).
inline ConvFactory& conv_grouped_factory() {
  static ConvFactory factory(detail::conv_grouped_description());
  return factory;
}

namespace detail {

template <class T>
gen::DType conv_dtype_of() {
  static_assert(std::is_same_v<T, f16> || std::is_same_v<T, bf16>,
                "conv2d_grouped takes kiln::f16 or kiln::bf16 tensors");
  return softmax_dtype_of<T>();
}

/// Throws kiln::Error unless `b` (when given) holds `n` elements on `device`.
template <class T>
void check_conv_buffer(const std::string& what, const char* name, const rt::DeviceBuffer<T>* b,
                       std::int64_t n, int device) {
  if (!b) return;
  if (std::int64_t(b->size()) < n) {
    throw Error(what + name + " needs " + std::to_string(n) + " elements, but holds " +
                std::to_string(b->size()));
  }
  if (b->size() > 0 && b->device().ordinal() != device) {
    throw Error(what + name + " is on device " + std::to_string(b->device().ordinal()) +
                ", the output on device " + std::to_string(device));
  }
}

/// Runs the correlation kernel for p (fprop or dgrad): `in` -> `out` with the weights.
template <class T>
void conv_run(const ConvGroupedParams& p, const rt::DeviceBuffer<T>& in,
              const rt::DeviceBuffer<T>& w, rt::DeviceBuffer<T>& out, const ConvEpilogue<T>& e,
              rt::StreamRef stream) {
  const std::string what = "kiln: conv2d_grouped (" + conv_pass_name(p.pass) + "): ";
  validate_conv_kernel_problem(p);
  const ConvGeometry g = conv_geometry(p);
  const bool fprop = p.pass == ConvPass::fprop;
  const std::int64_t in_n = fprop ? conv_input_elements(p) : conv_output_elements(p);
  const std::int64_t out_n = fprop ? conv_output_elements(p) : conv_input_elements(p);
  const int device = out.device().ordinal();
  check_conv_buffer(what, fprop ? "x" : "dy", &in, in_n, device);
  check_conv_buffer(what, "w", &w, conv_weight_elements(p), device);
  check_conv_buffer(what, fprop ? "y" : "dx", &out, out_n, device);
  check_conv_buffer(what, "the bias", e.bias, p.channels, device);
  check_conv_buffer(what, "the residual", e.residual, out_n, device);
  if (out_n > 0 && in.data() == out.data()) {
    throw Error(what +
                "the output is the input buffer; the kernel cannot run in place "
                "(give the output a buffer of its own)");
  }
  if (p.n == 0) return;
  ConvFactory& factory = conv_grouped_factory();
  const auto& k = factory.get(p, out.device());
  rt::LaunchConfig lc = conv_launch_for(p, k);
  lc.stream = stream;
  const void* x_ptr = in.data();
  const void* w_ptr = w.data();
  void* y_ptr = out.data();
  const void* bias_ptr = e.bias ? static_cast<const void*>(e.bias->data()) : nullptr;
  const void* res_ptr = e.residual ? static_cast<const void*>(e.residual->data()) : nullptr;
  const int n = int(p.n), in_h = int(g.in_h), in_w = int(g.in_w), out_h = int(g.out_h),
            out_w = int(g.out_w), channels = int(p.channels);
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(p).dump(), k.launch_info().config, factory.bytes(p),
                              factory.flops(p)};
    k.launch(lc, info, x_ptr, w_ptr, y_ptr, bias_ptr, res_ptr, n, in_h, in_w, out_h, out_w,
             channels);
  } else {
    k.launch(lc, x_ptr, w_ptr, y_ptr, bias_ptr, res_ptr, n, in_h, in_w, out_h, out_w, channels);
  }
}

}  // namespace detail

/// y = epilogue(x * w): the grouped convolution's forward pass of x (N x H x W x C) with
/// w (C x R x S x G) into y (N x P x Q x C), on `stream` (returns at once). p's pass, dtype
/// and epilogue fields are set here (fprop, T's type, `e`). Throws kiln::Error for a
/// problem kiln does not support, buffers that do not hold it, or a device without the
/// tensor cores it needs, and whatever compiling the kernel throws.
template <class T>
void conv2d_grouped(const rt::DeviceBuffer<T>& x, const rt::DeviceBuffer<T>& w,
                    rt::DeviceBuffer<T>& y, ConvGroupedParams p, const ConvEpilogue<T>& e,
                    rt::StreamRef stream = {}) {
  p.pass = ConvPass::fprop;
  p.dtype = detail::conv_dtype_of<T>();
  p.bias = e.bias != nullptr;
  p.activation = e.activation;
  p.residual = e.residual != nullptr;
  detail::conv_run(p, x, w, y, e, stream);
}
template <class T>
void conv2d_grouped(const rt::DeviceBuffer<T>& x, const rt::DeviceBuffer<T>& w,
                    rt::DeviceBuffer<T>& y, const ConvGroupedParams& p, rt::StreamRef stream = {}) {
  conv2d_grouped(x, w, y, p, ConvEpilogue<T>{}, stream);
}

/// dx = the gradient of the forward pass with respect to x, from dy (N x P x Q x C) and w:
/// dy correlated with the filters flipped and transposed within each group (for stride 2,
/// dy read dilated: a zero between each two rows and columns). p's pass and dtype are set
/// here; no epilogue.
template <class T>
void conv2d_grouped_dgrad(const rt::DeviceBuffer<T>& dy, const rt::DeviceBuffer<T>& w,
                          rt::DeviceBuffer<T>& dx, ConvGroupedParams p, rt::StreamRef stream = {}) {
  p.pass = ConvPass::dgrad;
  p.dtype = detail::conv_dtype_of<T>();
  p.bias = false;
  p.activation = ConvActivation::none;
  p.residual = false;
  detail::conv_run(p, dy, w, dx, ConvEpilogue<T>{}, stream);
}

/// The floats of workspace conv2d_grouped_wgrad<T> needs for `p` on `device` (its partial
/// sums: one row of C x R x S x G floats for each round of blocks). Looks up (and compiles
/// or tunes, as KILN_TUNE says) the kernel the call will use; p's pass and dtype are set
/// here, as the call sets them.
template <class T>
std::int64_t conv2d_grouped_wgrad_workspace(ConvGroupedParams p, const rt::Device& device) {
  p.pass = ConvPass::wgrad;
  p.dtype = detail::conv_dtype_of<T>();
  p.bias = p.residual = false;
  p.activation = ConvActivation::none;
  detail::validate_conv_kernel_problem(p);
  const auto& k = conv_grouped_factory().get(p, device);
  return detail::conv_wgrad_partial_floats(p, k.config(), device.properties().multiprocessors);
}

/// dw = the gradient of the forward pass with respect to the weights, from x and dy:
/// dw[k, r, s, g] = sum over n, p, q of dy[n, p, q, k] x[n, p s + r - pad, q s + s' - pad, ...]
/// (both strides). Each block of the first kernel sums its share of the pixels in f32;
/// kernels/column_sum.cu adds the blocks' partial rows in a fixed order (the same bits every
/// run) and rounds them to T. `workspace`: conv2d_grouped_wgrad_workspace<T>(p, device) floats
/// on dw's device; without one the call allocates its own and waits for `stream` before
/// freeing it. p's pass and dtype are set here.
template <class T>
void conv2d_grouped_wgrad(const rt::DeviceBuffer<T>& x, const rt::DeviceBuffer<T>& dy,
                          rt::DeviceBuffer<T>& dw, ConvGroupedParams p, rt::StreamRef stream = {},
                          rt::DeviceBuffer<float>* workspace = nullptr) {
  p.pass = ConvPass::wgrad;
  p.dtype = detail::conv_dtype_of<T>();
  p.bias = p.residual = false;
  p.activation = ConvActivation::none;
  const std::string what = "kiln: conv2d_grouped (wgrad): ";
  detail::validate_conv_kernel_problem(p);
  const int device = dw.device().ordinal();
  detail::check_conv_buffer(what, "x", &x, conv_input_elements(p), device);
  detail::check_conv_buffer(what, "dy", &dy, conv_output_elements(p), device);
  detail::check_conv_buffer(what, "dw", &dw, conv_weight_elements(p), device);
  if (dw.data() == x.data() || dw.data() == dy.data()) {
    throw Error(what + "dw is an input buffer; give it a buffer of its own");
  }
  ConvFactory& factory = conv_grouped_factory();
  const auto& k = factory.get(p, dw.device());
  const int sms = dw.device().properties().multiprocessors;
  rt::LaunchConfig lc = detail::conv_launch(p, k.config(), sms);
  lc.stream = stream;
  const std::int64_t partial_floats = detail::conv_wgrad_partial_floats(p, k.config(), sms);
  rt::DeviceBuffer<float> own;
  if (workspace) {
    detail::check_conv_buffer(what, "the workspace", workspace, partial_floats, device);
  } else {
    own = rt::DeviceBuffer<float>(std::size_t(partial_floats), dw.device());
  }
  float* partial = workspace ? workspace->data() : own.data();
  // (An empty batch still launches: its blocks write zero partial rows, so dw becomes 0.)
  const detail::ConvGeometry g = detail::conv_geometry(p);
  const void* x_ptr = x.data();
  const void* dy_ptr = dy.data();
  if (rt::launch_observer().load(std::memory_order_relaxed)) {  // the profiler is on
    const rt::LaunchInfo info{nlohmann::json(p).dump(), k.launch_info().config, factory.bytes(p),
                              factory.flops(p)};
    k.launch(lc, info, x_ptr, dy_ptr, partial, int(p.n), int(g.in_h), int(g.in_w), int(g.out_h),
             int(g.out_w), int(p.channels));
  } else {
    k.launch(lc, x_ptr, dy_ptr, partial, int(p.n), int(g.in_h), int(g.in_w), int(g.out_h),
             int(g.out_w), int(p.channels));
  }
  const std::int64_t cols = conv_weight_elements(p);
  // (Scheduled as the blocks above finish; it waits for them.)
  detail::launch_column_sum(column_sum_factory().get({p.dtype, std::int32_t(cols)}, dw.device()),
                            partial, partial_floats / cols, dw.data(), nullptr, stream);
  if (!workspace) {
    // The partial sums are read on the stream: wait for it before `own` is freed.
    rt::ContextGuard guard(dw.device().context());
    rt::driver().check(rt::driver().stream_synchronize(stream.handle), "stream_synchronize",
                       "waiting for conv2d_grouped_wgrad's partial sums before freeing them");
  }
}

}  // namespace kiln::ops
