// kiln::ops::gemm on a GPU against a double-precision CPU reference: ragged shapes (1x1x8 to
// 4096^3, sampled where large), all four layouts, f16 and bf16 in, f16, bf16 and f32 out,
// rows that are not whole 16-byte vectors, every candidate config on ragged problems, inputs
// of large dynamic range, alpha and beta, and every ready-made epilogue plus a user's own.
// Outputs are poisoned with NaN first, so an element the kernel never writes fails.
// Skips (exit 77) without a GPU of sm_80 or later.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "../half_bits.hpp"
#include "kiln/ops/gemm.hpp"
#include "kiln/rt.hpp"
#include "row_test_support.hpp"

using namespace kiln;
using gen::DType;
using ops::GemmLayout;
using ops::GemmProblem;

namespace {

std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

std::uint16_t to_bits(DType t, float v) {
  return t == DType::f16 ? kiln_test::float_to_half(v) : kiln_test::float_to_bf16(v);
}
float from_bits(DType t, std::uint16_t b) {
  return t == DType::f16 ? kiln_test::half_to_float(b) : kiln_test::bf16_to_float(b);
}

/// A matrix of 16-bit values with the values they hold.
struct Input {
  std::vector<std::uint16_t> bits;
  std::vector<double> values;
};

/// Uniform in [-1, 1), or with `wide` values of magnitudes 2^-6 to 2^6 as well.
Input random_input(DType t, std::size_t n, bool wide = false) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-6, 6);
  Input in;
  in.bits.resize(n);
  in.values.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = wide ? std::ldexp(u(rng()), e(rng())) : u(rng());
    in.bits[i] = to_bits(t, v);
    in.values[i] = from_bits(t, in.bits[i]);
  }
  return in;
}

struct Case {
  DType in = DType::f16;
  DType out = DType::f32;
  GemmProblem problem;
};

/// Element (r, c) of op(X) for X stored (rows, cols) row-major, transposed or not.
double at(const std::vector<double>& x, std::int64_t cols, bool transposed, std::int64_t r,
          std::int64_t c) {
  return transposed ? x[std::size_t(c * cols + r)] : x[std::size_t(r * cols + c)];
}

/// What an epilogue does, on the host.
using HostEpilogue = double (*)(double v, std::int64_t m, std::int64_t n, const void* ctx);

struct Reference {
  const Input& a;
  const Input& b;
  const std::vector<double>& c0;  // C before the call (used when beta != 0)
  HostEpilogue epilogue = nullptr;
  const void* ctx = nullptr;
};

/// Checks C (read back as doubles) against the double reference at `points` (all of C when
/// empty), on every core (kiln_test::check_rows: C's rows, or the points, a part a core; the
/// first 5 wrong elements reported in order). Tolerance: the output's rounding, plus 2e-4
/// of the sum of |a b| terms (f32 accumulation); a wrong element is off by about that whole
/// sum.
int check(const Case& k, const Reference& ref, const std::vector<double>& got,
          const std::vector<std::pair<std::int64_t, std::int64_t>>& points) {
  const auto& p = k.problem;
  const bool ta = ops::detail::gemm_a_transposed(p.layout);
  const bool tb = ops::detail::gemm_b_transposed(p.layout);
  const std::int64_t a_cols = ta ? p.m : p.k, b_cols = tb ? p.k : p.n;
  const double out_eps = k.out == DType::f16    ? std::ldexp(1.0, -11)
                         : k.out == DType::bf16 ? std::ldexp(1.0, -8)
                                                : std::ldexp(1.0, -24);
  // (Reads alone of what the parts share; the host epilogues are pure functions.)
  auto one = [&](kiln_test::RowCheckPart& out, std::int64_t i, std::int64_t j) {
    double sum = 0, abs_sum = 0;
    for (std::int64_t l = 0; l < p.k; ++l) {
      const double t = at(ref.a.values, a_cols, ta, i, l) * at(ref.b.values, b_cols, tb, l, j);
      sum += t;
      abs_sum += std::fabs(t);
    }
    double v = p.alpha * sum;
    double scale = std::fabs(p.alpha) * abs_sum;
    if (p.beta != 0) {
      const double c = ref.c0[std::size_t(i * p.n + j)];
      v += p.beta * c;
      scale += std::fabs(p.beta * c);
    }
    if (ref.epilogue) v = ref.epilogue(v, i, j, ref.ctx);
    const double g = got[std::size_t(i * p.n + j)];
    const double tol = out_eps * std::fabs(v) + 2e-4 * scale + 1e-30;
    ++out.checked;
    if (!(std::fabs(g - v) <= tol)) {  // NaN fails
      out.fail("C[", i, "][", j, "] = ", g, ", want ", v, " (tol ", tol, ")");
    }
  };
  kiln_test::RowCheckPart found;
  if (points.empty()) {
    found = kiln_test::check_rows(
        p.m, [&](kiln_test::RowCheckPart& out, std::int64_t r0, std::int64_t r1) {
          for (std::int64_t i = r0; i < r1; ++i) {
            for (std::int64_t j = 0; j < p.n; ++j) one(out, i, j);
          }
        });
  } else {
    found =
        kiln_test::check_rows(std::int64_t(points.size()),
                              [&](kiln_test::RowCheckPart& out, std::int64_t q0, std::int64_t q1) {
                                for (std::int64_t q = q0; q < q1; ++q) {
                                  const auto [i, j] = points[std::size_t(q)];
                                  one(out, i, j);
                                }
                              });
  }
  for (const std::string& line : found.first) MESSAGE(line);
  return int(found.bad);
}

