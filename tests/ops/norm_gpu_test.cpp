// LayerNorm and RMSNorm on a GPU, forward and backward: every candidate config of each row
// length, and kiln::ops::layer_norm / rms_norm (and their _backward) with each combination
// of their optional arguments,
// against a double-precision CPU reference on fresh random data (rows of random scale and
// offset, huge values, constant rows: zero variance), outputs poisoned with NaN first,
// every element of y, h, mean and rstd checked. Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../support.hpp"
#include "kiln/jit.hpp"
#include "kiln/ops/norm.hpp"
#include "kiln/rt.hpp"
#include "row_test_support.hpp"
#include "split_test_support.hpp"

using namespace kiln;
using kiln_test::decode;
using kiln_test::encode;
using kiln_test::half_ulp;
using NormDType = kiln::gen::DType;  // f16, bf16 or f32 for a norm
using ops::NormArgs;
using ops::NormKind;
using ops::NormParams;

namespace {

/// What a test asks of one launch.
struct Case {
  NormKind kind;
  NormDType dtype;
  std::int64_t rows;
  int cols;
  bool residual, weight, bias, stats;
  int data;  ///< 0: rows of random offset and scale; 1: huge values; 2: constant rows;
             ///< 3: as 0 with a huge first element
  float eps = 1e-5f;
};

std::string describe(const Case& c) {
  return std::string(ops::detail::norm_name(c.kind)) + " " + std::string(gen::to_string(c.dtype)) +
         " " + std::to_string(c.rows) + "x" + std::to_string(c.cols) +
         (c.residual ? " residual" : "") + (c.weight ? " weight" : "") + (c.bias ? " bias" : "") +
         (c.stats ? " stats" : "") + " data " + std::to_string(c.data);
}

/// A case's inputs on the host and the device, its outputs poisoned with NaN.
template <class T>
struct Data {
  Case c;
  std::vector<T> x, r, w, b;
  rt::DeviceBuffer<T> dx, dr, dw, db, dy, dh;
  rt::DeviceBuffer<float> dmean, drstd;

  Data(const Case& k, const rt::Device& gpu, std::mt19937& rng) : c(k) {
    const std::size_t n = std::size_t(c.rows) * std::size_t(c.cols);
    const double top = c.dtype == NormDType::f16 ? 60000.0 : 1.0e15;  // squares sum in f32
    std::normal_distribution<double> normal(0.0, 1.0);
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (std::int64_t row = 0; row < c.rows; ++row) {
      const double offset = 10.0 * uniform(rng), scale = std::exp2(4.0 * uniform(rng));
      for (int col = 0; col < c.cols; ++col) {
        double v = offset + scale * normal(rng), res = normal(rng);
        if (c.data == 1) v = row % 2 ? 0.9 * top : 0.9 * top * uniform(rng);
        if (c.data == 2) {
          v = double(row % 7) * 1000.0 - 3000.0;  // row 3: zeros
          res = double(row % 5);
        }
        if (c.data == 3 && col == 0) v = 0.9 * top;  // an outlier first (a shift's worst)
        x.push_back(encode<T>(c.dtype, float(v)));
        r.push_back(encode<T>(c.dtype, float(res)));
      }
    }
    for (int col = 0; col < c.cols; ++col) {
      w.push_back(encode<T>(c.dtype, float((normal(rng) < 0 ? -1 : 1) * (1 + 0.5 * uniform(rng)))));
      b.push_back(encode<T>(c.dtype, float(normal(rng))));
    }
    dx = rt::DeviceBuffer<T>(n, gpu);
    dy = rt::DeviceBuffer<T>(n, gpu);
    dx.copy_from(x);
    if (c.residual) {
      dr = rt::DeviceBuffer<T>(n, gpu);
      dh = rt::DeviceBuffer<T>(n, gpu);
      dr.copy_from(r);
    }
    if (c.weight) {
      dw = rt::DeviceBuffer<T>(w.size(), gpu);
      dw.copy_from(w);
    }
    if (c.bias) {
      db = rt::DeviceBuffer<T>(b.size(), gpu);
      db.copy_from(b);
    }
    if (c.stats) {
      dmean = rt::DeviceBuffer<float>(std::size_t(c.rows), gpu);
      drstd = rt::DeviceBuffer<float>(std::size_t(c.rows), gpu);
    }
    poison_outputs();
  }

  /// NaN in every output (y, h, mean, rstd), so that what a launch leaves unwritten fails.
  void poison_outputs() {
    dy.fill_bytes(0xff);
    if (c.residual) dh.fill_bytes(0xff);
    if (c.stats) {
      dmean.fill_bytes(0xff);
      drstd.fill_bytes(0xff);
    }
  }

  const T* ptr(const rt::DeviceBuffer<T>& d, bool on) const { return on ? d.data() : nullptr; }
  float* ptr(const rt::DeviceBuffer<float>& d, bool on) const { return on ? d.data() : nullptr; }

  /// The arguments of ops::layer_norm / rms_norm (h: a buffer of its own).
  NormArgs<T> args() const {
    NormArgs<T> a;
    a.epsilon = c.eps;
    if (c.weight) a.weight = &dw;
    if (c.bias) a.bias = &db;
    if (c.stats) {
      a.rstd = const_cast<rt::DeviceBuffer<float>*>(&drstd);
      if (c.kind == NormKind::layer_norm) a.mean = const_cast<rt::DeviceBuffer<float>*>(&dmean);
    }
    if (c.residual) {
      a.residual = &dr;
      a.h = const_cast<rt::DeviceBuffer<T>*>(&dh);
    }
    return a;
  }

  /// Launches a kernel of the factory directly, as ops::layer_norm would.
  /// (`slots`: a split config's, zeroed, and the next launch's, which it zeroes; `y` and
  /// `h`: other buffers for them, e.g. x's, where not null.)
  void launch(const rt::Function& fn, const rt::LaunchConfig& lc,
              std::pair<std::uint64_t*, std::uint64_t*> slots = {nullptr, nullptr}, T* y = nullptr,
              T* h = nullptr) {
    const bool layer = c.kind == NormKind::layer_norm;
    rt::launch(fn, lc, dx.data(), ptr(dr, c.residual), ptr(dw, c.weight), ptr(db, c.bias && layer),
               y ? y : dy.data(),
               h            ? h
               : c.residual ? dh.data()
                            : nullptr,
               ptr(dmean, c.stats && layer), ptr(drstd, c.stats), c.eps, int(c.rows), slots.first,
               slots.second);
  }

