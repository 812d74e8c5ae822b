#pragma once
// A made-up kernel's tuning records (a known optimum), for the performance model's tests.
#include <cmath>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/factory/tuning_db.hpp"

namespace kiln_test {

using kiln::factory::CandidateStatus;
using kiln::factory::TuningEntry;
using nlohmann::json;

// A made-up kernel whose time has a known optimum: each block of `threads` threads handles
// threads*vec columns of a row, so time falls with threads*vec until it passes the row
// length `cols`, after which idle lanes cost quadratically; vec 4 and 256 threads are a
// little better than their neighbours. f32 with 1024 threads and vec 8 exceeds the "device".
inline double true_time_us(const json& p, const json& c, const json& d) {
  const double rows = p["rows"], cols = p["cols"], threads = c["threads"], vec = c["vec"];
  const double bytes = p["dtype"] == "f32" ? 4 : 2;
  const double lanes = threads * vec;
  double t = rows * cols * bytes / (50.0 * lanes);
  if (lanes > cols) t *= (lanes / cols) * (lanes / cols);
  t *= 1 + 0.15 * std::abs(std::log2(vec) - 2) + 0.1 * std::abs(std::log2(threads) - 8);
  return 2 + t * 132.0 / double(d["multiprocessors"]);
}

inline std::vector<json> synthetic_configs() {
  std::vector<json> out;
  for (int threads : {32, 64, 128, 256, 512, 1024}) {
    for (int vec : {1, 2, 4, 8}) out.push_back({{"threads", threads}, {"vec", vec}});
  }
  return out;
}

inline TuningEntry synthetic_entry(int rows, int cols, const char* dtype, const json& device,
                                   std::mt19937& rng) {
  std::normal_distribution<double> noise(0, 0.03);
  TuningEntry e;
  e.key.factory = "synthetic";
  e.key.version = 1;
  e.key.params = {{"rows", rows}, {"cols", cols}, {"dtype", dtype}};
  e.key.device = device["name"];
  e.key.arch = "sm_90";
  e.device_features = device["features"];
  for (const json& c : synthetic_configs()) {
    kiln::factory::CandidateRecord r;
    r.config = c;
    if (std::string(dtype) == "f32" && c["threads"] == 1024 && c["vec"] == 8) {
      r.status = CandidateStatus::resources;
      r.reason = "too many registers";
    } else {
      r.time_us = true_time_us(e.key.params, c, e.device_features) * std::exp(noise(rng));
    }
    e.candidates.push_back(r);
  }
  return e;
}

inline json synthetic_device(int index) {
  const int sms = index == 0 ? 132 : 108;
  return {{"name", index == 0 ? "H100" : "A100"},
          {"features", {{"multiprocessors", sms}, {"warp_size", 32}, {"l2_bytes", 5e7}}}};
}

// Every (rows, cols, dtype, device) problem, cols from 64 to 64 Ki.
inline std::vector<TuningEntry> synthetic_entries(unsigned seed = 7) {
  std::mt19937 rng(seed);
  std::vector<TuningEntry> out;
  for (int dev = 0; dev < 2; ++dev) {
    for (int rows : {128, 1024, 8192}) {
      for (int cols = 64; cols <= 65536; cols *= 2) {
        for (const char* dtype : {"f16", "f32"}) {
          out.push_back(synthetic_entry(rows, cols, dtype, synthetic_device(dev), rng));
        }
      }
    }
  }
  return out;
}

}  // namespace kiln_test
