#pragma once
/// What the profiler records: one KernelRecord per kernel execution, and the peaks of the
/// devices they ran on.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kiln::prof {

/// One kernel execution.
struct KernelRecord {
  std::string name;          ///< the kernel's name, with its specialization where a factory made it
  std::string params;        ///< the factory's Params, as text (empty for plain launches)
  std::string config;        ///< the factory's Config, as text
  int device = 0;            ///< device ordinal
  std::uint64_t stream = 0;  ///< the stream's handle (0: the default stream)
  std::array<unsigned, 3> grid{1, 1, 1};
  std::array<unsigned, 3> block{1, 1, 1};
  unsigned shared_bytes = 0;  ///< dynamic shared memory per block
  int static_shared_bytes = 0;
  int registers = 0;          ///< per thread
  double occupancy = 0;       ///< resident warps per multiprocessor / the most there can be, 0..1
  double start_us = 0;        ///< device start, microseconds since the session began
  double end_us = 0;          ///< device end, same clock
  double host_us = 0;         ///< when the host launched it, microseconds since the session began
  double host_launch_us = 0;  ///< host time spent in the launch call
  double bytes = 0;           ///< bytes the kernel moves (0: not declared)
  double flops = 0;           ///< floating-point operations (0: not declared)
  bool external = false;      ///< launched outside kiln (seen through CUPTI)
  std::uint64_t correlation = 0;  ///< CUPTI correlation id, where CUPTI timed it
  /// Hardware counters by metric name ("dram__bytes_read.sum"), from the counter pass
  /// (counters.hpp); empty where none were collected.
  std::map<std::string, double> counters;

  double duration_us() const { return end_us - start_us; }
};

/// A device's peak rates, for achieved-versus-peak figures and the roofline.
struct DevicePeaks {
  std::string name;              ///< the device name the peaks are for
  double bandwidth = 0;          ///< bytes per second
  double fp32_flops = 0;         ///< FP32 FLOP/s (CUDA cores / vector units)
  double tensor_fp16_flops = 0;  ///< dense FP16/BF16 tensor FLOP/s
  std::string source;            ///< "registry", "attributes" or "measured"
};

/// A device as it appears in reports.
struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  DevicePeaks peaks;
};

/// Everything a profiling session collected.
struct Profile {
  std::vector<KernelRecord> kernels;
  std::vector<DeviceInfo> devices;
  std::string backend;               ///< "events" or "cupti"
  std::vector<std::string> metrics;  ///< the hardware metrics asked for (empty: none)
  std::string counters_note;         ///< why counters are missing or partial (empty: all collected)
};

}  // namespace kiln::prof
