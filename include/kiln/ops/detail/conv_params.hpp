#pragma once
/// The problem of a grouped 2-D convolution (ResNeXt / RegNet style: groups of 8, 16 or 32
/// channels, as many output channels as input channels), what is supported and the shapes
/// that follow. No GPU and no kernel here: kiln::ops::conv2d_grouped's factories build on it.
///
/// Layouts, all channels last:
///   x  (input, fprop) / dx (dgrad)    N x H x W x C
///   y  (output, fprop) / dy (dgrad, wgrad)  N x P x Q x C
///   w  (weights, fprop, dgrad) / dw (wgrad)  C x R x S x G  (output channel, filter row,
///      filter column, input channel within the group: cuDNN's KRSC for groups of G)
/// Output channel k belongs to group k / G and reads input channels (k / G) * G to
/// (k / G) * G + G - 1:
///   y[n, p, q, k] = sum over r < R, s < S, g < G of
///                   x[n, p * stride + r - pad_h, q * stride + s - pad_w, (k / G) * G + g]
///                   * w[k, r, s, g]       (x outside the image reads as 0)
///   P = (H + 2 pad_h - R) / stride + 1,  Q = (W + 2 pad_w - S) / stride + 1

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "../../factory/gen_json.hpp"
#include "../../gen/dtype.hpp"

namespace kiln::ops {

/// Which of the three passes: the forward pass, the gradient with respect to the input,
/// the gradient with respect to the weights.
enum class ConvPass : std::int32_t { fprop, dgrad, wgrad };
NLOHMANN_JSON_SERIALIZE_ENUM(ConvPass, {{ConvPass::fprop, "fprop"},
                                        {ConvPass::dgrad, "dgrad"},
                                        {ConvPass::wgrad, "wgrad"}})

/// The activation of fprop's fused epilogue: y = act(conv(x, w) + bias + residual).
enum class ConvActivation : std::int32_t { none, relu, silu };
NLOHMANN_JSON_SERIALIZE_ENUM(ConvActivation, {{ConvActivation::none, "none"},
                                              {ConvActivation::relu, "relu"},
                                              {ConvActivation::silu, "silu"}})

/// The "same" padding of a filter of `extent` taps (1, 3, 5 or 7): (extent - 1) / 2, so
/// that P = ceil(H / stride).
constexpr std::int32_t conv_same_padding(std::int32_t extent) {
  return (extent - 1) / 2;
}

/// One grouped convolution problem. Channels, filter, stride, padding and type are compiled
/// into a kernel; n, h and w are run-time sizes.
struct ConvGroupedParams {
  ConvPass pass = ConvPass::fprop;
  gen::DType dtype = gen::DType::f16;  ///< f16 or bf16 (f32 accumulation)
  std::int32_t group_width = 8;        ///< G: 8, 16 or 32 channels a group
  std::int32_t channels = 8;           ///< C: input and output channels, a multiple of G
  std::int32_t filter_h = 3;           ///< R: 1, 3, 5 or 7
  std::int32_t filter_w = 3;           ///< S: 1, 3, 5 or 7
  std::int32_t stride = 1;             ///< 1 or 2, both directions
  std::int32_t pad_h = 1;              ///< 0 to R - 1 (conv_same_padding(R): "same")
  std::int32_t pad_w = 1;              ///< 0 to S - 1
  std::int64_t n = 1;                  ///< images: 0 to 2^31 - 1
  std::int32_t h = 1;                  ///< input rows: 1 to 32768
  std::int32_t w = 1;                  ///< input columns: 1 to 32768
  /// fprop's fused epilogue, compiled in: y = activation(conv + bias[k] + residual[n, p, q, k])
  bool bias = false;
  ConvActivation activation = ConvActivation::none;
  bool residual = false;
  bool operator==(const ConvGroupedParams&) const = default;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ConvGroupedParams, pass, dtype, group_width, channels, filter_h,
                                   filter_w, stride, pad_h, pad_w, n, h, w, bias, activation,
                                   residual)

/// The largest input rows or columns, and channels, kiln takes.
inline constexpr std::int32_t conv_max_extent = 32768;
inline constexpr std::int32_t conv_max_channels = 65536;

/// Output rows P.
constexpr std::int64_t conv_out_h(const ConvGroupedParams& p) {
  return (std::int64_t(p.h) + 2 * std::int64_t(p.pad_h) - p.filter_h) / p.stride + 1;
}
/// Output columns Q.
constexpr std::int64_t conv_out_w(const ConvGroupedParams& p) {
  return (std::int64_t(p.w) + 2 * std::int64_t(p.pad_w) - p.filter_w) / p.stride + 1;
}
/// Elements of x (or dx), of y (or dy) and of w (or dw).
constexpr std::int64_t conv_input_elements(const ConvGroupedParams& p) {
  return p.n * p.h * p.w * std::int64_t(p.channels);
}
constexpr std::int64_t conv_output_elements(const ConvGroupedParams& p) {
  return p.n * conv_out_h(p) * conv_out_w(p) * std::int64_t(p.channels);
}
constexpr std::int64_t conv_weight_elements(const ConvGroupedParams& p) {
  return std::int64_t(p.channels) * p.filter_h * p.filter_w * p.group_width;
}
/// The bytes a pass must move at least: its two inputs read once, its output written once
/// (the three tensors, whichever pass).
inline std::int64_t conv_min_bytes(const ConvGroupedParams& p) {
  return (conv_input_elements(p) + conv_output_elements(p) + conv_weight_elements(p)) *
         gen::size_of(p.dtype);
}
/// Multiply-adds times 2, the same for the three passes: 2 N P Q C R S G.
constexpr std::int64_t conv_flops(const ConvGroupedParams& p) {
  return 2 * conv_output_elements(p) * p.filter_h * p.filter_w * p.group_width;
}

namespace detail {

inline std::string conv_pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::fprop:
      return "fprop";
    case ConvPass::dgrad:
      return "dgrad";
    case ConvPass::wgrad:
      return "wgrad";
  }
  return "pass " + std::to_string(int(pass));
}

