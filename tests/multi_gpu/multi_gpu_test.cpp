// Several GPUs in one process: per-device contexts, modules and factory memos; one thread
// per device launching through one shared factory; resources that act on their own device
// whatever device is current; the profiler's per-device tracks; two devices tuning into one
// database. With one GPU, the thread-per-"device" parts run with every thread on device 0
// and the parts that need two devices are reported as skipped. Exits 77 without a GPU.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../factory/scale_factory.hpp"
#include "../support.hpp"
#include "kiln/prof/counters.hpp"
#include "kiln/prof/profiler.hpp"
#include "kiln/prof/report.hpp"
#include "kiln/prof/trace.hpp"
#include "kiln/rt.hpp"

using namespace kiln;
using factory::TunePolicy;
using factory_test::ScaleFactory;
using factory_test::ScaleParams;

namespace {

int devices() {
  return rt::device_count();
}

// The device thread `t` of `n` works on: its own where there are enough, else device 0.
rt::Device device_for(int t) {
  return rt::Device(t < devices() ? t : 0);
}

factory::TuneOptions quick(TunePolicy policy) {
  factory::TuneOptions o;
  o.policy = policy;
  o.stop = {0.02, 3, 30, 0.5};
  return o;
}

// Runs `k` on `device` on fresh data, with another device current in this thread where
// there is one; returns the number of wrong elements.
std::size_t run_and_count_wrong(const factory::Kernel<ScaleParams, factory_test::ScaleConfig>& k,
                                const rt::Device& device, unsigned seed) {
  const auto n = std::size_t(k.params().n);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-10.0f, 10.0f);
  std::vector<float> in(n);
  for (auto& v : in) v = dist(rng);
  rt::DeviceBuffer<float> d_in(n, device), d_out(n, device);
  rt::Stream s(device);
  rt::Device(devices() - 1 - device.ordinal()).make_current();  // "the wrong device" current
  d_in.copy_from(in);
  d_out.fill_bytes(0xff, s);
  k(s, d_in, d_out, static_cast<long long>(n), 3.0f);
  s.synchronize();
  const auto out = d_out.to_vector();
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += !(out[i] == 3.0f * in[i]);
  return wrong;
}

}  // namespace

TEST_CASE("each device gets its own kernel, module and context; one compile per arch") {
  if (devices() < 2) {
    MESSAGE("one GPU: per-device kernels and modules not checked (needs two)");
    return;
  }
  kiln_test::TempDir dir("kiln-multi");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::off));
  const auto compiles_before = jit::KernelCache::global().stats().compiles;
  rt::Device d0(0), d1(1);
  const auto& k0 = f.get({77777}, d0);
  const auto& k1 = f.get({77777}, d1);
  CHECK(&k0 != &k1);
  CHECK(k0.device().ordinal() == 0);
  CHECK(k1.device().ordinal() == 1);
  CHECK(k0.function().handle() != k1.function().handle());
  CHECK(d0.context() != d1.context());
  if (d0.arch() == d1.arch()) {
    CHECK(jit::KernelCache::global().stats().compiles - compiles_before <= 1);
  }
  CHECK(run_and_count_wrong(k0, d0, 1) == 0);
  CHECK(run_and_count_wrong(k1, d1, 2) == 0);
}

TEST_CASE("one thread per device launching through one shared factory at once") {
  kiln_test::TempDir dir("kiln-multi");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::off));
  const int threads = std::max(2, devices());
  std::vector<std::size_t> wrong(std::size_t(threads), 1);
  std::vector<std::string> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        const rt::Device dev = device_for(t);
        std::size_t bad = 0;
        for (int round = 0; round < 20; ++round) {
          // Shared keys (every thread asks for them) and keys of this thread alone.
          const std::int64_t n = round % 2 ? 100000 + round : 5000 * (t + 1) + round;
          bad += run_and_count_wrong(f.get({n}, dev), dev, unsigned(t * 100 + round));
        }
        wrong[std::size_t(t)] = bad;
      } catch (const std::exception& e) {
        errors[std::size_t(t)] = e.what();
      }
    });
  }
  for (auto& p : pool) p.join();
  for (int t = 0; t < threads; ++t) {
    CHECK_MESSAGE(errors[std::size_t(t)].empty(), errors[std::size_t(t)]);
    CHECK(wrong[std::size_t(t)] == 0);
  }
  // One kernel per (params, device): the memo made each once.
  std::set<int> used;
  for (int t = 0; t < threads; ++t) used.insert(device_for(t).ordinal());
  const std::size_t shared_keys = 10 * used.size();
  const std::size_t own_keys = 10 * std::size_t(threads);
  CHECK(f.stats().builds == shared_keys + own_keys);
}

TEST_CASE("buffers, streams and events act on their own device whatever is current") {
  const rt::Device last(devices() - 1);
  rt::Device(0).make_current();
  rt::DeviceBuffer<int> buf(1000, last);
  rt::Stream s(last);
  rt::Event a(last), b(last);
  rt::Device(0).make_current();
  std::vector<int> v(1000);
  for (int i = 0; i < 1000; ++i) v[std::size_t(i)] = i * 7;
  a.record(s);
  buf.copy_from(v, s);
  b.record(s);
  b.synchronize();
  CHECK(b.elapsed_ms_since(a) >= 0);
  CHECK(buf.to_vector() == v);
  CHECK(rt::Device::current().ordinal() == 0);  // kiln restored what the caller had current
  if (devices() < 2) MESSAGE("one GPU: the buffer, stream and events were on device 0");
}