  /// Checks every element of y (and h, mean, rstd where asked for) against the double-
  /// precision reference; `y_host` and `h_host` are what the device wrote.
  void check(const std::vector<T>& y_host, const std::vector<T>& h_host,
             const std::string& what) const {
    const NormDType dt = c.dtype;
    const bool layer = c.kind == NormKind::layer_norm;
    const std::vector<float> mean_got = c.stats && layer ? dmean.to_vector() : std::vector<float>{};
    const std::vector<float> rstd_got = c.stats ? drstd.to_vector() : std::vector<float>{};
    const double tol = 1e-4;  // f32 math, relative to the row's scale of y
    // Rows on every core, each part with its own h.
    const kiln_test::RowCheckPart found = kiln_test::check_rows(
        c.rows, [&](kiln_test::RowCheckPart& out, std::int64_t r0, std::int64_t r1) {
          std::vector<double> h(std::size_t(c.cols));
          for (std::int64_t row = r0; row < r1; ++row) {
            const std::size_t base = std::size_t(row) * std::size_t(c.cols);
            for (int col = 0; col < c.cols; ++col) {
              const std::size_t i = base + std::size_t(col);
              if (c.residual) {
                // The kernel's f32 add, rounded to the storage type: bit for bit.
                const T want = encode<T>(dt, float(decode(dt, x[i])) + float(decode(dt, r[i])));
                h[std::size_t(col)] = decode(dt, want);
                ++out.checked;
                if (h_host[i] != want) {
                  out.fail("h row ", row, " col ", col, ": got ", decode(dt, h_host[i]), ", want ",
                           decode(dt, want));
                }
              } else {
                h[std::size_t(col)] = decode(dt, x[i]);
              }
            }
            double mean = 0, var = 0;
            if (layer) {
              for (double v : h) mean += v;
              mean /= c.cols;
              for (double v : h) var += (v - mean) * (v - mean);
              var /= c.cols;
            } else {
              for (double v : h) var += v * v;
              var /= c.cols;
            }
            const double rstd = 1.0 / std::sqrt(var + double(c.eps));
            double sd = std::sqrt(var);
            for (int col = 0; col < c.cols; ++col) {
              const std::size_t i = base + std::size_t(col);
              const double wv = c.weight ? decode(dt, w[std::size_t(col)]) : 1.0;
              const double bv = layer && c.bias ? decode(dt, b[std::size_t(col)]) : 0.0;
              const double norm = (h[std::size_t(col)] - (layer ? mean : 0.0)) * rstd;
              const double want = norm * wv + bv;
              const double got = decode(dt, y_host[i]);
              const double scale = (std::fabs(norm) + 1.0) * std::fabs(wv) + std::fabs(bv);
              ++out.checked;
              if (!(std::fabs(got - want) <= half_ulp(dt, want) + tol * scale)) {
                out.fail("y row ", row, " col ", col, ": got ", got, ", want ", want);
              }
            }
            if (c.stats) {
              ++out.checked;
              const double got_rstd = rstd_got[std::size_t(row)];
              if (!(std::fabs(got_rstd - rstd) <= tol * rstd)) {
                out.fail("rstd row ", row, ": got ", got_rstd, ", want ", rstd);
              }
              if (layer) {
                ++out.checked;
                const double got_mean = mean_got[std::size_t(row)];
                if (!(std::fabs(got_mean - mean) <= 1e-5 * (std::fabs(mean) + sd) + 1e-30)) {
                  out.fail("mean row ", row, ": got ", got_mean, ", want ", mean);
                }
              }
            }
          }
        });
    for (const std::string& line : found.first) MESSAGE(what << ": " << line);
    CHECK_MESSAGE(found.bad == 0,
                  what << ": " << found.bad << " of " << found.checked << " values wrong");
  }

  void check(const std::string& what) const {
    check(dy.to_vector(), c.residual ? dh.to_vector() : std::vector<T>{}, what);
  }
};

/// f(word) with `word` of the storage type of `dt` (Data's T): std::uint32_t for f32,
/// std::uint16_t for f16 and bf16.
template <class F>
void with_storage(NormDType dt, F&& f) {
  if (dt == NormDType::f32) {
    f(std::uint32_t{});
  } else {
    f(std::uint16_t{});
  }
}

const NormDType all_dtypes[] = {NormDType::f16, NormDType::bf16, NormDType::f32};
const NormKind both_kinds[] = {NormKind::layer_norm, NormKind::rms_norm};

/// Checks every candidate config of `p` (in the `only` strategy, where given) on the
/// kinds of data `datas` (Case::data: all four unless given), with a weight and a bias
/// unless told otherwise; with `ahead_grid`, those with staged rows ahead on a grid of that
/// many blocks, not their own.
template <class T>
void check_configs(const NormParams& p, const rt::Device& gpu, std::mt19937& rng,
                   rt::Stream& stream, const ops::NormStrategy* only = nullptr,
                   std::initializer_list<int> datas = {0, 1, 2, 3}, bool weight = true,
                   bool bias = true, unsigned ahead_grid = 0) {
  auto& factory = ops::norm_factory();
  std::vector<ops::NormConfig> configs;
  for (const auto& c : factory.configs(p, gpu.properties())) {
    if (!only || c.strategy == *only) configs.push_back(c);
  }
  const auto built = factory.build_all(p, configs, gpu);  // compiled in parallel
  for (std::size_t i = 0; i < configs.size(); ++i) {
    CAPTURE(factory.kernel_name(p, configs[i]));
    REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
  }
  // Split configs' slots: two buffers used in turns as kiln's calls use theirs (each
  // launch's zeroed by the one before it where that one's were at least as many, else on
  // the stream), both first full of tagged NaNs, which must not pass for a launch's own.
  kiln_test::TurnSlots slots(std::size_t(p.rows) * 256, 0x000000017fc00000ull, gpu);
  // Each kind of data is made once and run through every config, whose outputs are
  // poisoned again before each launch (a config must write all of them itself).
  for (int data : datas) {
    const Case c{p.kind, p.dtype, p.rows, p.cols, p.residual, weight, bias, true, data};
    Data<T> d(c, gpu, rng);
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const std::string name = factory.kernel_name(p, configs[i]);
      CAPTURE(name);
      rt::LaunchConfig lc = built[i].kernel->launch_config();
      lc.stream = stream;
      if (ahead_grid > 0 && configs[i].staged_ahead > 0) lc.grid = rt::Dim3(ahead_grid);
      d.poison_outputs();
      const bool split = configs[i].strategy == ops::NormStrategy::split;
      std::pair<std::uint64_t*, std::uint64_t*> slot_words{nullptr, nullptr};
      if (split) slot_words = slots.take(ops::detail::norm_split_words(p, configs[i]), stream);
      d.launch(built[i].kernel->function(), lc, slot_words);
      stream.synchronize();
      d.check(name + " data " + std::to_string(data));
      if (split) slots.check_launched(name + " data " + std::to_string(data));
    }
  }
}

/// Every split config of `p` (with the residual) launched in place: h over x (y its own
/// buffer), then h over the residual with y over x (on random rows, where h differs from
/// x: a block's write round must not reread x or the residual another has overwritten).
/// `p` takes more slices than a grid has blocks, so
/// blocks go round more than once (and ringed ones reuse their ring's slots).
template <class T>
void check_split_in_place(const NormParams& p, const rt::Device& gpu, std::mt19937& rng,
                          rt::Stream& stream) {
  auto& factory = ops::norm_factory();
  std::vector<ops::NormConfig> configs;
  for (const auto& c : factory.configs(p, gpu.properties())) {
    if (c.strategy == ops::NormStrategy::split) configs.push_back(c);
  }
  REQUIRE(!configs.empty());
  const auto built = factory.build_all(p, configs, gpu);
  kiln_test::TurnSlots slots(std::size_t(p.rows) * 256, 0x000000017fc00000ull, gpu);
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = factory.kernel_name(p, configs[i]);
    CAPTURE(name);
    REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
    CHECK(p.rows * ops::detail::norm_split_slices(p, configs[i]) > configs[i].grid_blocks);
    rt::LaunchConfig lc = built[i].kernel->launch_config();
    lc.stream = stream;
    for (int over_x = 1; over_x >= 0; --over_x) {
      const Case c{p.kind, p.dtype, p.rows, p.cols, true, true, true, true, 0};
      Data<T> d(c, gpu, rng);
      T* const y = over_x ? d.dy.data() : d.dx.data();
      T* const h = over_x ? d.dx.data() : d.dr.data();
      d.launch(built[i].kernel->function(), lc,
               slots.take(ops::detail::norm_split_words(p, configs[i]), stream), y, h);
      stream.synchronize();
      const std::string what = name + (over_x ? ", h over x" : ", h over the residual, y over x");
      d.check((over_x ? d.dy : d.dx).to_vector(), (over_x ? d.dx : d.dr).to_vector(), what);
      slots.check_launched(what);
    }
  }
}

template <class T>
void every_config(NormKind kind, NormDType dt, const rt::Device& gpu, std::mt19937& rng) {
  rt::Stream stream(gpu);
  const int all_cols[] = {1, 7, 128, 1001, 4096, 8192, 12345, 65536};
  for (std::size_t k = 0; k < std::size(all_cols); ++k) {
    const int cols = all_cols[k];
    const bool residual = (k + std::size_t(kind)) % 2 == 1;
    // 37 rows: no multiple of a block's rows
    check_configs<T>({kind, dt, cols, residual, 37}, gpu, rng, stream);
  }
  // Staged rows without a weight or a bias (their writes stand ones and minus zeros in for
  // them where the weights are loaded ahead), with and without the residual.
  const ops::NormStrategy staged = ops::NormStrategy::staged;
  for (int missing = 1; missing < (kind == NormKind::layer_norm ? 4 : 2); ++missing) {
    const bool weight = (missing & 1) == 0, bias = (missing & 2) == 0;
    CAPTURE(weight);
    CAPTURE(bias);
    for (bool residual : {false, true}) {
      check_configs<T>({kind, dt, 16384, residual, 5}, gpu, rng, stream, &staged, {0, 2}, weight,
                       bias);
    }
  }
}

}  // namespace

