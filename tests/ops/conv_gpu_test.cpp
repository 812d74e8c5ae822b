// kiln::ops::conv2d_grouped on a GPU: every candidate config of fprop, dgrad and wgrad on small
// ragged problems (odd images, N = 1, C = 8, each filter size, both strides, uneven padding, each
// group width) and on wider ones (several column tiles, strips and channel tiles), a grid smaller
// than the work (blocks walking several items), and the API with each fused epilogue in f16 and
// bf16 and its refusals. Every output element is checked against the double-precision reference of
// tests/ops/conv_reference.hpp, outputs poisoned with NaN first. Skips (exit 77) where there is no
// GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "conv_reference.hpp"
#include "kiln/jit.hpp"
#include "kiln/ops/conv.hpp"
#include "kiln/rt.hpp"
#include "row_test_support.hpp"

using namespace kiln;
using kiln_test::decode;
using kiln_test::encode;
using kiln_test::half_ulp;
using ops::ConvActivation;
using ops::ConvGroupedParams;
using ops::ConvPass;

namespace {

/// Rounds each value to `dt` (the inputs the device sees), returning the patterns.
std::vector<std::uint16_t> quantize(gen::DType dt, std::vector<double>& v) {
  std::vector<std::uint16_t> bits(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    bits[i] = encode<std::uint16_t>(dt, float(v[i]));
    v[i] = decode(dt, bits[i]);
  }
  return bits;
}

std::vector<double> random_values(std::size_t n, std::mt19937& rng, double scale = 1.0) {
  std::uniform_real_distribution<double> u(-scale, scale);
  std::vector<double> v(n);
  for (double& x : v) x = u(rng);
  return v;
}

std::vector<double> absolute(std::vector<double> v) {
  for (double& x : v) x = std::abs(x);
  return v;
}

template <class T>
rt::DeviceBuffer<T> upload(const std::vector<std::uint16_t>& bits, const rt::Device& gpu) {
  rt::DeviceBuffer<T> b(bits.size(), gpu);
  std::vector<T> host(bits.size());
  std::memcpy(host.data(), bits.data(), bits.size() * 2);
  if (!host.empty()) b.copy_from(host);
  return b;
}

template <class T>
std::vector<std::uint16_t> download(const rt::DeviceBuffer<T>& b) {
  const std::vector<T> host = b.to_vector();
  std::vector<std::uint16_t> bits(host.size());
  std::memcpy(bits.data(), host.data(), host.size() * 2);
  return bits;
}

/// Every element of `got` (patterns of `dt`) against `want` within `bound`; the first few
/// misses are printed with `name` (the output's name).
void check_elements(gen::DType dt, const std::vector<std::uint16_t>& got,
                    const std::vector<double>& want, const std::vector<double>& bound,
                    const std::string& what, const char* name) {
  REQUIRE(got.size() == want.size());
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double v = decode(dt, got[i]);
    if (!(std::abs(v - want[i]) <= bound[i])) {
      if (bad < 5) {
        MESSAGE(what << ": " << name << " element " << i << " is " << v << ", want " << want[i]
                     << " within " << bound[i]);
      }
      ++bad;
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " elements wrong");
}

/// One pass of one problem: its inputs on the host (as the device sees them) and the device,
/// its output poisoned with NaN, and the reference.
template <class T>
struct ConvData {
  ConvGroupedParams p;
  std::vector<double> in, w, bias, residual, want, bound;
  rt::DeviceBuffer<T> d_in, d_w, d_out, d_bias, d_residual;

