// kiln::factory::Factory on a GPU: the first call tunes on its own arguments and leaves them
// as one launch would (the in-place output restored after timing), later calls are memo
// hits, get() without arguments falls back to the heuristic and says why. Every element is
// checked against a double-precision CPU reference on fresh random data. Exits 77
// (skipped) without a GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../support.hpp"
#include "axpy_factory.hpp"
#include "kiln/rt.hpp"

using axpy_test::Config;
using axpy_test::Params;
using axpy_test::X;
using axpy_test::Y;
using kiln::factory::Selection;
using kiln::factory::TunePolicy;

namespace {

std::vector<float> random_floats(std::size_t n) {
  static std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-10.0f, 10.0f);
  std::vector<float> v(n);
  for (auto& e : v) e = dist(rng);
  return v;
}

// Elements of `got` that are not a * x + y (NaN never passes).
std::size_t wrong(const std::vector<float>& got, const std::vector<float>& x,
                  const std::vector<float>& y, float a) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double want = double(a) * double(x[i]) + double(y[i]);
    if (!(std::abs(got[i] - want) <= 1e-5 * (1 + std::abs(want)))) {
      if (bad++ < 5) std::printf("  y[%zu] = %g, want %g\n", i, double(got[i]), want);
    }
  }
  return bad;
}

kiln::factory::TuneOptions quick() {
  kiln::factory::TuneOptions o;
  o.policy = TunePolicy::full;
  o.stop = {0.02, 3, 30, 0.5};
  return o;
}

}  // namespace

TEST_CASE("the first call tunes on its own arguments and restores them; later calls hit") {
  kiln_test::TempDir dir("kiln-described");
  kiln::factory::TuningDatabase db(dir.path() / "tuning.json");
  kiln::factory::Factory<Params, Config> f(axpy_test::description());
  f.set_database(&db);
  f.set_tune_options(quick());

  for (int n : {1, 1000, (1 << 20) + 7}) {
    CAPTURE(n);
    const Params p{n};
    const auto x = random_floats(std::size_t(n)), y0 = random_floats(std::size_t(n));
    const float a = random_floats(1)[0];
    kiln::rt::DeviceBuffer<float> d_x(x.size()), d_y(y0.size());
    d_x.copy_from(x);
    d_y.copy_from(y0);
    kiln::rt::Stream stream;

    f(stream, p, X(d_x.data(), axpy_test::N(n)), Y(d_y.data(), axpy_test::N(n)), a);
    stream.synchronize();
    const auto y1 = d_y.to_vector();
    CHECK(wrong(y1, x, y0, a) == 0);  // one update, not one per timed run

    const auto entry = db.find(f.tuning_key(p, kiln::rt::Device(0)));
    REQUIRE(entry.has_value());
    CHECK(entry->policy == "full");
    CHECK(entry->candidates.size() == 4);
    for (const auto& c : entry->candidates) {
      CHECK(c.status == kiln::factory::CandidateStatus::timed);
      CHECK(c.time_us > 0);
    }

    f(stream, p, X(d_x.data(), axpy_test::N(n)), Y(d_y.data(), axpy_test::N(n)), a);
    stream.synchronize();
    CHECK(wrong(d_y.to_vector(), x, y1, a) == 0);
  }
  const auto st = f.stats();
  CHECK(st.tunings == 3);
  CHECK(st.hits == 3);
}

TEST_CASE("buffer arguments are restored too (a program given whole, raw pointers)") {
  kiln_test::TempDir dir("kiln-described");
  kiln::factory::TuningDatabase db(dir.path() / "tuning.json");
  auto d = axpy_test::description();
  d.name = "axpy_raw";
  d.source.clear();
  d.program = {"axpy_raw.cu",
               R"(
#include "spec.hpp"
KILN_KERNEL void KILN_KERNEL_NAME(const float* x, float* y, long long n, float a) {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * VEC;
  for (int v = 0; v < VEC; ++v) {
    if (i + v < n) y[i + v] = a * x[i + v] + y[i + v];
  }
})",
               {},
               {}};
  kiln::factory::Factory<Params, Config> f(d);
  f.set_database(&db);
  f.set_tune_options(quick());
  const int n = 100003;
  const auto x = random_floats(std::size_t(n)), y0 = random_floats(std::size_t(n));
  const float a = 0.75f;
  kiln::rt::DeviceBuffer<float> d_x(x.size()), d_y(y0.size());
  d_x.copy_from(x);
  d_y.copy_from(y0);
  f(kiln::rt::StreamRef{}, Params{n}, d_x, d_y, static_cast<long long>(n), a);
  CHECK(wrong(d_y.to_vector(), x, y0, a) == 0);
  CHECK(f.stats().tunings == 1);
}

TEST_CASE(
    "get() without arguments and without a tuning_run uses the heuristic until a call tunes") {
  kiln_test::TempDir dir("kiln-described");
  kiln::factory::TuningDatabase db(dir.path() / "tuning.json");
  kiln::factory::Factory<Params, Config> f(axpy_test::description());
  f.set_database(&db);
  f.set_tune_options(quick());
  kiln_test::StderrCapture err;
  const auto& k = f.get(Params{5000});
  CHECK(k.selected_by() == Selection::heuristic);
  CHECK(k.config() == Config{64, 1});
  CHECK(err.text().find("factory(stream, params, args...)") != std::string::npos);
  CHECK(f.stats().tunings == 0);

  // The first call with arguments tunes the problem after all, and replaces the kernel.
  const int n = 5000;
  const auto x = random_floats(std::size_t(n)), y0 = random_floats(std::size_t(n));
  kiln::rt::DeviceBuffer<float> d_x(x.size()), d_y(y0.size());
  d_x.copy_from(x);
  d_y.copy_from(y0);
  f({}, Params{n}, X(d_x.data(), axpy_test::N(n)), Y(d_y.data(), axpy_test::N(n)), 2.0f);
  CHECK(wrong(d_y.to_vector(), x, y0, 2.0f) == 0);
  CHECK(f.stats().tunings == 1);
  CHECK(f.get(Params{n}).selected_by() == Selection::full);
}

int main(int argc, char** argv) {
  if (kiln::rt::device_count() == 0) {
    std::printf("no GPU: factory_described_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
