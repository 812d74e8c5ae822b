// Softmax and its backward on a GPU: every candidate config of each row length, and the
// factory's own choice, against a double-precision CPU reference on fresh random data (made
// once a shape for all its configs), outputs poisoned with NaN first, every element
// checked (on every core). Skips (exit 77) where there is no GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/jit.hpp"
#include "kiln/ops/softmax.hpp"
#include "kiln/rt.hpp"
#include "row_test_support.hpp"
#include "split_test_support.hpp"

using namespace kiln;
using kiln_test::bf16_to_float;
using kiln_test::float_to_bf16;
using kiln_test::float_to_half;
using kiln_test::half_to_float;
using kiln_test::half_ulp;
using ops::SoftmaxConfig;
using SoftmaxDType = kiln::gen::DType;  // f16, bf16 or f32 for a softmax
using ops::SoftmaxParams;

namespace {

/// One matrix in its storage type, with the values it holds as doubles.
struct Data {
  SoftmaxDType dtype;
  std::int64_t rows;
  int cols;
  std::vector<double> values;
  std::vector<std::uint16_t> bits;  // f16 / bf16
  std::vector<float> floats;        // f32
  /// The double-precision softmax of `values`, computed once, when first asked for (every
  /// config a test runs on this matrix is checked against it).
  const std::vector<double>& softmax() const {
    if (softmax_.empty() && !values.empty()) {
      softmax_.resize(values.size());
      const auto n = std::size_t(cols);
      kiln_test::parallel_rows(rows, [&](std::size_t, std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
          const double* x = values.data() + std::size_t(r) * n;
          double* w = softmax_.data() + std::size_t(r) * n;
          const double m = *std::max_element(x, x + n);
          double s = 0;
          for (std::size_t c = 0; c < n; ++c) s += (w[c] = std::exp(x[c] - m));
          for (std::size_t c = 0; c < n; ++c) w[c] /= s;
        }
      });
    }
    return softmax_;
  }
  mutable std::vector<double> softmax_{};  // softmax()'s
};

/// `values` (rows x cols, row-major) rounded to the storage type of `dt`.
Data stored(SoftmaxDType dt, std::int64_t rows, int cols, const std::vector<double>& values) {
  Data d{dt, rows, cols, {}, {}, {}};
  d.values.reserve(values.size());
  if (dt == SoftmaxDType::f32) {
    d.floats.reserve(values.size());
  } else {
    d.bits.reserve(values.size());
  }
  for (double v : values) {
    const float f = float(v);
    if (dt == SoftmaxDType::f32) {
      d.floats.push_back(f);
      d.values.push_back(f);
    } else {
      const std::uint16_t b = dt == SoftmaxDType::f16 ? float_to_half(f) : float_to_bf16(f);
      d.bits.push_back(b);
      d.values.push_back(dt == SoftmaxDType::f16 ? half_to_float(b) : bf16_to_float(b));
    }
  }
  return d;
}

/// kind 0: N(0, 1); 1: N(0, 8), peaky rows; 2: huge values near the type's limit (and a
/// row of one repeated huge value); 3: every row constant.
Data make_data(SoftmaxDType dt, std::int64_t rows, int cols, int kind, std::mt19937& rng) {
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  const double top = dt == SoftmaxDType::f16 ? 65000.0 : 3.0e38;
  std::normal_distribution<double> normal(0.0, kind == 1 ? 8.0 : 1.0);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  std::vector<double> values(n);
  for (std::size_t i = 0; i < n; ++i) {
    double v = normal(rng);
    if (kind == 2) v = (i / std::size_t(cols)) % 2 ? top : top * uniform(rng);
    if (kind == 3) v = double(i / std::size_t(cols) % 7) * 1000.0 - 3000.0;
    values[i] = v;
  }
  return stored(dt, rows, cols, values);
}

/// One matrix on the device in its storage type: a copy of a Data, or NaN-poisoned.
struct DeviceMatrix {
  rt::DeviceBuffer<std::uint16_t> b16;
  rt::DeviceBuffer<float> b32;
  DeviceMatrix(const Data& d, const rt::Device& gpu) {
    if (d.dtype == SoftmaxDType::f32) {
      b32 = rt::DeviceBuffer<float>(d.floats.size(), gpu);
      b32.copy_from(d.floats);
    } else {
      b16 = rt::DeviceBuffer<std::uint16_t>(d.bits.size(), gpu);
      b16.copy_from(d.bits);
    }
  }
  DeviceMatrix(SoftmaxDType dt, std::size_t n, const rt::Device& gpu) {
    if (dt == SoftmaxDType::f32) {
      b32 = rt::DeviceBuffer<float>(n, gpu);
      b32.fill_bytes(0xff);
    } else {
      b16 = rt::DeviceBuffer<std::uint16_t>(n, gpu);
      b16.fill_bytes(0xff);
    }
  }
  std::vector<double> values(SoftmaxDType dt) const {
    std::vector<double> out;
    out.reserve(dt == SoftmaxDType::f32 ? b32.size() : b16.size());
    if (dt == SoftmaxDType::f32) {
      for (float f : b32.to_vector()) out.push_back(f);
    } else {
      for (std::uint16_t b : b16.to_vector()) {
        out.push_back(dt == SoftmaxDType::f16 ? half_to_float(b) : bf16_to_float(b));
      }
    }
    return out;
  }
};

