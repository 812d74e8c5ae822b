// kiln/prof/bench.hpp without a GPU: the sampling loop driven by synthetic, seeded timers
// and a fake clock (interleaving, warm-up, each stop reason, ratios, drift), the markdown
// and JSON reports, BenchArgs, and Bench's own checks.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kiln/prof/bench.hpp"

using namespace kiln;
using namespace kiln::prof;

namespace {

// Variants with fixed true times and multiplicative noise, on a fake clock that each
// sample advances by its own time (plus a little overhead).
struct Synthetic {
  explicit Synthetic(std::vector<double> times_us, double relative_noise = 0, unsigned seed = 42)
      : true_us(std::move(times_us)), noise(relative_noise), rng(seed) {}
  std::vector<double> true_us;
  double noise;  // the standard deviation of log(time)
  std::mt19937 rng;
  double now = 0;  // seconds
  std::vector<std::size_t> calls;

  double sample(std::size_t i) {
    calls.push_back(i);
    std::normal_distribution<double> n(0.0, 1.0);
    const double us = true_us.at(i) * std::exp(noise * n(rng));
    now += us * 1e-6 + 1e-6;
    return us;
  }
  SampleTimer timer() {
    return [this](std::size_t i) { return sample(i); };
  }
  SecondsClock clock() {
    return [this] { return now; };
  }
};

BenchOptions quick(StopRule rule = {}) {
  BenchOptions o;
  o.stop = rule;
  o.warmup_samples = 2;
  o.warmup_seconds = 0;
  return o;
}

Bench with_variants(BenchOptions o, std::initializer_list<const char*> names) {
  Bench b(o);
  double bytes = 1e6;
  for (const char* n : names) {
    b.add(
        n, [](rt::StreamRef) {}, bytes, 2 * bytes);
    bytes *= 2;
  }
  return b;
}

std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  return out;
}

BenchArgs parse(std::vector<std::string> args, std::vector<std::string>* unparsed = nullptr) {
  args.insert(args.begin(), "bench");
  auto argv = argv_of(args);
  return BenchArgs::parse(static_cast<int>(argv.size()), argv.data(), unparsed);
}

}  // namespace

TEST_CASE("the loop interleaves variants sample by sample, warm-up included") {
  StopRule rule;
  rule.min_samples = rule.max_samples = 10;
  Synthetic syn{{10, 20, 30}};
  auto results = with_variants(quick(rule), {"a", "b", "c"}).run(syn.timer(), syn.clock());
  REQUIRE(syn.calls.size() == 3 * (2 + 10));
  for (std::size_t k = 0; k < syn.calls.size(); ++k) CHECK(syn.calls[k] == k % 3);
  REQUIRE(results.size() == 3);
  for (const auto& r : results) {
    CHECK(r.stats_us.count == 10);
    CHECK(r.samples_us.size() == 10);
    CHECK(r.stop_reason == "max samples 10");
  }
  CHECK(results[1].stats_us.median == 20);
}

TEST_CASE("warm-up lasts for its count and its time, and is not recorded") {
  StopRule rule;
  rule.min_samples = rule.max_samples = 10;
  BenchOptions o = quick(rule);
  o.warmup_samples = 1;
  o.warmup_seconds = 0.05;
  Synthetic syn{{10000}};  // 10 ms a sample: about 5 warm-up samples
  auto results = with_variants(o, {"a"}).run(syn.timer(), syn.clock());
  const std::size_t warmup = syn.calls.size() - 10;
  CHECK(warmup >= 4);
  CHECK(warmup <= 6);
  CHECK(results[0].samples_us.size() == 10);
}

TEST_CASE("a quiet variant stops on noise at min_samples") {
  Synthetic syn{{100, 150}, 0.001};
  auto results = with_variants(quick(), {"a", "b"}).run(syn.timer(), syn.clock());
  for (const auto& r : results) {
    CHECK(r.stats_us.count == 10);
    CHECK(r.stop_reason.rfind("noise ", 0) == 0);
    CHECK(r.stop_reason.find("< 0.5%") != std::string::npos);
    CHECK(r.stats_us.relative_noise < 0.005);
  }
}