TEST_CASE("the profiler gives each device its own process track and its own report rows") {
  kiln_test::TempDir dir("kiln-multi");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::off));
  const int n_dev = std::min(devices(), 2);
  std::vector<const factory::Kernel<ScaleParams, factory_test::ScaleConfig>*> ks;
  for (int d = 0; d < n_dev; ++d) ks.push_back(&f.get({4096}, rt::Device(d)));
  std::vector<rt::DeviceBuffer<float>> bufs;
  for (int d = 0; d < n_dev; ++d) {
    bufs.emplace_back(4096, rt::Device(d));
    bufs.emplace_back(4096, rt::Device(d));
  }
  prof::Profile p;
  {
    prof::Session session;
    for (int d = 0; d < n_dev; ++d) {
      (*ks[std::size_t(d)])({}, bufs[std::size_t(2 * d)], bufs[std::size_t(2 * d + 1)], 4096LL,
                            1.0f);
    }
    p = session.finish();
  }
  std::set<int> seen;
  for (const auto& r : p.kernels) {
    if (!r.external) seen.insert(r.device);
  }
  CHECK(int(seen.size()) == n_dev);
  const nlohmann::json trace = prof::chrome_trace(p);
  std::set<int> gpu_pids;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name" &&
        e["args"]["name"].get<std::string>().rfind("GPU ", 0) == 0) {
      gpu_pids.insert(e["pid"].get<int>());
    }
  }
  CHECK(int(gpu_pids.size()) == n_dev);
  const std::string table = prof::top_table(p);
  for (int d = 0; d < n_dev; ++d) {
    CHECK(table.find("| " + std::to_string(d) + " |") != std::string::npos);
  }
  if (n_dev < 2) MESSAGE("one GPU: one process track checked");
}

TEST_CASE("hardware counters per device, and the straggler view with them") {
  kiln_test::TempDir dir("kiln-multi-counters");
  factory::TuningDatabase db(dir.path() / "tuning.json");
  ScaleFactory f(false);
  f.set_database(&db);
  f.set_tune_options(quick(TunePolicy::off));
  const int n_dev = std::min(devices(), 2);
  const long long n = 64ll << 20;  // 256 MB in and out on each device: far past the L2
  std::vector<const factory::Kernel<ScaleParams, factory_test::ScaleConfig>*> ks;
  std::vector<rt::DeviceBuffer<float>> bufs;
  for (int d = 0; d < n_dev; ++d) {
    ks.push_back(&f.get({n}, rt::Device(d)));
    bufs.emplace_back(std::size_t(n), rt::Device(d));
    bufs.emplace_back(std::size_t(n), rt::Device(d));
  }
  prof::ProfileOptions options;
  options.metrics = prof::default_metrics();
  const prof::Profile p = prof::profile_with_counters(
      [&] {
        for (int d = 0; d < n_dev; ++d) {
          (*ks[std::size_t(d)])({}, bufs[std::size_t(2 * d)], bufs[std::size_t(2 * d + 1)], n,
                                2.0f);
        }
        for (int d = 0; d < n_dev; ++d) rt::Device(d).synchronize();
      },
      options);
  MESSAGE("counters note: " << (p.counters_note.empty() ? "(none)" : p.counters_note));
  if (p.counters_note.find("Sanitizer, which ends any process") != std::string::npos) {
    MESSAGE("a sanitizer build: counters are not collected here, by design");
    return;
  }
  std::set<int> counted;
  for (const prof::KernelRecord& k : p.kernels) {
    if (k.counters.empty()) continue;
    counted.insert(k.device);
    const double bytes =
        k.counters.at(prof::metric::dram_read) + k.counters.at(prof::metric::dram_write);
    const double moved = 2.0 * double(n) * sizeof(float);
    MESSAGE("GPU " << k.device << ": " << bytes / 1e6 << " MB of DRAM traffic for " << moved / 1e6
                   << " MB moved, " << k.duration_us() << " us");
    CHECK(std::abs(bytes / moved - 1) < 0.02);
  }
  CHECK(int(counted.size()) == n_dev);
  const std::string stragglers = prof::device_table(p);
  std::printf("%s\n", stragglers.c_str());
  if (n_dev >= 2) {
    CHECK(stragglers.find("| DRAM GB/s | SM % | DRAM % | bound |") != std::string::npos);
    // Every device's row has its counters (a row without them reads "| - | - | - | - |").
    CHECK(stragglers.find("| - | - | - | - |") == std::string::npos);
  } else {
    MESSAGE("one GPU: counters on device 0 checked, no straggler view");
  }
}

TEST_CASE("devices tuning one factory at once write one consistent database") {
  kiln_test::TempDir dir("kiln-multi");
  const auto file = dir.path() / "tuning.json";
  const int threads = std::max(2, devices());
  std::vector<std::string> errors(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  // One factory and one database object per thread, as separate processes would have.
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      try {
        factory::TuningDatabase db(file);
        ScaleFactory f(false);
        f.set_database(&db);
        f.set_tune_options(quick(TunePolicy::full));
        for (std::int64_t n : {1 << 14, 1 << 18}) f.get({n + t}, device_for(t));
      } catch (const std::exception& e) {
        errors[std::size_t(t)] = e.what();
      }
    });
  }
  for (auto& p : pool) p.join();
  for (const auto& e : errors) CHECK_MESSAGE(e.empty(), e);
  factory::TuningDatabase reread(file);
  const auto entries = reread.entries("scale");
  CHECK(entries.size() == std::size_t(2 * threads));
  for (const auto& e : entries) {
    CHECK(e.candidates.size() == 12);
    CHECK(!e.best.is_null());
  }
}

int main(int argc, char** argv) {
  if (rt::device_count() == 0) {
    std::printf("no GPU: multi_gpu_test skipped\n");
    return 77;
  }
  std::printf("multi_gpu_test on %d device(s)\n", rt::device_count());
  doctest::Context ctx(argc, argv);
  return ctx.run();
}
