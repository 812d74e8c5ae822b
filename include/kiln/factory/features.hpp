#pragma once
/// The performance model's inputs: a candidate's Params, Config and device properties (all
/// JSON) turned into a fixed-order vector of numbers.
///
/// Leaves are named by their path, with "p." for Params, "c." for Config and "d." for the
/// device: {"shape": {"rows": 4096}} -> "p.shape.rows"; array elements by index ("c.tile.0").
/// Numbers and bools are their value; strings are one-hot over the values seen in training
/// ("p.dtype=f16" is 1 or 0); what a record lacks is NaN, which XGBoost treats as missing.
///
/// Trees split on thresholds, so log2 of one feature would teach them nothing its value does
/// not; what they cannot form is a product or a ratio, as in "threads × vector width against
/// the row length". So the space adds, for positive numbers:
///   log2(c.a/p.b)  for each Config number a and Params number b  (the tile against the problem)
///   log2(c.a*c.b)  for each pair of Config numbers               (work per block)
/// (at most kiln::factory::FeatureSpace::max_derived_inputs numbers of each, to stay small).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../detail/enum_names.hpp"
#include "../error.hpp"
#include "tuning_record.hpp"

namespace kiln::factory {

/// One candidate's leaves by name ("p.rows" -> 4096); numbers, bools and strings only.
using FlatFeatures = std::map<std::string, nlohmann::json>;

namespace detail {
inline void flatten_into(const nlohmann::json& j, const std::string& name, FlatFeatures& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten_into(it.value(), name + "." + it.key(), out);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i)
      flatten_into(j[i], name + "." + std::to_string(i), out);
  } else if (j.is_number() || j.is_boolean() || j.is_string()) {
    out[name] = j;
  }  // null: missing
}
}  // namespace detail

/// The leaves of one candidate: `params` under "p", `config` under "c", `device` under "d".
/// A Params or Config that is a plain value (not an object) is named "p" or "c" itself.
inline FlatFeatures flatten_features(const nlohmann::json& params, const nlohmann::json& config,
                                     const nlohmann::json& device) {
  FlatFeatures out;
  detail::flatten_into(params, "p", out);
  detail::flatten_into(config, "c", out);
  detail::flatten_into(device, "d", out);
  return out;
}

/// Which numbers a model reads, and in which order. Built once from training records and
/// then fixed, so a record always encodes to the same columns (saved with the model).
class FeatureSpace {
 public:
  /// How a column is computed: a leaf's value, a one-hot of a string leaf (a = name,
  /// b = value), or log2 of a ratio or product of two positive number leaves.
  enum class Kind { value, one_hot, log2_ratio, log2_product };
  struct Column {
    Kind kind = Kind::value;
    std::string a, b;
    bool operator==(const Column&) const = default;
  };

  /// Numbers of Config and of Params beyond which no ratios or products are added.
  static constexpr std::size_t max_derived_inputs = 12;

  FeatureSpace() = default;

  /// The space of every candidate (timed or not) in `entries`.
  explicit FeatureSpace(const std::vector<TuningEntry>& entries) {
    std::vector<FlatFeatures> rows;
    for (const auto& e : entries) {
      for (const auto& c : e.candidates) {
        rows.push_back(flatten_features(e.key.params, c.config, e.device_features));
      }
    }
    *this = from_rows(rows);
  }

  /// The space of the given flattened rows.
  static FeatureSpace from_rows(const std::vector<FlatFeatures>& rows) {
    std::set<std::string> numbers;
    std::set<std::pair<std::string, std::string>> strings;
    for (const auto& row : rows) {
      for (const auto& [name, v] : row) {
        if (v.is_string()) {
          strings.emplace(name, v.get<std::string>());
        } else {
          numbers.insert(name);
        }
      }
    }
    FeatureSpace s;
    std::vector<std::string> config_numbers, params_numbers;
    for (const auto& n : numbers) {
      s.columns_.push_back({Kind::value, n, {}});
      if (n == "c" || n.starts_with("c.")) config_numbers.push_back(n);
      if (n == "p" || n.starts_with("p.")) params_numbers.push_back(n);
    }
    for (const auto& [n, v] : strings) s.columns_.push_back({Kind::one_hot, n, v});
    if (config_numbers.size() <= max_derived_inputs &&
        params_numbers.size() <= max_derived_inputs) {
      for (const auto& c : config_numbers) {
        for (const auto& p : params_numbers) s.columns_.push_back({Kind::log2_ratio, c, p});
      }
      for (std::size_t i = 0; i < config_numbers.size(); ++i) {
        for (std::size_t j = i + 1; j < config_numbers.size(); ++j) {
          s.columns_.push_back({Kind::log2_product, config_numbers[i], config_numbers[j]});
        }
      }
    }
    return s;
  }

  std::size_t size() const { return columns_.size(); }
  const std::vector<Column>& columns() const { return columns_; }