  ConvData(const ConvGroupedParams& problem, const rt::Device& gpu, std::mt19937& rng)
      : p(problem) {
    const bool fprop = p.pass == ConvPass::fprop;
    const std::int64_t in_n = fprop ? ops::conv_input_elements(p) : ops::conv_output_elements(p);
    const std::int64_t out_n = fprop ? ops::conv_output_elements(p) : ops::conv_input_elements(p);
    in = random_values(std::size_t(in_n), rng, 2.0);
    w = random_values(std::size_t(ops::conv_weight_elements(p)), rng, 0.5);
    bias = random_values(std::size_t(p.channels), rng, 1.0);
    residual = random_values(std::size_t(out_n), rng, 1.0);
    d_in = upload<T>(quantize(p.dtype, in), gpu);
    d_w = upload<T>(quantize(p.dtype, w), gpu);
    d_bias = upload<T>(quantize(p.dtype, bias), gpu);
    d_residual = upload<T>(quantize(p.dtype, residual), gpu);
    d_out = rt::DeviceBuffer<T>(std::size_t(out_n), gpu);
    d_out.fill_bytes(0xff);  // NaN: an element left unwritten fails
    // The reference, and each element's sum of |products| (the same pass on |inputs|).
    want = fprop ? kiln_test::conv_fprop(p, in, w) : kiln_test::conv_dgrad(p, in, w);
    bound = fprop ? kiln_test::conv_fprop(p, absolute(in), absolute(w))
                  : kiln_test::conv_dgrad(p, absolute(in), absolute(w));
    const std::int64_t taps = std::int64_t(p.filter_h) * p.filter_w * p.group_width;
    const double u = std::ldexp(1.0, -23);  // f32 accumulation, and the epilogue's adds
    for (std::size_t i = 0; i < want.size(); ++i) {
      const std::size_t k = i % std::size_t(p.channels);
      double v = want[i];
      double err = 2.0 * double(taps) * u * bound[i];
      if (p.bias) v += bias[k];
      if (p.residual) v += residual[i];
      err += 4.0 * u * (std::abs(v) + std::abs(bias[k]) + std::abs(residual[i]));
      if (p.activation == ConvActivation::relu) v = std::max(v, 0.0);
      if (p.activation == ConvActivation::silu) {
        v = v / (1.0 + std::exp(-v));
        err = err * 1.2 + 1e-6 * std::abs(v);  // SiLU's slope is at most 1.1; __expf's error
      }
      want[i] = v;
      bound[i] = err + half_ulp(p.dtype, std::abs(v) + err);  // and the final rounding
    }
  }

  /// The launch's arguments with the kernel's geometry, through `fn`.
  void launch(const rt::Function& fn, const rt::LaunchConfig& lc) {
    const auto g = ops::detail::conv_geometry(p);
    rt::launch(fn, lc, d_in.data(), d_w.data(), d_out.data(), p.bias ? d_bias.data() : nullptr,
               p.residual ? d_residual.data() : nullptr, int(p.n), int(g.in_h), int(g.in_w),
               int(g.out_h), int(g.out_w), int(p.channels));
  }

  /// Every element of the output against the reference.
  void check(const std::string& what) const {
    check_elements(p.dtype, download(d_out), want, bound, what, "output");
  }
};

/// Problems wide and tall enough for several column tiles, strips and channel tiles.
std::vector<ConvGroupedParams> wide_problems() {
  const auto problem = kiln_test::conv_problem;
  return {
      problem(8, 64, 3, 3, 1, 1, 1, 2, 37, 150),  problem(8, 128, 3, 3, 2, 1, 1, 1, 70, 141),
      problem(16, 64, 5, 5, 1, 2, 2, 1, 40, 131), problem(32, 128, 3, 3, 1, 1, 1, 1, 19, 67),
      problem(8, 256, 3, 3, 1, 1, 1, 2, 56, 56),  // the benchmark's first layer, 2 images
  };
}

void every_config(ConvGroupedParams p, const rt::Device& gpu, std::mt19937& rng) {
  auto& factory = ops::conv_grouped_factory();
  rt::Stream stream(gpu);
  const auto configs = factory.configs(p, gpu.properties());
  REQUIRE_FALSE(configs.empty());
  const auto built = factory.build_all(p, configs, gpu);  // compiled in parallel
  ConvData<f16> d(p, gpu, rng);
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = factory.kernel_name(p, configs[i]);
    CAPTURE(name);
    REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
    // The API's grid (as many blocks as the device holds at once, at most one an item),
    // then 3 blocks: each walks many items, its copies carrying from one item into the next
    // where the config's items are short, and restages its weights between channel tiles.
    const rt::LaunchConfig api = ops::detail::conv_launch_for(p, *built[i].kernel);
    REQUIRE(api.grid.x >= 1u);
    REQUIRE(std::int64_t(api.grid.x) <= ops::detail::conv_work_items(p, configs[i]));
    for (unsigned blocks : {api.grid.x, 3u}) {
      rt::LaunchConfig lc = api;
      lc.grid.x = blocks;
      lc.stream = stream;
      d.d_out.fill_bytes(0xff);
      d.launch(built[i].kernel->function(), lc);
      stream.synchronize();
      d.check(name + " on " + std::to_string(blocks) + " blocks");
    }
  }
}

/// Every candidate config of `pass` on the ragged and wide problems (both strides).
void every_config_of(ConvPass pass) {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  auto problems = kiln_test::conv_ragged_problems();
  for (const auto& p : wide_problems()) problems.push_back(p);
  for (auto p : problems) {
    p.pass = pass;
    CAPTURE(nlohmann::json(p).dump());
    every_config(p, gpu, rng);
  }
}

}  // namespace

