// Tests include/kiln/factory/model.hpp, features.hpp and detail/xgboost_api.hpp. The model
// cases need XGBoost (libxgboost-dev); without it they say so and skip.
#include "kiln/factory/model.hpp"

#include "synthetic_tuning.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using kiln::factory::CandidateStatus;
using kiln::factory::FeatureSpace;
using kiln::factory::ModelOptions;
using kiln::factory::PerformanceModel;
using kiln::factory::TuningEntry;
using nlohmann::json;

namespace {

using kiln_test::synthetic_entries;
using kiln_test::true_time_us;

bool skip_without_xgboost() {
  if (PerformanceModel::available()) return false;
  MESSAGE("skipped, XGBoost is not available: " << PerformanceModel::unavailable_reason());
  return true;
}

}  // namespace

TEST_CASE("flatten_features names nested leaves with p., c. and d. and drops nulls") {
  const auto flat = kiln::factory::flatten_features(
      {{"shape", {{"rows", 4}, {"cols", 8}}}, {"dtype", "f16"}, {"fast", true}, {"none", nullptr}},
      {{"tile", {16, 32}}}, {{"multiprocessors", 132}});
  std::vector<std::string> names;
  for (const auto& [name, value] : flat) names.push_back(name);
  CHECK(names == std::vector<std::string>{"c.tile.0", "c.tile.1", "d.multiprocessors", "p.dtype",
                                          "p.fast", "p.shape.cols", "p.shape.rows"});
  CHECK(flat.at("p.shape.cols") == 8);
  CHECK(kiln::factory::flatten_features(3, "x", nullptr).at("p") == 3);
}

TEST_CASE("FeatureSpace: numbers, bools, one-hot strings, NaN for missing, derived logs") {
  TuningEntry a, b;
  a.key.params = {{"n", 1024}, {"dtype", "f16"}};
  a.device_features = {{"sms", 132}};
  a.candidates.push_back({{{"block", 128}, {"fast", true}}, CandidateStatus::timed, 1.0, 0, ""});
  b.key.params = {{"n", 64}, {"dtype", "f32"}};
  b.candidates.push_back({{{"block", 32}}, CandidateStatus::compile_error, NAN, NAN, "no"});
  const FeatureSpace space({a, b});
  CHECK(space.names() == std::vector<std::string>{"c.block", "c.fast", "d.sms", "p.n",
                                                  "p.dtype=f16", "p.dtype=f32", "log2(c.block/p.n)",
                                                  "log2(c.fast/p.n)", "log2(c.block*c.fast)"});

  const auto row =
      space.encode({{"n", 256}, {"dtype", "f32"}}, {{"block", 64}, {"fast", false}}, nullptr);
  REQUIRE(row.size() == space.size());
  CHECK(row[0] == 64.0f);
  CHECK(row[1] == 0.0f);      // false
  CHECK(std::isnan(row[2]));  // no device features: missing
  CHECK(row[3] == 256.0f);
  CHECK(row[4] == 0.0f);
  CHECK(row[5] == 1.0f);
  CHECK(row[6] == doctest::Approx(-2.0));  // log2(64/256)
  CHECK(std::isnan(row[7]));               // log2 of 0 is no number
  CHECK(std::isnan(row[8]));

  const auto unseen = space.encode({{"dtype", "bf16"}}, {{"block", "big"}}, nullptr);
  CHECK(unseen[4] == 0.0f);  // a string never seen is no known value...
  CHECK(unseen[5] == 0.0f);
  CHECK(std::isnan(unseen[0]));  // ...and a string where a number was is missing
  CHECK(std::isnan(unseen[3]));

  const auto rows = space.encode_rows({{"n", 256}}, {{{"block", 64}}, {{"block", 32}}}, nullptr);
  REQUIRE(rows.size() == 2 * space.size());
  CHECK(rows[0] == 64.0f);
  CHECK(rows[space.size()] == 32.0f);
}

TEST_CASE("FeatureSpace: the order does not depend on the records' order, and JSON round-trips") {
  auto entries = synthetic_entries();
  const FeatureSpace forward(entries);
  std::reverse(entries.begin(), entries.end());
  for (auto& e : entries) std::reverse(e.candidates.begin(), e.candidates.end());
  const FeatureSpace backward(entries);
  CHECK(forward.names() == backward.names());
  // 7 numbers, 2 one-hots of p.dtype, 2x2 ratios of c.threads, c.vec to p.cols, p.rows, 1 product.
  CHECK(forward.size() == 14);

  const FeatureSpace copy = FeatureSpace::from_json(json::parse(forward.to_json().dump()));
  CHECK(copy == forward);
  CHECK(copy.names() == forward.names());
  CHECK_THROWS_AS(FeatureSpace::from_json({{"kiln_features", 1}, {"columns", {{"cube", "x"}}}}),
                  kiln::Error);
  CHECK_THROWS_AS(FeatureSpace::from_json(json::array()), kiln::Error);
}

