#pragma once
/// The learned performance model behind KILN_TUNE=model: gradient-boosted trees (XGBoost,
/// loaded at run time) trained on the tuning database's timed candidates, predicting each
/// candidate's time from its Params, Config and device properties (features.hpp), so that
/// only the best-ranked few are timed. Without XGBoost, available() is false and
/// unavailable_reason() says why; the factory then times every candidate.
///
///   if (auto model = PerformanceModel::train(db.entries("softmax"))) {
///     auto order = model->rank(params, configs, device_features(props));  // best first
///   }
///
/// evaluate() measures how well that works on records held out of training.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "detail/xgboost_api.hpp"
#include "features.hpp"
#include "tuning_record.hpp"

namespace kiln::factory {

/// How the model is trained.
struct ModelOptions {
  /// XGBoost's objective. "rank:pairwise" learns the order of the candidates within each
  /// tuned problem; its predictions are scores, not times. "reg:squarederror" regresses
  /// log(time), so it predicts microseconds. Ranking is the default: on synthetic records
  /// (264 problems, 8 splits, 4 noise and shape settings) its top 1 and top 3 held the best
  /// more often in 7 of the 8 comparisons (top 1 at 3% noise: 78% of problems against 65%).
  std::string objective = "rank:pairwise";
  int rounds = 100;
  int max_depth = 6;
  double eta = 0.3;
  /// XGBoost's nthread. The data are small, and on a busy machine OpenMP's waiting threads
  /// made training 10x slower with 2 threads than with 1.
  int threads = 1;
  unsigned seed = 0;             ///< XGBoost's seed; the same records give the same model
  std::size_t min_records = 20;  ///< fewer timed candidates than this: no model
  std::size_t min_entries = 3;   ///< fewer tuned problems with a timed candidate: no model
  /// 0: candidates that were not timed (compile or launch failures, limits) are left out.
  /// Otherwise they train as `skipped_time_factor` × their problem's slowest time, which
  /// teaches the model to rank them last.
  double skipped_time_factor = 0;
};

/// A trained model; move-only (it owns an XGBoost booster).
class PerformanceModel {
 public:
  /// Whether XGBoost could be loaded (once per process; see detail/xgboost_api.hpp).
  static bool available() { return detail::xgboost_api() != nullptr; }
  /// Why it could not ("" when it could): the libraries tried and KILN_XGBOOST_LIBRARY.
  static std::string unavailable_reason() { return detail::xgboost_load().reason; }

  /// A model of `entries`' timed candidates, or nullopt when there are too few of them to
  /// learn from (ModelOptions::min_records, min_entries): the caller then times everything.
  /// Throws LibraryError without XGBoost and kiln::Error when XGBoost fails.
  static std::optional<PerformanceModel> train(const std::vector<TuningEntry>& entries,
                                               const ModelOptions& options = {}) {
    const detail::XGBoostApi& api = detail::xgboost();
    std::vector<const TuningEntry*> used;
    std::size_t timed = 0;
    for (const auto& e : entries) {
      const auto n = std::size_t(std::count_if(e.candidates.begin(), e.candidates.end(), is_timed));
      if (n > 0) used.push_back(&e);
      timed += n;
    }
    if (timed < options.min_records || used.size() < options.min_entries) return std::nullopt;

    PerformanceModel m;
    m.features_ = FeatureSpace(entries);
    m.objective_ = options.objective;
    const bool ranking = options.objective.starts_with("rank:");
    std::vector<float> data, labels;
    std::vector<unsigned> groups;
    for (const TuningEntry* e : used) {
      double slowest = 0;
      for (const auto& c : e->candidates) {
        if (is_timed(c)) slowest = std::max(slowest, c.time_us);
      }
      unsigned rows = 0;
      for (const auto& c : e->candidates) {
        double t = c.time_us;
        if (!is_timed(c)) {
          if (options.skipped_time_factor <= 0) continue;
          t = slowest * options.skipped_time_factor;
        }
        const auto row = m.features_.encode(e->key.params, c.config, e->device_features);
        data.insert(data.end(), row.begin(), row.end());
        // Ranking objectives take relevance (higher is better); regression the log time.
        labels.push_back(float(ranking ? -std::log(t) : std::log(t)));
        ++rows;
      }
      groups.push_back(rows);
    }
    m.records_ = labels.size();

    detail::XgbMatrix train_set(api, data, labels.size(), m.features_.size());
    api.check(api.dmatrix_set_float_info(train_set.get(), "label", labels.data(), labels.size()),
              "XGDMatrixSetFloatInfo(label)");
    if (ranking) {
      api.check(api.dmatrix_set_uint_info(train_set.get(), "group", groups.data(), groups.size()),
                "XGDMatrixSetUIntInfo(group)");
    }
    m.booster_ = detail::XgbBoosterOwner(api, {train_set.get()});
    m.booster_.set("objective", options.objective);
    m.booster_.set("max_depth", std::to_string(options.max_depth));
    m.booster_.set("eta", std::to_string(options.eta));
    m.booster_.set("seed", std::to_string(options.seed));
    m.booster_.set("tree_method", "exact");  // the same splits on every XGBoost version
    m.set_runtime_params(options.threads);
    for (int i = 0; i < options.rounds; ++i) {
      api.check(api.booster_update_one_iter(m.booster_.get(), i, train_set.get()),
                "XGBoosterUpdateOneIter");
    }
    return m;
  }

