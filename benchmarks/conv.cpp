// benchmarks/conv: kiln's grouped convolution (groups of 8, channels last) against cuDNN's
// (cudnnConvolutionForward / BackwardData / BackwardFilter with the group count, the algorithm
// cuDNN's own Find chose as fastest, its workspace allocated before timing) and a device-to-device
// copy of the input, in the same run. GB/s count the input and output read or written once and the
// weights once (conv_min_bytes); "% of copy" is kiln's GB/s over the copy's; "x cuDNN" is cuDNN's
// time over kiln's.
//
//   conv [--json FILE] [--dtypes f16,bf16] [--passes fprop,dgrad,wgrad]
//        [--shapes N:C:HW:R,...] [--sweep] [--config JSON] [--compare JSON]...
//        [--block-an-item] [--ordinary-launch]
//        [bench flags: --noise PCT --seconds S --no-flush]
//
// Shapes are N images of HW x HW with C channels, an R x R filter, stride 1, "same" padding.
// wgrad's time includes kiln's second kernel (the fixed-order sum of the blocks' partial
// rows); its partial rows are allocated before timing, as cuDNN's workspace is.
// --sweep also times every candidate config (what KILN_TUNE=full chooses from). The factory
// picks its config as KILN_TUNE says (off: the heuristic); --config pins one instead (a
// ConvConfig as JSON: {"block_p":56,"block_q":64,"block_c":64,"warps_q":4,"warps_c":2,
// "ahead":2,"step_rows":2}), to profile or compare it. --compare JSON (repeatable) times a
// config beside kiln's choice, candidate or not (one that cannot run a problem is left out
// of it, saying why). --block-an-item also times fprop and
// dgrad with a block for each work item instead of the blocks the device holds at once
// walking them (the launch kiln uses). wgrad's column sums are launched as kiln launches them
// (programmatically on sm_90: scheduled as the first kernel's blocks end, waiting for it
// before they read); --ordinary-launch launches them the ordinary way instead, to compare.
// Every variant's output is
// spot-checked against a double-precision sum at sampled positions first, and kiln's
// whole output against cuDNN's, element by element.
// cuDNN is compiled in where CMake found it (KILN_BENCH_CUDNN).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/jit.hpp"
#include "kiln/ops/conv.hpp"
#include "kiln/prof.hpp"
#include "kiln/rt.hpp"
#include "row_data.hpp"

#ifdef KILN_BENCH_CUDNN
#include "cudnn_support.hpp"
#endif

using namespace kiln;
using bench::decode;
using bench::gbps_of;
using bench::make_input;
using bench::split;
using ops::ConvGroupedParams;
using ops::ConvPass;

