#pragma once
/// Comparing two runs, kernel by kernel: two profiles (every call of a kernel is a sample)
/// or two benchmark result files (each variant's samples as Bench summarized them). Each
/// kernel present in both gets Ref, Cmp, Diff, %Diff and a status: SAME where the difference
/// is within the larger of the threshold and the measured noise, else FASTER or SLOWER, the
/// way nvbench's compare script decides.
///
///   auto rows = compare(measure(base), measure(next), 5.0);
///   std::puts(comparison_table(rows).c_str());
///   return regressions(rows);   // SLOWER kernels

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "derived.hpp"
#include "detail/bench_result.hpp"
#include "names.hpp"
#include "record.hpp"
#include "report.hpp"
#include "stats.hpp"

namespace kiln::prof {

/// One kernel's (or benchmark variant's) time in one run.
struct Measurement {
  std::string name;  ///< as recorded (a profile's kernels keep their mangled names)
  int device = 0;
  double median_us = 0;
  /// The relative standard error of the median (stats.hpp's relative_noise): 0.01 = 1%.
  double noise = 0;
  std::size_t samples = 0;
  /// Hardware counters per call, where the profile has them: counts (".sum") are the mean
  /// over the calls with counters, the others their duration-weighted mean.
  std::map<std::string, double> counters = {};
};

/// A profile's kernels, one Measurement per (name, device): the median and noise of the
/// durations of its calls, and their counters per call.
inline std::vector<Measurement> measure(const Profile& profile) {
  std::map<std::pair<std::string, int>, std::vector<double>> calls;
  std::map<std::pair<std::string, int>, CounterTotals> totals;
  for (const KernelRecord& k : profile.kernels) {
    calls[{k.name, k.device}].push_back(std::max(k.duration_us(), 0.0));
    totals[{k.name, k.device}].add(k);
  }
  std::vector<Measurement> out;
  for (const auto& [key, durations] : calls) {
    const SampleStats s = summarize(durations);
    Measurement m{key.first, key.second, s.median, s.relative_noise, durations.size()};
    const CounterTotals& t = totals[key];
    for (auto [name, value] : t.counters()) {
      m.counters[name] = metric_adds_up(name) ? value / double(t.calls()) : value;
    }
    out.push_back(std::move(m));
  }
  return out;
}

/// Benchmark results (prof::results_from_json of a --json file), one Measurement each.
inline std::vector<Measurement> measure(const std::vector<Result>& results) {
  std::vector<Measurement> out;
  for (const Result& r : results) {
    out.push_back({r.name, 0, r.stats_us.median, r.stats_us.relative_noise, r.stats_us.count});
  }
  return out;
}

enum class CompareStatus { same, faster, slower, only_base, only_new };

inline const char* to_string(CompareStatus s) {
  switch (s) {
    case CompareStatus::same:
      return "SAME";
    case CompareStatus::faster:
      return "FASTER";
    case CompareStatus::slower:
      return "SLOWER";
    case CompareStatus::only_base:
      return "GONE";
    case CompareStatus::only_new:
      return "NEW";
  }
  return "?";
}

/// One row of a comparison.
struct ComparisonRow {
  std::string name;
  int device = 0;
  double ref_us = NAN, cmp_us = NAN;  ///< medians (NAN where the kernel is not in that run)
  double diff_us = NAN;               ///< cmp - ref
  double diff_percent = NAN;          ///< 100 x diff / ref
  /// The difference (in percent) below which the status is SAME: the larger of the
  /// threshold and two standard errors of the difference (both runs' noise combined).
  double tolerance_percent = NAN;
  CompareStatus status = CompareStatus::same;
  /// Each run's counters per call (Measurement::counters; empty where it has none).
  std::map<std::string, double> ref_counters = {}, cmp_counters = {};
};

/// Every kernel of `base` and `next`, matched by name and device, in `base`'s order by
/// time (longest first), then those only `next` has. A kernel is SLOWER where its %Diff
/// exceeds +tolerance, FASTER where it is below -tolerance, else SAME; tolerance =
/// max(threshold_percent, 2 x 100 x sqrt(noise_ref^2 + noise_cmp^2)), so a difference the
/// runs' own noise can explain is never called a change.
inline std::vector<ComparisonRow> compare(const std::vector<Measurement>& base,
                                          const std::vector<Measurement>& next,
                                          double threshold_percent) {
  std::vector<ComparisonRow> rows;
  std::map<std::pair<std::string, int>, const Measurement*> in_next;
  for (const Measurement& m : next) in_next[{m.name, m.device}] = &m;
  std::vector<const Measurement*> ordered;
  for (const Measurement& m : base) ordered.push_back(&m);
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto* a, const auto* b) {
    return a->median_us * double(a->samples) > b->median_us * double(b->samples);
  });
  for (const Measurement* r : ordered) {
    ComparisonRow row;
    row.name = r->name;
    row.device = r->device;
    row.ref_us = r->median_us;
    row.ref_counters = r->counters;
    auto it = in_next.find({r->name, r->device});
    if (it == in_next.end()) {
      row.status = CompareStatus::only_base;
      rows.push_back(row);
      continue;
    }
    const Measurement& c = *it->second;
    in_next.erase(it);
    row.cmp_us = c.median_us;
    row.cmp_counters = c.counters;
    row.diff_us = c.median_us - r->median_us;
    row.diff_percent = r->median_us > 0 ? 100 * row.diff_us / r->median_us : NAN;
    row.tolerance_percent =
        std::max(threshold_percent, 200 * std::sqrt(r->noise * r->noise + c.noise * c.noise));
    if (std::isnan(row.diff_percent) || std::abs(row.diff_percent) <= row.tolerance_percent) {
      row.status = CompareStatus::same;
    } else {
      row.status = row.diff_percent > 0 ? CompareStatus::slower : CompareStatus::faster;
    }
    rows.push_back(row);
  }
  for (const Measurement& m : next) {
    if (!in_next.contains({m.name, m.device})) continue;
    ComparisonRow row;
    row.name = m.name;
    row.device = m.device;
    row.cmp_us = m.median_us;
    row.cmp_counters = m.counters;
    row.status = CompareStatus::only_new;
    rows.push_back(row);
  }
  return rows;
}

