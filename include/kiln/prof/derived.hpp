#pragma once
/// Metrics derived from a kernel's hardware counters and the device's peaks: a small rules
/// table (derived_rules), each rule a formula over counters that names what it needs, and
/// the memory- or compute-bound classification.
///
///   dram_bytes          dram__bytes_read.sum + dram__bytes_write.sum
///   dram_gbps           dram_bytes / duration (gpu__time_duration.sum where collected: the
///                       same execution as the bytes; else the timing pass's duration) / 1e9
///   dram_pct_of_peak    dram_gbps as % of the peak bandwidth in the registry (registry.hpp)
///   measured_intensity  declared FLOPs / dram_bytes (FLOP per byte the DRAM really moved)
///   tensor_pct          sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
///   bound               classify(): "memory", "compute" or "latency"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "record.hpp"

namespace kiln::prof {

namespace metric {
inline constexpr const char* dram_read = "dram__bytes_read.sum";
inline constexpr const char* dram_write = "dram__bytes_write.sum";
inline constexpr const char* duration = "gpu__time_duration.sum";
inline constexpr const char* sm_throughput = "sm__throughput.avg.pct_of_peak_sustained_elapsed";
inline constexpr const char* dram_throughput = "dram__throughput.avg.pct_of_peak_sustained_elapsed";
inline constexpr const char* tensor_active =
    "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active";
}  // namespace metric

/// What a derived metric is computed from: one kernel's counters (or a group's, summed),
/// its duration in the timing pass and its declared FLOPs, and the device's peaks.
struct CounterInputs {
  const std::map<std::string, double>& counters;
  double duration_us = 0;  ///< timing pass
  double flops = 0;        ///< declared (0: none)
  const DevicePeaks* peaks = nullptr;

