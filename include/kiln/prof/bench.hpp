#pragma once
/// kiln::prof::Bench: the harness every benchmark executable uses. Each variant is a body
/// that enqueues work on a stream; Bench warms them up, then times them with two events per
/// sample, round-robin, flushing L2 before each sample, until each median is known well
/// enough (StopRule), and reports medians, spreads, bandwidth, FLOP/s and ratios to a
/// baseline as markdown and JSON. docs/profiling.md ("Benchmarks") walks through it.
///
///   int main(int argc, char** argv) try {
///     auto args = kiln::prof::BenchArgs::parse(argc, argv);
///     kiln::prof::Bench bench(args.options());
///     kiln::rt::DeviceBuffer<float> a(n), b(n);
///     bench.add("copy", [&](kiln::rt::StreamRef s) { b.copy_from(a, s); }, 2.0 * a.bytes());
///     kiln::prof::report(bench.run(), args);
///   } catch (const std::exception& e) { ... }

#include <algorithm>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "../rt/device.hpp"
#include "../rt/memory.hpp"
#include "../rt/stream.hpp"
#include "detail/bench_args.hpp"
#include "detail/bench_loop.hpp"
#include "detail/bench_result.hpp"
#include "stats.hpp"

namespace kiln::prof {

/// Benchmarks variants of one operation against each other on one device.
class Bench {
 public:
  /// Nothing touches the GPU until run(). Throws kiln::Error for unworkable options.
  explicit Bench(BenchOptions options = {}) : options_(std::move(options)) { validate(options_); }

  /// Adds a variant: `body` enqueues one run of it on the stream it is given (and only
  /// there: the timing events are on that stream). `bytes` and `flops` are what one run
  /// moves and computes, for GB/s and TFLOP/s (0: not reported). The first variant added
  /// is the baseline unless baseline() names another. Throws on an empty or repeated name.
  Bench& add(std::string name, std::function<void(rt::StreamRef)> body, double bytes = 0,
             double flops = 0) {
    if (name.empty()) throw Error("kiln: Bench::add needs a variant name");
    if (find(name) < variants_.size()) {
      throw Error("kiln: Bench::add: there already is a variant named '" + name + "'");
    }
    if (!body) throw Error("kiln: Bench::add: variant '" + name + "' has no body");
    if (!(bytes >= 0) || !(flops >= 0)) {
      throw Error("kiln: Bench::add: variant '" + name + "' has negative bytes or flops");
    }
    variants_.push_back({{std::move(name), bytes, flops}, std::move(body)});
    return *this;
  }

  /// Makes variant `name` the baseline for ratios (checked by run(): it may be added later).
  Bench& baseline(std::string name) {
    baseline_ = std::move(name);
    return *this;
  }

  /// Measures every variant on the GPU: warm-up, then interleaved samples until the stop
  /// rule holds for all. A sample is: flush L2 (when on), record an event, body(stream),
  /// record an event, wait; its time is the events' difference. The stream, events and
  /// flush buffer are made on the first run and kept for later ones.
  std::vector<Result> run() {
    check_runnable();
    if (!gpu_) gpu_.emplace(options_);
    Gpu& g = *gpu_;
    const rt::StreamRef s = g.stream;
    auto timer = [&](std::size_t i) {
      if (g.flush) g.flush->fill_bytes(0, s);
      g.start.record(s);
      variants_[i].body(s);
      g.stop.record(s);
      g.stop.synchronize();
      return static_cast<double>(g.stop.elapsed_ms_since(g.start)) * 1e3;
    };
    auto results = sample_variants(infos(), baseline_index(), timer, options_);
    const auto& p = g.device.properties();
    for (auto& r : results) {
      r.device = p.name;
      r.peak_bandwidth = p.peak_bandwidth();
      r.l2_flushed = options_.flush_l2;
    }
    return results;
  }

  /// The same loop with `timer(i)` in place of a GPU sample of variant i, and `clock` for
  /// the time budgets: for tests, and for timing host code. The bodies are not called, and
  /// the GPU is not touched.
  std::vector<Result> run(const SampleTimer& timer, const SecondsClock& clock = steady_seconds) {
    check_runnable();
    return sample_variants(infos(), baseline_index(), timer, options_, clock);
  }

  const BenchOptions& options() const { return options_; }
  /// The flush buffer's size in bytes: max(2 x L2, 8 MiB) once run() has made it; 0 before,
  /// or with flush_l2 off.
  std::size_t flush_bytes() const { return gpu_ && gpu_->flush ? gpu_->flush->bytes() : 0; }
  /// The size of flush buffer for an L2 of `l2_bytes`.
  static std::size_t flush_bytes_for(std::size_t l2_bytes) {
    return std::max<std::size_t>(2 * l2_bytes, std::size_t{8} << 20);
  }

 private:
  struct Variant {
    VariantInfo info;
    std::function<void(rt::StreamRef)> body;
  };
  // What the GPU path needs, made once per Bench.
  struct Gpu {
    explicit Gpu(const BenchOptions& o)
        : device(o.device), stream(device), start(device), stop(device) {
      if (o.flush_l2) flush.emplace(flush_bytes_for(device.properties().l2_bytes), device);
    }
    rt::Device device;
    rt::Stream stream;
    rt::Event start, stop;
    std::optional<rt::DeviceBuffer<unsigned char>> flush;
  };

  std::size_t find(const std::string& name) const {
    for (std::size_t i = 0; i < variants_.size(); ++i) {
      if (variants_[i].info.name == name) return i;
    }
    return variants_.size();
  }
  void check_runnable() const {
    if (variants_.empty()) throw Error("kiln: Bench::run has nothing to measure; add variants");
    baseline_index();
  }
  std::size_t baseline_index() const {
    if (baseline_.empty()) return 0;
    const std::size_t i = find(baseline_);
    if (i == variants_.size()) {
      std::string names;
      for (const auto& v : variants_) names += (names.empty() ? "" : ", ") + v.info.name;
      throw Error("kiln: the baseline '" + baseline_ + "' is not a variant (they are: " + names +
                  ")");
    }
    return i;
  }
  std::vector<VariantInfo> infos() const {
    std::vector<VariantInfo> out;
    for (const auto& v : variants_) out.push_back(v.info);
    return out;
  }

  BenchOptions options_;
  std::vector<Variant> variants_;
  std::string baseline_;
  std::optional<Gpu> gpu_;
};

}  // namespace kiln::prof