inline bool conv_filter_supported(std::int32_t extent) {
  return extent == 1 || extent == 3 || extent == 5 || extent == 7;
}

}  // namespace detail

/// Throws kiln::Error naming the first field kiln does not support and what it does.
inline void validate_conv_grouped(const ConvGroupedParams& p) {
  const std::string what = "kiln: conv2d_grouped: ";
  if (p.pass != ConvPass::fprop && p.pass != ConvPass::dgrad && p.pass != ConvPass::wgrad) {
    throw Error(what + detail::conv_pass_name(p.pass) +
                " is not a pass; use fprop, dgrad or wgrad");
  }
  if (p.dtype != gen::DType::f16 && p.dtype != gen::DType::bf16) {
    throw Error(what + "dtype " + std::string(gen::to_string(p.dtype)) +
                " is not supported; use f16 or bf16 (the math is f32)");
  }
  if (p.group_width != 8 && p.group_width != 16 && p.group_width != 32) {
    throw Error(what + "group_width = " + std::to_string(p.group_width) +
                " is not supported; use 8, 16 or 32 channels a group");
  }
  if (p.channels < p.group_width || p.channels > conv_max_channels ||
      p.channels % p.group_width != 0) {
    throw Error(what + "channels = " + std::to_string(p.channels) +
                " is not a multiple of the group width " + std::to_string(p.group_width) +
                " from " + std::to_string(p.group_width) + " to " +
                std::to_string(conv_max_channels) +
                "; pad the channels to a whole number of groups");
  }
  if (!detail::conv_filter_supported(p.filter_h) || !detail::conv_filter_supported(p.filter_w)) {
    throw Error(what + "a " + std::to_string(p.filter_h) + " x " + std::to_string(p.filter_w) +
                " filter is not supported; use 1, 3, 5 or 7 taps each way (R x S of 1x1, "
                "3x3, 5x5, 7x7 or mixed, such as 1x7)");
  }
  if (p.stride != 1 && p.stride != 2) {
    throw Error(what + "stride = " + std::to_string(p.stride) + " is not supported; use 1 or 2");
  }
  if (p.pad_h < 0 || p.pad_h >= p.filter_h || p.pad_w < 0 || p.pad_w >= p.filter_w) {
    throw Error(what + "padding " + std::to_string(p.pad_h) + " x " + std::to_string(p.pad_w) +
                " is not supported for a " + std::to_string(p.filter_h) + " x " +
                std::to_string(p.filter_w) +
                " filter; use 0 to R - 1 rows and 0 to S - 1 "
                "columns (\"same\" is conv_same_padding: " +
                std::to_string(conv_same_padding(p.filter_h)) + " x " +
                std::to_string(conv_same_padding(p.filter_w)) + ")");
  }
  if (p.n < 0 || p.n > std::numeric_limits<std::int32_t>::max()) {
    throw Error(what + "n = " + std::to_string(p.n) +
                " is not supported; the batch may have 0 to 2147483647 (2^31 - 1) images");
  }
  if (p.h < 1 || p.h > conv_max_extent || p.w < 1 || p.w > conv_max_extent) {
    throw Error(what + "an image of " + std::to_string(p.h) + " x " + std::to_string(p.w) +
                " is not supported; use 1 to " + std::to_string(conv_max_extent) +
                " rows and columns");
  }
  if (conv_out_h(p) < 1 || conv_out_w(p) < 1) {
    throw Error(what + "a " + std::to_string(p.h) + " x " + std::to_string(p.w) +
                " image padded by " + std::to_string(p.pad_h) + " x " + std::to_string(p.pad_w) +
                " is smaller than the " + std::to_string(p.filter_h) + " x " +
                std::to_string(p.filter_w) +
                " filter: no output; pad more or use a smaller filter");
  }
  if (p.activation != ConvActivation::none && p.activation != ConvActivation::relu &&
      p.activation != ConvActivation::silu) {
    throw Error(what + "activation " + std::to_string(int(p.activation)) +
                " is not one; use none, relu or silu");
  }
  // The kernels index within one image in 32 bits.
  const std::int64_t image =
      std::int64_t(p.channels) *
      std::max<std::int64_t>(std::int64_t(p.h) * p.w, conv_out_h(p) * conv_out_w(p));
  if (image > std::numeric_limits<std::int32_t>::max()) {
    throw Error(what + "an image of " + std::to_string(p.h) + " x " + std::to_string(p.w) + " x " +
                std::to_string(p.channels) + " has " + std::to_string(image) +
                " elements; kiln takes at most 2147483647 (2^31 - 1) an image (input or output)");
  }
  // Element offsets are 64-bit in the kernels; keep every tensor within 2^46 elements
  // (128 TiB of f16), far beyond any device, so that no offset arithmetic can overflow.
  // (Counted in double: the sizes allowed so far multiply up to 2^77.)
  const double limit = double(std::int64_t(1) << 46);
  const double per_image =
      double(p.channels) *
      double(std::max<std::int64_t>(std::int64_t(p.h) * p.w, conv_out_h(p) * conv_out_w(p)));
  if (double(p.n) * per_image > limit) {
    throw Error(what + "a batch of " + std::to_string(p.n) + " images of " + std::to_string(p.h) +
                " x " + std::to_string(p.w) + " x " + std::to_string(p.channels) +
                " is too large; split the batch");
  }
}

}  // namespace kiln::ops