namespace {
void every_config(NormKind kind) {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  for (auto dt : all_dtypes) {
    CAPTURE(gen::to_string(dt));
    with_storage(dt, [&](auto word) { every_config<decltype(word)>(kind, dt, gpu, rng); });
  }
}
}  // namespace

// Staged rows ahead (a persistent grid): more rows than the grid has blocks, so each block
// takes two or three rows, its ring's slots going round, then a grid of 2 blocks (each
// taking 150 rows), both kinds, every dtype, x alone and with the residual. (Staged
// configs only: those without rows ahead run a row a block, on their own grid.)
TEST_CASE("staged rows ahead: blocks take row after row, on the op's grid and on 2 blocks") {
  rt::Device gpu(0);
  rt::Stream stream(gpu);
  std::mt19937 rng(std::random_device{}());
  const ops::NormStrategy staged = ops::NormStrategy::staged;
  struct Shape {
    NormKind kind;
    NormDType dt;
    int cols;
    bool residual;
  };
  const Shape shapes[] = {{NormKind::layer_norm, NormDType::f16, 65536, false},
                          {NormKind::rms_norm, NormDType::bf16, 65536, false},
                          {NormKind::rms_norm, NormDType::f32, 32768, false},
                          {NormKind::layer_norm, NormDType::bf16, 32768, true}};
  for (const Shape& s : shapes) {
    const NormParams p{s.kind, s.dt, s.cols, s.residual, 300};
    CAPTURE(nlohmann::json(p).dump());
    int ahead = 0;
    for (const auto& c : ops::norm_factory().configs(p, gpu.properties())) {
      ahead += c.staged_ahead > 0;
    }
    if (ahead == 0) {
      MESSAGE("no staged rows ahead on " << gpu.properties().name << " for this shape");
      continue;
    }
    with_storage(s.dt, [&](auto word) {
      using T = decltype(word);
      check_configs<T>(p, gpu, rng, stream, &staged);
      check_configs<T>(p, gpu, rng, stream, &staged, {0, 3}, true, true, 2);
    });
  }
}

// Staged rows of 192 to 256 KiB, each thread's last vectors held in registers: every such
// config, both kinds, 16-bit and f32 rows, with and without a weight and a bias, over more
// rows than SMs.
TEST_CASE("staged rows held partly in registers: rows of 192 to 256 KiB, every such config") {
  rt::Device gpu(0);
  rt::Stream stream(gpu);
  std::mt19937 rng(std::random_device{}());
  const ops::NormStrategy staged = ops::NormStrategy::staged;
  const NormParams shapes[] = {{NormKind::layer_norm, NormDType::f32, 65536, false, 300},
                               {NormKind::rms_norm, NormDType::f32, 57344, false, 37},
                               {NormKind::layer_norm, NormDType::f16, 131072, false, 37},
                               {NormKind::rms_norm, NormDType::bf16, 131072, false, 37},
                               {NormKind::layer_norm, NormDType::bf16, 131072, false, 37}};
  int held = 0;
  for (const NormParams& p : shapes) {
    CAPTURE(nlohmann::json(p).dump());
    int here = 0;
    for (const auto& c : ops::norm_factory().configs(p, gpu.properties())) {
      CHECK((c.strategy != staged || c.staged_held > 0));  // (none stages the whole row)
      here += c.staged_held > 0;
    }
    if (here == 0) {
      MESSAGE("no staged rows held in registers on " << gpu.properties().name);
      continue;
    }
    held += here;
    with_storage(p.dtype, [&](auto word) {
      using T = decltype(word);
      check_configs<T>(p, gpu, rng, stream, &staged);
      check_configs<T>(p, gpu, rng, stream, &staged, {0, 2}, false, false);
    });
  }
  // An H100's or H200's blocks (227 KiB of shared memory) take two a shape.
  if (gpu.properties().shared_per_block_optin >= 227 * 1024) CHECK(held == 10);
}

TEST_CASE("every candidate config normalizes (layer_norm): ragged rows, huge values, outliers") {
  every_config(NormKind::layer_norm);
}
TEST_CASE("every candidate config normalizes (rms_norm): ragged rows, huge values, outliers") {
  every_config(NormKind::rms_norm);
}

namespace {

/// Every split config of `kind` in `dt`: few rows and many, ragged slices, a missing
/// weight or bias, the fused residual (and in place).
void split_rows(NormKind kind, NormDType dt) {
  rt::Device gpu(0);
  if (!kiln_test::runs_split_rows(gpu)) return;
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  const ops::NormStrategy split = ops::NormStrategy::split;
  for (const kiln_test::SplitShape& shape : kiln_test::split_row_shapes) {
    if (!shape.every && dt != shape.dtype) continue;
    const NormParams p{kind, dt, shape.cols, false, shape.rows};
    CAPTURE(nlohmann::json(p).dump());
    // Rows of 64 KiB and more have split candidates on these GPUs.
    bool any = false;
    for (const auto& c : ops::norm_factory().configs(p, gpu.properties())) {
      any = any || c.strategy == split;
    }
    CHECK(any == (std::int64_t(p.cols) * gen::size_of(dt) >= 64 * 1024));
    const auto datas =
        shape.every ? std::initializer_list<int>{0, 1, 2, 3} : std::initializer_list<int>{0, 3};
    with_storage(
        dt, [&](auto word) { check_configs<decltype(word)>(p, gpu, rng, stream, &split, datas); });
  }
  // A missing weight or bias (LayerNorm's split write stands ones and minus zeros in for
  // them), on ragged slices.
  for (int missing = 1; missing < (kind == NormKind::layer_norm ? 4 : 2); ++missing) {
    const bool weight = (missing & 1) == 0, bias = (missing & 2) == 0;
    CAPTURE(weight);
    CAPTURE(bias);
    const NormParams p{kind, dt, 100000, false, 5};
    with_storage(dt, [&](auto word) {
      check_configs<decltype(word)>(p, gpu, rng, stream, &split, {0, 2}, weight, bias);
    });
  }
  // The fused residual (h = x + residual written): rows of 1M, each kind of data; then in
  // place (h over x or over the residual, y over x), ragged slices, many rounds.
  const NormParams with_residual{kind, dt, 1 << 20, true, 3};
  with_storage(dt, [&](auto word) {
    check_configs<decltype(word)>(with_residual, gpu, rng, stream, &split, {0, 1, 2, 3});
  });
  const NormParams in_place{kind, dt, 100000, true, 64};
  with_storage(
      dt, [&](auto word) { check_split_in_place<decltype(word)>(in_place, gpu, rng, stream); });
}

}  // namespace

// One case a kind and dtype (each compiles its own split kernels): run them one by one
// with -tc='split rows: layer_norm f16*'.
TEST_CASE("split rows: layer_norm f16, every split config") {
  split_rows(NormKind::layer_norm, NormDType::f16);
}
TEST_CASE("split rows: layer_norm bf16, every split config") {
  split_rows(NormKind::layer_norm, NormDType::bf16);
}
TEST_CASE("split rows: layer_norm f32, every split config") {
  split_rows(NormKind::layer_norm, NormDType::f32);
}
TEST_CASE("split rows: rms_norm f16, every split config") {
  split_rows(NormKind::rms_norm, NormDType::f16);
}
TEST_CASE("split rows: rms_norm bf16, every split config") {
  split_rows(NormKind::rms_norm, NormDType::bf16);
}
TEST_CASE("split rows: rms_norm f32, every split config") {
  split_rows(NormKind::rms_norm, NormDType::f32);
}