  /// The predicted time of each of `configs` in microseconds, for the problem `params` on
  /// the device with `device_features`, where predicts_time(); under a ranking objective
  /// (the default) exp(-score): smaller is faster, but the values are not microseconds.
  std::vector<double> predict_us(const nlohmann::json& params,
                                 const std::vector<nlohmann::json>& configs,
                                 const nlohmann::json& device_features) const {
    if (configs.empty()) return {};
    const detail::XGBoostApi& api = detail::xgboost();
    const auto data = features_.encode_rows(params, configs, device_features);
    detail::XgbMatrix rows(api, data, configs.size(), features_.size());
    std::vector<double> out;
    std::lock_guard lock(*mutex_);  // the booster's prediction buffer is shared
    detail::XgbSize n = 0;
    const float* result = nullptr;
    api.check(api.booster_predict(booster_.get(), rows.get(), 0, 0, 0, &n, &result),
              "XGBoosterPredict");
    if (n != configs.size()) throw Error("kiln: XGBoost predicted the wrong number of values");
    const double sign = predicts_time() ? 1.0 : -1.0;
    for (detail::XgbSize i = 0; i < n; ++i) out.push_back(std::exp(sign * double(result[i])));
    return out;
  }

  /// The indices of `configs`, predicted fastest first (ties in index order).
  std::vector<std::size_t> rank(const nlohmann::json& params,
                                const std::vector<nlohmann::json>& configs,
                                const nlohmann::json& device_features) const {
    const auto t = predict_us(params, configs, device_features);
    std::vector<std::size_t> order(t.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return t[a] < t[b]; });
    return order;
  }

  const FeatureSpace& features() const { return features_; }
  const std::string& objective() const { return objective_; }
  /// Whether predict_us() gives microseconds (a regression objective), not only an order.
  bool predicts_time() const { return !objective_.starts_with("rank:"); }
  /// How many candidates it was trained on.
  std::size_t records() const { return records_; }

  /// The model as JSON ({"kiln_model": 1, "objective", "records", "features", "booster"}),
  /// XGBoost's own JSON model format inside, so it can be stored and loaded later.
  nlohmann::json to_json() const {
    const detail::XGBoostApi& api = detail::xgboost();
    std::lock_guard lock(*mutex_);
    detail::XgbSize n = 0;
    const char* text = nullptr;
    api.check(api.booster_save_model_to_buffer(booster_.get(), R"({"format": "json"})", &n, &text),
              "XGBoosterSaveModelToBuffer");
    return {{"kiln_model", 1},
            {"objective", objective_},
            {"records", records_},
            {"features", features_.to_json()},
            {"booster", nlohmann::json::parse(text, text + n)}};
  }

  /// The model to_json() wrote; throws kiln::Error for anything else.
  static PerformanceModel from_json(const nlohmann::json& j, int threads = 1) {
    const detail::XGBoostApi& api = detail::xgboost();
    if (!j.is_object() || j.value("kiln_model", 0) != 1 || !j.contains("features") ||
        !j.contains("booster") || !j.contains("objective") || !j["objective"].is_string()) {
      throw Error("kiln: not a performance model (expected {\"kiln_model\": 1, ...})");
    }
    PerformanceModel m;
    m.features_ = FeatureSpace::from_json(j["features"]);
    m.objective_ = j["objective"].get<std::string>();
    m.records_ = j.value("records", std::size_t{0});
    m.booster_ = detail::XgbBoosterOwner(api, {});
    const std::string text = j["booster"].dump();
    api.check(api.booster_load_model_from_buffer(m.booster_.get(), text.data(), text.size()),
              "XGBoosterLoadModelFromBuffer");
    m.set_runtime_params(threads);
    return m;
  }

 private:
  PerformanceModel() = default;

  static bool is_timed(const CandidateRecord& c) {
    return c.status == CandidateStatus::timed && std::isfinite(c.time_us) && c.time_us > 0;
  }
  void set_runtime_params(int threads) const {
    booster_.set("nthread", std::to_string(std::max(1, threads)));
    booster_.set("verbosity", "0");
  }

