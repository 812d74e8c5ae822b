#pragma once
/// The sampling loop behind kiln::prof::Bench, without a GPU: warm-up, interleaved samples,
/// the stopping rule, ratios and the drift check, over any timer. Part of
/// kiln/prof/bench.hpp; host-only.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "../../error.hpp"
#include "../stats.hpp"
#include "bench_result.hpp"

namespace kiln::prof {

/// How Bench measures.
struct BenchOptions {
  int device = 0;  ///< the device ordinal the GPU path runs on
  StopRule stop{};
  /// Warm-up (not recorded): rounds of every variant until each has run `warmup_samples`
  /// times and `warmup_seconds` have passed.
  std::size_t warmup_samples = 3;
  double warmup_seconds = 0.1;
  /// Write a buffer of max(2 x L2, 8 MiB) before each sample, outside the timed region,
  /// so each sample reads its data from DRAM.
  bool flush_l2 = true;
  /// Warn when a variant's median moved by more than this fraction from the first to the
  /// last 10% of its samples (and by more than its noise explains).
  double drift_warning = 0.05;
};

/// Runs one timed sample of variant `i` (an index into the variants, in the order added)
/// and returns its time in microseconds.
using SampleTimer = std::function<double(std::size_t i)>;
/// Seconds on a monotonic clock (for the time budgets).
using SecondsClock = std::function<double()>;

/// std::chrono::steady_clock, in seconds.
inline double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// What the loop knows of a variant.
struct VariantInfo {
  std::string name;
  double bytes = 0, flops = 0;
};

/// Throws kiln::Error naming the field when `options` cannot work.
inline void validate(const BenchOptions& options) {
  validate(options.stop);
  if (!(options.warmup_seconds >= 0) || !std::isfinite(options.warmup_seconds)) {
    throw Error(fmt::format("kiln: BenchOptions::warmup_seconds must be finite and >= 0, not {}",
                            options.warmup_seconds));
  }
  if (!(options.drift_warning >= 0)) {
    throw Error(fmt::format("kiln: BenchOptions::drift_warning must be >= 0, not {}",
                            options.drift_warning));
  }
}

/// Measures `variants` with `timer`: warm-up rounds, then rounds in which every variant
/// takes one sample in turn (0, 1, 2, 0, 1, 2, ...), until options.stop says stop for every
/// variant; all variants keep the same number of samples over the same span of time. The
/// rule is checked once `min_samples` rounds are in, then after each ~5% more rounds
/// (summaries are not free), and each round once the time budget or max_samples is reached.
/// Ratios are to variant `baseline`'s median. Throws kiln::Error when there are no
/// variants, `baseline` is out of range, or the timer returns a negative or non-finite time.
inline std::vector<Result> sample_variants(std::span<const VariantInfo> variants,
                                           std::size_t baseline, const SampleTimer& timer,
                                           const BenchOptions& options,
                                           const SecondsClock& clock = steady_seconds) {
  validate(options);
  const std::size_t n = variants.size();
  if (n == 0) throw Error("kiln: nothing to measure: add variants with Bench::add");
  if (baseline >= n) {
    throw Error(fmt::format("kiln: baseline index {} is out of range ({} variants)", baseline, n));
  }
  const StopRule& rule = options.stop;

  const double warmup_start = clock();
  for (std::size_t round = 0;
       round < options.warmup_samples || clock() - warmup_start < options.warmup_seconds; ++round) {
    for (std::size_t i = 0; i < n; ++i) timer(i);
  }

  std::vector<std::vector<double>> samples(n);
  std::vector<SampleStats> stats(n);
  const double start = clock();
  double elapsed = 0;
  std::size_t rounds = 0, next_check = std::max<std::size_t>(rule.min_samples, 1);
  for (;;) {
    for (std::size_t i = 0; i < n; ++i) {
      const double us = timer(i);
      if (!std::isfinite(us) || us < 0) {
        throw Error(
            fmt::format("kiln: the timer of variant '{}' returned {} us", variants[i].name, us));
      }
      samples[i].push_back(us);
    }
    ++rounds;
    elapsed = clock() - start;
    const bool due =
        rounds >= next_check || rounds >= rule.max_samples || elapsed >= rule.max_seconds;
    if (!due || (rounds < rule.min_samples && rounds < rule.max_samples)) continue;
    bool all = true;
    for (std::size_t i = 0; i < n; ++i) {
      stats[i] = summarize(samples[i]);
      all = all && should_stop(stats[i], elapsed, rule);
    }
    if (all) break;
    next_check = rounds + std::max<std::size_t>(1, rounds / 20);
  }

  std::vector<Result> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    Result& r = out[i];
    r.name = variants[i].name;
    r.bytes = variants[i].bytes;
    r.flops = variants[i].flops;
    r.stats_us = stats[i];
    r.stop_reason = stop_reason(stats[i], elapsed, rule);
    r.is_baseline = i == baseline;
    const double base = stats[baseline].median;
    r.ratio_to_baseline =
        base > 0 ? stats[i].median / base : std::numeric_limits<double>::quiet_NaN();
    if (const std::size_t tenth = rounds / 10; tenth >= 5) {
      const auto& v = samples[i];
      const double first = detail::median_of({v.begin(), v.begin() + std::ptrdiff_t(tenth)});
      const double last = detail::median_of({v.end() - std::ptrdiff_t(tenth), v.end()});
      if (first > 0) {
        r.drift = last / first - 1;
        // The standard error of a tenth's median, from the whole run's MAD (which drift
        // only widens: conservative); the difference of two has sqrt(2) times that.
        const double se = detail::median_standard_error_factor * detail::mad_to_sigma *
                          stats[i].mad / std::sqrt(static_cast<double>(tenth));
        r.drift_warning = std::abs(*r.drift) > options.drift_warning &&
                          std::abs(last - first) > 3 * std::sqrt(2.0) * se;
      }
    }
    r.samples_us = std::move(samples[i]);
  }
  return out;
}

}  // namespace kiln::prof