/// Every corner, edge and some random elements of an m x n matrix.
std::vector<std::pair<std::int64_t, std::int64_t>> sample(std::int64_t m, std::int64_t n,
                                                          int count) {
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  std::uniform_int_distribution<std::int64_t> rm(0, m - 1), rn(0, n - 1);
  for (int i = 0; i < count; ++i) out.push_back({rm(rng()), rn(rng())});
  for (std::int64_t i : {std::int64_t(0), m / 2, m - 1}) {
    for (std::int64_t j = 0; j < n; j += std::max<std::int64_t>(1, n / 64)) out.push_back({i, j});
    out.push_back({i, n - 1});
  }
  for (std::int64_t j : {std::int64_t(0), n - 1}) {
    for (std::int64_t i = 0; i < m; i += std::max<std::int64_t>(1, m / 64)) out.push_back({i, j});
  }
  return out;
}

std::vector<double> read_c(DType out, const rt::DeviceBuffer<std::uint16_t>* c16,
                           const rt::DeviceBuffer<float>* c32) {
  std::vector<double> got;
  if (out == DType::f32) {
    for (float v : c32->to_vector()) got.push_back(v);
  } else {
    for (std::uint16_t b : c16->to_vector()) got.push_back(from_bits(out, b));
  }
  return got;
}