namespace {

template <class T>
void through_the_api(const Case& c, const rt::Device& gpu, std::mt19937& rng, rt::Stream& s) {
  Data<T> d(c, gpu, rng);
  if (c.kind == NormKind::layer_norm) {
    ops::layer_norm(c.dtype, d.dx, d.dy, c.rows, c.cols, d.args(), s);
  } else {
    ops::rms_norm(c.dtype, d.dx, d.dy, c.rows, c.cols, d.args(), s);
  }
  s.synchronize();
  d.check(describe(c));
}

}  // namespace

TEST_CASE("kiln::ops::layer_norm and rms_norm: the factory's choice, every optional argument") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  int options = 0;
  for (auto kind : both_kinds) {
    for (auto dt : all_dtypes) {
      for (const kiln_test::RowShape& sh : kiln_test::ragged_row_shapes) {
        for (int data : {0, 1, 2, 3}) {
          // Walk through the combinations of weight, bias, statistics and residual.
          const int o = options++;
          const Case c{kind,
                       dt,
                       sh.rows,
                       sh.cols,
                       (o & 1) != 0,
                       (o & 2) != 0,
                       (o & 4) != 0 && kind == NormKind::layer_norm,
                       (o & 8) != 0,
                       data,
                       o % 3 == 0 ? 1e-5f : 1e-6f};
          with_storage(dt,
                       [&](auto word) { through_the_api<decltype(word)>(c, gpu, rng, stream); });
        }
      }
    }
  }
}

TEST_CASE("in place: y over x, h over the residual, kiln::bf16 buffers, no rows") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  // y = x: the result read back from x.
  for (int cols : {4096, 65536}) {
    const Case c{NormKind::layer_norm, NormDType::f32, 20, cols, false, true, true, true, 0};
    Data<std::uint32_t> d(c, gpu, rng);
    ops::layer_norm(NormDType::f32, d.dx, d.dx, c.rows, c.cols, d.args());
    d.check(d.dx.to_vector(), {}, "y = x, cols " + std::to_string(cols));
  }
  // y = x with rows split across the grid (rows of 1M on NVIDIA GPUs: each slice is read
  // twice and written by one block).
  {
    const Case c{NormKind::rms_norm, NormDType::f16, 64, 1 << 20, false, true, false, true, 0};
    Data<std::uint16_t> d(c, gpu, rng);
    ops::rms_norm(NormDType::f16, d.dx, d.dx, c.rows, c.cols, d.args());
    d.check(d.dx.to_vector(), {}, "y = x, split rows");
  }
  // And LayerNorm's, whose every block of a row reads the row's first element (the shift
  // of its sums) before that element's block overwrites it.
  {
    const Case c{NormKind::layer_norm, NormDType::bf16, 64, 1 << 20, false, true, true, true, 0};
    Data<std::uint16_t> d(c, gpu, rng);
    ops::layer_norm(NormDType::bf16, d.dx, d.dx, c.rows, c.cols, d.args());
    d.check(d.dx.to_vector(), {}, "y = x, LayerNorm's split rows");
  }
  // h over the residual (vLLM's fused_add_rms_norm), one pass and two.
  for (int cols : {1024, 1 << 18}) {
    const Case c{NormKind::rms_norm, NormDType::bf16, 9, cols, true, true, false, true, 0};
    Data<std::uint16_t> d(c, gpu, rng);
    NormArgs<std::uint16_t> a = d.args();
    a.h = &d.dr;
    ops::rms_norm(NormDType::bf16, d.dx, d.dy, c.rows, c.cols, a);
    d.check(d.dy.to_vector(), d.dr.to_vector(), "h = residual, cols " + std::to_string(cols));
  }
  // h over x, LayerNorm in two passes (the write reads h back).
  {
    const Case c{NormKind::layer_norm, NormDType::f16, 7, 40000, true, false, false, true, 0};
    Data<std::uint16_t> d(c, gpu, rng);
    NormArgs<std::uint16_t> a = d.args();
    a.h = &d.dx;
    ops::layer_norm(NormDType::f16, d.dx, d.dy, c.rows, c.cols, a);
    d.check(d.dy.to_vector(), d.dx.to_vector(), "h = x");
  }
  // Typed buffers.
  {
    const Case c{NormKind::rms_norm, NormDType::bf16, 20, 4096, false, true, false, false, 0};
    Data<std::uint16_t> d(c, gpu, rng);
    rt::DeviceBuffer<bf16> x(d.x.size(), gpu), y(d.x.size(), gpu), w(d.w.size(), gpu);
    std::vector<bf16> host(d.x.size());
    std::memcpy(host.data(), d.x.data(), d.x.size() * 2);
    x.copy_from(host);
    host.resize(d.w.size());
    std::memcpy(host.data(), d.w.data(), d.w.size() * 2);
    w.copy_from(host);
    y.fill_bytes(0xff);
    ops::rms_norm(x, y, c.rows, c.cols, {.weight = &w});
    const std::vector<bf16> back = y.to_vector();
    std::vector<std::uint16_t> bits(back.size());
    std::memcpy(bits.data(), back.data(), back.size() * 2);
    d.check(bits, {}, "DeviceBuffer<kiln::bf16>");
  }
  rt::DeviceBuffer<float> empty_in(1, gpu), empty_out(1, gpu);
  empty_out.fill_bytes(0xff);
  CHECK_NOTHROW(ops::layer_norm(empty_in, empty_out, 0, 1));
  CHECK(std::isnan(empty_out.to_vector()[0]));  // nothing was written
}

TEST_CASE("what the buffers cannot hold, or kiln does not support, is refused") {
  rt::Device gpu(0);
  rt::DeviceBuffer<float> a(100, gpu), b(100, gpu), w(5, gpu), stats(5, gpu);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, 11, 10), doctest::Contains("needs 110 elements"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::rms_norm(a, b, 1, 0), doctest::Contains("kiln: rms_norm: cols = 0"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, -1, 10), doctest::Contains("rows = -1"), Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, 10, 10, {.epsilon = 0.0f}),
                       doctest::Contains("positive and finite"), Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, 10, 10, {.epsilon = NAN}),
                       doctest::Contains("positive and finite"), Error);
  CHECK_THROWS_WITH_AS(ops::rms_norm(a, b, 10, 10, {.bias = &w}),
                       doctest::Contains("RMSNorm has no bias"), Error);
  CHECK_THROWS_WITH_AS(ops::rms_norm(a, b, 10, 10, {.mean = &stats}),
                       doctest::Contains("RMSNorm has no mean"), Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, 10, 10, {.residual = &a}),
                       doctest::Contains("both .residual and .h"), Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, 10, 10, {.residual = &a, .h = &b}),
                       doctest::Contains("h and y are the same buffer"), Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, 10, 10, {.weight = &w}),
                       doctest::Contains("the weight needs 10 elements, but holds 5"), Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm(a, b, 10, 10, {.rstd = &stats}),
                       doctest::Contains("rstd needs 10 elements"), Error);
  rt::DeviceBuffer<std::uint32_t> u(100, gpu);
  CHECK_THROWS_WITH_AS(ops::rms_norm(NormDType::f16, u, u, 10, 10),
                       doctest::Contains("2-byte elements"), Error);
}

// ---- The backward passes ----

namespace {

using ops::NormBackwardArgs;
using ops::NormBackwardParams;

/// What a backward test asks of one call.
struct BackwardCase {
  NormKind kind;
  NormDType dtype;
  std::int64_t rows;
  int cols;
  bool weight, dweight, dbias;
};

std::string describe(const BackwardCase& c) {
  return std::string(ops::detail::norm_name(c.kind)) + " backward " +
         std::string(gen::to_string(c.dtype)) + " " + std::to_string(c.rows) + "x" +
         std::to_string(c.cols) + (c.weight ? " weight" : "") + (c.dweight ? " dweight" : "") +
         (c.dbias ? " dbias" : "");
}

/// A backward case: x, its forward statistics (computed by the forward op on the device,
/// as a training step saves them), dy; dx, dweight and dbias poisoned with NaN.
template <class T>
struct BackwardData {
  BackwardCase c;
  Data<T> fwd;  // x, weight, and the forward's mean and rstd
  std::vector<T> g;
  rt::DeviceBuffer<T> dy, dx, dweight, dbias;