/// rt::launch of `fn` over the matrices' buffers of dtype `dt`, then `rows`.
template <class... M>
void launch_over(const rt::Function& fn, const rt::LaunchConfig& lc, SoftmaxDType dt,
                 std::int64_t rows, M&... m) {
  if (dt == SoftmaxDType::f32) {
    rt::launch(fn, lc, m.b32..., int(rows));
  } else {
    rt::launch(fn, lc, m.b16..., int(rows));
  }
}

/// Device copies of a matrix's input and a NaN-poisoned output.
struct DeviceData {
  DeviceMatrix in, out;
  DeviceData(const Data& d, const rt::Device& gpu)
      : in(d, gpu), out(d.dtype, d.values.size(), gpu) {}
  std::vector<double> result(SoftmaxDType dt) const { return out.values(dt); }
};

/// Reports what kiln_test::check_rows found in `elements` elements (the first wrong ones,
/// then whether any was wrong); returns the worst error.
double report(const kiln_test::RowCheckPart& found, const std::string& what, std::size_t elements) {
  for (const std::string& line : found.first) MESSAGE(what << ": " << line);
  CHECK_MESSAGE(found.bad == 0,
                what << ": " << found.bad << " of " << elements << " elements wrong");
  return found.worst;
}

/// Checks every element against the double-precision softmax of `d`; returns the worst
/// relative error beyond the storage type's rounding. NaN never passes. (Rows are compared
/// on every core; the first few wrong elements, in row order, are reported.)
double check(const Data& d, const std::vector<double>& got, const std::string& what) {
  const double tol = d.dtype == SoftmaxDType::f32 ? 2e-5 : 1e-4;
  const std::vector<double>& want = d.softmax();
  REQUIRE_MESSAGE(got.size() == want.size(),
                  what << ": " << got.size() << " elements, not " << want.size());
  const auto n = std::size_t(d.cols);
  const kiln_test::RowCheckPart found = kiln_test::check_rows(
      d.rows, [&](kiln_test::RowCheckPart& out, std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
          for (std::size_t c = 0; c < n; ++c) {
            const double w = want[std::size_t(r) * n + c];
            const double g = got[std::size_t(r) * n + c];
            // Outputs under f32's smallest normal may flush to zero.
            const double excess = std::fabs(g - w) - half_ulp(d.dtype, w) - 1.2e-38;
            const double err = excess <= 0 ? 0 : excess / w;
            out.error(err, tol, "row ", r, " col ", c, ": got ", g, ", want ", w);
          }
        }
      });
  return report(found, what, got.size());
}

std::string describe(const Data& d) {
  return std::string(gen::to_string(d.dtype)) + " " + std::to_string(d.rows) + "x" +
         std::to_string(d.cols);
}

const SoftmaxDType all_dtypes[] = {SoftmaxDType::f16, SoftmaxDType::bf16, SoftmaxDType::f32};

/// A test's data of one kind (make_data's or make_backward's), made once for every config
/// it checks.
template <class T>
struct Kind {
  int kind;
  T data;
};
/// make(dtype, rows, cols, kind, rng) of p's shape for each of `kinds`.
template <class Make>
auto of_kinds(const SoftmaxParams& p, std::initializer_list<int> kinds, std::mt19937& rng,
              Make make) {
  std::vector<Kind<decltype(make(p.dtype, p.rows, p.cols, 0, rng))>> out;
  for (int kind : kinds) out.push_back({kind, make(p.dtype, p.rows, p.cols, kind, rng)});
  return out;
}
using KindData = Kind<Data>;  // (with its softmax, computed at the first check)

/// Forward kernel `fn` of config `c` launched as `lc` on `stream` over p.rows rows of each
/// of the matrices of `data` (of_kinds' of make_data), against the CPU reference. A split config
/// gets two slot buffers of its own, used in turns as kiln's calls use theirs (TurnSlots:
/// the first launch's zeroed on the stream, each later one's by the launch before it,
/// which is checked), both left tagged (nonzero) by earlier launches.
void check_every_kind(const rt::Function& fn, rt::LaunchConfig lc, const SoftmaxParams& p,
                      const SoftmaxConfig& c, const std::string& name, const rt::Device& gpu,
                      rt::Stream& stream, const std::vector<KindData>& data) {
  lc.stream = stream;
  const bool split = c.strategy == ops::SoftmaxStrategy::split;
  const std::size_t words = split ? ops::detail::softmax_split_words(p, c) : 0;
  kiln_test::TurnSlots slots(words + 16, 0x3f8000007f7fffffull, gpu);
  // One kind of data (the long shapes): a split config runs twice, the second launch on
  // the slots the first zeroed.
  const int runs = split && data.size() == 1 ? 2 : 1;
  REQUIRE(!data.empty());
  for (const auto& [kind, d] : data) {
    REQUIRE(d.rows == p.rows);
    REQUIRE(d.cols == p.cols);
    for (int run = 0; run < runs; ++run) {
      DeviceData dev(d, gpu);  // (the output poisoned again)
      std::pair<std::uint64_t*, std::uint64_t*> slot_words{nullptr, nullptr};
      if (split) slot_words = slots.take(words, stream);
      if (p.dtype == SoftmaxDType::f32) {
        rt::launch(fn, lc, dev.in.b32, dev.out.b32, int(p.rows), slot_words.first,
                   slot_words.second);
      } else {
        rt::launch(fn, lc, dev.in.b16, dev.out.b16, int(p.rows), slot_words.first,
                   slot_words.second);
      }
      stream.synchronize();
      const std::string what =
          name + " data " + std::to_string(kind) + " run " + std::to_string(run);
      if (run + 1 == runs) check(d, dev.result(p.dtype), what);
      if (split) slots.check_launched(what);
    }
  }
}