/// Runs one case through kiln::ops::gemm (or `kernel`, when given) and checks it.
int run_case(const Case& k, bool wide = false, HostEpilogue epilogue = nullptr,
             const void* ctx = nullptr, int sampled = 0,
             const ops::GemmFactory::KernelType* kernel = nullptr) {
  const auto& p = k.problem;
  const Input a = random_input(k.in, std::size_t(p.m * p.k), wide);
  const Input b = random_input(k.in, std::size_t(p.k * p.n), wide);
  const std::size_t cn = std::size_t(p.m * p.n);
  std::vector<double> c0(cn, 0.0);
  rt::DeviceBuffer<std::uint16_t> da(std::max<std::size_t>(a.bits.size(), 1)),
      db(std::max<std::size_t>(b.bits.size(), 1));
  if (!a.bits.empty()) da.copy_from(a.bits);
  if (!b.bits.empty()) db.copy_from(b.bits);
  rt::DeviceBuffer<std::uint16_t> c16(k.out == DType::f32 ? 1 : std::max<std::size_t>(cn, 1));
  rt::DeviceBuffer<float> c32(k.out == DType::f32 ? std::max<std::size_t>(cn, 1) : 1);
  if (p.beta != 0) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<std::uint16_t> h16(cn);
    std::vector<float> h32(cn);
    for (std::size_t i = 0; i < cn; ++i) {
      const float v = u(rng());
      if (k.out == DType::f32) {
        h32[i] = v;
        c0[i] = v;
      } else {
        h16[i] = to_bits(k.out, v);
        c0[i] = from_bits(k.out, h16[i]);
      }
    }
    if (k.out == DType::f32) {
      c32.copy_from(h32);
    } else {
      c16.copy_from(h16);
    }
  } else {
    c16.fill_bytes(0xff);  // NaN in f16, bf16 and f32
    c32.fill_bytes(0xff);
  }
  if (kernel) {
    const rt::LaunchConfig lc =
        ops::detail::gemm_launch(kernel->params(), kernel->config(), kernel->device().properties());
    ops::detail::gemm_launch_kernel(*kernel, kernel->params(), lc, nullptr, da.address(),
                                    db.address(),
                                    k.out == DType::f32 ? c32.address() : c16.address(), p.alpha,
                                    p.beta, p.epilogue.args, kernel->device());
  } else if (k.out == DType::f32) {
    ops::gemm(k.in, k.out, da, db, c32, p);
  } else {
    ops::gemm(k.in, k.out, da, db, c16, p);
  }
  rt::Device::current().synchronize();
  const auto got = read_c(k.out, &c16, &c32);
  return check(k, Reference{a, b, c0, epilogue, ctx}, got,
               sampled > 0 ? sample(p.m, p.n, sampled) : decltype(sample(1, 1, 0)){});
}

const GemmLayout layouts[] = {GemmLayout::nn, GemmLayout::nt, GemmLayout::tn, GemmLayout::tt};

/// Whether the device runs the wgmma path (sm_90); says why a test is skipped otherwise.
bool runs_wgmma(const rt::DeviceProperties& props) {
  if (props.platform == rt::Platform::cuda && props.compute_major == 9) return true;
  MESSAGE("skipped: the wgmma path runs on sm_90 only; this device is " << props.arch);
  return false;
}

}  // namespace

TEST_CASE("ragged shapes, every layout, f16 and bf16 in, f16, bf16 and f32 out") {
  for (auto [m, n, k] : {std::tuple{1, 1, 8}, {127, 129, 136}, {64, 256, 64}, {333, 65, 520}}) {
    for (GemmLayout layout : layouts) {
      for (DType in : {DType::f16, DType::bf16}) {
        for (DType out : {DType::f32, DType::f16, DType::bf16}) {
          if (out != DType::f32 && out != in) continue;
          const Case c{in, out, {.m = m, .n = n, .k = k, .layout = layout}};
          CAPTURE(m);
          CAPTURE(n);
          CAPTURE(k);
          const std::string layout_name = ops::to_string(layout);
          CAPTURE(layout_name);
          CAPTURE(gen::to_string(in));
          CAPTURE(gen::to_string(out));
          CHECK(run_case(c) == 0);
        }
      }
    }
  }
}

TEST_CASE("rows that are not whole 16-byte vectors (odd K, M and N) load element by element") {
  for (auto [m, n, k] : {std::tuple{1, 1, 1}, {33, 17, 9}, {130, 70, 37}, {5, 300, 3}}) {
    for (GemmLayout layout : layouts) {
      const Case c{DType::f16, DType::f32, {.m = m, .n = n, .k = k, .layout = layout}};
      CAPTURE(m);
      CAPTURE(n);
      CAPTURE(k);
      const std::string layout_name = ops::to_string(layout);
      CAPTURE(layout_name);
      CHECK(run_case(c) == 0);
    }
  }
}

TEST_CASE("1000^3 whole and 4096^3 sampled, f16 and bf16") {
  for (DType in : {DType::f16, DType::bf16}) {
    CAPTURE(gen::to_string(in));
    CHECK(run_case({in, DType::f32, {.m = 1000, .n = 1000, .k = 1000}}) == 0);
    CHECK(run_case({in, in, {.m = 4096, .n = 4096, .k = 4096, .layout = GemmLayout::nt}}, false,
                   nullptr, nullptr, 4000) == 0);
  }
}