  FeatureSpace features_;
  detail::XgbBoosterOwner booster_;
  std::string objective_;
  std::size_t records_ = 0;
  std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

/// How well the model picks, on tuned problems held out of its training.
struct ModelEvaluation {
  std::size_t top_k = 0;
  std::size_t train_entries = 0;  ///< tuned problems trained on
  std::size_t test_entries = 0;   ///< held-out problems with at least one timed candidate
  /// The fraction of test problems whose k best-ranked candidates include the measured best.
  double hit_rate = 0;
  /// Over test problems: the best measured time among the top k / the best time (1: ideal).
  double mean_best_ratio = 0;
  double worst_best_ratio = 0;
  /// Candidates timed: every timed one (`full`) against min(k, n) a problem (`model`).
  std::size_t candidates_full = 0, candidates_model = 0;
  double candidates_saved = 0;  ///< 1 - candidates_model / candidates_full
  /// The same in measured time: the sums of the timed candidates' times (a benchmark
  /// runs each for a similar number of samples, so this is proportional to its duration).
  double time_full_us = 0, time_model_us = 0;
  double time_saved = 0;  ///< 1 - time_model_us / time_full_us
};

/// Splits `entries` into training and test sets, trains on one and ranks the other's timed
/// candidates. Problems are held out whole: every entry with the same factory, Params and
/// device goes to the same side, so the test asks about problems the model has not seen.
///
/// Parameters:
///   top_k             how many best-ranked candidates `model` times
///   holdout_fraction  the share of problems held out (at least one, and one left to train)
///   seed              the split's seed
///
/// Throws kiln::Error when there are fewer than two problems or too few to train on, and
/// LibraryError without XGBoost.
inline ModelEvaluation evaluate(const std::vector<TuningEntry>& entries, std::size_t top_k,
                                double holdout_fraction = 0.25, unsigned seed = 1,
                                const ModelOptions& options = {}) {
  if (top_k == 0) throw Error("kiln: evaluate: top_k must be at least 1");
  std::map<std::string, std::vector<const TuningEntry*>> by_problem;
  for (const auto& e : entries) {
    by_problem[e.key.factory + '\n' + e.key.params.dump() + '\n' + e.key.device].push_back(&e);
  }
  if (by_problem.size() < 2) {
    throw Error("kiln: evaluate needs at least two tuned problems to hold one out; there are " +
                std::to_string(by_problem.size()));
  }
  std::vector<const std::vector<const TuningEntry*>*> problems;
  for (const auto& [id, group] : by_problem) problems.push_back(&group);
  std::shuffle(problems.begin(), problems.end(), std::mt19937(seed));
  const auto held = std::clamp<std::size_t>(
      std::size_t(std::lround(holdout_fraction * double(problems.size()))), 1, problems.size() - 1);

  std::vector<TuningEntry> train_set;
  std::vector<const TuningEntry*> test_set;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    for (const TuningEntry* e : *problems[i]) {
      if (i < held) {
        test_set.push_back(e);
      } else {
        train_set.push_back(*e);
      }
    }
  }
  ModelEvaluation ev;
  ev.top_k = top_k;
  ev.train_entries = train_set.size();
  auto model = PerformanceModel::train(train_set, options);
  if (!model) {
    throw Error("kiln: evaluate: the " + std::to_string(train_set.size()) +
                " training problems have too few timed candidates to train a model");
  }
  double ratio_sum = 0;
  std::size_t hits = 0;
  for (const TuningEntry* e : test_set) {
    std::vector<nlohmann::json> configs;
    std::vector<double> times;
    for (const auto& c : e->candidates) {
      if (c.status == CandidateStatus::timed && std::isfinite(c.time_us) && c.time_us > 0) {
        configs.push_back(c.config);
        times.push_back(c.time_us);
      }
    }
    if (times.empty()) continue;
    const auto order = model->rank(e->key.params, configs, e->device_features);
    const std::size_t k = std::min(top_k, order.size());
    const double best = *std::min_element(times.begin(), times.end());
    double best_in_top = INFINITY;
    for (std::size_t i = 0; i < k; ++i) {
      best_in_top = std::min(best_in_top, times[order[i]]);
      ev.time_model_us += times[order[i]];
    }
    for (double t : times) ev.time_full_us += t;
    hits += best_in_top <= best ? 1 : 0;
    ratio_sum += best_in_top / best;
    ev.worst_best_ratio = std::max(ev.worst_best_ratio, best_in_top / best);
    ev.candidates_full += times.size();
    ev.candidates_model += k;
    ++ev.test_entries;
  }
  if (ev.test_entries > 0) {
    ev.hit_rate = double(hits) / double(ev.test_entries);
    ev.mean_best_ratio = ratio_sum / double(ev.test_entries);
    ev.candidates_saved = 1 - double(ev.candidates_model) / double(ev.candidates_full);
    ev.time_saved = 1 - ev.time_model_us / ev.time_full_us;
  }
  return ev;
}

}  // namespace kiln::factory