/// Each of `configs` for `p`, compiled all at once (in parallel), then run on every kind of
/// data against the CPU reference (check_every_kind).
void check_configs(const SoftmaxParams& p, const std::vector<SoftmaxConfig>& configs,
                   const rt::Device& gpu, rt::Stream& stream, std::mt19937& rng) {
  auto& factory = ops::softmax_factory();
  const auto built = factory.build_all(p, configs, gpu);
  const std::vector<KindData> data = of_kinds(p, {0, 1, 2}, rng, make_data);
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const std::string name = factory.kernel_name(p, configs[i]);
    CAPTURE(name);
    REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
    check_every_kind(built[i].kernel->function(), built[i].kernel->launch_config(), p, configs[i],
                     name, gpu, stream, data);
  }
}

}  // namespace

TEST_CASE("every candidate config computes softmax, ragged rows and huge values included") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  for (auto dt : all_dtypes) {
    for (int cols : {1, 7, 128, 1000, 1001, 4096, 8192, 12345, 65536}) {
      const SoftmaxParams p{dt, cols, 37};  // 37 rows: no multiple of any rows per block
      check_configs(p, ops::softmax_factory().configs(p, gpu.properties()), gpu, stream, rng);
    }
  }
}

TEST_CASE("staged clusters: rows of 2^20 over 16 blocks, where the device holds them") {
  rt::Device gpu(0);
  const auto& props = gpu.properties();
  if (props.platform != rt::Platform::cuda || props.compute_major < 9) {
    MESSAGE("skipped: clusters run on sm_90 and later; this device is " << props.arch);
    return;
  }
  auto& factory = ops::softmax_factory();
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  int ran = 0;
  for (auto dt : {SoftmaxDType::f16, SoftmaxDType::bf16}) {
    const SoftmaxParams p{dt, 1 << 20, 5};
    std::vector<SoftmaxConfig> configs;
    for (const auto& c : factory.configs(p, props)) {
      if (c.strategy == ops::SoftmaxStrategy::staged && c.cluster_blocks > 1) configs.push_back(c);
    }
    REQUIRE(!configs.empty());
    const auto built = factory.build_all(p, configs, gpu);
    const std::vector<KindData> data = of_kinds(p, {0, 1, 2}, rng, make_data);
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const std::string name = factory.kernel_name(p, configs[i]);
      CAPTURE(name);
      REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
      const rt::Function& fn = built[i].kernel->function();
      const rt::LaunchConfig lc = built[i].kernel->launch_config();
      const unsigned block[3] = {lc.block.x, lc.block.y, lc.block.z};
      const int most = fn.max_cluster_blocks(block, lc.shared_bytes);
      if (most < int(lc.cluster.count())) {
        MESSAGE("skipped " << name << ": the device holds clusters of " << most << " such blocks");
        continue;
      }
      check_every_kind(fn, lc, p, configs[i], name, gpu, stream, data);
      ++ran;
    }
  }
  MESSAGE(ran << " staged cluster configs ran");
}

TEST_CASE("staged rows held partly in registers: rows of 192 to 256 KiB, every such config") {
  rt::Device gpu(0);
  const auto& props = gpu.properties();
  auto& factory = ops::softmax_factory();
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  int ran = 0;
  // Rows of 256 KiB in each dtype and of 224 KiB in f32 (2 or 4 vectors a thread held),
  // over 37 rows and over 300 (more rows than SMs: blocks after blocks).
  const SoftmaxParams problems[] = {{SoftmaxDType::f32, 65536, 37},
                                    {SoftmaxDType::f32, 57344, 37},
                                    {SoftmaxDType::f16, 131072, 37},
                                    {SoftmaxDType::bf16, 131072, 37},
                                    {SoftmaxDType::bf16, 131072, 300}};
  for (const SoftmaxParams& p : problems) {
    CAPTURE(nlohmann::json(p).dump());
    std::vector<SoftmaxConfig> configs;
    for (const auto& c : factory.configs(p, props)) {
      if (c.staged_held > 0) configs.push_back(c);
    }
    if (configs.empty()) {
      MESSAGE("skipped: no config holds " << p.cols << " columns on " << props.name);
      continue;
    }
    check_configs(p, configs, gpu, stream, rng);
    ran += int(configs.size());
  }
  MESSAGE(ran << " held staged configs ran");
  // An H100's or H200's blocks (227 KiB of shared memory) take each of them.
  if (props.shared_per_block_optin >= 227 * 1024) CHECK(ran == 10);
}