TEST_CASE("inputs of large dynamic range, alpha and beta") {
  for (GemmLayout layout : layouts) {
    const std::string layout_name = ops::to_string(layout);
    CAPTURE(layout_name);
    CHECK(run_case({DType::f16, DType::f32, {.m = 200, .n = 136, .k = 264, .layout = layout}},
                   true) == 0);
    CHECK(run_case({DType::bf16, DType::f32, {.m = 200, .n = 136, .k = 264, .layout = layout}},
                   true) == 0);
    CHECK(run_case(
              {DType::bf16,
               DType::bf16,
               {.m = 150, .n = 96, .k = 72, .layout = layout, .alpha = 0.5f, .beta = -2.0f}}) == 0);
    CHECK(
        run_case({DType::f16,
                  DType::f32,
                  {.m = 150, .n = 97, .k = 64, .layout = layout, .alpha = -1.5f, .beta = 0.25f}}) ==
        0);
  }
}

TEST_CASE("every candidate config on ragged problems") {
  auto& factory = ops::gemm_factory();
  const auto& device = rt::Device::current();
  for (const Case& c :
       {Case{DType::f16, DType::f32, {.m = 300, .n = 260, .k = 200}},
        Case{DType::bf16, DType::bf16, {.m = 257, .n = 520, .k = 136, .layout = GemmLayout::tn}},
        // Rows of whole 16-byte vectors: on sm_90 the wgmma configs are candidates too.
        Case{DType::f16, DType::f16, {.m = 300, .n = 264, .k = 200}},
        Case{DType::bf16, DType::f32, {.m = 136, .n = 200, .k = 264, .layout = GemmLayout::tt}}}) {
    const ops::GemmParams params = ops::gemm_params(c.in, c.out, c.problem);
    const auto configs = factory.candidates(params, device.properties());
    const auto built = factory.build_all(params, configs, device);
    int ran = 0;
    for (std::size_t i = 0; i < built.size(); ++i) {
      CAPTURE(ops::detail::gemm_kernel_name(params, configs[i]));
      CAPTURE(built[i].reason);
      REQUIRE(built[i].kernel);
      CHECK(run_case(c, false, nullptr, nullptr, 0, built[i].kernel.get()) == 0);
      ++ran;
    }
    MESSAGE(ran << " configs checked for " << std::string(ops::to_string(c.problem.layout)));
    CHECK(ran >= 10);
  }
}

TEST_CASE("sm_90: the heuristic takes the wgmma path, right on every layout and ragged edge") {
  const auto& device = rt::Device::current();
  const auto& props = device.properties();
  if (!runs_wgmma(props)) return;
  for (auto [m, n, k] : {std::tuple{64, 64, 64},
                         {136, 264, 200},
                         {1000, 1000, 1000},
                         {8, 4104, 72},
                         {2056, 520, 1032}}) {
    for (GemmLayout layout : layouts) {
      for (DType in : {DType::f16, DType::bf16}) {
        for (DType out : {DType::f32, in}) {
          const Case c{in, out, {.m = m, .n = n, .k = k, .layout = layout}};
          const auto& kernel =
              ops::gemm_kernel(ops::gemm_params(c.in, c.out, c.problem), rt::Device::current());
          CAPTURE(kernel.name());
          CHECK(kernel.config().path == ops::GemmPath::wgmma);
          CHECK(run_case(c) == 0);
        }
      }
    }
  }
  // alpha, beta and an epilogue through the wgmma kernel.
  CHECK(run_case({DType::bf16,
                  DType::bf16,
                  {.m = 520, .n = 136, .k = 264, .alpha = 0.5f, .beta = -2.0f}}) == 0);
}