// (Two cases, so that each can run on its own where the kernel cache is cold: every
// candidate of every problem is compiled first.)
TEST_CASE("every candidate config: fprop, ragged and wide problems, both strides") {
  every_config_of(ConvPass::fprop);
}

TEST_CASE("every candidate config: dgrad, ragged and wide problems, both strides") {
  every_config_of(ConvPass::dgrad);
}

namespace {

/// The weight gradient of one problem: x and dy on the host (as the device sees them) and
/// the device, dw poisoned with NaN, the reference and each element's bound.
template <class T>
struct WgradData {
  ConvGroupedParams p;
  std::vector<double> x, dy, want, bound;
  rt::DeviceBuffer<T> d_x, d_dy, d_dw;

  WgradData(const ConvGroupedParams& problem, const rt::Device& gpu, std::mt19937& rng)
      : p(problem) {
    p.pass = ConvPass::wgrad;
    p.dtype = ops::detail::conv_dtype_of<T>();
    x = random_values(std::size_t(ops::conv_input_elements(p)), rng, 2.0);
    dy = random_values(std::size_t(ops::conv_output_elements(p)), rng, 1.0);
    d_x = upload<T>(quantize(p.dtype, x), gpu);
    d_dy = upload<T>(quantize(p.dtype, dy), gpu);
    d_dw = rt::DeviceBuffer<T>(std::size_t(ops::conv_weight_elements(p)), gpu);
    d_dw.fill_bytes(0xff);
    want = kiln_test::conv_wgrad(p, x, dy);
    bound = kiln_test::conv_wgrad(p, absolute(x), absolute(dy));
    // Each element sums at most N P Q products in f32 (the blocks' partial sums, then
    // theirs), then rounds once.
    const double terms = double(p.n) * double(ops::conv_out_h(p) * ops::conv_out_w(p));
    const double u = std::ldexp(1.0, -23);
    for (std::size_t i = 0; i < want.size(); ++i) {
      const double err = 2.0 * terms * u * bound[i] + 1e-30;
      bound[i] = err + half_ulp(p.dtype, std::abs(want[i]) + err);
    }
  }

  /// The kernel `k` (its launch `lc`) and the column sum of its partial rows into dw.
  void launch(const rt::Function& fn, const rt::LaunchConfig& lc, const ops::ConvConfig& c,
              const rt::Device& gpu, rt::StreamRef stream) {
    const auto g = ops::detail::conv_geometry(p);
    const std::int64_t cols = ops::conv_weight_elements(p);
    const std::int64_t rounds = std::int64_t(lc.grid.x) / (p.channels / c.block_c);
    rt::DeviceBuffer<float> partial(std::size_t(rounds * cols), gpu);
    partial.fill_bytes(0xff);  // every partial row must be written
    rt::launch(fn, lc, d_x.data(), d_dy.data(), partial.data(), int(p.n), int(g.in_h), int(g.in_w),
               int(g.out_h), int(g.out_w), int(p.channels));
    const auto& sum = ops::column_sum_factory().get({p.dtype, std::int32_t(cols)}, gpu);
    rt::LaunchConfig slc = sum.launch_config();
    slc.stream = stream;
    sum.launch(slc, static_cast<const float*>(partial.data()), d_dw.data(),
               static_cast<T*>(nullptr), int(rounds));
    gpu.synchronize();
  }

  void check(const std::string& what) const {
    check_elements(p.dtype, download(d_dw), want, bound, what, "dw");
  }
};

/// wgrad with `c` on d's problem: the launch the factory gives it, then (with `one_round`)
/// a grid of one round, whose blocks walk every item of their channel tile.
void wgrad_config(WgradData<f16>& d, const ops::ConvConfig& c, const rt::Device& gpu,
                  bool one_round) {
  auto& factory = ops::conv_grouped_factory();
  CAPTURE(nlohmann::json(d.p).dump());
  const std::string name = factory.kernel_name(d.p, c);
  CAPTURE(name);
  const auto built = factory.build_all(d.p, {c}, gpu);
  REQUIRE_MESSAGE(built[0].kernel, built[0].reason);
  rt::Stream stream(gpu);
  rt::LaunchConfig lc = built[0].kernel->launch_config();
  lc.stream = stream;
  d.d_dw.fill_bytes(0xff);
  d.launch(built[0].kernel->function(), lc, c, gpu, stream);
  d.check(name);
  if (one_round) {
    lc.grid.x = unsigned(d.p.channels / c.block_c);
    d.d_dw.fill_bytes(0xff);
    d.launch(built[0].kernel->function(), lc, c, gpu, stream);
    d.check(name + " in one round");
  }
}

}  // namespace

