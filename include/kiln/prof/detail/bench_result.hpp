#pragma once
/// kiln::prof::Result, one variant's outcome in a Bench run, and its reports: a markdown
/// table and JSON (both ways). Part of kiln/prof/bench.hpp; host-only.

#include <fmt/format.h>

#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../stats.hpp"

namespace kiln::prof {

/// One variant measured by Bench.
struct Result {
  std::string name;
  SampleStats stats_us;     ///< the samples' summary, in microseconds
  std::string stop_reason;  ///< why sampling stopped: "noise 0.31% < 0.5%", "time budget 5 s"...
  double bytes = 0;         ///< bytes one run moves, as declared to Bench::add (0: not given)
  double flops = 0;         ///< floating-point operations of one run (0: not given)
  /// This variant's median over the baseline's (2.0: takes twice as long as the baseline).
  double ratio_to_baseline = 0;
  bool is_baseline = false;
  std::vector<double> samples_us;  ///< every sample, in the order taken
  /// median(last 10% of samples) / median(first 10%) - 1: how much the variant's time moved
  /// during the run (throttling, clock changes). Absent with fewer than 50 samples.
  std::optional<double> drift;
  /// |drift| exceeded BenchOptions::drift_warning, by more than noise explains (the two
  /// tenths' medians differ by over 3 standard errors of their difference).
  bool drift_warning = false;
  std::string device;         ///< the device's name (empty for synthetic timers)
  double peak_bandwidth = 0;  ///< the device's peak, bytes/s (0: unknown)
  bool l2_flushed = false;    ///< whether L2 was flushed before each sample