TEST_CASE("sm_90: split K over clusters of 2 and 4 blocks, pinned, short and long K") {
  const auto& device = rt::Device::current();
  const auto& props = device.properties();
  if (!runs_wgmma(props)) return;
  const ops::GemmConfig configs[] = {{128, 128, 64, 0, 0, 4, 8, ops::GemmPath::wgmma, 2, 2},
                                     {64, 128, 64, 0, 0, 6, 8, ops::GemmPath::wgmma, 1, 4},
                                     {64, 64, 64, 0, 0, 5, 8, ops::GemmPath::wgmma, 1, 2}};
  // K of one tile (some blocks of a cluster get no part of K), a few, and many; ragged M, N.
  for (auto [m, n, k] : {std::tuple{136, 200, 64}, {264, 136, 200}, {128, 1032, 2056}}) {
    for (const auto& config : configs) {
      for (GemmLayout layout : {GemmLayout::nn, GemmLayout::tt}) {
        Case c{DType::bf16, DType::f32, {.m = m, .n = n, .k = k, .layout = layout}};
        if (layout == GemmLayout::tt) c = {DType::f16, DType::f16, c.problem};
        ops::GemmParams params = ops::gemm_params(c.in, c.out, c.problem);
        params.config = config;
        const auto& kernel = ops::gemm_kernel(params, device);
        CAPTURE(kernel.name());
        CHECK(run_case(c, false, nullptr, nullptr, 0, &kernel) == 0);
      }
    }
  }
  // alpha, beta and an epilogue with split K.
  Case c{DType::f16, DType::f32, {.m = 200, .n = 136, .k = 1024, .alpha = 2.0f, .beta = 0.5f}};
  ops::GemmParams params = ops::gemm_params(c.in, c.out, c.problem);
  params.config = configs[1];
  CHECK(run_case(c, false, nullptr, nullptr, 0, &ops::gemm_kernel(params, device)) == 0);
}

TEST_CASE("sm_90: 16-bit C by TMA stores or, not 16-byte aligned, directly; nothing past C") {
  const auto& device = rt::Device::current();
  const auto& props = device.properties();
  if (!runs_wgmma(props)) return;
  // C starts 16 bytes (TMA stores) or 2 bytes (direct stores) into a buffer of NaN; ragged
  // tiles at C's right and bottom edges, and a C with one row.
  for (auto [m, n, k] : {std::tuple{200, 136, 72}, {1, 264, 64}}) {
    for (const std::size_t offset : {std::size_t(8), std::size_t(1)}) {
      const Case c{DType::f16, DType::f16, {.m = m, .n = n, .k = k}};
      CAPTURE(m);
      CAPTURE(offset);
      const Input a = random_input(c.in, std::size_t(m * k));
      const Input b = random_input(c.in, std::size_t(k * n));
      rt::DeviceBuffer<std::uint16_t> da(a.bits.size()), db(b.bits.size());
      da.copy_from(a.bits);
      db.copy_from(b.bits);
      const std::size_t cn = std::size_t(m * n), pad = 64;
      rt::DeviceBuffer<std::uint16_t> buffer(cn + offset + pad);
      buffer.fill_bytes(0xff);
      const auto& kernel = ops::gemm_kernel(ops::gemm_params(c.in, c.out, c.problem), device);
      CAPTURE(kernel.name());
      REQUIRE(kernel.config().path == ops::GemmPath::wgmma);
      const rt::LaunchConfig lc = ops::detail::gemm_launch(kernel.params(), kernel.config(), props);
      ops::detail::gemm_launch_kernel(kernel, kernel.params(), lc, nullptr, da.address(),
                                      db.address(), buffer.address() + 2 * offset, 1.0f, 0.0f, {},
                                      device);
      device.synchronize();
      const std::vector<std::uint16_t> all = buffer.to_vector();
      std::vector<double> got;
      for (std::size_t i = 0; i < cn; ++i) got.push_back(from_bits(c.out, all[offset + i]));
      const std::vector<double> c0(cn, 0.0);
      CHECK(check(c, Reference{a, b, c0, nullptr, nullptr}, got, {}) == 0);
      int outside = 0;
      for (std::size_t i = 0; i < all.size(); ++i) {
        if ((i < offset || i >= offset + cn) && all[i] != 0xffff) ++outside;
      }
      CHECK(outside == 0);
    }
  }
}