  static Case forward_case(const BackwardCase& k) {
    return {k.kind, k.dtype, k.rows, k.cols, false, k.weight, false, true, 0};
  }

  BackwardData(const BackwardCase& k, const rt::Device& gpu, std::mt19937& rng)
      : c(k), fwd(forward_case(k), gpu, rng) {
    const std::size_t n = std::size_t(c.rows) * std::size_t(c.cols);
    if (n > 0) {
      NormArgs<T> a = fwd.args();
      if (c.kind == NormKind::layer_norm) {
        ops::layer_norm(c.dtype, fwd.dx, fwd.dy, c.rows, c.cols, a);
      } else {
        ops::rms_norm(c.dtype, fwd.dx, fwd.dy, c.rows, c.cols, a);
      }
    }
    std::normal_distribution<double> normal(0.0, 1.0);
    for (std::size_t i = 0; i < n; ++i) g.push_back(encode<T>(c.dtype, float(normal(rng))));
    dy = rt::DeviceBuffer<T>(std::max<std::size_t>(n, 1), gpu);
    dx = rt::DeviceBuffer<T>(std::max<std::size_t>(n, 1), gpu);
    if (n > 0) dy.copy_from(g);
    dx.fill_bytes(0xff);
    if (c.dweight) {
      dweight = rt::DeviceBuffer<T>(std::size_t(c.cols), gpu);
      dweight.fill_bytes(0xff);
    }
    if (c.dbias) {
      dbias = rt::DeviceBuffer<T>(std::size_t(c.cols), gpu);
      dbias.fill_bytes(0xff);
    }
  }

  NormBackwardArgs<T> args() {
    NormBackwardArgs<T> a;
    if (c.weight) a.weight = &fwd.dw;
    if (c.kind == NormKind::layer_norm) a.mean = &fwd.dmean;
    a.rstd = &fwd.drstd;
    if (c.dweight) a.dweight = &dweight;
    if (c.dbias) a.dbias = &dbias;
    return a;
  }

  void run(NormBackwardArgs<T> a, rt::StreamRef s = {}) {
    if (c.kind == NormKind::layer_norm) {
      ops::layer_norm_backward(c.dtype, dy, fwd.dx, dx, c.rows, c.cols, a, s);
    } else {
      ops::rms_norm_backward(c.dtype, dy, fwd.dx, dx, c.rows, c.cols, a, s);
    }
  }