TEST_CASE("wgrad: every candidate config, ragged and wide problems, both strides") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  auto& factory = ops::conv_grouped_factory();
  auto problems = kiln_test::conv_ragged_problems();
  for (const auto& p : wide_problems()) problems.push_back(p);
  for (auto p : problems) {
    p.pass = ConvPass::wgrad;
    const auto configs = factory.configs(p, gpu.properties());
    REQUIRE_FALSE(configs.empty());
    factory.build_all(p, configs, gpu);  // compiled in parallel
    WgradData<f16> d(p, gpu, rng);       // (the reference once a problem)
    // (Fewer rounds than items for the first: blocks walk several items each.)
    for (std::size_t i = 0; i < configs.size(); ++i) wgrad_config(d, configs[i], gpu, i == 0);
  }
}

TEST_CASE("wgrad: steps of three and four rows, whose last step runs past the strip") {
  // (The candidates take three rows a step only for strips of 48 rows or more: here also
  // stride 2, 5 x 5, groups of 16 and 32, and four rows a step.)
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  const auto problem = kiln_test::conv_problem;
  auto run = [&](const ConvGroupedParams& p, const ops::ConvConfig& c) {
    WgradData<f16> d(p, gpu, rng);
    wgrad_config(d, c, gpu, true);
  };
  run(problem(8, 64, 3, 3, 2, 1, 1, 2, 101, 45), {51, 32, 64, 1, 8, 2, 3});
  run(problem(16, 64, 5, 5, 1, 2, 2, 1, 50, 37), {50, 32, 16, 1, 8, 2, 3});
  run(problem(32, 64, 3, 3, 1, 1, 1, 2, 19, 20), {8, 32, 32, 1, 8, 2, 3});
  run(problem(8, 64, 3, 3, 1, 1, 1, 2, 23, 33), {16, 32, 64, 1, 8, 3, 4});
  run(problem(8, 128, 5, 5, 1, 2, 2, 1, 29, 29), {29, 32, 64, 1, 8, 2, 4});
}

TEST_CASE("a grid smaller than the work: blocks walk several items and restage weights") {
  rt::Device gpu(0);
  std::mt19937 rng(5);
  auto& factory = ops::conv_grouped_factory();
  auto p = kiln_test::conv_problem(8, 64, 3, 3, 1, 1, 1, 3, 21, 40);
  for (ConvPass pass : {ConvPass::fprop, ConvPass::dgrad}) {
    p.pass = pass;
    // 3 x 3 x 2 x 4 = 72 items of 8, 8 and 5 output rows: one and two rows a step, the
    // copies carrying into the next item (short items) and not (strips of 32 rows, one item
    // an image).
    for (const ops::ConvConfig& c :
         {ops::ConvConfig{8, 32, 16, 2, 2, 2, 1}, ops::ConvConfig{8, 32, 16, 2, 2, 1, 2},
          ops::ConvConfig{32, 32, 16, 2, 2, 2, 1}}) {
      const bool short_items = c.block_p == 8;
      CHECK(ops::detail::conv_carries(p, c) == short_items);
      const auto built = factory.build_all(p, {c}, gpu);
      REQUIRE_MESSAGE(built[0].kernel, built[0].reason);
      for (unsigned blocks : {1u, 5u, 7u}) {
        ConvData<f16> d(p, gpu, rng);
        rt::LaunchConfig lc = built[0].kernel->launch_config();
        REQUIRE(lc.grid.x == (short_items ? 72u : 24u));
        lc.grid.x = blocks;
        d.launch(built[0].kernel->function(), lc);
        d.check(factory.kernel_name(p, c) + " on " + std::to_string(blocks) + " blocks");
      }
    }
  }
}