TEST_CASE("sm_90: clusters of 2 and 4 block rows sharing B (multicast), pinned and chosen") {
  const auto& device = rt::Device::current();
  const auto& props = device.properties();
  if (!runs_wgmma(props)) return;
  const ops::GemmConfig configs[] = {{128, 256, 64, 0, 0, 4, 8, ops::GemmPath::wgmma, 2, 1, 2},
                                     {128, 128, 64, 0, 0, 6, 8, ops::GemmPath::wgmma, 2, 1, 2},
                                     {64, 128, 64, 0, 0, 6, 8, ops::GemmPath::wgmma, 1, 1, 2},
                                     {64, 128, 64, 0, 0, 6, 8, ops::GemmPath::wgmma, 1, 1, 4},
                                     {128, 64, 64, 0, 0, 6, 8, ops::GemmPath::wgmma, 2, 1, 2}};
  // Two block rows (one pair), three (the second pair's upper tile lies past C), and more
  // pairs than clusters (each cluster takes several); K of one tile and of many.
  for (auto [m, n, k] : {std::tuple{136, 200, 64}, {264, 520, 200}, {2056, 1032, 1032}}) {
    for (const auto& config : configs) {
      // Every layout: B stored N-contiguous (whole 64-column boxes a block) and K-contiguous
      // (half boxes of its rows), either A.
      for (GemmLayout layout : layouts) {
        Case c{DType::f16, DType::f16, {.m = m, .n = n, .k = k, .layout = layout, .beta = 0.5f}};
        if (layout == GemmLayout::tn || layout == GemmLayout::tt) {
          c = {DType::bf16, DType::f32, c.problem};
        }
        ops::GemmParams params = ops::gemm_params(c.in, c.out, c.problem);
        params.config = config;
        const auto& kernel = ops::gemm_kernel(params, device);
        CAPTURE(kernel.name());
        CHECK(run_case(c, false, nullptr, nullptr, m * n > 1000000 ? 2000 : 0, &kernel) == 0);
      }
    }
  }
  // The heuristic's choice for about one wave of tiles (64 x 128 tiles in pairs).
  const Case wave{DType::f16, DType::f16, {.m = 1000, .n = 1000, .k = 1000}};
  const auto& chosen = ops::gemm_kernel(ops::gemm_params(wave.in, wave.out, wave.problem), device);
  CAPTURE(chosen.name());
  CHECK(chosen.config().cluster_m == 2);
  CHECK(run_case(wave, false, nullptr, nullptr, 0, &chosen) == 0);
}

