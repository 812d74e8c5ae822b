#pragma once
/// Kernel records summed per (name, device), the unit the top-N table and the roofline
/// report on, and the achieved-versus-peak arithmetic they share.

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../derived.hpp"
#include "../record.hpp"

namespace kiln::prof::detail {

/// Every call of one kernel on one device, summed.
struct KernelGroup {
  std::string name;
  int device = 0;
  std::size_t calls = 0;
  double total_us = 0;
  double min_us = std::numeric_limits<double>::infinity();
  double max_us = 0;
  // Bytes and FLOPs are summed over the calls that declared them, with those calls' time,
  // so a kernel declared on some calls only is rated on those.
  double bytes = 0, bytes_us = 0;
  double flops = 0, flops_us = 0;
  // The calls that declared both (the roofline's points).
  double both_bytes = 0, both_flops = 0, both_us = 0;
  // The calls with DRAM byte counters and declared FLOPs (the roofline's measured points).
  double measured_bytes = 0, measured_flops = 0, measured_us = 0;
  // The hardware counters of the calls that have them, combined.
  CounterTotals counters;

  double mean_us() const { return calls ? total_us / double(calls) : 0; }
  /// Achieved bytes/s, or 0 where no call declared bytes (or they took no time).
  double bytes_per_second() const { return bytes_us > 0 ? bytes / (bytes_us * 1e-6) : 0; }
  /// Achieved FLOP/s, or 0 where no call declared FLOPs.
  double flops_per_second() const { return flops_us > 0 ? flops / (flops_us * 1e-6) : 0; }
};

/// The records grouped by (name, device), by total time, longest first (ties by name and
/// device, so the order never depends on the records' order).
inline std::vector<KernelGroup> group_kernels(const Profile& profile) {
  std::map<std::pair<std::string, int>, KernelGroup> groups;
  for (const KernelRecord& k : profile.kernels) {
    KernelGroup& g = groups[{k.name, k.device}];
    g.name = k.name;
    g.device = k.device;
    const double us = std::max(k.duration_us(), 0.0);
    ++g.calls;
    g.total_us += us;
    g.min_us = std::min(g.min_us, us);
    g.max_us = std::max(g.max_us, us);
    if (k.bytes > 0) {
      g.bytes += k.bytes;
      g.bytes_us += us;
    }
    if (k.flops > 0) {
      g.flops += k.flops;
      g.flops_us += us;
    }
    if (k.bytes > 0 && k.flops > 0) {
      g.both_bytes += k.bytes;
      g.both_flops += k.flops;
      g.both_us += us;
    }
    g.counters.add(k);
    if (k.flops > 0) {
      const auto r = k.counters.find(metric::dram_read), w = k.counters.find(metric::dram_write);
      const double dram =
          (r != k.counters.end() ? r->second : 0.0) + (w != k.counters.end() ? w->second : 0.0);
      if (dram > 0) {
        g.measured_bytes += dram;
        g.measured_flops += k.flops;
        g.measured_us += us;
      }
    }
  }
  std::vector<KernelGroup> out;
  out.reserve(groups.size());
  for (auto& [key, g] : groups) out.push_back(std::move(g));
  std::stable_sort(out.begin(), out.end(), [](const KernelGroup& a, const KernelGroup& b) {
    return a.total_us > b.total_us;
  });
  return out;
}

/// The device with this ordinal in the profile, or nullptr.
inline const DeviceInfo* find_device(const Profile& profile, int ordinal) {
  for (const DeviceInfo& d : profile.devices) {
    if (d.ordinal == ordinal) return &d;
  }
  return nullptr;
}

/// A compute rate as a fraction of the device's peak: of the FP32 peak, or of the tensor
/// peak where the rate exceeds the FP32 peak (it can only have run on tensor cores).
struct PeakFraction {
  double fraction = 0;  ///< 0: unknown
  bool tensor = false;  ///< relative to the tensor peak
};

inline PeakFraction compute_fraction(double flops_per_second, const DevicePeaks& peaks) {
  if (flops_per_second <= 0) return {};
  if (peaks.fp32_flops > 0 && flops_per_second <= peaks.fp32_flops) {
    return {flops_per_second / peaks.fp32_flops, false};
  }
  if (peaks.tensor_fp16_flops > 0) return {flops_per_second / peaks.tensor_fp16_flops, true};
  if (peaks.fp32_flops > 0) return {flops_per_second / peaks.fp32_flops, false};
  return {};
}

}  // namespace kiln::prof::detail
