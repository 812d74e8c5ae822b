#pragma once
/// Summaries of timing samples, and the rule that says when a benchmark has enough of them.
///
/// Host-only: no GPU, no driver. kiln::prof::Bench (bench.hpp) uses these for every variant
/// it measures; they work as well on any other list of samples.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "../error.hpp"

namespace kiln::prof {

/// A summary of samples (in whatever unit they were given; Bench gives microseconds).
struct SampleStats {
  std::size_t count = 0;
  double median = 0, mean = 0;
  double stdev = 0;  ///< sample standard deviation (n - 1); 0 for one sample
  double min = 0, max = 0;
  double p10 = 0, p90 = 0;  ///< percentiles, interpolated linearly between order statistics
  double mad = 0;           ///< median absolute deviation from the median
  /// The relative standard error of the median: sqrt(pi/2) * 1.4826 * mad / sqrt(count) /
  /// |median|. 1.4826 * MAD estimates the standard deviation robustly (outliers barely move
  /// it), and sqrt(pi/2) * sigma / sqrt(n) is the standard error of the median of n normal
  /// samples. 0.005 means the median is known to about +-0.5% (one standard error). 0 when
  /// more than half the samples are equal (MAD 0); infinite when the median is 0 but the
  /// MAD is not.
  double relative_noise = 0;
};

namespace detail {

/// sqrt(pi / 2): the standard error of the median of n normal samples is this times
/// sigma / sqrt(n).
inline constexpr double median_standard_error_factor = 1.2533141373155002;
/// 1 / Phi^-1(3/4): sigma = this times the MAD for normal samples.
inline constexpr double mad_to_sigma = 1.4826022185056018;

/// The p-quantile (0..1) of sorted, non-empty values, interpolated linearly between order
/// statistics (numpy's default, "type 7").
inline double quantile_sorted(std::span<const double> sorted, double p) {
  const double h = static_cast<double>(sorted.size() - 1) * p;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

/// The median of non-empty values (the mean of the middle two for an even count).
inline double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return quantile_sorted(values, 0.5);
}

}  // namespace detail

/// Summarizes `samples`. Throws kiln::Error when there are none or one is not finite.
inline SampleStats summarize(std::span<const double> samples) {
  if (samples.empty()) throw Error("kiln: summarize needs at least one sample, got none");
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (!std::isfinite(samples[i])) {
      throw Error(fmt::format("kiln: summarize got a non-finite sample ({}) at index {} of {}",
                              samples[i], i, samples.size()));
    }
  }
  std::vector<double> sorted(samples.begin(), samples.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  const double count = static_cast<double>(n);

  SampleStats s;
  s.count = n;
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = detail::quantile_sorted(sorted, 0.5);
  s.p10 = detail::quantile_sorted(sorted, 0.1);
  s.p90 = detail::quantile_sorted(sorted, 0.9);
  double sum = 0;
  for (double x : sorted) sum += x;
  s.mean = sum / count;
  double squares = 0;
  for (double x : sorted) squares += (x - s.mean) * (x - s.mean);
  s.stdev = n > 1 ? std::sqrt(squares / (count - 1)) : 0.0;

  std::vector<double> deviations(n);
  for (std::size_t i = 0; i < n; ++i) deviations[i] = std::abs(sorted[i] - s.median);
  std::sort(deviations.begin(), deviations.end());
  s.mad = detail::quantile_sorted(deviations, 0.5);

  const double spread =
      detail::median_standard_error_factor * detail::mad_to_sigma * s.mad / std::sqrt(count);
  if (s.mad == 0) {
    s.relative_noise = 0;
  } else if (s.median == 0) {
    s.relative_noise = std::numeric_limits<double>::infinity();
  } else {
    s.relative_noise = spread / std::abs(s.median);
  }
  return s;
}

/// When to stop taking samples. Checked in this order:
///  1. `max_samples` reached: stop ("max samples 10000");
///  2. fewer than `min_samples`: go on, whatever the time (a floor, so a slow kernel can
///     run past `max_seconds` to reach it);
///  3. relative_noise < `max_relative_noise`: stop ("noise 0.312% < 0.5%"); 0 turns this off;
///  4. `max_seconds` spent: stop ("time budget 5 s").
struct StopRule {
  double max_relative_noise = 0.005;  ///< a fraction: 0.005 is 0.5%
  std::size_t min_samples = 10, max_samples = 10000;
  double max_seconds = 5.0;
};

/// Throws kiln::Error naming the field when `rule` cannot work.
inline void validate(const StopRule& rule) {
  if (!(rule.max_relative_noise >= 0) || !std::isfinite(rule.max_relative_noise)) {
    throw Error(
        fmt::format("kiln: StopRule::max_relative_noise must be a finite fraction >= 0, "
                    "not {}",
                    rule.max_relative_noise));
  }
  if (rule.max_samples == 0) throw Error("kiln: StopRule::max_samples must be at least 1");
  if (rule.min_samples > rule.max_samples) {
    throw Error(fmt::format("kiln: StopRule::min_samples ({}) exceeds max_samples ({})",
                            rule.min_samples, rule.max_samples));
  }
  if (!(rule.max_seconds > 0)) {
    throw Error(fmt::format("kiln: StopRule::max_seconds must be > 0, not {}", rule.max_seconds));
  }
}

/// Why to stop after `elapsed_seconds` with `stats`, or an empty string to go on.
inline std::string stop_reason(const SampleStats& stats, double elapsed_seconds,
                               const StopRule& rule) {
  if (stats.count >= rule.max_samples) return fmt::format("max samples {}", rule.max_samples);
  if (stats.count < rule.min_samples) return {};
  if (stats.relative_noise < rule.max_relative_noise) {
    return fmt::format("noise {:.3g}% < {:.3g}%", 100 * stats.relative_noise,
                       100 * rule.max_relative_noise);
  }
  if (elapsed_seconds >= rule.max_seconds)
    return fmt::format("time budget {:g} s", rule.max_seconds);
  return {};
}

/// Whether to stop after `elapsed_seconds` with `stats` (stop_reason says why).
inline bool should_stop(const SampleStats& stats, double elapsed_seconds, const StopRule& rule) {
  return !stop_reason(stats, elapsed_seconds, rule).empty();
}

}  // namespace kiln::prof