  std::optional<double> get(const char* name) const {
    auto it = counters.find(name);
    if (it == counters.end()) return std::nullopt;
    return it->second;
  }
};

namespace detail {

inline std::optional<double> dram_bytes(const CounterInputs& in) {
  const auto r = in.get(metric::dram_read), w = in.get(metric::dram_write);
  if (!r && !w) return std::nullopt;
  return r.value_or(0) + w.value_or(0);
}

/// The duration the bytes were moved in, in seconds.
inline std::optional<double> counter_seconds(const CounterInputs& in) {
  if (auto ns = in.get(metric::duration); ns && *ns > 0) return *ns * 1e-9;
  if (in.duration_us > 0) return in.duration_us * 1e-6;
  return std::nullopt;
}

inline std::optional<double> dram_gbps(const CounterInputs& in) {
  const auto bytes = dram_bytes(in);
  const auto seconds = counter_seconds(in);
  if (!bytes || !seconds) return std::nullopt;
  return *bytes / *seconds / 1e9;
}

inline std::optional<double> dram_pct_of_peak(const CounterInputs& in) {
  const auto gbps = dram_gbps(in);
  if (!gbps || !in.peaks || in.peaks->bandwidth <= 0) return std::nullopt;
  return 100 * *gbps * 1e9 / in.peaks->bandwidth;
}

inline std::optional<double> measured_intensity(const CounterInputs& in) {
  const auto bytes = dram_bytes(in);
  if (!bytes || *bytes <= 0 || in.flops <= 0) return std::nullopt;
  return in.flops / *bytes;
}

inline std::optional<double> tensor_pct(const CounterInputs& in) {
  return in.get(metric::tensor_active);
}

}  // namespace detail

/// One rule of the table: a derived metric, its unit, what it needs and its formula
/// (nullopt where an input is missing).
struct DerivedRule {
  std::string_view name;
  std::string_view label;  ///< the top-N table's column title
  std::string_view unit;
  std::string_view needs;  ///< the counters it needs, for the docs and messages
  std::optional<double> (*formula)(const CounterInputs&);
};

inline constexpr std::array<DerivedRule, 5> derived_rules{{
    {"dram_bytes", "DRAM MB", "byte", "dram__bytes_read.sum, dram__bytes_write.sum",
     &detail::dram_bytes},
    {"dram_gbps", "DRAM GB/s", "GB/s", "dram bytes; gpu__time_duration.sum or the timed duration",
     &detail::dram_gbps},
    {"dram_pct_of_peak", "% DRAM peak", "percent", "dram_gbps and the registry's peak bandwidth",
     &detail::dram_pct_of_peak},
    {"measured_intensity", "FLOP/B (DRAM)", "FLOP/byte", "dram bytes and declared FLOPs",
     &detail::measured_intensity},
    {"tensor_pct", "tensor %", "percent",
     "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active", &detail::tensor_pct},
}};

/// Below this share of peak for both SM and DRAM throughput a kernel uses neither well:
/// "latency" (too little parallelism or waiting on something), as Nsight Compute's speed-of-
/// light rule has it (60%).
inline constexpr double latency_bound_below_pct = 60;

/// Whether the kernel is "memory"-, "compute"- or "latency"-bound, or "" where the counters
/// cannot tell. With both throughput metrics: the larger decides, unless both are below
/// latency_bound_below_pct. Without them, the roofline decides from the measured arithmetic
/// intensity: below the ridge point (compute peak / bandwidth peak; the tensor peak where
/// the achieved FLOP rate exceeds the FP32 peak) is memory-bound, above it compute-bound.
inline std::string classify(const CounterInputs& in) {
  const auto sm = in.get(metric::sm_throughput), dram = in.get(metric::dram_throughput);
  if (sm && dram) {
    if (std::max(*sm, *dram) < latency_bound_below_pct) return "latency";
    return *dram >= *sm ? "memory" : "compute";
  }
  const auto intensity = detail::measured_intensity(in);
  if (!intensity || !in.peaks || in.peaks->bandwidth <= 0 || in.duration_us <= 0) return "";
  const double rate = in.flops / (in.duration_us * 1e-6);
  const DevicePeaks& p = *in.peaks;
  const double compute = (p.fp32_flops > 0 && rate <= p.fp32_flops) || p.tensor_fp16_flops <= 0
                             ? p.fp32_flops
                             : p.tensor_fp16_flops;
  if (compute <= 0) return "";
  return *intensity < compute / p.bandwidth ? "memory" : "compute";
}

/// Every rule that has its inputs, by name.
inline std::map<std::string, double> derived_metrics(const CounterInputs& in) {
  std::map<std::string, double> out;
  for (const DerivedRule& r : derived_rules) {
    if (auto v = r.formula(in)) out.emplace(std::string(r.name), *v);
  }
  return out;
}

/// The rule named `name`, or nullptr.
inline const DerivedRule* derived_rule(std::string_view name) {
  for (const DerivedRule& r : derived_rules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

/// Whether a metric adds up over calls (a count: its name ends in ".sum"); the others
/// (percentages, ratios, averages) are averaged over calls weighted by duration.
inline bool metric_adds_up(std::string_view name) {
  return name.ends_with(".sum");
}

/// Counters of several calls of one kernel, combined: sums where a metric adds up, the
/// duration-weighted mean otherwise (see metric_adds_up).
class CounterTotals {
 public:
  void add(const KernelRecord& k) {
    if (k.counters.empty()) return;
    const double us = std::max(k.duration_us(), 0.0);
    ++calls_;
    us_ += us;
    if (k.flops > 0) flops_ += k.flops;
    for (const auto& [name, value] : k.counters) {
      Sum& s = sums_[name];
      if (metric_adds_up(name)) {
        s.value += value;
      } else {
        // Weighted by duration; where calls took no time, each counts once.
        const double w = us > 0 ? us : 1;
        s.value += value * w;
        s.weight += w;
      }
    }
  }
  std::size_t calls() const { return calls_; }
  double us() const { return us_; }
  double flops() const { return flops_; }
  /// The combined counters.
  std::map<std::string, double> counters() const {
    std::map<std::string, double> out;
    for (const auto& [name, s] : sums_) out[name] = s.weight > 0 ? s.value / s.weight : s.value;
    return out;
  }

 private:
  struct Sum {
    double value = 0, weight = 0;
  };
  std::map<std::string, Sum> sums_;
  std::size_t calls_ = 0;
  double us_ = 0, flops_ = 0;
};

}  // namespace kiln::prof