  /// Achieved bandwidth at the median, in GB/s (1e9 bytes/s); 0 when no bytes were given.
  double gbps() const {
    return bytes > 0 && stats_us.median > 0 ? bytes / stats_us.median * 1e-3 : 0.0;
  }
  /// Achieved TFLOP/s (1e12 FLOP/s) at the median; 0 when no flops were given.
  double tflops() const {
    return flops > 0 && stats_us.median > 0 ? flops / stats_us.median * 1e-6 : 0.0;
  }
  /// Achieved bandwidth in percent of the device's peak; 0 when either is unknown.
  double percent_of_peak() const {
    return peak_bandwidth > 0 ? 100.0 * gbps() * 1e9 / peak_bandwidth : 0.0;
  }
};

namespace detail {

/// `v` with `significant` significant digits in fixed notation (123.4, 1.234, 12345).
inline std::string fixed_significant(double v, int significant = 4) {
  if (!std::isfinite(v)) return "-";
  if (v == 0) return "0";
  const int magnitude = static_cast<int>(std::floor(std::log10(std::abs(v))));
  const int decimals = std::max(0, significant - 1 - magnitude);
  return fmt::format("{:.{}f}", v, decimals);
}

inline std::string bench_cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

/// A JSON number, or NaN where the value was written as null (NaN and infinities are).
inline double json_number(const nlohmann::json& j, const char* key) {
  const auto& v = j.at(key);
  return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
}

}  // namespace detail

/// A markdown table of `results`: median, spread, noise, samples, GB/s and % of peak
/// bandwidth (where bytes were given), TFLOP/s (where flops were), the ratio to the
/// baseline and why each stopped; then a warning for each variant whose time drifted.
inline std::string markdown(const std::vector<Result>& results) {
  bool any_bytes = false, any_peak = false, any_flops = false;
  for (const auto& r : results) {
    any_bytes = any_bytes || r.bytes > 0;
    any_peak = any_peak || (r.bytes > 0 && r.peak_bandwidth > 0);
    any_flops = any_flops || r.flops > 0;
  }
  std::string out;
  if (!results.empty() && !results.front().device.empty()) {
    const Result& f = results.front();
    out += fmt::format("{}", f.device);
    if (f.peak_bandwidth > 0) out += fmt::format(" (peak {:.3g} TB/s)", f.peak_bandwidth / 1e12);
    out += f.l2_flushed ? ", L2 flushed before each sample\n\n" : ", L2 not flushed\n\n";
  }
  out += "| variant | median us | ± us | noise | samples |";
  std::string rule = "| --- | ---: | ---: | ---: | ---: |";
  if (any_bytes) out += " GB/s |", rule += " ---: |";
  if (any_peak) out += " % peak BW |", rule += " ---: |";
  if (any_flops) out += " TFLOP/s |", rule += " ---: |";
  out += " x baseline | stopped on |\n" + rule + " ---: | --- |\n";
  for (const auto& r : results) {
    const SampleStats& s = r.stats_us;
    out += fmt::format("| {} | {} | {} | {:.3g}% | {} |", detail::bench_cell(r.name),
                       detail::fixed_significant(s.median),
                       detail::fixed_significant(detail::mad_to_sigma * s.mad, 2),
                       100 * s.relative_noise, s.count);
    if (any_bytes) out += " " + (r.bytes > 0 ? fmt::format("{:.1f}", r.gbps()) : "-") + " |";
    if (any_peak) {
      out += " " +
             (r.bytes > 0 && r.peak_bandwidth > 0 ? fmt::format("{:.1f}%", r.percent_of_peak())
                                                  : "-") +
             " |";
    }
    if (any_flops) {
      out += " " + (r.flops > 0 ? detail::fixed_significant(r.tflops(), 3) : "-") + " |";
    }
    out += " " +
           (r.is_baseline                        ? std::string("baseline")
            : std::isfinite(r.ratio_to_baseline) ? fmt::format("{:.3f}", r.ratio_to_baseline)
                                                 : std::string("-")) +
           " | " + detail::bench_cell(r.stop_reason) + " |\n";
  }
  for (const auto& r : results) {
    if (!r.drift_warning || !r.drift) continue;
    out += fmt::format(
        "\n> **warning**: {}'s time moved {:+.1f}% from the first to the last 10% of its "
        "samples (throttling or clock changes?): its absolute times are suspect; ratios less "
        "so, as the variants were interleaved.\n",
        r.name, 100 * *r.drift);
  }
  return out;
}

inline void to_json(nlohmann::json& j, const SampleStats& s) {
  j = {{"count", s.count}, {"median", s.median},
       {"mean", s.mean},   {"stdev", s.stdev},
       {"min", s.min},     {"max", s.max},
       {"p10", s.p10},     {"p90", s.p90},
       {"mad", s.mad},     {"relative_noise", s.relative_noise}};
}

inline void from_json(const nlohmann::json& j, SampleStats& s) {
  s.count = j.at("count").get<std::size_t>();
  s.median = detail::json_number(j, "median");
  s.mean = detail::json_number(j, "mean");
  s.stdev = detail::json_number(j, "stdev");
  s.min = detail::json_number(j, "min");
  s.max = detail::json_number(j, "max");
  s.p10 = detail::json_number(j, "p10");
  s.p90 = detail::json_number(j, "p90");
  s.mad = detail::json_number(j, "mad");
  s.relative_noise = detail::json_number(j, "relative_noise");
}

inline void to_json(nlohmann::json& j, const Result& r) {
  j = {{"name", r.name},
       {"baseline", r.is_baseline},
       {"stats_us", r.stats_us},
       {"stop_reason", r.stop_reason},
       {"bytes", r.bytes},
       {"flops", r.flops},
       {"gbps", r.gbps()},
       {"tflops", r.tflops()},
       {"percent_of_peak", r.percent_of_peak()},
       {"ratio_to_baseline", r.ratio_to_baseline},
       {"drift", r.drift ? nlohmann::json(*r.drift) : nlohmann::json(nullptr)},
       {"drift_warning", r.drift_warning},
       {"device", r.device},
       {"peak_bandwidth", r.peak_bandwidth},
       {"l2_flushed", r.l2_flushed},
       {"samples_us", r.samples_us}};
}

/// Reads what to_json wrote (the derived gbps, tflops and percent_of_peak are recomputed).
inline void from_json(const nlohmann::json& j, Result& r) {
  r.name = j.at("name").get<std::string>();
  r.is_baseline = j.at("baseline").get<bool>();
  r.stats_us = j.at("stats_us").get<SampleStats>();
  r.stop_reason = j.at("stop_reason").get<std::string>();
  r.bytes = detail::json_number(j, "bytes");
  r.flops = detail::json_number(j, "flops");
  r.ratio_to_baseline = detail::json_number(j, "ratio_to_baseline");
  r.drift =
      j.at("drift").is_null() ? std::nullopt : std::optional<double>(j["drift"].get<double>());
  r.drift_warning = j.at("drift_warning").get<bool>();
  r.device = j.at("device").get<std::string>();
  r.peak_bandwidth = detail::json_number(j, "peak_bandwidth");
  r.l2_flushed = j.at("l2_flushed").get<bool>();
  r.samples_us = j.at("samples_us").get<std::vector<double>>();
}

/// {"results": [...]}: every number of every result, its samples included. Non-finite
/// numbers (a ratio to a baseline of 0 us) are written as null.
inline nlohmann::json to_json(const std::vector<Result>& results) {
  return nlohmann::json{{"results", results}};
}

/// The results in JSON that to_json(results) wrote. Throws nlohmann::json::exception on
/// missing keys or wrong types.
inline std::vector<Result> results_from_json(const nlohmann::json& j) {
  return j.at("results").get<std::vector<Result>>();
}

}  // namespace kiln::prof
