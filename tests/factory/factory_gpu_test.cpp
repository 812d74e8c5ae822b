// Kernel factories on a GPU, end to end: tuning (full, model, off), skipped candidates and
// their reasons, the tuning database (a hit times nothing), the memo (many threads, one
// tuning), forced retuning, and launches seen by the profiler. Exits 77 (skipped) without
// a GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../support.hpp"
#include "kiln/prof/profiler.hpp"
#include "kiln/rt.hpp"
#include "scale_factory.hpp"

using namespace kiln;
using factory::CandidateStatus;
using factory::Selection;
using factory::TunePolicy;
using factory_test::ScaleFactory;
using factory_test::ScaleParams;

namespace {

factory::TuneOptions quick(TunePolicy policy) {
  factory::TuneOptions o;
  o.policy = policy;
  o.stop = {0.02, 3, 30, 0.5};  // ranks, quickly
  return o;
}

// Runs `k` on fresh random data (output poisoned with NaN) and checks every element.
void check_scale(const factory::Kernel<ScaleParams, factory_test::ScaleConfig>& k) {
  const auto n = std::size_t(k.params().n);
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> dist(-100.0f, 100.0f);
  std::vector<float> in(n);
  for (auto& v : in) v = dist(rng);
  rt::DeviceBuffer<float> d_in(n), d_out(n);
  d_in.copy_from(in);
  d_out.fill_bytes(0xff);
  rt::Stream s;
  k(s, d_in, d_out, static_cast<long long>(n), 2.0f);
  s.synchronize();
  const auto out = d_out.to_vector();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(out[i] == 2.0f * in[i])) ++wrong;  // NaN never passes
  }
  CHECK_MESSAGE(wrong == 0, k.name() << ": " << wrong << " of " << n << " elements wrong");
}

// out = in * k through 1 KiB of static shared memory and 48 KiB of dynamic: 49 KiB in all,
// over the default limit of 48 KiB, though the dynamic part alone is not.
const char* padded_source = R"(
#include "spec.hpp"
extern "C" __global__ void KILN_KERNEL_NAME(const float* in, float* out, long long n, float k) {
  __shared__ float pad[256];
  extern __shared__ float dyn[];
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  pad[threadIdx.x] = i < n ? in[i] : 0.0f;
  dyn[threadIdx.x * 48] = pad[threadIdx.x] * k;
  __syncthreads();
  if (i < n) out[i] = dyn[threadIdx.x * 48];
}
)";

class PaddedFactory : public factory::KernelFactory<ScaleParams, factory_test::ScaleConfig> {
 public:
  PaddedFactory()
      : KernelFactory("padded_scale", 1, jit::Program{"padded.cu", padded_source, {}, {}}) {}
  void validate(const ScaleParams&, const rt::DeviceProperties&) const override {}
  std::vector<factory_test::ScaleConfig> configs(const ScaleParams&,
                                                 const rt::DeviceProperties&) const override {
    return {{256, 1, 0}};
  }
  factory_test::ScaleConfig heuristic(const ScaleParams&,
                                      const std::vector<factory_test::ScaleConfig>& c,
                                      const rt::DeviceProperties&) const override {
    return c.front();
  }
  gen::Spec spec(const ScaleParams&, const factory_test::ScaleConfig&,
                 const rt::DeviceProperties&) const override {
    return {};
  }
  rt::LaunchConfig launch_config(const ScaleParams& p, const factory_test::ScaleConfig&,
                                 const rt::DeviceProperties&) const override {
    return {{unsigned((p.n + 255) / 256)}, {256u}, 48u * 1024u};
  }
  double bytes(const ScaleParams& p) const override { return 8.0 * double(p.n); }
  TuningRun tuning_run(const ScaleParams&, const rt::Device&) const override {
    throw Error("kiln: padded_scale is not tuned");
  }
};

}  // namespace

