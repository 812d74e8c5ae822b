#pragma once
/// A factory's performance model, trained from its tuning records on first use and again
/// whenever the database holds a different number of them.

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../model.hpp"
#include "../tuning_db.hpp"

namespace kiln::factory::detail {

class ModelCache {
 public:
  /// The candidates' indices, best-ranked first; nullopt with `why` set when there is no
  /// model (XGBoost missing, or too few records of this factory's version to learn from).
  std::optional<std::vector<std::size_t>> rank(const std::string& factory, int version,
                                               const TuningDatabase& db,
                                               const nlohmann::json& params,
                                               const std::vector<nlohmann::json>& configs,
                                               const nlohmann::json& device_features,
                                               std::string& why) {
    if (!PerformanceModel::available()) {
      why = PerformanceModel::unavailable_reason();
      return std::nullopt;
    }
    std::lock_guard lock(mutex_);
    std::vector<TuningEntry> entries;
    for (auto& e : db.entries(factory)) {
      if (e.key.version == version) entries.push_back(std::move(e));
    }
    if (entries.size() != trained_on_) {
      model_ = PerformanceModel::train(entries);
      trained_on_ = entries.size();
    }
    if (!model_) {
      why = "the tuning database has too few timed records of " + factory + " version " +
            std::to_string(version) + " to train the performance model (" +
            std::to_string(entries.size()) + " tuned problems)";
      return std::nullopt;
    }
    return model_->rank(params, configs, device_features);
  }

 private:
  std::mutex mutex_;
  std::optional<PerformanceModel> model_;
  std::size_t trained_on_ = std::size_t(-1);
};

}  // namespace kiln::factory::detail