/// How many rows are SLOWER.
inline int regressions(const std::vector<ComparisonRow>& rows) {
  return int(std::count_if(rows.begin(), rows.end(), [](const ComparisonRow& r) {
    return r.status == CompareStatus::slower;
  }));
}

/// The counters of the kernels both runs have counters for, as a markdown table: kernel,
/// dev, metric, Ref, Cmp, %Diff (per call: counts are per call, percentages as measured);
/// empty where no kernel has counters in both runs. Informational: the status of a
/// kernel comes from its time alone.
inline std::string counter_comparison_table(const std::vector<ComparisonRow>& rows) {
  std::string out;
  for (const ComparisonRow& r : rows) {
    for (const auto& [name, ref] : r.ref_counters) {
      auto it = r.cmp_counters.find(name);
      if (it == r.cmp_counters.end()) continue;
      const double cmp = it->second;
      if (out.empty()) {
        out =
            "| kernel | dev | counter (per call) | Ref | Cmp | %Diff |\n"
            "|:--|--:|:--|--:|--:|--:|\n";
      }
      out += fmt::format(
          "| {} | {} | {} | {:.6g} | {:.6g} | {} |\n", detail::markdown_cell(short_name(r.name)),
          r.device, name, ref, cmp,
          ref != 0 ? fmt::format("{:+.2f}%", 100 * (cmp - ref) / ref) : std::string("-"));
    }
  }
  return out;
}

/// The comparison as a markdown table: kernel (demangled, shortened), dev, Ref us, Cmp us,
/// Diff us, %Diff, Noise (the tolerance used), Status; then a line counting each status;
/// then, where both runs have counters for a kernel, counter_comparison_table().
inline std::string comparison_table(const std::vector<ComparisonRow>& rows) {
  auto number = [](double v, const char* format) {
    return std::isnan(v) ? std::string("-") : fmt::format(fmt::runtime(format), v);
  };
  std::string out =
      "| kernel | dev | Ref us | Cmp us | Diff us | %Diff | Noise | Status |\n"
      "|:--|--:|--:|--:|--:|--:|--:|:--|\n";
  std::map<CompareStatus, int> counts;
  for (const ComparisonRow& r : rows) {
    ++counts[r.status];
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                       detail::markdown_cell(short_name(r.name)), r.device,
                       number(r.ref_us, "{:.3f}"), number(r.cmp_us, "{:.3f}"),
                       number(r.diff_us, "{:+.3f}"), number(r.diff_percent, "{:+.2f}%"),
                       number(r.tolerance_percent, "{:.2f}%"), to_string(r.status));
  }
  out += fmt::format("\n{} kernels: {} SLOWER, {} FASTER, {} SAME", rows.size(),
                     counts[CompareStatus::slower], counts[CompareStatus::faster],
                     counts[CompareStatus::same]);
  if (counts[CompareStatus::only_base] || counts[CompareStatus::only_new]) {
    out += fmt::format(", {} only in the base (GONE), {} only in the new run (NEW)",
                       counts[CompareStatus::only_base], counts[CompareStatus::only_new]);
  }
  out += "\n";
  if (const std::string counters = counter_comparison_table(rows); !counters.empty()) {
    out += "\nHardware counters (informational; the status comes from the times):\n\n" + counters;
  }
  return out;
}

}  // namespace kiln::prof
