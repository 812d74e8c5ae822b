#pragma once
/// Hardware metrics by name: the default set, the built-in table, the checks of a user's
/// choice (KILN_PROFILE_METRICS=a,b,c or CounterOptions::metrics) and the close names an
/// unknown name is refused with.
///
/// Which names are known: where CUPTI's Profiler Host API loads, every metric it lists for
/// the chip (kiln::prof::metric_catalog() in counters.hpp: some 3,600 base metrics on GH100,
/// each with its rollups and submetrics, checked by the host API itself); where it does not,
/// only the built-in table below (the metrics kiln's reports use), so a name outside it is
/// refused with the reason the host API could not be asked.

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/environment.hpp"
#include "../error.hpp"

namespace kiln::prof {

/// A metric kiln knows without asking CUPTI.
struct MetricInfo {
  std::string_view name;
  std::string_view unit;  ///< "byte", "nanosecond", "percent"
  std::string_view description;
};

/// The built-in metrics (the default set): Nsight Compute's names for sm_70 and later, all
/// listed by CUPTI's host API for GH100 (sm_90). On sm_90 the tensor pipe's HMMA counter
/// counts the Hopper warpgroup MMAs (HGMMA) too.
inline constexpr std::array<MetricInfo, 8> builtin_metrics{{
    {"dram__bytes_read.sum", "byte", "bytes read from DRAM"},
    {"dram__bytes_write.sum", "byte", "bytes written to DRAM"},
    {"gpu__time_duration.sum", "nanosecond", "the kernel's duration in the counter pass"},
    {"sm__throughput.avg.pct_of_peak_sustained_elapsed", "percent",
     "SM throughput, % of its peak (the busiest SM unit)"},
    {"dram__throughput.avg.pct_of_peak_sustained_elapsed", "percent",
     "DRAM throughput, % of its peak"},
    {"sm__warps_active.avg.pct_of_peak_sustained_active", "percent", "achieved occupancy"},
    {"lts__t_sector_hit_rate.pct", "percent", "L2 hit rate (sectors)"},
    {"sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active", "percent",
     "tensor pipe active cycles, % of peak (HMMA, and HGMMA on sm_90)"},
}};

/// The metrics collected where none are chosen: every built-in one.
inline std::vector<std::string> default_metrics() {
  std::vector<std::string> out;
  for (const MetricInfo& m : builtin_metrics) out.emplace_back(m.name);
  return out;
}

/// The built-in entry of `name`, or nullptr.
inline const MetricInfo* builtin_metric(std::string_view name) {
  for (const MetricInfo& m : builtin_metrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

/// Levenshtein distance: insertions, deletions and substitutions of one character each.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// The names of `known` closest to `name` by edit_distance, closest first (ties in the
/// order given), at most `most`, and none further than a third of `name`'s length (at least
/// 3): the "did you mean" list.
inline std::vector<std::string> close_names(std::string_view name,
                                            const std::vector<std::string>& known,
                                            std::size_t most = 5) {
  const std::size_t limit = std::max<std::size_t>(3, name.size() / 3);
  std::vector<std::pair<std::size_t, std::size_t>> scored;  // distance, index
  for (std::size_t i = 0; i < known.size(); ++i) {
    const std::string& k = known[i];
    const std::size_t gap =
        k.size() > name.size() ? k.size() - name.size() : name.size() - k.size();
    if (gap > limit) continue;  // the distance is at least the difference in length
    if (const std::size_t d = edit_distance(name, k); d <= limit) scored.push_back({d, i});
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && out.size() < most; ++i) {
    out.push_back(known[scored[i].second]);
  }
  return out;
}

/// What metric names are checked against: CUPTI's host API for a chip, or the built-in
/// table.
class MetricCatalog {
 public:
  virtual ~MetricCatalog() = default;
  /// Where the names come from, for messages: "CUPTI's metric list for GH100".
  virtual std::string source() const = 0;
  /// Whether `name` (a full metric name, with its rollup: "dram__bytes_read.sum") is known.
  virtual bool known(const std::string& name) const = 0;
  /// Known names close to `name`, closest first (at most 5).
  virtual std::vector<std::string> suggestions(const std::string& name) const = 0;
};

/// The built-in table only (where CUPTI's host API cannot be loaded). `why` says why not,
/// for the message that refuses a name outside it.
class BuiltinMetricCatalog final : public MetricCatalog {
 public:
  explicit BuiltinMetricCatalog(std::string why = {}) : why_(std::move(why)) {}
  std::string source() const override {
    return "kiln's built-in metric table" +
           (why_.empty() ? std::string()
                         : " (CUPTI's metric list could not be read: " + why_ + ")");
  }
  bool known(const std::string& name) const override { return builtin_metric(name) != nullptr; }
  std::vector<std::string> suggestions(const std::string& name) const override {
    return close_names(name, default_metrics());
  }

 private:
  std::string why_;
};

/// Checks `metrics` against `catalog`: none empty, none twice, every one known. Throws
/// kiln::Error naming each unknown metric with the close names the catalog has, and where
/// the list came from (`origin`: "KILN_PROFILE_METRICS" or "CounterOptions::metrics").
inline void check_metrics(const std::vector<std::string>& metrics, const MetricCatalog& catalog,
                          std::string_view origin = "the metric list") {
  std::string problems;
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    const std::string& m = metrics[i];
    if (m.empty()) {
      problems += "\n  an empty name (item " + std::to_string(i + 1) + ")";
      continue;
    }
    if (std::find(metrics.begin(), metrics.begin() + std::ptrdiff_t(i), m) !=
        metrics.begin() + std::ptrdiff_t(i)) {
      problems += "\n  '" + m + "' is listed twice";
      continue;
    }
    if (catalog.known(m)) continue;
    const std::vector<std::string> close = catalog.suggestions(m);
    problems += "\n  '" + m + "' is not a metric";
    if (close.empty()) {
      problems += " (no known name is close)";
    } else {
      problems += "; close names:";
      for (std::size_t c = 0; c < close.size(); ++c) problems += (c ? ", " : " ") + close[c];
    }
  }
  if (problems.empty()) return;
  std::string defaults;
  for (const MetricInfo& b : builtin_metrics) defaults += std::string("\n  ") + std::string(b.name);
  throw Error("kiln: " + std::string(origin) +
              " has metrics kiln cannot collect (checked against " + catalog.source() +
              "):" + problems +
              "\nUse full metric names with their rollup (Nsight Compute's names, as `ncu "
              "--query-metrics` lists them), or 'default' for kiln's default set:" +
              defaults);
}

/// A comma-separated list of metric names ("a, b,c"), spaces around each ignored; the word
/// "default" stands for default_metrics() (and may be combined: "default,l1tex__t_bytes.sum");
/// a name listed twice counts once. Throws kiln::Error for an empty item, naming `origin`.
inline std::vector<std::string> parse_metric_list(std::string_view text,
                                                  std::string_view origin = "the metric list") {
  std::vector<std::string> out;
  std::size_t item = 0;
  while (true) {
    const std::size_t comma = text.find(',');
    const std::string name = kiln::detail::trimmed(text.substr(0, comma));
    ++item;
    if (name.empty()) {
      throw Error("kiln: " + std::string(origin) + " has an empty item (item " +
                  std::to_string(item) +
                  "); write metric names separated by single commas, e.g. "
                  "dram__bytes_read.sum,dram__bytes_write.sum, or 'default'");
    }
    if (kiln::detail::normalized(name) == "default") {
      for (std::string& d : default_metrics()) {
        if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(std::move(d));
      }
    } else if (std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(name);
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

/// The metrics KILN_PROFILE_METRICS names (parse_metric_list), or nullopt where it is unset
/// or empty. Names are not checked here: check_metrics() does that against the device's list.
inline std::optional<std::vector<std::string>> metrics_from_environment() {
  const auto v = kiln::detail::env_setting("KILN_PROFILE_METRICS");
  if (!v) return std::nullopt;
  return parse_metric_list(*v, "KILN_PROFILE_METRICS");
}

}  // namespace kiln::prof