namespace {
double host_gelu(double v) {
  return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
}
double host_gelu_tanh(double v) {
  return 0.5 * v *
         (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
}
double host_silu(double v) {
  return v / (1.0 + std::exp(-v));
}
struct BiasCtx {
  std::vector<double> bias;
};
struct ResidualCtx {
  std::vector<double> r;
  std::int64_t ld;
};
}  // namespace

TEST_CASE("ready-made epilogues and a user's own, with alpha and beta") {
  const std::int64_t m = 190, n = 136, k = 96;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> bias(n);
  BiasCtx bc;
  for (auto& v : bias) {
    v = u(rng());
    bc.bias.push_back(v);
  }
  rt::DeviceBuffer<float> d_bias(bias.size());
  d_bias.copy_from(bias);
  const Input res = random_input(DType::f16, std::size_t(m * n));
  rt::DeviceBuffer<std::uint16_t> d_res(res.bits.size());
  d_res.copy_from(res.bits);
  const ResidualCtx rc{res.values, n};

  struct E {
    const char* what;
    ops::GemmEpilogue e;
    HostEpilogue host;
    const void* ctx;
  };
  const auto* res_ptr = reinterpret_cast<const f16*>(d_res.data());
  const E cases[] = {
      {"relu", ops::gemm_epilogues::relu(),
       [](double v, std::int64_t, std::int64_t, const void*) { return v > 0 ? v : 0.0; }, nullptr},
      {"gelu", ops::gemm_epilogues::gelu(),
       [](double v, std::int64_t, std::int64_t, const void*) { return host_gelu(v); }, nullptr},
      {"gelu_tanh", ops::gemm_epilogues::gelu_tanh(),
       [](double v, std::int64_t, std::int64_t, const void*) { return host_gelu_tanh(v); },
       nullptr},
      {"silu", ops::gemm_epilogues::silu(),
       [](double v, std::int64_t, std::int64_t, const void*) { return host_silu(v); }, nullptr},
      {"bias", ops::gemm_epilogues::bias(d_bias.data()),
       [](double v, std::int64_t, std::int64_t j, const void* ctx) {
         return v + static_cast<const BiasCtx*>(ctx)->bias[std::size_t(j)];
       },
       &bc},
      {"bias_gelu", ops::gemm_epilogues::bias_gelu(d_bias.data()),
       [](double v, std::int64_t, std::int64_t j, const void* ctx) {
         return host_gelu(v + static_cast<const BiasCtx*>(ctx)->bias[std::size_t(j)]);
       },
       &bc},
      {"bias_gelu_tanh", ops::gemm_epilogues::bias_gelu_tanh(d_bias.data()),
       [](double v, std::int64_t, std::int64_t j, const void* ctx) {
         return host_gelu_tanh(v + static_cast<const BiasCtx*>(ctx)->bias[std::size_t(j)]);
       },
       &bc},
      {"bias_silu", ops::gemm_epilogues::bias_silu(d_bias.data()),
       [](double v, std::int64_t, std::int64_t j, const void* ctx) {
         return host_silu(v + static_cast<const BiasCtx*>(ctx)->bias[std::size_t(j)]);
       },
       &bc},
      {"residual", ops::gemm_epilogues::residual(res_ptr, n),
       [](double v, std::int64_t i, std::int64_t j, const void* ctx) {
         const auto* r = static_cast<const ResidualCtx*>(ctx);
         return v + r->r[std::size_t(i * r->ld + j)];
       },
       &rc},
  };
  for (const E& e : cases) {
    for (GemmLayout layout : {GemmLayout::nn, GemmLayout::tt}) {
      CAPTURE(e.what);
      const std::string layout_name = ops::to_string(layout);
      CAPTURE(layout_name);
      CHECK(run_case({DType::f16,
                      DType::f32,
                      {.m = m,
                       .n = n,
                       .k = k,
                       .layout = layout,
                       .alpha = 0.75f,
                       .beta = 0.5f,
                       .epilogue = e.e}},
                     false, e.host, e.ctx) == 0);
      CHECK(run_case({DType::bf16,
                      DType::bf16,
                      {.m = m, .n = n, .k = k, .layout = layout, .epilogue = e.e}},
                     false, e.host, e.ctx) == 0);
    }
  }

  // A user's own: scale each row by a factor from a vector, then clamp at `limit`.
  struct RowScale {
    const float* scale;
    float limit;
  };
  std::vector<float> scale(m);
  BiasCtx sc;
  for (auto& v : scale) {
    v = u(rng()) * 4.0f;
    sc.bias.push_back(v);
  }
  rt::DeviceBuffer<float> d_scale(scale.size());
  d_scale.copy_from(scale);
  const auto user = ops::GemmEpilogue::make("row_scale_clamp", R"(
struct Epilogue {
  const float* scale;
  float limit;
  KILN_DEVICE float operator()(float v, M m, N) const {
    const float s = v * scale[m.get()];
    return s < limit ? s : limit;
  }
};)",
                                            RowScale{d_scale.data(), 1.5f});
  CHECK(run_case(
            {DType::f16, DType::f16, {.m = m, .n = n, .k = k, .epilogue = user}}, false,
            [](double v, std::int64_t i, std::int64_t, const void* ctx) {
              const double s = v * static_cast<const BiasCtx*>(ctx)->bias[std::size_t(i)];
              return s < 1.5 ? s : 1.5;
            },
            &sc) == 0);
}