namespace {

template <class T>
void through_the_api(ConvGroupedParams p, const rt::Device& gpu, std::mt19937& rng) {
  rt::Stream stream(gpu);
  p.dtype = ops::detail::conv_dtype_of<T>();
  for (int e = 0; e < 4; ++e) {
    p.pass = ConvPass::fprop;
    p.bias = e >= 1;
    p.activation = e == 1   ? ConvActivation::relu
                   : e >= 2 ? ConvActivation::silu
                            : ConvActivation::none;
    p.residual = e >= 2;
    ConvData<T> d(p, gpu, rng);
    ops::ConvEpilogue<T> epilogue{p.bias ? &d.d_bias : nullptr, p.activation,
                                  p.residual ? &d.d_residual : nullptr};
    if (e == 3) {
      // The residual is the output itself: y = silu(conv + bias + y).
      d.d_out.copy_from(d.d_residual);
      epilogue.residual = &d.d_out;
    }
    ops::conv2d_grouped(d.d_in, d.d_w, d.d_out, p, epilogue, stream);
    stream.synchronize();
    d.check("conv2d_grouped epilogue " + std::to_string(e));
  }
  {
    p.pass = ConvPass::dgrad;
    p.bias = p.residual = false;
    p.activation = ConvActivation::none;
    ConvData<T> d(p, gpu, rng);
    ops::conv2d_grouped_dgrad(d.d_in, d.d_w, d.d_out, p, stream);
    stream.synchronize();
    d.check("conv2d_grouped_dgrad");
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST_CASE("kiln::ops::conv2d_grouped: the factory's choice, each epilogue, f16 and bf16") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  for (const auto& p : {kiln_test::conv_problem(8, 64, 3, 3, 1, 1, 1, 2, 29, 31),
                        kiln_test::conv_problem(16, 96, 5, 5, 2, 2, 2, 1, 17, 23),
                        kiln_test::conv_problem(32, 64, 1, 1, 1, 0, 0, 3, 9, 9)}) {
    CAPTURE(nlohmann::json(p).dump());
    through_the_api<f16>(p, gpu, rng);
    through_the_api<bf16>(p, gpu, rng);
  }
}

TEST_CASE("kiln::ops::conv2d_grouped_wgrad: with and without a workspace, the same bits") {
  rt::Device gpu(0);
  std::mt19937 rng(9);
  rt::Stream stream(gpu);
  for (const auto& p : {kiln_test::conv_problem(8, 64, 3, 3, 1, 1, 1, 3, 30, 33),
                        kiln_test::conv_problem(16, 32, 5, 5, 2, 2, 2, 2, 19, 21)}) {
    CAPTURE(nlohmann::json(p).dump());
    WgradData<bf16> d(p, gpu, rng);
    ops::conv2d_grouped_wgrad(d.d_x, d.d_dy, d.d_dw, p, stream);
    stream.synchronize();
    d.check("conv2d_grouped_wgrad");
    const auto first = download(d.d_dw);
    rt::DeviceBuffer<float> ws(std::size_t(ops::conv2d_grouped_wgrad_workspace<bf16>(p, gpu)), gpu);
    d.d_dw.fill_bytes(0xff);
    ops::conv2d_grouped_wgrad(d.d_x, d.d_dy, d.d_dw, p, stream, &ws);
    stream.synchronize();
    CHECK(download(d.d_dw) == first);
  }
  // An empty batch: dw is zero.
  auto p = kiln_test::conv_problem(8, 16, 3, 3, 1, 1, 1, 0, 5, 5);
  rt::DeviceBuffer<f16> x(1, gpu), dy(1, gpu), dw(std::size_t(ops::conv_weight_elements(p)), gpu);
  dw.fill_bytes(0xff);
  ops::conv2d_grouped_wgrad(x, dy, dw, p, stream);
  stream.synchronize();
  for (std::uint16_t b : download(dw)) CHECK(b == 0);
}

TEST_CASE("kiln::ops::conv2d_grouped refuses what it cannot do, saying what") {
  rt::Device gpu(0);
  auto p = kiln_test::conv_problem(8, 16, 3, 3, 1, 1, 1, 1, 8, 8);
  rt::DeviceBuffer<f16> x(std::size_t(ops::conv_input_elements(p)), gpu);
  rt::DeviceBuffer<f16> w(std::size_t(ops::conv_weight_elements(p)), gpu);
  rt::DeviceBuffer<f16> y(std::size_t(ops::conv_output_elements(p)), gpu);
  rt::DeviceBuffer<f16> small(10, gpu);
  CHECK(error_of([&] { ops::conv2d_grouped(x, w, small, p); }).find("y needs 1024 elements") !=
        std::string::npos);
  CHECK(error_of([&] { ops::conv2d_grouped(small, w, y, p); }).find("x needs") !=
        std::string::npos);
  CHECK(error_of([&] { ops::conv2d_grouped(x, w, x, p); }).find("cannot run in place") !=
        std::string::npos);
  ops::ConvEpilogue<f16> e{&small, ConvActivation::relu, nullptr};
  CHECK(error_of([&] { ops::conv2d_grouped(x, w, y, p, e); }).find("the bias needs 16") !=
        std::string::npos);
  auto q = p;
  q.channels = 12;
  CHECK(error_of([&] { ops::conv2d_grouped(x, w, y, q); }).find("channels = 12") !=
        std::string::npos);
  // An empty batch launches nothing.
  q = p;
  q.n = 0;
  CHECK(error_of([&] { ops::conv2d_grouped(x, w, y, q); }).empty());
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: conv_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