TEST_CASE("load_xgboost: a missing library gives a reason naming it and KILN_XGBOOST_LIBRARY") {
  const auto load = kiln::factory::detail::load_xgboost({"/nonexistent/libxgboost-kiln-test.so"});
  CHECK(load.api == nullptr);
  CHECK(load.reason.find("/nonexistent/libxgboost-kiln-test.so") != std::string::npos);
  CHECK(load.reason.find("KILN_XGBOOST_LIBRARY") != std::string::npos);

  ::setenv("KILN_XGBOOST_LIBRARY", "/somewhere/libxgboost.so", 1);
  const auto forced = kiln::factory::detail::xgboost_library_candidates();
  ::unsetenv("KILN_XGBOOST_LIBRARY");
  CHECK(forced == std::vector<std::string>{"/somewhere/libxgboost.so"});
  CHECK(kiln::factory::detail::xgboost_library_candidates().front() == "libxgboost.so.0");
}

// Run in a fresh process (the library is loaded once per process): this test binary again,
// with KILN_XGBOOST_LIBRARY naming a missing file.
TEST_CASE("KILN_XGBOOST_LIBRARY naming a missing file: available() is false, with the reason") {
  if (std::getenv("KILN_MODEL_TEST_CHILD")) {
    CHECK_FALSE(PerformanceModel::available());
    CHECK(PerformanceModel::unavailable_reason().find("/missing/libxgboost.so") !=
          std::string::npos);
    CHECK_THROWS_AS(PerformanceModel::train(synthetic_entries()), kiln::LibraryError);
    return;
  }
  char self[4096] = {};
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(n > 0);
  const std::string command =
      std::string("KILN_MODEL_TEST_CHILD=1 KILN_XGBOOST_LIBRARY=/missing/libxgboost.so '") + self +
      "' -tc='KILN_XGBOOST_LIBRARY naming a missing file*' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = ::pclose(pipe);
  INFO(output);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(output.find("3 passed") != std::string::npos);  // the child's three assertions ran
}

TEST_CASE("PerformanceModel::train: too few records give no model") {
  if (skip_without_xgboost()) return;
  auto entries = synthetic_entries();
  const std::vector<TuningEntry> two(entries.begin(), entries.begin() + 2);  // 47 records
  CHECK_FALSE(PerformanceModel::train(two).has_value());
  std::vector<TuningEntry> small(entries.begin(), entries.begin() + 5);
  for (auto& e : small) e.candidates.resize(3);  // 15 records in 5 problems
  CHECK_FALSE(PerformanceModel::train(small).has_value());
  for (auto& e : small) {
    for (auto& c : e.candidates) c.status = CandidateStatus::launch_error;
  }
  small.resize(3);
  CHECK_FALSE(PerformanceModel::train(small).has_value());
  CHECK(PerformanceModel::train(std::vector<TuningEntry>(entries.begin(), entries.begin() + 3)));

  // Skipped candidates train as slow ones where asked: 3 problems, 72 candidates.
  const std::vector<TuningEntry> three(entries.begin(), entries.begin() + 3);
  ModelOptions with_skipped;
  with_skipped.skipped_time_factor = 4;
  CHECK(PerformanceModel::train(three)->records() == 71);  // the f32 problem skips one
  CHECK(PerformanceModel::train(three, with_skipped)->records() == 72);
}

TEST_CASE("PerformanceModel: XGBoost's errors become kiln::Error") {
  if (skip_without_xgboost()) return;
  ModelOptions bad;
  bad.objective = "reg:no_such_objective";
  try {
    (void)PerformanceModel::train(synthetic_entries(), bad);
    FAIL("an unknown objective trained");
  } catch (const kiln::Error& e) {
    CHECK(std::string(e.what()).find("XGBoost") != std::string::npos);
    CHECK(std::string(e.what()).find("no_such_objective") != std::string::npos);
  }
}

// The best config's index among `e`'s candidates, by the noise-free time.
std::size_t true_best(const TuningEntry& e) {
  std::vector<double> truth;
  for (const auto& c : e.candidates) {
    truth.push_back(true_time_us(e.key.params, c.config, e.device_features));
  }
  return std::size_t(std::min_element(truth.begin(), truth.end()) - truth.begin());
}

std::vector<json> configs_of(const TuningEntry& e) {
  std::vector<json> out;
  for (const auto& c : e.candidates) out.push_back(c.config);
  return out;
}