TEST_CASE("a kernel whose static and dynamic shared memory pass 48 KiB together launches") {
  // The factory raises the kernel's dynamic limit (48 KiB less its 1 KiB of static shared
  // memory) to the launch's 48 KiB; it used to do so only above 48 KiB of dynamic memory,
  // and the launch check then refused this one.
  PaddedFactory f;
  f.set_tune_options(quick(TunePolicy::off));
  const auto& k = f.get({100003}, rt::Device(0));
  CHECK(k.function().attributes().static_shared_bytes == 1024);
  CHECK(k.function().attributes().max_dynamic_shared_bytes >= 48 * 1024);
  check_scale(k);
}

TEST_CASE("full tuning times every candidate, skips the bad ones with reasons, stores all") {
  kiln_test::TempDir dir("kiln-factory");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f;
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::full));
  rt::Device dev(0);
  const ScaleParams p{(1 << 22) + 3};

  const auto& k = f.get(p, dev);
  CHECK(k.selected_by() == Selection::full);
  CHECK(k.name() == f.kernel_name(p, k.config()));
  CHECK(k.function().name() == k.name());
  check_scale(k);

  auto entry = db.find(f.tuning_key(p, dev));
  REQUIRE(entry.has_value());
  CHECK(entry->candidates.size() == 14);
  CHECK(entry->policy == "full");
  CHECK(entry->best == nlohmann::json(k.config()));
  double best = INFINITY;
  int timed = 0;
  for (const auto& c : entry->candidates) {
    if (c.config["broken"] == 1) {
      CHECK(c.status == CandidateStatus::compile_error);
      CHECK(c.reason.find("broken on purpose") != std::string::npos);
    } else if (c.config["threads"] == 4096) {
      CHECK(c.status == CandidateStatus::resources);
      CHECK(c.reason.find("4096") != std::string::npos);
    } else {
      REQUIRE(c.status == CandidateStatus::timed);
      CHECK(c.time_us > 0);
      CHECK(c.resources.registers > 0);  // what the driver reported for the candidate
      CHECK(c.resources.threads_per_block == c.config["threads"].get<int>());
      CHECK(c.resources.blocks_per_sm >= 1);
      best = std::min(best, c.time_us);
      ++timed;
    }
  }
  CHECK(timed == 12);
  for (const auto& c : entry->candidates) {
    if (c.config == entry->best) CHECK(c.time_us == best);
  }
  CHECK(f.stats().tunings == 1);
  CHECK(f.stats().timed == 12);
  CHECK(f.stats().skipped == 2);

  // The memo: the same object, no new tuning.
  CHECK(&f.get(p, dev) == &k);
  CHECK(f.stats().tunings == 1);
  CHECK(f.stats().hits >= 1);

  // Another factory (another process, in effect) reads the winner from the database.
  ScaleFactory g;
  g.set_database(&db);
  g.set_tune_options(quick(TunePolicy::full));
  const auto& k2 = g.get(p, dev);
  CHECK(k2.selected_by() == Selection::database);
  CHECK(k2.config() == k.config());
  CHECK(g.stats().tunings == 0);
  check_scale(k2);
}

TEST_CASE("build_all makes every config that works and says why the others do not") {
  ScaleFactory f;
  rt::Device dev(0);
  const ScaleParams p{100003};
  const auto configs = f.candidates(p, dev.properties());
  const auto built = f.build_all(p, configs, dev);
  REQUIRE(built.size() == configs.size());
  int made = 0;
  for (std::size_t i = 0; i < built.size(); ++i) {
    if (configs[i].broken) {
      CHECK(built[i].status == CandidateStatus::compile_error);
      CHECK(!built[i].kernel);
    } else if (configs[i].threads == 4096) {
      CHECK(built[i].status == CandidateStatus::resources);
      CHECK(built[i].reason.find("4096") != std::string::npos);
    } else {
      REQUIRE(built[i].kernel);
      check_scale(*built[i].kernel);
      ++made;
    }
  }
  CHECK(made == 12);
  CHECK(f.stats().builds == 0);  // nothing memoized, nothing tuned
}