TEST_CASE("a moderately noisy variant samples until its median is known well enough") {
  Synthetic syn{{100}, 0.05};  // about 0.5% needs ~160 samples
  auto results = with_variants(quick(), {"a"}).run(syn.timer(), syn.clock());
  const auto& r = results[0];
  CHECK(r.stop_reason.rfind("noise ", 0) == 0);
  CHECK(r.stats_us.count > 50);
  CHECK(r.stats_us.count < 1000);
  CHECK(r.stats_us.relative_noise < 0.005);
  CHECK(r.stats_us.median == doctest::Approx(100).epsilon(0.02));
}

TEST_CASE("a noisy variant stops at max samples") {
  StopRule rule;
  rule.max_relative_noise = 0.001;
  rule.max_samples = 300;
  rule.max_seconds = 1e9;
  Synthetic syn{{100, 100}, 0.5};
  auto results = with_variants(quick(rule), {"a", "b"}).run(syn.timer(), syn.clock());
  for (const auto& r : results) {
    CHECK(r.stats_us.count == 300);
    CHECK(r.stop_reason == "max samples 300");
  }
}

TEST_CASE("a noisy variant stops at the time budget (fake clock)") {
  StopRule rule;
  rule.max_relative_noise = 0.0001;
  rule.max_seconds = 5;
  Synthetic syn{{1e5, 1e5}, 0.3};  // 0.1 s a sample: ~0.2 s a round
  auto results = with_variants(quick(rule), {"a", "b"}).run(syn.timer(), syn.clock());
  for (const auto& r : results) {
    CHECK(r.stop_reason == "time budget 5 s");
    CHECK(r.stats_us.count >= 15);
    CHECK(r.stats_us.count <= 30);
  }
}

TEST_CASE("min_samples holds even past the time budget") {
  StopRule rule;
  rule.max_seconds = 2;
  Synthetic syn{{1e6}, 0.3};  // a second a sample
  auto results = with_variants(quick(rule), {"slow"}).run(syn.timer(), syn.clock());
  CHECK(results[0].stats_us.count == 10);
  CHECK(results[0].stop_reason == "time budget 2 s");
}

TEST_CASE("ratios to the baseline") {
  Synthetic syn{{100, 200, 50}, 0.01};
  SUBCASE("the first variant by default") {
    auto results = with_variants(quick(), {"a", "b", "c"}).run(syn.timer(), syn.clock());
    CHECK(results[0].is_baseline);
    CHECK_FALSE(results[1].is_baseline);
    CHECK(results[0].ratio_to_baseline == 1.0);
    CHECK(results[1].ratio_to_baseline == doctest::Approx(2.0).epsilon(0.02));
    CHECK(results[2].ratio_to_baseline == doctest::Approx(0.5).epsilon(0.02));
  }
  SUBCASE("one named by baseline()") {
    auto b = with_variants(quick(), {"a", "b", "c"});
    b.baseline("b");
    auto results = b.run(syn.timer(), syn.clock());
    CHECK(results[1].is_baseline);
    CHECK(results[0].ratio_to_baseline == doctest::Approx(0.5).epsilon(0.02));
    CHECK(results[2].ratio_to_baseline == doctest::Approx(0.25).epsilon(0.02));
  }
}

TEST_CASE("GB/s, TFLOP/s and percent of peak at the median") {
  Result r;
  r.stats_us.median = 1000;  // 1 ms
  r.bytes = 1e9;
  r.flops = 4e9;
  r.peak_bandwidth = 2e12;
  CHECK(r.gbps() == doctest::Approx(1000));
  CHECK(r.tflops() == doctest::Approx(4));
  CHECK(r.percent_of_peak() == doctest::Approx(50));
  r.bytes = 0;
  CHECK(r.gbps() == 0);
  CHECK(r.percent_of_peak() == 0);
}