  /// Checks every element of dx (`dx_host`, what the device wrote), dweight and dbias
  /// against a double-precision reference over the same inputs and saved statistics: dx's
  /// rows on every core (kiln_test::check_rows), then dweight's and dbias's columns, each
  /// part summing its columns over the rows in order.
  void check(const std::vector<T>& dx_host, const std::string& what) const {
    const NormDType dt = c.dtype;
    const bool layer = c.kind == NormKind::layer_norm;
    const std::vector<float> mean = layer ? fwd.dmean.to_vector() : std::vector<float>{};
    const std::vector<float> rstd = fwd.drstd.to_vector();
    const double tol = 1e-4;  // f32 math, relative to the size of the terms
    const std::size_t cols = std::size_t(c.cols);
    auto mean_of = [&](std::int64_t row) { return layer ? double(mean[std::size_t(row)]) : 0.0; };
    auto weight_of = [&](std::size_t col) { return c.weight ? decode(dt, fwd.w[col]) : 1.0; };
    kiln_test::RowCheckPart found = kiln_test::check_rows(
        c.rows, [&](kiln_test::RowCheckPart& out, std::int64_t r0, std::int64_t r1) {
          std::vector<double> xhat(cols), gw(cols);
          for (std::int64_t row = r0; row < r1; ++row) {
            const std::size_t base = std::size_t(row) * cols;
            const double mu = mean_of(row);
            const double rs = rstd[std::size_t(row)];
            double sum_g = 0, sum_gx = 0, size_g = 0, size_gx = 0;
            for (std::size_t col = 0; col < cols; ++col) {
              xhat[col] = (decode(dt, fwd.x[base + col]) - mu) * rs;
              gw[col] = decode(dt, g[base + col]) * weight_of(col);
              sum_g += gw[col];
              sum_gx += gw[col] * xhat[col];
              size_g += std::fabs(gw[col]);
              size_gx += std::fabs(gw[col] * xhat[col]);
            }
            const double n_cols = double(cols);
            for (std::size_t col = 0; col < cols; ++col) {
              const double d = layer ? gw[col] - sum_g / n_cols - xhat[col] * sum_gx / n_cols
                                     : gw[col] - xhat[col] * sum_gx / n_cols;
              const double want = rs * d;
              const double scale = rs * (std::fabs(gw[col]) + size_g / n_cols +
                                         std::fabs(xhat[col]) * size_gx / n_cols);
              const double got = decode(dt, dx_host[base + col]);
              ++out.checked;
              if (!(std::fabs(got - want) <= half_ulp(dt, want) + tol * scale)) {
                out.fail("dx row ", row, " col ", col, ": got ", got, ", want ", want);
              }
            }
          }
        });
    // The sums over rows of dy * xhat and dy, with the sums of their sizes, a part of the
    // columns a core (cut as parallel_rows cuts rows).
    std::vector<double> dw(cols, 0.0), dw_abs(cols, 0.0), db(cols, 0.0), db_abs(cols, 0.0);
    if (c.dweight || c.dbias) {
      kiln_test::parallel_rows(std::int64_t(cols),
                               [&](std::size_t, std::int64_t c0, std::int64_t c1) {
                                 for (std::int64_t row = 0; row < c.rows; ++row) {
                                   const std::size_t base = std::size_t(row) * cols;
                                   const double mu = mean_of(row);
                                   const double rs = rstd[std::size_t(row)];
                                   for (auto col = std::size_t(c0); col < std::size_t(c1); ++col) {
                                     const double xh = (decode(dt, fwd.x[base + col]) - mu) * rs;
                                     const double dyv = decode(dt, g[base + col]);
                                     dw[col] += dyv * xh;
                                     dw_abs[col] += std::fabs(dyv * xh);
                                     db[col] += dyv;
                                     db_abs[col] += std::fabs(dyv);
                                   }
                                 }
                               });
    }
    auto check_sum = [&](const rt::DeviceBuffer<T>& buffer, const std::vector<double>& want,
                         const std::vector<double>& size, const char* which) {
      const std::vector<T> got = buffer.to_vector();
      for (std::size_t col = 0; col < cols; ++col) {
        const double v = decode(dt, got[col]);
        ++found.checked;
        if (!(std::fabs(v - want[col]) <= half_ulp(dt, want[col]) + tol * size[col] + 1e-30)) {
          found.fail(which, " col ", col, ": got ", v, ", want ", want[col]);
        }
      }
    };
    if (c.dweight) check_sum(dweight, dw, dw_abs, "dweight");
    if (c.dbias) check_sum(dbias, db, db_abs, "dbias");
    for (const std::string& line : found.first) MESSAGE(what << ": " << line);
    CHECK_MESSAGE(found.bad == 0,
                  what << ": " << found.bad << " of " << found.checked << " values wrong");
  }
};

/// Checks every candidate backward config of `p` (in the `only` strategy, where given):
/// on the op's grid, and (but split configs, whose grid is fixed) on a grid of 2 blocks or
/// clusters, each looping over rows; dweight and dbias from the partial rows by the column
/// sum, as the op adds them.
template <class T>
void check_backward_configs(const NormBackwardParams& p, const rt::Device& gpu, std::mt19937& rng,
                            rt::Stream& stream, const ops::NormStrategy* only = nullptr,
                            bool weight = true) {
  auto& factory = ops::norm_backward_factory();
  const bool layer = p.kind == NormKind::layer_norm;
  std::vector<ops::NormConfig> configs;
  for (const auto& c : factory.configs(p, gpu.properties())) {
    if (!only || c.strategy == *only) configs.push_back(c);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto built = factory.build_all(p, configs, gpu);  // compiled in parallel
  // (Progress: this test compiles some 500 kernels.)
  std::fprintf(stderr, "backward %s %s cols %d: %zu configs compiled in %.1f s\n",
               std::string(ops::detail::norm_name(p.kind)).c_str(),
               std::string(gen::to_string(p.dtype)).c_str(), p.cols, configs.size(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  const auto& sum = ops::column_sum_factory().get({p.dtype, p.cols}, gpu);
  // Split configs' slots, used in turns as the op uses them (see check_configs).
  kiln_test::TurnSlots slots(std::size_t(std::max<std::int64_t>(1, p.rows)) * 512,
                             0x000000017fc00000ull, gpu);
  // One case for every config, its outputs poisoned again before each launch.
  BackwardData<T> d({p.kind, p.dtype, p.rows, p.cols, weight, p.weight_grad, p.bias_grad}, gpu,
                    rng);
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = factory.kernel_name(p, configs[i]);
    CAPTURE(name);
    REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
    const bool split = configs[i].strategy == ops::NormStrategy::split;
    const std::int64_t cluster = configs[i].cluster_blocks;
    const std::int64_t op_blocks =
        ops::detail::norm_backward_blocks(p, configs[i], gpu.properties());
    std::vector<std::int64_t> grids{op_blocks};
    if (!split) grids.push_back(2 * cluster);
    for (std::int64_t blocks : grids) {
      rt::DeviceBuffer<float> partial(
          std::size_t(std::max<std::int64_t>(
              1, ops::detail::norm_backward_partial_floats(p, configs[i], blocks))),
          gpu);
      partial.fill_bytes(0xff);
      d.dx.fill_bytes(0xff);
      if (p.weight_grad) d.dweight.fill_bytes(0xff);
      if (p.bias_grad) d.dbias.fill_bytes(0xff);
      rt::LaunchConfig lc = built[i].kernel->launch_config();
      lc.grid = rt::Dim3(blocks);
      lc.stream = stream;
      const bool any = p.weight_grad || p.bias_grad;
      std::pair<std::uint64_t*, std::uint64_t*> slot_words{nullptr, nullptr};
      if (split) {
        slot_words = slots.take(ops::detail::norm_backward_split_words(p, configs[i]), stream);
      }
      rt::launch(built[i].kernel->function(), lc, d.dy.data(), d.fwd.dx.data(),
                 weight ? d.fwd.dw.data() : nullptr, layer ? d.fwd.dmean.data() : nullptr,
                 d.fwd.drstd.data(), d.dx.data(), any ? partial.data() : nullptr, int(p.rows), 0,
                 slot_words.first, slot_words.second);
      if (any) {
        rt::LaunchConfig slc = sum.launch_config();
        slc.grid.y = unsigned(int(p.weight_grad) + int(p.bias_grad));
        slc.stream = stream;
        rt::launch(sum.function(), slc, static_cast<const float*>(partial.data()),
                   p.weight_grad ? d.dweight.data() : d.dbias.data(),
                   p.weight_grad && p.bias_grad ? d.dbias.data() : nullptr,
                   int(ops::detail::norm_backward_partial_rows(p, configs[i], blocks)));
      }
      stream.synchronize();
      const std::string what = name + " on " + std::to_string(blocks) + " blocks";
      d.check(d.dx.to_vector(), what);
      if (split) slots.check_launched(what);
    }
  }
}

template <class T>
void every_backward_config(NormKind kind, NormDType dt, const rt::Device& gpu, std::mt19937& rng) {
  rt::Stream stream(gpu);
  // (16384, 65536 and 32768: on sm_90 rows shared by clusters too, 65536 with the sums,
  // 32768 without, 16384 in f32; 65536, and 32768 in f32, split across the grid too.)
  const int all_cols[] = {1, 7, 128, 1001, 4096, 8192, 12345, 16384, 65536, 32768};
  for (std::size_t k = 0; k < std::size(all_cols); ++k) {
    const int cols = all_cols[k];
    const bool layer = kind == NormKind::layer_norm;
    // 37 rows: no multiple of a block's rows; the sums of dweight and dbias on alternate
    // row lengths (with them the grid is capped and blocks loop over rows).
    const bool grads = k % 2 == 0;
    check_backward_configs<T>({kind, dt, cols, grads, grads && layer, 37}, gpu, rng, stream);
  }
}

}  // namespace

TEST_CASE("backward: every candidate config, on the op's grid and on a grid of 2 blocks") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  for (auto kind : both_kinds) {
    for (auto dt : all_dtypes) {
      CAPTURE(gen::to_string(dt));
      with_storage(dt,
                   [&](auto word) { every_backward_config<decltype(word)>(kind, dt, gpu, rng); });
    }
  }
}

TEST_CASE("backward split rows: every split config, few rows and many, ragged slices") {
  rt::Device gpu(0);
  if (!kiln_test::runs_split_rows(gpu)) return;
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  const ops::NormStrategy split = ops::NormStrategy::split;
  for (auto kind : both_kinds) {
    for (auto dt : all_dtypes) {
      for (const kiln_test::SplitShape& shape : kiln_test::split_row_shapes) {
        if (!shape.every && dt != shape.dtype) continue;
        // With dweight (and dbias), and (rows of 1M, 100000) without; without a weight on
        // every other shape; LayerNorm with dbias alone on 37 rows of 65536.
        const bool weight = (&shape - kiln_test::split_row_shapes) % 2 == 0;
        for (bool grads : {true, false}) {
          if (!grads && shape.cols == 65536) continue;
          const NormBackwardParams p{
              kind, dt, shape.cols, grads, grads && kind == NormKind::layer_norm, shape.rows};
          CAPTURE(nlohmann::json(p).dump());
          CAPTURE(weight);
          // Rows of 64 KiB and more have split candidates where the grid holds a row's
          // slices and the SM's shared memory their blocks.
          std::size_t offered = 0;
          for (const auto& c : ops::norm_backward_factory().configs(p, gpu.properties())) {
            offered += c.strategy == split;
          }
          CHECK(offered == ops::detail::norm_backward_split_candidates(p, gpu.properties()).size());
          if (std::int64_t(p.cols) * gen::size_of(dt) < 64 * 1024) CHECK(offered == 0);
          with_storage(dt, [&](auto word) {
            check_backward_configs<decltype(word)>(p, gpu, rng, stream, &split, weight);
          });
        }
        if (kind == NormKind::layer_norm && shape.cols == 65536 && shape.rows == 37) {
          const NormBackwardParams bias_only{kind, dt, shape.cols, false, true, shape.rows};
          CAPTURE(nlohmann::json(bias_only).dump());
          with_storage(dt, [&](auto word) {
            check_backward_configs<decltype(word)>(bias_only, gpu, rng, stream, &split);
          });
        }
      }
    }
  }
}

TEST_CASE("backward: the ops with every optional argument, a workspace, dx over dy") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  struct Shape {
    std::int64_t rows;
    int cols;
  };
  // Rows far beyond one grid (blocks loop over them), one row, long rows.
  // (Each shape compiles a forward, a backward and a column sum per kind and dtype: the
  // every-candidate test above covers the configs, this one the calls.)
  // 40 x 16384 and 20 x 65536: on sm_90 rows shared by clusters of 2 and 8 blocks, a
  // partial row a cluster; elsewhere, as 2 x 100003 and 3 x 1M everywhere, multi pass,
  // dweight and dbias from the weight-gradient kernel (3 row groups; one, whose sums it
  // writes whole).
  const Shape shapes[] = {{1, 1},      {3000, 1},   {20000, 128}, {31, 2047},
                          {40, 16384}, {20, 65536}, {2, 100003},  {3, 1 << 20}};
  int options = 0;
  for (auto kind : both_kinds) {
    for (auto dt : all_dtypes) {
      for (const Shape& sh : shapes) {
        const int o = options++;
        const bool layer = kind == NormKind::layer_norm;
        const BackwardCase c{
            kind, dt, sh.rows, sh.cols, (o & 1) != 0, (o & 2) != 0, (o & 4) != 0 && layer};
        auto run = [&]<class T>(T) {
          BackwardData<T> d(c, gpu, rng);
          NormBackwardArgs<T> a = d.args();
          rt::DeviceBuffer<float> workspace;
          if (o % 3 == 0) {
            workspace = rt::DeviceBuffer<float>(
                std::max<std::size_t>(1, ops::norm_backward_workspace_size(
                                             kind, dt, c.rows, c.cols, c.dweight, c.dbias, gpu)),
                gpu);
            a.workspace = &workspace;
          }
          d.run(a, stream);
          stream.synchronize();
          d.check(d.dx.to_vector(), describe(c));
          // The same call again: the same bits (no atomics in the sums).
          const std::vector<T> dx1 = d.dx.to_vector();
          const std::vector<T> dw1 = c.dweight ? d.dweight.to_vector() : std::vector<T>{};
          const std::vector<T> db1 = c.dbias ? d.dbias.to_vector() : std::vector<T>{};
          d.run(a, stream);
          stream.synchronize();
          CHECK(d.dx.to_vector() == dx1);
          if (c.dweight) CHECK(d.dweight.to_vector() == dw1);
          if (c.dbias) CHECK(d.dbias.to_vector() == db1);
          // dweight over the weight: dx from the weight as it was (where the sums come
          // whole from one row group, through partial sums then), dweight the same bits.
          if (c.weight && c.dweight) {
            rt::DeviceBuffer<T> w(std::size_t(c.cols), gpu);
            w.copy_from(*a.weight);
            NormBackwardArgs<T> b = a;
            b.weight = &w;
            b.dweight = &w;
            d.run(b, stream);
            stream.synchronize();
            CHECK(d.dx.to_vector() == dx1);
            CHECK(w.to_vector() == dw1);
          }
          // dx over dy.
          if (o % 4 == 1) {
            d.dy.copy_from(d.g);
            if (c.kind == NormKind::layer_norm) {
              ops::layer_norm_backward(dt, d.dy, d.fwd.dx, d.dy, c.rows, c.cols, a, stream);
            } else {
              ops::rms_norm_backward(dt, d.dy, d.fwd.dx, d.dy, c.rows, c.cols, a, stream);
            }
            stream.synchronize();
            d.check(d.dy.to_vector(), describe(c) + " dx = dy");
          }
        };
        if (dt == NormDType::f32) {
          run(std::uint32_t{});
        } else {
          run(std::uint16_t{});
        }
      }
    }
  }
}