namespace {
// Every split config of the forward in `dt` (a test case a dtype: scripts/split-check.sh
// runs them side by side).
void split_every_config(SoftmaxDType dt) {
  rt::Device gpu(0);
  const auto& props = gpu.properties();
  if (!kiln_test::runs_split_rows(gpu)) return;
  auto& factory = ops::softmax_factory();
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  for (const kiln_test::SplitShape& shape : kiln_test::split_row_shapes) {
    if (!shape.every && dt != shape.dtype) continue;
    const SoftmaxParams p{dt, shape.cols, shape.rows};
    CAPTURE(nlohmann::json(p).dump());
    std::vector<SoftmaxConfig> configs;
    for (const auto& c : factory.configs(p, props)) {
      if (c.strategy == ops::SoftmaxStrategy::split) configs.push_back(c);
    }
    CHECK(!configs.empty());  // rows of 64 KiB and more
    const auto built = factory.build_all(p, configs, gpu);
    const std::vector<KindData> data = of_kinds(
        p, shape.every ? std::initializer_list<int>{0, 1, 2} : std::initializer_list<int>{0}, rng,
        make_data);
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const std::string name = factory.kernel_name(p, configs[i]);
      CAPTURE(name);
      REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
      check_every_kind(built[i].kernel->function(), built[i].kernel->launch_config(), p, configs[i],
                       name, gpu, stream, data);
    }
  }
}
}  // namespace

TEST_CASE("split rows: f16, every split config, few rows and many, ragged slices") {
  split_every_config(SoftmaxDType::f16);
}
TEST_CASE("split rows: bf16, every split config, few rows and many, ragged slices") {
  split_every_config(SoftmaxDType::bf16);
}
TEST_CASE("split rows: f32, every split config, few rows and many, ragged slices") {
  split_every_config(SoftmaxDType::f32);
}

TEST_CASE("split rows through kiln's slots: grown, on streams made and destroyed, two threads") {
  rt::Device gpu(0);
  if (!kiln_test::runs_split_rows(gpu)) return;
  std::mt19937 rng(std::random_device{}());
  const int cols = 1 << 20;  // f16 rows of 2 MiB: split untuned
  const Data big = make_data(SoftmaxDType::f16, 8, cols, 0, rng);
  const Data small = make_data(SoftmaxDType::f16, 2, cols, 1, rng);
  // The buffers first (their copies wait for the whole device), then only launches.
  std::vector<std::unique_ptr<DeviceData>> outs;
  auto make = [&](const std::vector<const Data*>& data) {
    outs.clear();
    for (const Data* d : data) outs.push_back(std::make_unique<DeviceData>(*d, gpu));
  };
  auto launch = [&](std::size_t i, const Data& d, rt::StreamRef stream) {
    ops::softmax(SoftmaxDType::f16, outs[i]->in.b16, outs[i]->out.b16, d.rows, d.cols, stream);
  };
  auto check_all = [&](const std::vector<const Data*>& data, const std::string& what) {
    gpu.make_current();
    rt::driver().check(rt::driver().context_synchronize(), "context_synchronize");
    for (std::size_t i = 0; i < data.size(); ++i) {
      check(*data[i], outs[i]->result(SoftmaxDType::f16), what + " " + std::to_string(i));
    }
  };
  // Two rows, then eight on the same stream (the slots grow while the first launch may
  // still run), then two again.
  const std::vector<const Data*> grown = {&small, &big, &small};
  make(grown);
  {
    rt::Stream stream(gpu);
    for (std::size_t i = 0; i < grown.size(); ++i) launch(i, *grown[i], stream);
    check_all(grown, "grown, launch");
  }
  // Streams destroyed with their launch still queued, a new one (often the same handle)
  // made at once: each launch waits for the last launch on those slots before it takes
  // them (and zeroes the other buffer's words).
  const std::vector<const Data*> mixed = {&big, &small, &big, &small};
  make(mixed);
  for (std::size_t i = 0; i < mixed.size(); ++i) {
    rt::Stream stream(gpu);
    launch(i, *mixed[i], stream);
  }
  check_all(mixed, "streams made and destroyed, launch");
  // Two host threads on their per-thread default streams (one handle, two streams).
  const std::vector<const Data*> eight(8, &big);
  make(eight);
  auto worker = [&](std::size_t first) {
    const rt::StreamRef per_thread{reinterpret_cast<void*>(std::uintptr_t(2)), 0};
    for (std::size_t i = first; i < eight.size(); i += 2) launch(i, big, per_thread);
  };
  std::thread t0(worker, 0), t1(worker, 1);
  t0.join();
  t1.join();
  check_all(eight, "two threads, launch");
}