  /// The columns' names: "p.rows", "p.dtype=f16", "log2(c.threads/p.cols)", "log2(c.a*c.b)".
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& c : columns_) {
      switch (c.kind) {
        case Kind::value:
          out.push_back(c.a);
          break;
        case Kind::one_hot:
          out.push_back(c.a + "=" + c.b);
          break;
        case Kind::log2_ratio:
          out.push_back("log2(" + c.a + "/" + c.b + ")");
          break;
        case Kind::log2_product:
          out.push_back("log2(" + c.a + "*" + c.b + ")");
          break;
      }
    }
    return out;
  }

  /// The vector of one flattened candidate (size() numbers; NaN where it lacks a leaf).
  /// Leaves the space does not know are ignored; an unseen string is 0 in every one-hot.
  std::vector<float> encode(const FlatFeatures& row) const {
    std::vector<float> out;
    out.reserve(columns_.size());
    for (const auto& c : columns_) out.push_back(float(column_value(c, row)));
    return out;
  }

  std::vector<float> encode(const nlohmann::json& params, const nlohmann::json& config,
                            const nlohmann::json& device) const {
    return encode(flatten_features(params, config, device));
  }

  /// One row per config, row-major: configs.size() × size() numbers.
  std::vector<float> encode_rows(const nlohmann::json& params,
                                 const std::vector<nlohmann::json>& configs,
                                 const nlohmann::json& device) const {
    FlatFeatures shared = flatten_features(params, nullptr, device);
    std::vector<float> out;
    out.reserve(configs.size() * columns_.size());
    for (const auto& config : configs) {
      FlatFeatures row = shared;
      detail::flatten_into(config, "c", row);
      for (float v : encode(row)) out.push_back(v);
    }
    return out;
  }

  /// {"kiln_features": 1, "columns": [["value", "p.rows"], ["one_hot", "p.dtype", "f16"],
  ///  ["log2_ratio", "c.threads", "p.cols"], ["log2_product", "c.threads", "c.vec"], ...]}
  nlohmann::json to_json() const {
    nlohmann::json cols = nlohmann::json::array();
    for (const auto& c : columns_) {
      nlohmann::json col = {kind_name(c.kind), c.a};
      if (c.kind != Kind::value) col.push_back(c.b);
      cols.push_back(std::move(col));
    }
    return {{"kiln_features", 1}, {"columns", std::move(cols)}};
  }

  /// The space to_json() wrote; throws kiln::Error for anything else.
  static FeatureSpace from_json(const nlohmann::json& j) {
    if (!j.is_object() || j.value("kiln_features", 0) != 1 || !j.contains("columns") ||
        !j["columns"].is_array()) {
      throw Error(
          "kiln: not a feature space (expected {\"kiln_features\": 1, \"columns\": [...]})");
    }
    FeatureSpace s;
    for (const auto& col : j["columns"]) {
      const bool ok =
          col.is_array() && (col.size() == 2 || col.size() == 3) &&
          std::all_of(col.begin(), col.end(), [](const auto& x) { return x.is_string(); });
      Kind kind{};
      if (!ok || !parse_kind(col[0].get<std::string>(), kind) ||
          col.size() != (kind == Kind::value ? 2u : 3u)) {
        throw Error("kiln: feature space column " + col.dump() + " is not [kind, name(, name)]");
      }
      s.columns_.push_back(
          {kind, col[1].get<std::string>(), col.size() == 3 ? col[2].get<std::string>() : ""});
    }
    return s;
  }

  bool operator==(const FeatureSpace&) const = default;

 private:
  static constexpr auto kind_names =
      kiln::detail::enum_names<Kind>({{Kind::value, "value"},
                                      {Kind::one_hot, "one_hot"},
                                      {Kind::log2_ratio, "log2_ratio"},
                                      {Kind::log2_product, "log2_product"}});
  static const char* kind_name(Kind k) { return kind_names.name(k); }
  static bool parse_kind(const std::string& text, Kind& kind) {
    const auto k = kind_names.parse(text);
    if (k) kind = *k;
    return k.has_value();
  }

  static double number(const FlatFeatures& row, const std::string& name) {
    const auto it = row.find(name);
    if (it == row.end() || !(it->second.is_number() || it->second.is_boolean())) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    return it->second.is_boolean() ? (it->second.get<bool>() ? 1.0 : 0.0)
                                   : it->second.get<double>();
  }

  static double column_value(const Column& c, const FlatFeatures& row) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    switch (c.kind) {
      case Kind::value:
        return number(row, c.a);
      case Kind::one_hot: {
        const auto it = row.find(c.a);
        if (it == row.end()) return nan;
        return it->second.is_string() && it->second.get<std::string>() == c.b ? 1.0 : 0.0;
      }
      case Kind::log2_ratio:
      case Kind::log2_product: {
        const double x = number(row, c.a), y = number(row, c.b);
        if (!(x > 0) || !(y > 0)) return nan;  // also NaN for missing
        return c.kind == Kind::log2_ratio ? std::log2(x) - std::log2(y)
                                          : std::log2(x) + std::log2(y);
      }
    }
    return nan;
  }

  std::vector<Column> columns_;
};

}  // namespace kiln::factory