TEST_CASE("drift between the first and last 10% of samples is flagged") {
  StopRule rule;
  rule.max_relative_noise = 0;  // sample to max_samples
  rule.min_samples = rule.max_samples = 200;
  std::size_t k = 0;
  // "hot" slows down by about 20% over the run (a round is two calls: two variants).
  auto timer = [&](std::size_t i) {
    const double t = static_cast<double>(k++ / 2) / 200.0;
    return i == 0 ? 100.0 : 100.0 * (1 + 0.2 * t);
  };
  double now = 0;
  auto clock = [&] { return now += 1e-4; };
  auto results = with_variants(quick(rule), {"steady", "hot"}).run(timer, clock);
  REQUIRE(results[0].drift);
  REQUIRE(results[1].drift);
  CHECK(*results[0].drift == 0);
  CHECK_FALSE(results[0].drift_warning);
  CHECK(*results[1].drift == doctest::Approx(0.18).epsilon(0.05));
  CHECK(results[1].drift_warning);
  const std::string md = markdown(results);
  CHECK(md.find("**warning**: hot's time moved +") != std::string::npos);
  CHECK(md.find("steady's time") == std::string::npos);

  SUBCASE("fewer than 50 samples: unknown, not flagged") {
    rule.min_samples = rule.max_samples = 49;
    k = 0;
    auto few = with_variants(quick(rule), {"steady", "hot"}).run(timer, clock);
    CHECK_FALSE(few[1].drift);
    CHECK_FALSE(few[1].drift_warning);
  }
}

TEST_CASE("noise alone is not reported as drift") {
  StopRule rule;
  rule.max_relative_noise = 0;
  rule.min_samples = rule.max_samples = 200;
  // 20% noise: the tenths' medians wander by several percent (with this seed, by 11%)
  Synthetic syn{{100}, 0.2, 4};
  auto results = with_variants(quick(rule), {"noisy"}).run(syn.timer(), syn.clock());
  REQUIRE(results[0].drift);
  CHECK(std::abs(*results[0].drift) > 0.05);
  CHECK_FALSE(results[0].drift_warning);
}

TEST_CASE("markdown: every variant, its numbers and the ratio") {
  Synthetic syn{{100, 200}, 0.01};
  auto b = with_variants(quick(), {"fast|path", "slow"});
  auto results = b.run(syn.timer(), syn.clock());
  const std::string md = markdown(results);
  CHECK(md.find("| variant | median us | ± us | noise | samples | GB/s | TFLOP/s | x baseline |") !=
        std::string::npos);
  CHECK(md.find("% peak BW") == std::string::npos);  // no device, no peak
  CHECK(md.find("fast\\|path") != std::string::npos);
  CHECK(md.find("| slow |") != std::string::npos);
  CHECK(md.find("baseline |") != std::string::npos);
  CHECK(md.find(fmt::format("| {:.3f} |", results[1].ratio_to_baseline)) != std::string::npos);
  CHECK(results[1].ratio_to_baseline == doctest::Approx(2.0).epsilon(0.02));
  CHECK(md.find(fmt::format("| {:.1f} |", results[0].gbps())) != std::string::npos);
  CHECK(md.find("noise ") != std::string::npos);
  CHECK(md.find("warning") == std::string::npos);

  SUBCASE("with a device: its name and percent of peak") {
    for (auto& r : results) {
      r.device = "Test GPU";
      r.peak_bandwidth = 100e9;
      r.l2_flushed = true;
    }
    const std::string dev = markdown(results);
    CHECK(dev.rfind("Test GPU (peak 0.1 TB/s), L2 flushed before each sample", 0) == 0);
    CHECK(dev.find("| % peak BW |") != std::string::npos);
    CHECK(dev.find(fmt::format("| {:.1f}% |", results[0].percent_of_peak())) != std::string::npos);
  }
  SUBCASE("no bytes or flops: no such columns") {
    for (auto& r : results) r.bytes = r.flops = 0;
    const std::string plain = markdown(results);
    CHECK(plain.find("GB/s") == std::string::npos);
    CHECK(plain.find("TFLOP/s") == std::string::npos);
  }
}