TEST_CASE("kiln::ops::softmax: the factory's choice, over many shapes") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  double worst[3] = {0, 0, 0};
  for (auto dt : all_dtypes) {
    for (const kiln_test::RowShape& s : kiln_test::ragged_row_shapes) {
      for (int kind : {0, 2, 3}) {
        const Data d = make_data(dt, s.rows, s.cols, kind, rng);
        DeviceData dev(d, gpu);
        if (dt == SoftmaxDType::f32) {
          ops::softmax(dev.in.b32, dev.out.b32, s.rows, s.cols, stream);
        } else {
          ops::softmax(dt, dev.in.b16, dev.out.b16, s.rows, s.cols, stream);
        }
        stream.synchronize();
        const double e = check(d, dev.result(dt), describe(d) + " data " + std::to_string(kind));
        worst[int(dt)] = std::max(worst[int(dt)], e);
      }
    }
  }
  MESSAGE("worst relative error beyond storage rounding: f16 " << worst[0] << ", bf16 " << worst[1]
                                                               << ", f32 " << worst[2]);
}

TEST_CASE("row counts in one power-of-two bucket share one kernel, each launched over its rows") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  const auto builds = ops::softmax_factory().stats().builds;
  for (std::int64_t rows : {600, 1000, 513, 1024}) {  // all in the bucket of 1024
    const Data d = make_data(SoftmaxDType::f32, rows, 777, 0, rng);
    DeviceData dev(d, gpu);
    ops::softmax(dev.in.b32, dev.out.b32, d.rows, d.cols);
    check(d, dev.result(SoftmaxDType::f32), "rows " + std::to_string(rows));
  }
  CHECK(ops::softmax_factory().stats().builds - builds <= 1);
}

TEST_CASE("in place, kiln::f16 buffers, and no rows") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  const Data d = make_data(SoftmaxDType::f32, 50, 3000, 1, rng);
  DeviceData dev(d, gpu);
  ops::softmax(dev.in.b32, dev.in.b32, d.rows, d.cols);  // default stream: waits below
  dev.out.b32.copy_from(dev.in.b32);
  check(d, dev.result(SoftmaxDType::f32), "in place");
  {
    // In place with rows split across the grid (rows of 1M on NVIDIA GPUs: each slice is
    // read twice and written by one block).
    const Data big = make_data(SoftmaxDType::f16, 16, 1 << 20, 0, rng);
    DeviceData both(big, gpu);
    ops::softmax(SoftmaxDType::f16, both.in.b16, both.in.b16, big.rows, big.cols);
    both.out.b16.copy_from(both.in.b16);
    check(big, both.result(SoftmaxDType::f16), "in place, split rows");
  }

  const Data h = make_data(SoftmaxDType::f16, 20, 4096, 0, rng);
  std::vector<f16> typed(h.bits.size());
  std::memcpy(typed.data(), h.bits.data(), h.bits.size() * 2);
  rt::DeviceBuffer<f16> in(typed.size(), gpu), out(typed.size(), gpu);
  in.copy_from(typed);
  out.fill_bytes(0xff);
  ops::softmax(in, out, h.rows, h.cols);
  std::vector<f16> back = out.to_vector();
  std::vector<double> got;
  for (const f16& v : back) {
    std::uint16_t b;
    std::memcpy(&b, &v, 2);
    got.push_back(half_to_float(b));
  }
  check(h, got, "DeviceBuffer<kiln::f16>");

  rt::DeviceBuffer<float> empty_in(1, gpu), empty_out(1, gpu);
  empty_out.fill_bytes(0xff);
  CHECK_NOTHROW(ops::softmax(empty_in, empty_out, 0, 1));
  CHECK(std::isnan(empty_out.to_vector()[0]));  // nothing was written
}

TEST_CASE("what the buffers cannot hold, or kiln does not support, is refused") {
  rt::Device gpu(0);
  rt::DeviceBuffer<float> a(100, gpu), b(100, gpu);
  CHECK_THROWS_WITH_AS(ops::softmax(a, b, 11, 10), doctest::Contains("needs 110 elements"), Error);
  CHECK_THROWS_WITH_AS(ops::softmax(a, b, 1, 0), doctest::Contains("cols = 0"), Error);
  CHECK_THROWS_WITH_AS(ops::softmax(a, b, -1, 10), doctest::Contains("rows = -1"), Error);
  rt::DeviceBuffer<std::uint32_t> w(100, gpu);
  CHECK_THROWS_WITH_AS(ops::softmax(SoftmaxDType::f16, w, w, 10, 10),
                       doctest::Contains("2-byte elements"), Error);
}

// ---- The backward: dx = y * (dy - sum over the row of dy * y) ----

