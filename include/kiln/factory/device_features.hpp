#pragma once
/// The device properties a tuning record keeps for the performance model: numbers that
/// let records from one GPU inform predictions on another.

#include <nlohmann/json.hpp>

#include "../rt/device.hpp"

namespace kiln::factory {

inline nlohmann::json device_features(const rt::DeviceProperties& p) {
  return {
      {"multiprocessors", p.multiprocessors},
      {"warp_size", p.warp_size},
      {"max_threads_per_multiprocessor", p.max_threads_per_multiprocessor},
      {"shared_per_block_optin", double(p.shared_per_block_optin)},
      {"shared_per_multiprocessor", double(p.shared_per_multiprocessor)},
      {"registers_per_multiprocessor", p.registers_per_multiprocessor},
      {"l2_bytes", double(p.l2_bytes)},
      {"sm_clock_khz", p.sm_clock_khz},
      {"peak_bandwidth", p.peak_bandwidth()},
  };
}

}  // namespace kiln::factory