TEST_CASE("PerformanceModel: the top 3 holds the best config of problems with unseen params") {
  if (skip_without_xgboost()) return;
  // Train on every problem of rows 128 and 8192, test on rows 1024: params never seen.
  std::vector<TuningEntry> train_set, test_set;
  for (auto& e : synthetic_entries()) {
    (e.key.params["rows"] == 1024 ? test_set : train_set).push_back(e);
  }
  for (const char* objective : {"rank:pairwise", "reg:squarederror"}) {
    ModelOptions options;
    options.objective = objective;
    const auto model = PerformanceModel::train(train_set, options);
    REQUIRE(model.has_value());
    CHECK(model->records() == train_set.size() * 24 - train_set.size() / 2);  // f32 skips one
    int hits = 0;
    for (const auto& e : test_set) {
      const auto order = model->rank(e.key.params, configs_of(e), e.device_features);
      REQUIRE(order.size() == e.candidates.size());
      hits += std::find(order.begin(), order.begin() + 3, true_best(e)) != order.begin() + 3;
    }
    MESSAGE(std::string(objective) << ": top-3 hits " << hits << " of " << test_set.size());
    CHECK(double(hits) >= 0.8 * double(test_set.size()));
  }
}

TEST_CASE("PerformanceModel: regression predicts times; a saved model predicts the same") {
  if (skip_without_xgboost()) return;
  // Every rows and cols value is seen in training, in other combinations.
  std::vector<TuningEntry> train_set, test_set;
  int i = 0;
  for (auto& e : synthetic_entries()) (i++ % 5 == 2 ? test_set : train_set).push_back(e);
  ModelOptions options;
  options.objective = "reg:squarederror";
  const auto model = PerformanceModel::train(train_set, options);
  REQUIRE(model.has_value());
  CHECK(model->predicts_time());
  std::vector<double> errors;
  for (const auto& e : test_set) {
    const auto configs = configs_of(e);
    const auto predicted = model->predict_us(e.key.params, configs, e.device_features);
    REQUIRE(predicted.size() == configs.size());
    for (std::size_t c = 0; c < configs.size(); ++c) {
      const double truth = true_time_us(e.key.params, configs[c], e.device_features);
      errors.push_back(std::abs(std::log(predicted[c] / truth)));
    }
  }
  std::nth_element(errors.begin(), errors.begin() + long(errors.size() / 2), errors.end());
  MESSAGE("median |log(predicted / true time)| " << errors[errors.size() / 2]);
  CHECK(errors[errors.size() / 2] < std::log(1.25));

  const auto& e = test_set.front();
  const auto configs = configs_of(e);
  const auto loaded = PerformanceModel::from_json(json::parse(model->to_json().dump()));
  CHECK(loaded.features() == model->features());
  CHECK(loaded.objective() == "reg:squarederror");
  CHECK(loaded.predict_us(e.key.params, configs, e.device_features) ==
        model->predict_us(e.key.params, configs, e.device_features));
  CHECK(model->predict_us(e.key.params, {}, e.device_features).empty());
  CHECK_THROWS_AS(PerformanceModel::from_json({{"kiln_model", 2}}), kiln::Error);
}

TEST_CASE("evaluate: held-out problems, hit rate, quality and savings") {
  if (skip_without_xgboost()) return;
  const auto entries = synthetic_entries();
  const auto ev = kiln::factory::evaluate(entries, 3, 0.25, 1);
  MESSAGE("k=3: test " << ev.test_entries << " hit " << ev.hit_rate << " mean ratio "
                       << ev.mean_best_ratio << " worst " << ev.worst_best_ratio << " saved "
                       << ev.candidates_saved << " (time " << ev.time_saved << ")");
  CHECK(ev.test_entries == 33);  // a quarter of 132 problems
  CHECK(ev.train_entries == 99);
  CHECK(ev.hit_rate >= 0.8);
  CHECK(ev.mean_best_ratio >= 1.0);
  CHECK(ev.mean_best_ratio < 1.05);
  CHECK(ev.worst_best_ratio >= ev.mean_best_ratio);
  CHECK(ev.candidates_model == 3 * ev.test_entries);
  CHECK(ev.candidates_full < 24 * ev.test_entries);  // the f32 problems skip one
  CHECK(ev.candidates_full >= 23 * ev.test_entries);
  CHECK(ev.candidates_saved == doctest::Approx(1 - 3.0 * 33 / double(ev.candidates_full)));
  CHECK(ev.time_saved > 0.5);
  CHECK(ev.time_model_us < ev.time_full_us);

  const auto ev1 = kiln::factory::evaluate(entries, 1, 0.25, 1);
  CHECK(ev1.hit_rate <= ev.hit_rate);
  CHECK(ev1.mean_best_ratio >= ev.mean_best_ratio);
  const auto all = kiln::factory::evaluate(entries, 24, 0.25, 1);
  CHECK(all.hit_rate == 1.0);
  CHECK(all.mean_best_ratio == 1.0);
  CHECK(all.candidates_saved == 0.0);

  CHECK_THROWS_AS(kiln::factory::evaluate(entries, 0), kiln::Error);
  CHECK_THROWS_AS(kiln::factory::evaluate({entries.front()}, 3), kiln::Error);
}