namespace {

/// A backward problem: y the softmax of random rows (rounded to the storage type), dy the
/// gradient. kind 0: x and dy N(0, 1); 1: x N(0, 8) (peaky y, many y near 0), dy N(0, 100);
/// 2: dy constant along each row (dy - sum(dy * y) nearly cancels: dx is near 0).
struct Backward {
  Data y, dy;
};
Backward make_backward(SoftmaxDType dt, std::int64_t rows, int cols, int kind, std::mt19937& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  std::vector<double> y(n), dy(n);
  for (std::int64_t r = 0; r < rows; ++r) {
    double* x = y.data() + std::size_t(r) * std::size_t(cols);
    for (int c = 0; c < cols; ++c) x[c] = normal(rng) * (kind == 1 ? 8.0 : 1.0);
    const double m = *std::max_element(x, x + cols);
    double sum = 0;
    for (int c = 0; c < cols; ++c) sum += (x[c] = std::exp(x[c] - m));
    for (int c = 0; c < cols; ++c) x[c] /= sum;
    const double row_grad = normal(rng) * 10.0;
    for (int c = 0; c < cols; ++c) {
      double& g = dy[std::size_t(r) * std::size_t(cols) + std::size_t(c)];
      g = kind == 2 ? row_grad : normal(rng) * (kind == 1 ? 100.0 : 1.0);
    }
  }
  return {stored(dt, rows, cols, y), stored(dt, rows, cols, dy)};
}

/// Checks every element of dx against the double-precision backward of `b`'s stored y and
/// dy; returns the worst error beyond the storage type's rounding, relative to the size of
/// the terms, y * (|dy| + sum |dy * y|). NaN never passes.
double check_backward(const Backward& b, const std::vector<double>& got, const std::string& what) {
  const Data& y = b.y;
  const SoftmaxDType dt = y.dtype;
  const double tol = dt == SoftmaxDType::f32 ? 2e-5 : 1e-4;
  REQUIRE_MESSAGE(got.size() == y.values.size(),
                  what << ": " << got.size() << " elements, not " << y.values.size());
  const kiln_test::RowCheckPart found = kiln_test::check_rows(
      y.rows, [&](kiln_test::RowCheckPart& out, std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
          const std::size_t base = std::size_t(r) * std::size_t(y.cols);
          const double* yr = y.values.data() + base;
          const double* gr = b.dy.values.data() + base;
          double dot = 0, size = 0;
          for (int c = 0; c < y.cols; ++c) {
            dot += yr[c] * gr[c];
            size += std::fabs(yr[c] * gr[c]);
          }
          for (int c = 0; c < y.cols; ++c) {
            const double w = yr[c] * (gr[c] - dot);
            const double g = got[base + std::size_t(c)];
            // Results under f32's smallest normal may flush to zero, and so may a y under
            // it (then dx is 0).
            const double off = yr[c] < 1.2e-38 && g == 0 ? 0 : std::fabs(g - w);
            const double excess = off - half_ulp(dt, w) - 1.2e-38;
            const double scale = yr[c] * (std::fabs(gr[c]) + size);
            const double err = excess <= 0 ? 0 : excess / scale;  // 0 / 0, +-x / 0: fail
            out.error(err, tol, "row ", r, " col ", c, ": got ", g, ", want ", w);
          }
        }
      });
  return report(found, what, got.size());
}

using BackwardKind = Kind<Backward>;

/// Backward kernel `k` over p.rows rows of each of the matrices of `data`
/// (of_kinds' of make_backward), and in place (dx over dy) on the first, against the CPU reference:
/// launched directly, a split config with two slot buffers of its own used in turns
/// (TurnSlots, as check_every_kind's), the others with null slots.
void check_every_backward_kind(const factory::Kernel<SoftmaxParams, ops::SoftmaxConfig>& k,
                               const SoftmaxParams& p, const std::string& name,
                               const rt::Device& gpu, rt::Stream& stream,
                               const std::vector<BackwardKind>& data) {
  const SoftmaxDType dt = p.dtype;
  rt::LaunchConfig lc = k.launch_config();
  lc.stream = stream;
  const bool split = k.config().strategy == ops::SoftmaxStrategy::split;
  const std::size_t words = split ? ops::detail::softmax_split_words(p, k.config()) : 0;
  kiln_test::TurnSlots slots(words + 16, 0x000000017fc00000ull, gpu);
  auto launch = [&](DeviceMatrix& y, DeviceMatrix& dy, DeviceMatrix& dx, const std::string& what,
                    auto&& check) {
    std::pair<std::uint64_t*, std::uint64_t*> slot_words{nullptr, nullptr};
    if (split) slot_words = slots.take(words, stream);
    if (dt == SoftmaxDType::f32) {
      rt::launch(k.function(), lc, y.b32, dy.b32, dx.b32, int(p.rows), slot_words.first,
                 slot_words.second);
    } else {
      rt::launch(k.function(), lc, y.b16, dy.b16, dx.b16, int(p.rows), slot_words.first,
                 slot_words.second);
    }
    stream.synchronize();
    check();
    if (split) slots.check_launched(what);
  };
  REQUIRE(!data.empty());
  for (const auto& [kind, b] : data) {
    REQUIRE(b.y.rows == p.rows);
    REQUIRE(b.y.cols == p.cols);
    DeviceMatrix y(b.y, gpu), dy(b.dy, gpu), dx(dt, b.y.values.size(), gpu);
    const std::string what = name + " data " + std::to_string(kind);
    launch(y, dy, dx, what, [&] { check_backward(b, dx.values(dt), what); });
    if (&b == &data.front().data) {  // in place: dx is dy
      launch(y, dy, dy, what + " in place",
             [&] { check_backward(b, dy.values(dt), name + " in place"); });
    }
  }
}

}  // namespace