TEST_CASE("JSON holds every number and round-trips") {
  Synthetic syn{{100, 250}, 0.02};
  auto results = with_variants(quick(), {"a", "b"}).run(syn.timer(), syn.clock());
  results[1].drift = 0.07;
  results[1].drift_warning = true;
  results[0].device = "Test GPU";
  results[0].peak_bandwidth = 3.35e12;
  results[0].l2_flushed = true;

  const nlohmann::json j = to_json(results);
  const auto& r1 = j.at("results").at(1);
  CHECK(r1.at("name") == "b");
  CHECK(r1.at("stats_us").at("median").get<double>() == results[1].stats_us.median);
  CHECK(r1.at("gbps").get<double>() == doctest::Approx(results[1].gbps()));
  CHECK(r1.at("tflops").get<double>() == doctest::Approx(results[1].tflops()));
  CHECK(r1.at("ratio_to_baseline").get<double>() == doctest::Approx(2.5).epsilon(0.03));
  CHECK(r1.at("samples_us").size() == results[1].samples_us.size());
  CHECK(j.at("results").at(0).at("drift").is_null());

  const auto back = results_from_json(nlohmann::json::parse(j.dump()));
  REQUIRE(back.size() == results.size());
  for (std::size_t i = 0; i < back.size(); ++i) {
    const Result &a = results[i], &b = back[i];
    CHECK(b.name == a.name);
    CHECK(b.is_baseline == a.is_baseline);
    CHECK(b.stop_reason == a.stop_reason);
    CHECK(b.bytes == a.bytes);
    CHECK(b.flops == a.flops);
    CHECK(b.ratio_to_baseline == a.ratio_to_baseline);
    CHECK(b.drift == a.drift);
    CHECK(b.drift_warning == a.drift_warning);
    CHECK(b.device == a.device);
    CHECK(b.peak_bandwidth == a.peak_bandwidth);
    CHECK(b.l2_flushed == a.l2_flushed);
    CHECK(b.samples_us == a.samples_us);
    const SampleStats &s = a.stats_us, &t = b.stats_us;
    CHECK(t.count == s.count);
    CHECK(t.median == s.median);
    CHECK(t.mean == s.mean);
    CHECK(t.stdev == s.stdev);
    CHECK(t.min == s.min);
    CHECK(t.max == s.max);
    CHECK(t.p10 == s.p10);
    CHECK(t.p90 == s.p90);
    CHECK(t.mad == s.mad);
    CHECK(t.relative_noise == s.relative_noise);
  }
  CHECK(markdown(back) == markdown(results));
}

TEST_CASE("report() prints and writes the JSON file") {
  Synthetic syn{{100}, 0.01};
  auto results = with_variants(quick(), {"only"}).run(syn.timer(), syn.clock());
  const auto path = std::filesystem::temp_directory_path() / "kiln_bench_test_report.json";
  BenchArgs args;
  args.json_path = path.string();
  report(results, args);
  std::ifstream f(path);
  const auto j = nlohmann::json::parse(f);
  CHECK(results_from_json(j).at(0).name == "only");
  std::filesystem::remove(path);

  args.json_path = "/nonexistent-dir/x.json";
  CHECK_THROWS_WITH_AS(report(results, args), doctest::Contains("/nonexistent-dir/x.json"), Error);
}

