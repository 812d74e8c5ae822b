// A performance model that lives until the process exits (as a factory's model cache, a
// static, holds it) must not crash the exit: XGBoost's own static objects are destroyed
// before it, and freeing its handles then freed them a second time (seen as "double free
// or corruption" after a KILN_TUNE=model run). Its own main: the crash is at exit, after
// any test framework has reported. Exit 77 (skipped) without XGBoost.
#include <cstdio>
#include <optional>

#include "kiln/factory/model.hpp"
#include "synthetic_tuning.hpp"

namespace {
// Constructed before main, so destroyed after everything XGBoost registers when it loads.
std::optional<kiln::factory::PerformanceModel> held;
}  // namespace

int main() {
  using kiln::factory::PerformanceModel;
  if (!PerformanceModel::available()) {
    std::printf("skipped, XGBoost is not available: %s\n",
                PerformanceModel::unavailable_reason().c_str());
    return 77;
  }
  const auto entries = kiln_test::synthetic_entries();
  held = PerformanceModel::train(entries);
  if (!held) {
    std::printf("FAILED: no model from %zu synthetic entries\n", entries.size());
    return 1;
  }
  std::vector<nlohmann::json> configs;
  for (const auto& c : entries.front().candidates) configs.push_back(c.config);
  const auto order =
      held->rank(entries.front().key.params, configs, entries.front().device_features);
  if (order.size() != configs.size()) {
    std::printf("FAILED: ranked %zu of %zu configs\n", order.size(), configs.size());
    return 1;
  }
  std::printf("a model of %zu records is held until exit\n", held->records());
  return 0;  // the test is that the process ends with this status
}