TEST_CASE("backward: every candidate config computes dx, ragged rows and in place included") {
  rt::Device gpu(0);
  const auto& props = gpu.properties();
  auto& factory = ops::softmax_backward_factory();
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  for (auto dt : all_dtypes) {
    for (int cols : {1, 7, 128, 1000, 1001, 4096, 8192, 12345, 32768, 65536}) {
      const SoftmaxParams p{dt, cols, 37};  // 37 rows: no multiple of any rows per block
      const auto configs = factory.configs(p, props);
      const auto built = factory.build_all(p, configs, gpu);
      const std::vector<BackwardKind> data = of_kinds(p, {0, 1, 2}, rng, make_backward);
      for (std::size_t i = 0; i < configs.size(); ++i) {
        const std::string name = factory.kernel_name(p, configs[i]);
        CAPTURE(name);
        REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
        check_every_backward_kind(*built[i].kernel, p, name, gpu, stream, data);
      }
    }
  }
}

namespace {
// Every split config of the backward in `dt` (a test case a dtype, as the forward's).
void backward_split_every_config(SoftmaxDType dt) {
  rt::Device gpu(0);
  if (!kiln_test::runs_split_rows(gpu)) return;
  auto& factory = ops::softmax_backward_factory();
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  for (const kiln_test::SplitShape& shape : kiln_test::split_row_shapes) {
    if (!shape.every && dt != shape.dtype) continue;
    const SoftmaxParams p{dt, shape.cols, shape.rows};
    CAPTURE(nlohmann::json(p).dump());
    std::vector<SoftmaxConfig> configs;
    for (const auto& c : factory.configs(p, gpu.properties())) {
      if (c.strategy == ops::SoftmaxStrategy::split) configs.push_back(c);
    }
    // Rows of 64 KiB and more have split candidates where the grid holds a row's slices.
    CHECK(configs.size() == ops::detail::softmax_backward_split_configs(
                                p, 32, gpu.properties().multiprocessors,
                                std::int64_t(gpu.properties().shared_per_multiprocessor),
                                std::int64_t(gpu.properties().shared_per_block_optin))
                                .size());
    if (std::int64_t(p.cols) * gen::size_of(dt) < 64 * 1024) CHECK(configs.empty());
    const auto built = factory.build_all(p, configs, gpu);
    const std::vector<BackwardKind> data = of_kinds(
        p, shape.every ? std::initializer_list<int>{0, 1, 2} : std::initializer_list<int>{0}, rng,
        make_backward);
    for (std::size_t i = 0; i < configs.size(); ++i) {
      const std::string name = factory.kernel_name(p, configs[i]);
      CAPTURE(name);
      REQUIRE_MESSAGE(built[i].kernel, built[i].reason);
      check_every_backward_kind(*built[i].kernel, p, name, gpu, stream, data);
    }
  }
}
}  // namespace

TEST_CASE("backward split rows: f16, every split config, few rows and many, ragged slices") {
  backward_split_every_config(SoftmaxDType::f16);
}
TEST_CASE("backward split rows: bf16, every split config, few rows and many, ragged slices") {
  backward_split_every_config(SoftmaxDType::bf16);
}
TEST_CASE("backward split rows: f32, every split config, few rows and many, ragged slices") {
  backward_split_every_config(SoftmaxDType::f32);
}

TEST_CASE("kiln::ops::softmax_backward: the factory's choice, over many shapes") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  rt::Stream stream(gpu);
  double worst[3] = {0, 0, 0};
  for (auto dt : all_dtypes) {
    for (const kiln_test::RowShape& s : kiln_test::ragged_row_shapes) {
      for (int kind : {0, 1, 2}) {
        const Backward b = make_backward(dt, s.rows, s.cols, kind, rng);
        DeviceMatrix y(b.y, gpu), dy(b.dy, gpu), dx(dt, b.y.values.size(), gpu);
        if (dt == SoftmaxDType::f32) {
          ops::softmax_backward(y.b32, dy.b32, dx.b32, s.rows, s.cols, stream);
        } else {
          ops::softmax_backward(dt, y.b16, dy.b16, dx.b16, s.rows, s.cols, stream);
        }
        stream.synchronize();
        const double e = check_backward(
            b, dx.values(dt), "backward " + describe(b.y) + " data " + std::to_string(kind));
        worst[int(dt)] = std::max(worst[int(dt)], e);
      }
    }
  }
  MESSAGE("backward: worst relative error beyond storage rounding: f16 "
          << worst[0] << ", bf16 " << worst[1] << ", f32 " << worst[2]);
}

