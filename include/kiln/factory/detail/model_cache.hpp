#pragma once
/// A factory's performance model, trained from its tuning records on first use and again
/// whenever they change (another database, an entry added or replaced, here or by another
/// process).

#include <cstddef>
#include <functional>
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
    // What the model was trained on: each entry's key and when it was tuned.
    std::size_t signature = std::hash<const void*>{}(&db);
    for (const auto& e : entries) {
      signature = signature * 1000003u ^ std::hash<std::string>{}(e.key.id() + '\n' + e.when);
    }
    if (!trained_ || signature != signature_) {
      model_ = PerformanceModel::train(entries);
      trained_ = true;
      signature_ = signature;
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
  bool trained_ = false;
  std::size_t signature_ = 0;
};

}  // namespace kiln::factory::detail