namespace {

// The names of the kernels launched while it is installed.
class LaunchNames : public rt::LaunchObserver {
 public:
  LaunchNames() { rt::launch_observer().store(this); }
  ~LaunchNames() override { rt::launch_observer().store(nullptr); }
  LaunchNames(const LaunchNames&) = delete;
  LaunchNames& operator=(const LaunchNames&) = delete;
  void* before_launch(const rt::Function& f, const rt::LaunchConfig&,
                      const rt::LaunchInfo*) override {
    names.push_back(f.name());
    return nullptr;
  }
  void after_launch(const rt::Function&, const rt::LaunchConfig&, void*, double) override {}
  void launch_failed(void*) override {}
  std::vector<std::string> names;
  std::size_t count(const std::string& part) const {
    return std::size_t(std::count_if(names.begin(), names.end(), [&](const std::string& n) {
      return n.find(part) != std::string::npos;
    }));
  }
};

}  // namespace

TEST_CASE("backward: tuning times multi-pass candidates with the sums as the call runs them") {
  // With dweight and dbias, rows of 1M take two passes, and a call takes the sums from the
  // weight-gradient kernel and dx from the kernel without them: that is what tuning times
  // for each such candidate, never the multi-pass kernel with the sums.
  rt::Device gpu(0);
  kiln_test::TempDir dir("kiln-norm-tune");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  auto& f = ops::norm_backward_factory();
  const factory::TuneOptions before = f.tune_options();
  factory::TuneOptions full;
  full.policy = factory::TunePolicy::full;
  full.stop = {0.02, 3, 30, 0.5};
  f.set_database(&db);
  f.set_tune_options(full);
  struct Restore {
    ops::NormBackwardFactory& f;
    factory::TuneOptions o;
    ~Restore() {
      f.set_tune_options(o);
      f.set_database(nullptr);
    }
  } restore{f, before};
  // 9 rows (a row bucket no other test asks for, so that this lookup tunes).
  const ops::NormBackwardParams p{NormKind::layer_norm, NormDType::bf16, 1 << 20, true, true, 9};
  LaunchNames launches;
  const auto& k = ops::detail::norm_backward_kernel(p, gpu);
  // Split candidates (where the device holds a row's slices) compute the sums in their
  // own kernel and may win; else rows of 1M take two passes.
  ops::NormBackwardParams bucket = p;
  bucket.rows = ops::detail::row_bucket(p.rows);
  const bool splits =
      !ops::detail::norm_backward_split_candidates(bucket, gpu.properties()).empty();
  CAPTURE(splits);
  CHECK((k.config().strategy == ops::NormStrategy::multi_pass ||
         (splits && k.config().strategy == ops::NormStrategy::split)));
  CHECK(launches.count("norm_weight_grad__layer__bf16__cols1048576__dw_db") > 0);
  CHECK(launches.count("norm_backward__layer__bf16__cols1048576__dw_db__multipass") == 0);
  CHECK((launches.count("norm_backward__layer__bf16__cols1048576__dw_db__split") > 0) == splits);
  // (dx alone launches as well when its own entry is tuned, on the split plan's lookup:
  // the weight-gradient kernel's launches are what only a split candidate's timing makes.)
  CHECK(launches.count("norm_backward__layer__bf16__cols1048576__multipass") > 0);
  // Its record: every candidate timed.
  const auto entry = db.find(f.tuning_key(bucket, gpu));
  REQUIRE(entry.has_value());
  CHECK_FALSE(entry->candidates.empty());
  for (const auto& c : entry->candidates) {
    CAPTURE(c.config.dump());
    CHECK(c.status == factory::CandidateStatus::timed);
  }
}

TEST_CASE("backward split rows: the ops launch a split config their record names, dx over dy too") {
  // Split configs are tuning candidates only: a tuning record naming one makes the call
  // launch it (its slots, its grid, the column sum of its partial rows).
  rt::Device gpu(0);
  if (!kiln_test::runs_split_rows(gpu)) return;
  std::mt19937 rng(std::random_device{}());
  kiln_test::TempDir dir("kiln-norm-split-backward");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  auto& f = ops::norm_backward_factory();
  f.set_database(&db);
  struct Restore {
    ops::NormBackwardFactory& f;
    ~Restore() { f.set_database(nullptr); }
  } restore{f};
  rt::Stream stream(gpu);
  // 200 rows (a row bucket no other test of rows of 1M asks for, so that this lookup reads
  // the record).
  const BackwardCase cases[] = {
      {NormKind::layer_norm, NormDType::f16, 200, 1 << 20, true, true, true},
      {NormKind::rms_norm, NormDType::bf16, 200, 1 << 20, true, true, false},
      {NormKind::layer_norm, NormDType::f32, 200, 1 << 20, false, false, false}};
  for (const BackwardCase& c : cases) {
    CAPTURE(describe(c));
    ops::NormBackwardParams bucket{c.kind,    c.dtype, c.cols,
                                   c.dweight, c.dbias, ops::detail::row_bucket(c.rows)};
    const auto split = ops::detail::norm_backward_split_candidates(bucket, gpu.properties());
    if (split.empty()) {  // (where the SM's shared memory or the grid holds none)
      MESSAGE(describe(c) << ": no split candidate on " << gpu.properties().name);
      continue;
    }
    factory::TuningEntry entry;
    entry.key = f.tuning_key(bucket, gpu);
    entry.best = nlohmann::json(split.front());
    entry.policy = "full";
    db.store(entry);
    CHECK(ops::detail::norm_backward_kernel({c.kind, c.dtype, c.cols, c.dweight, c.dbias, c.rows},
                                            gpu)
              .config() == split.front());
    auto run = [&](auto tag) {
      BackwardData<decltype(tag)> d(c, gpu, rng);
      d.run(d.args(), stream);
      stream.synchronize();
      d.check(d.dx.to_vector(), describe(c) + " split");
      // dx over dy (each element read, twice, before its block writes it).
      d.dy.copy_from(d.g);
      if (c.kind == NormKind::layer_norm) {
        ops::layer_norm_backward(c.dtype, d.dy, d.fwd.dx, d.dy, c.rows, c.cols, d.args(), stream);
      } else {
        ops::rms_norm_backward(c.dtype, d.dy, d.fwd.dx, d.dy, c.rows, c.cols, d.args(), stream);
      }
      stream.synchronize();
      d.check(d.dy.to_vector(), describe(c) + " split, dx = dy");
    };
    if (c.dtype == NormDType::f32) {
      run(std::uint32_t{});
    } else {
      run(std::uint16_t{});
    }
  }
}