namespace {

struct Shape {
  std::int64_t n;
  int c, hw, r;
};

ConvGroupedParams problem_of(const Shape& s, gen::DType dt, ConvPass pass) {
  ConvGroupedParams p;
  p.pass = pass;
  p.dtype = dt;
  p.group_width = 8;
  p.channels = s.c;
  p.filter_h = p.filter_w = s.r;
  p.stride = 1;
  p.pad_h = p.pad_w = ops::conv_same_padding(s.r);
  p.n = s.n;
  p.h = p.w = s.hw;
  return p;
}

/// The pass's output at element `i` (NHWC), in double from the host's inputs, and the sum
/// of its products' magnitudes.
std::pair<double, double> reference_at(const ConvGroupedParams& p, gen::DType dt,
                                       const std::vector<unsigned char>& in,
                                       const std::vector<unsigned char>& w, std::int64_t i) {
  const std::int64_t C = p.channels, G = p.group_width, R = p.filter_h, S = p.filter_w;
  const std::int64_t P = ops::conv_out_h(p), Q = ops::conv_out_w(p);
  const bool fprop = p.pass == ConvPass::fprop;
  const std::int64_t oh = fprop ? P : p.h, ow = fprop ? Q : p.w;
  const std::int64_t ih = fprop ? p.h : P, iw = fprop ? p.w : Q;
  const std::int64_t c = i % C, x = i / C % ow, y = i / C / ow % oh, n = i / C / ow / oh;
  const std::int64_t esize = gen::size_of(dt);
  double sum = 0, mag = 0;
  for (std::int64_t r = 0; r < R; ++r) {
    for (std::int64_t s = 0; s < S; ++s) {
      // fprop: input (y + r - pad, x + s - pad); dgrad (stride 1): dy at (y + pad - r, ...).
      const std::int64_t yy = fprop ? y * p.stride + r - p.pad_h : y + p.pad_h - r;
      const std::int64_t xx = fprop ? x * p.stride + s - p.pad_w : x + p.pad_w - s;
      if (yy < 0 || yy >= ih || xx < 0 || xx >= iw) continue;
      for (std::int64_t g = 0; g < G; ++g) {
        // fprop: x channel group(c) + g times w[c, r, s, g];
        // dgrad: dy channel group(c) + g times w[group(c) + g, r, s, c mod G].
        const std::int64_t ic = c / G * G + g;
        const std::int64_t wi =
            fprop ? ((c * R + r) * S + s) * G + g : ((ic * R + r) * S + s) * G + c % G;
        const double a = decode(dt, &in[std::size_t((((n * ih + yy) * iw + xx) * C + ic) * esize)]);
        const double b = decode(dt, &w[std::size_t(wi * esize)]);
        sum += a * b;
        mag += std::abs(a * b);
      }
    }
  }
  return {sum, mag};
}

/// wgrad's dw at element `i` ((k, r, s, g) of C x R x S x G) from x and dy, in double, and
/// the sum of its products' magnitudes.
std::pair<double, double> wgrad_at(const ConvGroupedParams& p, gen::DType dt,
                                   const std::vector<unsigned char>& x,
                                   const std::vector<unsigned char>& dy, std::int64_t i) {
  const std::int64_t C = p.channels, G = p.group_width, R = p.filter_h, S = p.filter_w;
  const std::int64_t P = ops::conv_out_h(p), Q = ops::conv_out_w(p);
  const std::int64_t g = i % G, s = i / G % S, r = i / G / S % R, k = i / G / S / R;
  const std::int64_t c = k / G * G + g, esize = gen::size_of(dt);
  double sum = 0, mag = 0;
  for (std::int64_t n = 0; n < p.n; ++n) {
    for (std::int64_t y = 0; y < P; ++y) {
      const std::int64_t yy = y * p.stride + r - p.pad_h;
      if (yy < 0 || yy >= p.h) continue;
      for (std::int64_t xq = 0; xq < Q; ++xq) {
        const std::int64_t xx = xq * p.stride + s - p.pad_w;
        if (xx < 0 || xx >= p.w) continue;
        const double a = decode(dt, &x[std::size_t((((n * p.h + yy) * p.w + xx) * C + c) * esize)]);
        const double b = decode(dt, &dy[std::size_t((((n * P + y) * Q + xq) * C + k) * esize)]);
        sum += a * b;
        mag += std::abs(a * b);
      }
    }
  }
  return {sum, mag};
}

/// Checks `out` (downloaded) at 64 spread positions; throws kiln::Error on a miss.
void spot_check(const ConvGroupedParams& p, gen::DType dt, const std::vector<unsigned char>& in,
                const std::vector<unsigned char>& w, const rt::DeviceBuffer<unsigned char>& out,
                const std::string& who) {
  const std::vector<unsigned char> got = out.to_vector();
  const std::int64_t esize = gen::size_of(dt);
  const std::int64_t count = std::int64_t(got.size()) / esize;
  for (int k = 0; k < 64; ++k) {
    const std::int64_t i = k == 63 ? count - 1 : (count / 63) * k + k * 7919 % 97;
    const auto [want, mag] =
        p.pass == ConvPass::wgrad ? wgrad_at(p, dt, in, w, i) : reference_at(p, dt, in, w, i);
    const double v = decode(dt, &got[std::size_t(i * esize)]);
    const double tol = 1e-2 * std::abs(want) + 1e-3 * mag + 1e-3;
    if (!(std::abs(v - want) <= tol)) {
      throw Error(who + ": element " + std::to_string(i) + " is " + std::to_string(v) + ", want " +
                  std::to_string(want));
    }
  }
}

/// Compares every element of kiln's output with cuDNN's: each pair within 8 units in the
/// last place of the larger (both round an f32 sum once; their sums' orders differ) plus
/// 1e-3 of the output's root mean square. Returns "" or what differs.
std::string compare_outputs(gen::DType dt, const std::vector<unsigned char>& kiln,
                            const std::vector<unsigned char>& cudnn, double* worst) {
  const std::int64_t esize = gen::size_of(dt);
  const std::int64_t count = std::int64_t(cudnn.size()) / esize;
  double sq = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const double b = decode(dt, &cudnn[std::size_t(i * esize)]);
    sq += b * b;
  }
  const double rms = count > 0 ? std::sqrt(sq / double(count)) : 0.0;
  const double ulp = dt == gen::DType::f16 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -7);
  std::int64_t bad = 0, first = -1;
  *worst = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const double a = decode(dt, &kiln[std::size_t(i * esize)]);
    const double b = decode(dt, &cudnn[std::size_t(i * esize)]);
    const double tol = 8 * ulp * std::max(std::abs(a), std::abs(b)) + 1e-3 * rms;
    const double d = std::abs(a - b);
    if (!(d <= tol)) {
      if (bad++ == 0) first = i;
      continue;
    }
    *worst = std::max(*worst, d / (std::abs(b) + rms));
  }
  if (bad == 0) return {};
  return std::to_string(bad) + " of " + std::to_string(count) + " elements differ from cuDNN's; " +
         "the first, " + std::to_string(first) + ": kiln " +
         std::to_string(decode(dt, &kiln[std::size_t(first * esize)])) + ", cuDNN " +
         std::to_string(decode(dt, &cudnn[std::size_t(first * esize)]));
}