TEST_CASE("policy off takes the heuristic; invalid params throw before anything runs") {
  kiln_test::TempDir dir("kiln-factory");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f;
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::off));
  const auto& k = f.get({1000}, rt::Device(0));
  CHECK(k.selected_by() == Selection::heuristic);
  CHECK(k.config() == factory_test::ScaleConfig{256, 4, 0});
  check_scale(k);
  CHECK(f.stats().tunings == 0);
  CHECK_FALSE(db.find(f.tuning_key({1000}, rt::Device(0))).has_value());
  CHECK_THROWS_WITH_AS(f.get({-5}, rt::Device(0)), "kiln: scale needs n >= 1 elements, not -5",
                       Error);
}

TEST_CASE("many threads asking for one new problem tune it once and share the kernel") {
  kiln_test::TempDir dir("kiln-factory");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::full));
  rt::Device dev(0);
  std::vector<const void*> got(8);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] {
      try {
        got[t] = &f.get({123457}, dev);
      } catch (const std::exception& e) {
        std::printf("thread %zu: %s\n", t, e.what());  // got[t] stays null: the check fails
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(got[0] != nullptr);
  for (auto* k : got) CHECK(k == got[0]);
  CHECK(f.stats().tunings == 1);
  CHECK(f.stats().builds == 1);
}

TEST_CASE("tune() chooses again and keeps the kernels handed out before valid") {
  kiln_test::TempDir dir("kiln-factory");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::off));
  rt::Device dev(0);
  const auto& first = f.get({50000}, dev);
  CHECK(first.selected_by() == Selection::heuristic);
  const auto& again = f.tune({50000}, dev, TunePolicy::full);
  CHECK(again.selected_by() == Selection::full);
  CHECK(&f.get({50000}, dev) == &again);
  check_scale(first);  // still usable
  check_scale(again);
  CHECK(db.find(f.tuning_key({50000}, dev)).has_value());
}

TEST_CASE("model tuning times only the top-k once the database has records to learn from") {
  kiln_test::TempDir dir("kiln-factory");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::model));
  rt::Device dev(0);
  if (!factory::PerformanceModel::available()) {
    // Without XGBoost, model falls back to timing everything.
    const auto& k = f.get({1 << 16}, dev);
    CHECK(k.selected_by() == Selection::full);
    MESSAGE("XGBoost not found (" << factory::PerformanceModel::unavailable_reason()
                                  << "): checked the fallback only");
    return;
  }
  // Records to learn from: full tunings of several sizes.
  for (std::int64_t n : {1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 3 << 20, 5 << 19}) {
    f.tune({n}, dev, TunePolicy::full);
  }
  const auto timed_before = f.stats().timed;
  const auto& k = f.get({3 << 18}, dev);
  CHECK(k.selected_by() == Selection::model);
  CHECK(f.stats().timed - timed_before == 3);  // top_k of 12
  check_scale(k);
  auto entry = db.find(f.tuning_key({3 << 18}, dev));
  REQUIRE(entry.has_value());
  CHECK(entry->policy == "model");
  CHECK(entry->candidates.size() == 3);
}

TEST_CASE("the profiler sees a factory's launches under their specialized names") {
  kiln_test::TempDir dir("kiln-factory");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::off));
  const auto& k = f.get({4096}, rt::Device(0));
  rt::DeviceBuffer<float> in(4096), out(4096);
  prof::Profile p;
  {
    prof::Session session(prof::Backend::events);
    k({}, in, out, 4096LL, 1.0f);
    p = session.finish();
  }
  REQUIRE(p.kernels.size() == 1);
  CHECK(p.kernels[0].name == k.name());
  CHECK(p.kernels[0].params == "{\"n\":4096}");
  CHECK(p.kernels[0].config == nlohmann::json(k.config()).dump());
  CHECK(p.kernels[0].bytes == 8.0 * 4096);
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: factory_gpu_test skipped\n");
    return 77;
  }
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