namespace {

/// kernels/column_sum.cu's sum of column `col` over `parts` partial rows, in its order:
/// group g takes rows g, g + groups, ...; the i-th of them goes to chain i % 4; the chains
/// are added as (c0 + c1) + (c2 + c3) and the groups in order.
float column_sum_in_order(const std::vector<float>& partial, int cols, int col, int parts,
                          int groups) {
  float total = 0.0f;
  for (int g = 0; g < groups; ++g) {
    float chain[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; g + i * groups < parts; ++i) {
      chain[i % 4] += partial[std::size_t(g + i * groups) * std::size_t(cols) + std::size_t(col)];
    }
    const float group = (chain[0] + chain[1]) + (chain[2] + chain[3]);
    total = g == 0 ? group : total + group;
  }
  return total;
}

}  // namespace

TEST_CASE("column sums: 8 and 32 groups, any number of partial rows, in their fixed order") {
  // (Fewer partial rows than groups, in rows of whole 4-float vectors: each thread 4 columns
  // and every partial row, in the order of one group, on the host's smaller grid.)
  rt::Device gpu(0);
  rt::Stream stream(gpu);
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto& factory = ops::column_sum_factory();
  // The factory's choice: 32 groups where the 32-column blocks are fewer than the SMs.
  const int sms = gpu.properties().multiprocessors;
  CHECK(factory.get({NormDType::f32, 32 * (sms - 1)}, gpu).config().groups == 32);
  CHECK(factory.get({NormDType::f32, 32 * sms}, gpu).config().groups == 8);
  for (const int cols : {1, 45, 512, 4100}) {
    for (const auto dt : {NormDType::f32, NormDType::bf16}) {
      const ops::ColumnSumParams p{dt, cols};
      const std::vector<ops::ColumnSumConfig> configs{{32, 8}, {32, 32}};
      const auto built = factory.build_all(p, configs, gpu);
      for (std::size_t c = 0; c < configs.size(); ++c) {
        const std::string name = factory.kernel_name(p, configs[c]);
        CAPTURE(name);
        REQUIRE_MESSAGE(built[c].kernel, built[c].reason);
        // Parts around the multiples of 4 chains of 8 and 32 groups.
        for (const int parts : {1, 3, 8, 31, 32, 33, 127, 128, 129, 131, 1000}) {
          CAPTURE(parts);
          std::vector<float> partial(std::size_t(2 * parts) * std::size_t(cols));
          for (float& v : partial) v = normal(rng);
          rt::DeviceBuffer<float> d_partial(partial.size(), gpu);
          d_partial.copy_from(partial);
          const std::size_t bytes = std::size_t(cols) * std::size_t(gen::size_of(dt));
          rt::DeviceBuffer<unsigned char> out0(bytes, gpu), out1(bytes, gpu);
          out0.fill_bytes(0xff);
          out1.fill_bytes(0xff);
          const bool few = ops::detail::column_sum_few(configs[c], cols, parts, d_partial.data());
          CHECK(few == (cols % 4 == 0 && parts < configs[c].groups));
          rt::LaunchConfig lc = built[c].kernel->launch_config();
          lc.grid.x =
              unsigned(ops::detail::column_sum_blocks(configs[c], cols, parts, d_partial.data()));
          lc.grid.y = 2;
          lc.stream = stream;
          rt::launch(built[c].kernel->function(), lc, static_cast<const float*>(d_partial.data()),
                     static_cast<void*>(out0.data()), static_cast<void*>(out1.data()), parts);
          stream.synchronize();
          const std::vector<unsigned char> got[2] = {out0.to_vector(), out1.to_vector()};
          int wrong = 0;
          for (int which = 0; which < 2; ++which) {
            const std::vector<float> mine(
                partial.begin() + std::ptrdiff_t(which) * parts * cols,
                partial.begin() + std::ptrdiff_t(which + 1) * parts * cols);
            for (int col = 0; col < cols; ++col) {
              const float want =
                  column_sum_in_order(mine, cols, col, parts, few ? 1 : configs[c].groups);
              std::uint32_t got_bits = 0, want_bits = 0;
              if (dt == NormDType::f32) {
                std::memcpy(&got_bits, got[which].data() + 4 * col, 4);
                std::memcpy(&want_bits, &want, 4);
              } else {  // bf16: the f32 sum rounded to nearest even
                std::uint16_t h = 0;
                std::memcpy(&h, got[which].data() + 2 * col, 2);
                got_bits = h;
                want_bits = kiln_test::float_to_bf16(want);
              }
              if (got_bits != want_bits && ++wrong <= 3) {
                FAIL_CHECK("output " << which << " column " << col << ": bits " << got_bits
                                     << ", the fixed order gives " << want_bits);
              }
            }
          }
          CHECK(wrong == 0);
        }
      }
    }
  }
}

TEST_CASE("backward: no rows gives zero sums; what kiln does not support is refused") {
  rt::Device gpu(0);
  rt::DeviceBuffer<float> a(100, gpu), b(100, gpu), c(100, gpu), dw(10, gpu), stats(10, gpu),
      small(3, gpu);
  dw.fill_bytes(0xff);
  ops::layer_norm_backward(a, b, c, 0, 10, {.mean = &stats, .rstd = &stats, .dweight = &dw});
  for (float v : dw.to_vector()) CHECK(v == 0.0f);
  CHECK_THROWS_WITH_AS(ops::layer_norm_backward(a, b, c, 10, 10, {.rstd = &stats}),
                       doctest::Contains("needs .mean"), Error);
  CHECK_THROWS_WITH_AS(ops::rms_norm_backward(a, b, c, 10, 10, {}),
                       doctest::Contains("needs .rstd"), Error);
  CHECK_THROWS_WITH_AS(ops::rms_norm_backward(a, b, c, 10, 10, {.mean = &stats, .rstd = &stats}),
                       doctest::Contains("RMSNorm has no mean"), Error);
  CHECK_THROWS_WITH_AS(ops::rms_norm_backward(a, b, c, 10, 10, {.rstd = &stats, .dbias = &dw}),
                       doctest::Contains("RMSNorm has no bias, hence no dbias"), Error);
  CHECK_THROWS_WITH_AS(ops::layer_norm_backward(a, b, c, 11, 10, {.mean = &stats, .rstd = &stats}),
                       doctest::Contains("needs 110 elements"), Error);
  CHECK_THROWS_WITH_AS(
      ops::layer_norm_backward(a, b, c, 10, 10, {.mean = &stats, .rstd = &stats, .dweight = &c}),
      doctest::Contains("buffers of their own"), Error);
  CHECK_THROWS_WITH_AS(
      ops::layer_norm_backward(
          a, b, c, 10, 10, {.mean = &stats, .rstd = &stats, .dweight = &dw, .workspace = &small}),
      doctest::Contains("the workspace holds 3 floats"), Error);
  CHECK_THROWS_WITH_AS(
      ops::layer_norm_backward(a, b, c, 10, 10, {.weight = &small, .mean = &stats, .rstd = &stats}),
      doctest::Contains("the weight needs 10 elements, but holds 3"), Error);
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: norm_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