TEST_CASE(
    "backward: in place (dx is dy or y), kiln::bf16 buffers, one kernel per row bucket, no rows") {
  rt::Device gpu(0);
  std::mt19937 rng(std::random_device{}());
  {
    const Backward b = make_backward(SoftmaxDType::f32, 50, 3000, 1, rng);
    DeviceMatrix y(b.y, gpu), dy(b.dy, gpu);
    ops::softmax_backward(y.b32, dy.b32, dy.b32, 50, 3000);  // default stream: waits below
    check_backward(b, dy.values(SoftmaxDType::f32), "in place");
  }
  {
    const Backward b = make_backward(SoftmaxDType::f16, 40, 1000, 0, rng);
    DeviceMatrix y(b.y, gpu), dy(b.dy, gpu);
    ops::softmax_backward(SoftmaxDType::f16, y.b16, dy.b16, y.b16, 40, 1000);  // dx is y
    check_backward(b, y.values(SoftmaxDType::f16), "dx is y");
  }

  const Backward h = make_backward(SoftmaxDType::bf16, 20, 4096, 0, rng);
  std::vector<bf16> y16(h.y.bits.size()), dy16(h.dy.bits.size());
  std::memcpy(y16.data(), h.y.bits.data(), h.y.bits.size() * 2);
  std::memcpy(dy16.data(), h.dy.bits.data(), h.dy.bits.size() * 2);
  rt::DeviceBuffer<bf16> y(y16.size(), gpu), dy(dy16.size(), gpu), dx(y16.size(), gpu);
  y.copy_from(y16);
  dy.copy_from(dy16);
  dx.fill_bytes(0xff);
  ops::softmax_backward(y, dy, dx, h.y.rows, h.y.cols);
  std::vector<double> got;
  for (const bf16& v : dx.to_vector()) {
    std::uint16_t bits;
    std::memcpy(&bits, &v, 2);
    got.push_back(bf16_to_float(bits));
  }
  check_backward(h, got, "DeviceBuffer<kiln::bf16>");

  const auto builds = ops::softmax_backward_factory().stats().builds;
  for (std::int64_t rows : {600, 1000, 513, 1024}) {  // all in the bucket of 1024
    const Backward b = make_backward(SoftmaxDType::f32, rows, 777, 0, rng);
    DeviceMatrix by(b.y, gpu), bdy(b.dy, gpu), bdx(SoftmaxDType::f32, b.y.values.size(), gpu);
    ops::softmax_backward(by.b32, bdy.b32, bdx.b32, rows, 777);
    check_backward(b, bdx.values(SoftmaxDType::f32), "rows " + std::to_string(rows));
  }
  CHECK(ops::softmax_backward_factory().stats().builds - builds <= 1);

  rt::DeviceBuffer<float> e_y(1, gpu), e_dy(1, gpu), e_dx(1, gpu);
  e_dx.fill_bytes(0xff);
  CHECK_NOTHROW(ops::softmax_backward(e_y, e_dy, e_dx, 0, 1));
  CHECK(std::isnan(e_dx.to_vector()[0]));  // nothing was written
}

TEST_CASE("backward: what the buffers cannot hold, or kiln does not support, is refused") {
  rt::Device gpu(0);
  rt::DeviceBuffer<float> a(100, gpu), b(100, gpu), c(99, gpu);
  CHECK_THROWS_WITH_AS(ops::softmax_backward(a, b, c, 10, 10),
                       doctest::Contains("kiln: softmax_backward: 10 x 10 needs 100 elements, "
                                         "but y holds 100, dy 100 and dx 99"),
                       Error);
  CHECK_THROWS_WITH_AS(ops::softmax_backward(a, b, b, 1, 0),
                       doctest::Contains("softmax_backward: cols = 0"), Error);
  CHECK_THROWS_WITH_AS(ops::softmax_backward(a, b, b, 1, (1 << 20) + 1),
                       doctest::Contains("cols = 1048577"), Error);
  CHECK_THROWS_WITH_AS(ops::softmax_backward(a, b, b, -1, 10),
                       doctest::Contains("softmax_backward: rows = -1"), Error);
  rt::DeviceBuffer<std::uint32_t> w(100, gpu);
  CHECK_THROWS_WITH_AS(ops::softmax_backward(SoftmaxDType::bf16, w, w, w, 10, 10),
                       doctest::Contains("2-byte elements"), Error);
  rt::DeviceBuffer<std::uint16_t> h(100, gpu);
  CHECK_THROWS_WITH_AS(ops::softmax_backward(SoftmaxDType::i16, h, h, h, 10, 10),
                       doctest::Contains("softmax_backward: dtype i16 is not supported"), Error);
  if (rt::device_count() > 1) {
    rt::Device other(1);
    rt::DeviceBuffer<float> far(100, other);
    CHECK_THROWS_WITH_AS(ops::softmax_backward(a, far, b, 10, 10),
                         doctest::Contains("dy on device 1"), Error);
  }
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: softmax_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