TEST_CASE("BenchArgs: defaults, each flag, and errors naming the flag") {
  const BenchArgs d = parse({});
  CHECK(d.json_path.empty());
  CHECK(d.max_noise == StopRule{}.max_relative_noise);
  CHECK(d.max_seconds == StopRule{}.max_seconds);
  CHECK(d.flush_l2);

  const BenchArgs a =
      parse({"--json", "out.json", "--noise", "0.25", "--seconds", "2.5", "--no-flush"});
  CHECK(a.json_path == "out.json");
  CHECK(a.max_noise == doctest::Approx(0.0025));
  CHECK(a.max_seconds == 2.5);
  CHECK_FALSE(a.flush_l2);
  const BenchOptions o = a.options();
  CHECK(o.stop.max_relative_noise == doctest::Approx(0.0025));
  CHECK(o.stop.max_seconds == 2.5);
  CHECK_FALSE(o.flush_l2);
  CHECK(o.stop.min_samples == StopRule{}.min_samples);

  const BenchArgs eq = parse({"--noise=1%", "--seconds=10", "--json=r.json"});
  CHECK(eq.max_noise == doctest::Approx(0.01));
  CHECK(eq.max_seconds == 10);
  CHECK(eq.json_path == "r.json");
  CHECK(parse({"--noise", "0"}).max_noise == 0);

  CHECK_THROWS_WITH_AS(parse({"--noise", "abc"}), doctest::Contains("--noise"), Error);
  CHECK_THROWS_WITH_AS(parse({"--noise", "0.5x"}), doctest::Contains("--noise"), Error);
  CHECK_THROWS_WITH_AS(parse({"--noise", "-1"}), doctest::Contains("--noise"), Error);
  CHECK_THROWS_WITH_AS(parse({"--noise"}), doctest::Contains("--noise needs a value"), Error);
  CHECK_THROWS_WITH_AS(parse({"--seconds", "0"}), doctest::Contains("--seconds"), Error);
  CHECK_THROWS_WITH_AS(parse({"--seconds", "inf"}), doctest::Contains("--seconds"), Error);
  CHECK_THROWS_WITH_AS(parse({"--seconds", ""}), doctest::Contains("--seconds"), Error);
  CHECK_THROWS_WITH_AS(parse({"--json"}), doctest::Contains("--json needs a value"), Error);
  CHECK_THROWS_WITH_AS(parse({"--json="}), doctest::Contains("--json"), Error);
  CHECK_THROWS_WITH_AS(parse({"--frobnicate"}),
                       doctest::Contains("unknown argument '--frobnicate'"), Error);
  CHECK_THROWS_WITH_AS(parse({"--frobnicate"}), doctest::Contains("usage:"), Error);

  std::vector<std::string> rest;
  const BenchArgs mixed = parse({"--size", "64", "--no-flush", "extra"}, &rest);
  CHECK_FALSE(mixed.flush_l2);
  CHECK(rest == std::vector<std::string>{"--size", "64", "extra"});
}

TEST_CASE("Bench checks its variants, baseline, options and timer") {
  Bench b(quick());
  CHECK(b.flush_bytes() == 0);  // nothing allocated before run()
  CHECK(Bench::flush_bytes_for(50u << 20) == 100u << 20);
  CHECK(Bench::flush_bytes_for(1u << 20) == 8u << 20);

  Synthetic syn{{1, 2}};
  CHECK_THROWS_WITH_AS(b.run(syn.timer(), syn.clock()), doctest::Contains("add variants"), Error);
  b.add("a", [](rt::StreamRef) {});
  CHECK_THROWS_WITH_AS(b.add("a", [](rt::StreamRef) {}), doctest::Contains("already"), Error);
  CHECK_THROWS_WITH_AS(b.add("", [](rt::StreamRef) {}), doctest::Contains("name"), Error);
  CHECK_THROWS_WITH_AS(b.add("x", nullptr), doctest::Contains("no body"), Error);
  CHECK_THROWS_WITH_AS(b.add(
                           "y", [](rt::StreamRef) {}, -1),
                       doctest::Contains("negative"), Error);
  b.add("b", [](rt::StreamRef) {});
  b.baseline("c");
  CHECK_THROWS_WITH_AS(b.run(syn.timer(), syn.clock()),
                       doctest::Contains("the baseline 'c' is not a variant (they are: a, b)"),
                       Error);
  b.baseline("b");
  CHECK(b.run(syn.timer(), syn.clock()).at(1).is_baseline);

  auto nan_timer = [](std::size_t) { return std::numeric_limits<double>::quiet_NaN(); };
  CHECK_THROWS_WITH_AS(b.run(nan_timer, syn.clock()),
                       doctest::Contains("the timer of variant 'a' returned nan"), Error);
  auto negative_timer = [](std::size_t i) { return i == 1 ? -1.0 : 1.0; };
  CHECK_THROWS_WITH_AS(b.run(negative_timer, syn.clock()), doctest::Contains("'b' returned -1"),
                       Error);

  BenchOptions bad = quick();
  bad.stop.min_samples = 100;
  bad.stop.max_samples = 10;
  CHECK_THROWS_WITH_AS(Bench{bad}, doctest::Contains("min_samples"), Error);
  bad = quick();
  bad.warmup_seconds = -1;
  CHECK_THROWS_WITH_AS(Bench{bad}, doctest::Contains("warmup_seconds"), Error);
}