TEST_CASE("GELU's erf form for each C type, on the GPU's ex2 and rcp, its tails included") {
  // C = GELU(x_i + bias_j) exactly: A's first column holds x_i = -16 + i / 8 (exact in f16
  // and bf16), B's first row ones, the rest zeros; bias_j = j / 512. So 16384 points from
  // -16 to 16 reach the GELU, whose result is checked against the exact one: rounded to a
  // 16-bit C, within one unit in the last place; f32 C, relative error under 1.1e-5; either,
  // 0 where the exact result is under 2^-122 (kiln/device/math.hpp: the GPU's 2^x flushes).
  const std::int64_t m = 256, n = 64, k = 16;
  for (const DType in : {DType::f16, DType::bf16}) {
    std::vector<std::uint16_t> a(std::size_t(m * k), 0), b(std::size_t(k * n), 0);
    for (std::int64_t i = 0; i < m; ++i) {
      a[std::size_t(i * k)] = to_bits(in, -16.0f + float(i) / 8);
    }
    for (std::int64_t j = 0; j < n; ++j) b[std::size_t(j)] = to_bits(in, 1.0f);
    std::vector<float> bias(static_cast<std::size_t>(n));
    for (std::int64_t j = 0; j < n; ++j) bias[std::size_t(j)] = float(j) / 512;
    rt::DeviceBuffer<std::uint16_t> da(a.size()), db(b.size());
    rt::DeviceBuffer<float> d_bias(bias.size());
    da.copy_from(a);
    db.copy_from(b);
    d_bias.copy_from(bias);
    for (const DType out : {DType::f16, DType::bf16, DType::f32}) {
      const std::string types =
          std::string(gen::to_string(in)) + " in, " + std::string(gen::to_string(out)) + " C";
      CAPTURE(types);
      rt::DeviceBuffer<std::uint16_t> c16(std::size_t(m * n));
      rt::DeviceBuffer<float> c32(std::size_t(m * n));
      c16.fill_bytes(0xff);  // NaN
      c32.fill_bytes(0xff);
      const GemmProblem p{
          .m = m, .n = n, .k = k, .epilogue = ops::gemm_epilogues::bias_gelu(d_bias.data())};
      if (out == DType::f32) {
        ops::gemm(in, out, da, db, c32, p);
      } else {
        ops::gemm(in, out, da, db, c16, p);
      }
      rt::Device::current().synchronize();
      const auto got = read_c(out, &c16, &c32);
      int wrong = 0;
      for (std::int64_t i = 0; i < m; ++i) {
        for (std::int64_t j = 0; j < n; ++j) {
          const long double v = (-16.0L + i / 8.0L) + bias[std::size_t(j)];
          const long double want = 0.5L * v * std::erfc(-v / std::sqrt(2.0L));
          const double g = got[std::size_t(i * n + j)];
          bool ok = false;
          if (std::isnan(g)) {
            ok = false;  // never written, or computed as NaN
          } else if (g == 0 && std::fabs(want) < 0x1p-122L) {
            ok = true;  // Phi's tail under 2^-126, flushed to 0 by the GPU's 2^x (v < -13)
          } else if (out == DType::f32) {
            ok = std::fabs(want) < 0x1p-126L ? std::fabs(g) < 0x1p-125
                                             : std::fabs((g - want) / want) < 1.1e-5L;
          } else {
            ok = kiln_test::ulp_distance16(to_bits(out, float(g)), to_bits(out, float(want))) <= 1;
          }
          if (!ok && ++wrong <= 5) {
            MESSAGE("GELU(" << double(v) << ") = " << g << ", want " << double(want));
          }
        }
      }
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("typed buffers, empty problems and sizes the buffers do not hold") {
  rt::DeviceBuffer<f16> a(64 * 32), b(32 * 48);
  rt::DeviceBuffer<float> c(64 * 48);
  a.fill_bytes(0);  // zeros: C = 0
  b.fill_bytes(0);
  c.fill_bytes(0xff);
  ops::gemm(a, b, c, {.m = 64, .n = 48, .k = 32});
  const auto got = c.to_vector();
  CHECK(std::all_of(got.begin(), got.end(), [](float v) { return v == 0.0f; }));
  c.fill_bytes(0xff);
  ops::gemm(a, b, c, {.m = 0, .n = 48, .k = 32});  // nothing to do: C untouched
  const auto untouched = c.to_vector();
  CHECK(std::isnan(untouched.front()));
  try {
    ops::gemm(a, b, c, {.m = 64, .n = 48, .k = 33});
    FAIL("no error for a K the buffers do not hold");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("needs 2112 elements in A, which holds 2048") !=
          std::string::npos);
  }
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: gemm_gpu_test skipped\n");
    return 77;
  }
  if (rt::Device::current().properties().compute_major < 8) {
    std::printf("gemm_gpu_test needs sm_80 or later; skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