#ifdef KILN_BENCH_CUDNN
using bench::cudnn_check;

/// cuDNN's grouped convolution of one problem: descriptors, its fastest algorithm by its own
/// Find (timed on the benchmark's buffers), and that algorithm's workspace.
class CudnnConv {
 public:
  CudnnConv(cudnnHandle_t h, const ConvGroupedParams& p, const rt::Device& gpu,
            const rt::DeviceBuffer<unsigned char>& in, const rt::DeviceBuffer<unsigned char>& w,
            rt::DeviceBuffer<unsigned char>& out)
      : h_(h), pass_(p.pass) {
    const cudnnDataType_t type = p.dtype == gen::DType::f16 ? CUDNN_DATA_HALF : CUDNN_DATA_BFLOAT16;
    cudnn_check(cudnnCreateTensorDescriptor(&x_), "cudnnCreateTensorDescriptor");
    cudnn_check(cudnnCreateTensorDescriptor(&y_), "cudnnCreateTensorDescriptor");
    cudnn_check(cudnnCreateFilterDescriptor(&w_), "cudnnCreateFilterDescriptor");
    cudnn_check(cudnnCreateConvolutionDescriptor(&conv_), "cudnnCreateConvolutionDescriptor");
    cudnn_check(
        cudnnSetTensor4dDescriptor(x_, CUDNN_TENSOR_NHWC, type, int(p.n), p.channels, p.h, p.w),
        "cudnnSetTensor4dDescriptor x");
    cudnn_check(cudnnSetTensor4dDescriptor(y_, CUDNN_TENSOR_NHWC, type, int(p.n), p.channels,
                                           int(ops::conv_out_h(p)), int(ops::conv_out_w(p))),
                "cudnnSetTensor4dDescriptor y");
    cudnn_check(cudnnSetFilter4dDescriptor(w_, type, CUDNN_TENSOR_NHWC, p.channels, p.group_width,
                                           p.filter_h, p.filter_w),
                "cudnnSetFilter4dDescriptor");
    cudnn_check(cudnnSetConvolution2dDescriptor(conv_, p.pad_h, p.pad_w, p.stride, p.stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                "cudnnSetConvolution2dDescriptor");
    cudnn_check(cudnnSetConvolutionGroupCount(conv_, p.channels / p.group_width),
                "cudnnSetConvolutionGroupCount");
    cudnn_check(cudnnSetConvolutionMathType(conv_, CUDNN_TENSOR_OP_MATH),
                "cudnnSetConvolutionMathType");
    // Find times each algorithm with a workspace of up to 1 GiB; the winner's is kept.
    rt::DeviceBuffer<unsigned char> scratch(std::size_t(1) << 30, gpu);
    int found = 0;
    if (pass_ == ConvPass::wgrad) {
      // in: x, w: dy, out: dw.
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      cudnn_check(cudnnFindConvolutionBackwardFilterAlgorithmEx(
                      h_, x_, in.data(), y_, w.data(), conv_, w_, out.data(),
                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &found, perf, scratch.data(),
                      scratch.bytes()),
                  "cudnnFindConvolutionBackwardFilterAlgorithmEx");
      int i = 0;
      while (i < found && perf[i].status != CUDNN_STATUS_SUCCESS) ++i;
      if (i == found) throw Error("cuDNN: no backward-filter algorithm ran");
      bwf_ = perf[i].algo;
      ws_bytes_ = perf[i].memory;
      algo_ = "bwd filter algo " + std::to_string(int(bwf_));
    } else if (pass_ == ConvPass::fprop) {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      cudnn_check(
          cudnnFindConvolutionForwardAlgorithmEx(h_, x_, in.data(), w_, w.data(), conv_, y_,
                                                 out.data(), CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                 &found, perf, scratch.data(), scratch.bytes()),
          "cudnnFindConvolutionForwardAlgorithmEx");
      int i = 0;
      while (i < found && perf[i].status != CUDNN_STATUS_SUCCESS) ++i;
      if (i == found) throw Error("cuDNN: no forward algorithm ran");
      fwd_ = perf[i].algo;
      ws_bytes_ = perf[i].memory;
      algo_ = "fwd algo " + std::to_string(int(fwd_));
    } else {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      cudnn_check(
          cudnnFindConvolutionBackwardDataAlgorithmEx(
              h_, w_, w.data(), y_, in.data(), conv_, x_, out.data(),
              CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &found, perf, scratch.data(), scratch.bytes()),
          "cudnnFindConvolutionBackwardDataAlgorithmEx");
      int i = 0;
      while (i < found && perf[i].status != CUDNN_STATUS_SUCCESS) ++i;
      if (i == found) throw Error("cuDNN: no backward-data algorithm ran");
      bwd_ = perf[i].algo;
      ws_bytes_ = perf[i].memory;
      algo_ = "bwd data algo " + std::to_string(int(bwd_));
    }
    if (ws_bytes_ > 0) ws_ = rt::DeviceBuffer<unsigned char>(ws_bytes_, gpu);
  }
  ~CudnnConv() {
    // The handle outlives the benchmark's streams: leave it on the default stream.
    cudnnSetStream(h_, nullptr);
    cudnnDestroyTensorDescriptor(x_);
    cudnnDestroyTensorDescriptor(y_);
    cudnnDestroyFilterDescriptor(w_);
    cudnnDestroyConvolutionDescriptor(conv_);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  void operator()(rt::StreamRef s, const void* in, const void* w, void* out) const {
    cudnn_check(cudnnSetStream(h_, static_cast<cudaStream_t>(s.handle)), "cudnnSetStream");
    const float alpha = 1.0f, beta = 0.0f;
    if (pass_ == ConvPass::wgrad) {
      cudnn_check(cudnnConvolutionBackwardFilter(h_, &alpha, x_, in, y_, w, conv_, bwf_, ws_.data(),
                                                 ws_bytes_, &beta, w_, out),
                  "cudnnConvolutionBackwardFilter");
    } else if (pass_ == ConvPass::fprop) {
      cudnn_check(cudnnConvolutionForward(h_, &alpha, x_, in, w_, w, conv_, fwd_, ws_.data(),
                                          ws_bytes_, &beta, y_, out),
                  "cudnnConvolutionForward");
    } else {
      cudnn_check(cudnnConvolutionBackwardData(h_, &alpha, w_, w, y_, in, conv_, bwd_, ws_.data(),
                                               ws_bytes_, &beta, x_, out),
                  "cudnnConvolutionBackwardData");
    }
  }
  const std::string& algo() const { return algo_; }

 private:
  cudnnHandle_t h_;
  ConvPass pass_;
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnConvolutionFwdAlgo_t fwd_{};
  cudnnConvolutionBwdDataAlgo_t bwd_{};
  cudnnConvolutionBwdFilterAlgo_t bwf_{};
  std::size_t ws_bytes_ = 0;
  rt::DeviceBuffer<unsigned char> ws_;
  std::string algo_;
};
#endif

}  // namespace

int main(int argc, char** argv) try {
  std::vector<std::string> extra;
  const auto args = prof::BenchArgs::parse(argc, argv, &extra);
  std::vector<gen::DType> dtypes = {gen::DType::f16, gen::DType::bf16};
  std::vector<ConvPass> passes = {ConvPass::fprop, ConvPass::dgrad, ConvPass::wgrad};
  std::vector<Shape> shapes = {{128, 256, 56, 3}, {128, 512, 28, 3}, {256, 128, 56, 3},
                               {128, 256, 56, 5}, {32, 64, 64, 3},   {128, 1024, 14, 3}};
  bool sweep = false, block_an_item = false, ordinary_launch = false;
  std::optional<ops::ConvConfig> pinned;
  std::vector<ops::ConvConfig> compare;
  auto parse_config = [](const std::string& flag, const std::string& text) {
    try {
      return nlohmann::json::parse(text).get<ops::ConvConfig>();
    } catch (const std::exception& e) {
      throw Error("conv: " + flag + " takes a ConvConfig as JSON ({\"block_p\":56,...}); '" + text +
                  "': " + e.what());
    }
  };
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const std::string& a = extra[i];
    if (a == "--sweep") {
      sweep = true;
    } else if (a == "--block-an-item") {
      block_an_item = true;
    } else if (a == "--ordinary-launch") {
      ordinary_launch = true;
    } else if (a == "--config" && i + 1 < extra.size()) {
      pinned = parse_config(a, extra[++i]);
    } else if (a == "--compare" && i + 1 < extra.size()) {
      compare.push_back(parse_config(a, extra[++i]));
    } else if (a == "--dtypes" && i + 1 < extra.size()) {
      dtypes.clear();
      for (const auto& d : split(extra[++i], ','))
        dtypes.push_back(nlohmann::json(d).get<gen::DType>());
    } else if (a == "--passes" && i + 1 < extra.size()) {
      passes.clear();
      for (const auto& d : split(extra[++i], ','))
        passes.push_back(nlohmann::json(d).get<ConvPass>());
    } else if (a == "--shapes" && i + 1 < extra.size()) {
      shapes.clear();
      for (const auto& s : split(extra[++i], ',')) {
        const auto parts = split(s, ':');
        if (parts.size() != 4) throw Error("conv: --shapes takes N:C:HW:R,..., not " + s);
        shapes.push_back(
            {std::stoll(parts[0]), std::stoi(parts[1]), std::stoi(parts[2]), std::stoi(parts[3])});
      }
    } else {
      throw Error("conv: unknown argument '" + a +
                  "' (besides the bench flags: --dtypes LIST, --passes LIST, --shapes LIST, "
                  "--sweep, --config JSON, --compare JSON, --block-an-item, --ordinary-launch)");
    }
  }
  if (rt::device_count() == 0) {
    std::printf("no GPU found: the conv benchmark needs one\n");
    return 0;
  }
  rt::Device gpu(0);
  gpu.make_current();
  const auto& props = gpu.properties();
  auto& factory = ops::conv_grouped_factory();
#ifdef KILN_BENCH_CUDNN
  cudnnHandle_t cudnn = nullptr;
  cudnn_check(cudnnCreate(&cudnn), "cudnnCreate");
  const std::string peer = "cudnn " + std::to_string(cudnnGetVersion());
#else
  const std::string peer = "cuDNN not found at build time";
#endif
  std::printf("# grouped convolution (groups of 8, NHWC) on %s (%s)\n\n", props.name.c_str(),
              peer.c_str());
  nlohmann::json json = {{"device", props.name},
                         {"peer", peer},
                         {"op", "conv2d_grouped"},
                         {"problems", nlohmann::json::array()}};
  std::string summary =
      "| pass | N, C, HW, R | dtype | kiln kernel | kiln ms | kiln GB/s | % of copy | cuDNN ms "
      "| x cuDNN | best config (sweep, --compare) |\n| --- | --- | --- | --- | --- | --- | --- | "
      "--- | --- "
      "| --- |\n";
  for (ConvPass pass : passes) {
    for (gen::DType dt : dtypes) {
      for (const Shape& s : shapes) {
        const ConvGroupedParams p = problem_of(s, dt, pass);
        ops::validate_conv_grouped(p);
        // fprop: x, w -> y; dgrad: dy, w -> dx; wgrad: x, dy (in `w`'s place) -> dw.
        const bool fprop = pass == ConvPass::fprop;
        const bool wgrad = pass == ConvPass::wgrad;
        const std::size_t in_n = std::size_t(fprop || wgrad ? ops::conv_input_elements(p)
                                                            : ops::conv_output_elements(p));
        const std::size_t out_n = std::size_t(wgrad   ? ops::conv_weight_elements(p)
                                              : fprop ? ops::conv_output_elements(p)
                                                      : ops::conv_input_elements(p));
        const auto input = make_input(dt, in_n, 101);
        auto weights = make_input(
            dt, std::size_t(wgrad ? ops::conv_output_elements(p) : ops::conv_weight_elements(p)),
            202);
        rt::DeviceBuffer<unsigned char> in(input.size(), gpu), w(weights.size(), gpu);
        rt::DeviceBuffer<unsigned char> out(out_n * std::size_t(gen::size_of(dt)), gpu);
        rt::DeviceBuffer<unsigned char> copy_out(input.size(), gpu);
        in.copy_from(input);
        w.copy_from(weights);
        const double bytes = double(ops::conv_min_bytes(p));
        const double flops = double(ops::conv_flops(p));
        const std::string label = std::string(gen::to_string(dt)) + " " +
                                  ops::detail::conv_pass_name(pass) + " " + std::to_string(s.n) +
                                  ", " + std::to_string(s.c) + ", " + std::to_string(s.hw) + ", " +
                                  std::to_string(s.r);

        using Kernel = factory::Kernel<ConvGroupedParams, ops::ConvConfig>;
        const auto g = ops::detail::conv_geometry(p);
        // wgrad's partial rows (allocated here, outside the timing) and their column sum.
        std::optional<rt::DeviceBuffer<float>> partial;
        if (wgrad) {
          partial.emplace(std::size_t(4 * props.multiprocessors * ops::conv_weight_elements(p)),
                          gpu);
        }
        const auto* column_sum = wgrad ? &ops::column_sum_factory().get(
                                             {dt, std::int32_t(ops::conv_weight_elements(p))}, gpu)
                                       : nullptr;
        auto run = [&](const Kernel& k, rt::StreamRef st, bool a_block_an_item = false) {
          rt::LaunchConfig lc = a_block_an_item ? ops::detail::conv_launch(p, k.config())
                                                : ops::detail::conv_launch_for(p, k);
          lc.stream = st;
          if (wgrad) {
            k.launch(lc, static_cast<const void*>(in.data()), static_cast<const void*>(w.data()),
                     static_cast<void*>(partial->data()), int(p.n), int(g.in_h), int(g.in_w),
                     int(g.out_h), int(g.out_w), int(p.channels));
            rt::LaunchConfig slc = column_sum->launch_config();
            slc.stream = st;
            slc.programmatic = !ordinary_launch;  // as conv2d_grouped_wgrad launches it
            column_sum->launch(slc, static_cast<const float*>(partial->data()),
                               static_cast<void*>(out.data()), static_cast<void*>(nullptr),
                               int(lc.grid.x / unsigned(p.channels / k.config().block_c)));
            return;
          }
          k.launch(lc, static_cast<const void*>(in.data()), static_cast<const void*>(w.data()),
                   static_cast<void*>(out.data()), static_cast<const void*>(nullptr),
                   static_cast<const void*>(nullptr), int(p.n), int(g.in_h), int(g.in_w),
                   int(g.out_h), int(g.out_w), int(p.channels));
        };
        std::shared_ptr<const Kernel> pinned_kernel;
        if (pinned) {
          auto built = factory.build_all(p, {*pinned}, gpu);
          if (!built[0].kernel) throw Error("conv: --config: " + built[0].reason);
          pinned_kernel = built[0].kernel;
        }
        const Kernel& kernel = pinned ? *pinned_kernel : factory.get(p, gpu);
        out.fill_bytes(0xff);
        run(kernel, rt::StreamRef{});
        spot_check(p, dt, input, weights, out, kernel.name());
        const std::vector<unsigned char> kiln_out = out.to_vector();

        prof::Bench bench(args.options());
        bench.add(
            "copy", [&](rt::StreamRef st) { copy_out.copy_from(in, st); },
            2.0 * double(input.size()));
        bench.add(
            "kiln " + kernel.name(), [&](rt::StreamRef st) { run(kernel, st); }, bytes, flops);
        if (!wgrad) {
          const unsigned grid = ops::detail::conv_launch_for(p, kernel).grid.x;
          std::printf("%s: %u blocks walk %lld items (%d an SM at once)\n", label.c_str(), grid,
                      (long long)ops::detail::conv_work_items(p, kernel.config()),
                      ops::detail::conv_resident(p, kernel));
          if (block_an_item) {
            bench.add(
                "kiln, a block an item", [&](rt::StreamRef st) { run(kernel, st, true); }, bytes,
                flops);
          }
        }
        std::string cudnn_algo;
#ifdef KILN_BENCH_CUDNN
        std::string mismatch;
        std::optional<CudnnConv> cud;
        try {
          cud.emplace(cudnn, p, gpu, in, w, out);
          out.fill_bytes(0xff);
          (*cud)(rt::StreamRef{}, in.data(), w.data(), out.data());
          gpu.make_current();
          rt::driver().check(rt::driver().context_synchronize(), "context_synchronize");
          spot_check(p, dt, input, weights, out, "cudnn");
          double worst = 0;
          mismatch = compare_outputs(dt, kiln_out, out.to_vector(), &worst);
          if (mismatch.empty()) {
            std::printf(
                "%s: kiln's output matches cuDNN's in every element (largest difference "
                "%.2e of |cuDNN| + rms)\n",
                label.c_str(), worst);
          }
          cudnn_algo = cud->algo();
          bench.add(
              "cudnn", [&](rt::StreamRef st) { (*cud)(st, in.data(), w.data(), out.data()); },
              bytes, flops);
        } catch (const std::exception& e) {
          std::printf("cuDNN skipped for %s: %s\n", label.c_str(), e.what());
          cud.reset();
        }
        if (!mismatch.empty()) throw Error("conv: " + label + ": " + mismatch);
#endif
        std::vector<std::shared_ptr<const Kernel>> swept;
        // The configs timed beside kiln's: --compare's, then (--sweep) every candidate.
        std::vector<ops::ConvConfig> configs = compare;
        if (sweep) {
          for (const auto& c : factory.configs(p, props)) {
            if (std::find(configs.begin(), configs.end(), c) == configs.end()) configs.push_back(c);
          }
        }
        if (!configs.empty()) {
          auto built = factory.build_all(p, configs, gpu);
          for (std::size_t i = 0; i < configs.size(); ++i) {
            const std::string name = factory.kernel_name(p, configs[i]);
            if (name == kernel.name()) continue;
            try {
              auto k = built[i].kernel;
              if (!k) throw Error(built[i].reason);
              out.fill_bytes(0xff);
              run(*k, rt::StreamRef{});
              spot_check(p, dt, input, weights, out, name);
              swept.push_back(k);
              bench.add(
                  name, [&, k](rt::StreamRef st) { run(*k, st); }, bytes, flops);
            } catch (const std::exception& e) {
              std::printf("%s left out: %s\n", name.c_str(), e.what());
            }
          }
        }

        std::printf("## %s\n\n", label.c_str());
        const auto results = bench.run();
        std::fputs(prof::markdown(results).c_str(), stdout);
        std::printf("\n");
        const double copy = gbps_of(results, "copy");
        const double kiln_gbps = gbps_of(results, "kiln " + kernel.name());
        const double cudnn_gbps = gbps_of(results, "cudnn");
        std::string best = kernel.name();
        double best_gbps = kiln_gbps;
        for (const auto& r : results) {
          if (r.name != "copy" && r.name != "cudnn" && r.gbps() > best_gbps) {
            best = r.name;
            best_gbps = r.gbps();
          }
        }
        const double kiln_ms = bytes / kiln_gbps / 1e6;
        const double cudnn_ms = cudnn_gbps > 0 ? bytes / cudnn_gbps / 1e6 : 0;
        summary += fmt::format(
            "| {} | {}, {}, {}, {} | {} | {} | {:.3f} | {:.0f} | {:.1f}% | {} | {} | {} |\n",
            ops::detail::conv_pass_name(pass), s.n, s.c, s.hw, s.r, gen::to_string(dt),
            kernel.name(), kiln_ms, kiln_gbps, 100 * kiln_gbps / copy,
            cudnn_gbps > 0 ? fmt::format("{:.3f}", cudnn_ms) : "-",
            cudnn_gbps > 0 ? fmt::format("{:.2f}x", kiln_gbps / cudnn_gbps) : "-",
            sweep || !compare.empty() ? fmt::format("{} {:.0f} GB/s", best, best_gbps) : "-");
        nlohmann::json j = {{"pass", ops::detail::conv_pass_name(pass)},
                            {"n", s.n},
                            {"c", s.c},
                            {"hw", s.hw},
                            {"r", s.r},
                            {"dtype", gen::to_string(dt)},
                            {"kernel", kernel.name()},
                            {"kiln_ms", kiln_ms},
                            {"kiln_gbps", kiln_gbps},
                            {"copy_gbps", copy},
                            {"percent_of_copy", 100 * kiln_gbps / copy},
                            {"results", prof::to_json(results)}};
        if (cudnn_gbps > 0) {
          j["cudnn_ms"] = cudnn_ms;
          j["cudnn_algo"] = cudnn_algo;
          j["speedup_vs_cudnn"] = kiln_gbps / cudnn_gbps;
        }
        if (sweep) j["best"] = {{"kernel", best}, {"gbps", best_gbps}};
        json["problems"].push_back(std::move(j));
      }
    }
  }
  std::printf("# Summary\n\n%s", summary.c_str());
#ifdef KILN_BENCH_CUDNN
  cudnnDestroy(cudnn);
#endif
  if (!args.json_path.empty()) {
    std::ofstream f(args.json_path);
    f << json.dump(2) << '\n';
    if (!f.flush()) throw Error("conv: cannot write " + args.json_path);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
