#pragma once
/// Times a factory's candidates against each other with kiln's benchmark harness: each is
/// run once first (a candidate that fails there is recorded as such and left out), then the
/// survivors are sampled round-robin with an L2 flush before each sample, to the factory's
/// stop rule. One tuning at a time per device, so concurrent tunings do not skew each other.

#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../prof/bench.hpp"
#include "../rt/device.hpp"
#include "../rt/stream.hpp"
#include "tune_policy.hpp"
#include "tuning_record.hpp"

namespace kiln::factory {

/// One candidate to time: its name (for messages) and a call that runs it once on a stream.
struct TimedCandidate {
  std::string name;
  std::function<void(rt::StreamRef)> run;
  CandidateRecord* record;  ///< where its time or failure goes
};

namespace detail {
inline std::mutex& timing_mutex(int device) {
  static std::mutex guard;
  static std::map<int, std::mutex> per_device;
  std::lock_guard lock(guard);
  return per_device[device];
}
}  // namespace detail

/// Fills each candidate's record: timed with its median and spread, or launch_error with
/// the reason. Records of candidates that already carry a failure are left alone.
inline void time_candidates(const rt::Device& device, std::vector<TimedCandidate>& candidates,
                            const TuneOptions& options) {
  std::lock_guard lock(detail::timing_mutex(device.ordinal()));
  std::vector<TimedCandidate*> alive;
  {
    rt::Stream stream(device);
    for (auto& c : candidates) {
      try {
        c.run(stream);
        stream.synchronize();
        alive.push_back(&c);
      } catch (const std::exception& e) {
        c.record->status = CandidateStatus::launch_error;
        c.record->reason = e.what();
      }
    }
  }
  if (alive.empty()) return;
  prof::BenchOptions bo;
  bo.device = device.ordinal();
  bo.stop = options.stop;
  bo.flush_l2 = options.flush_l2;
  bo.warmup_samples = 2;
  bo.warmup_seconds = 0.01;
  prof::Bench bench(bo);
  for (auto* c : alive) bench.add(c->name, c->run);
  const auto results = bench.run();
  for (std::size_t i = 0; i < alive.size(); ++i) {
    alive[i]->record->status = CandidateStatus::timed;
    alive[i]->record->time_us = results[i].stats_us.median;
    alive[i]->record->spread = results[i].stats_us.relative_noise;
  }
}

}  // namespace kiln::factory
