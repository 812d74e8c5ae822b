#pragma once
/// JSON conversions of the tuning records (tuning_record.hpp), as the tuning database
/// stores them. Reading is strict: a missing field or one of the wrong type throws
/// kiln::Error naming the field, since a record that reads wrongly would mislead tuning.
///
/// Times that are not finite (NaN for candidates that were not timed) are written as null,
/// since JSON has no NaN, and null reads back as NaN.
///
///   {"key": {"factory": "softmax", "version": 2, "params": {...}, "device": "NVIDIA H100",
///            "arch": "sm_90", "driver": 12040, "compiler": "nvrtc 12.4"},
///    "device_features": {...}, "best": {...}, "policy": "full", "when": "2025-...Z",
///    "candidates": [{"config": {...}, "status": "timed", "time_us": 12.5, "spread": 0.01,
///                    "reason": ""}, ...]}

#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "tuning_record.hpp"

namespace kiln::factory {

namespace detail {

/// The member `name` of the JSON object `j`; throws kiln::Error where `j` is not an object
/// or lacks it.
inline const nlohmann::json& json_member(const nlohmann::json& j, const char* name,
                                         const char* where) {
  if (!j.is_object()) {
    throw Error(std::string(where) + " is a JSON " + j.type_name() + ", not an object");
  }
  const auto it = j.find(name);
  if (it == j.end()) throw Error(std::string(where) + " has no field '" + name + "'");
  return *it;
}

inline std::string json_string(const nlohmann::json& j, const char* name, const char* where) {
  const auto& v = json_member(j, name, where);
  if (!v.is_string()) {
    throw Error(std::string(where) + "'s field '" + name + "' is a " + v.type_name() +
                ", not a string");
  }
  return v.get<std::string>();
}

inline int json_int(const nlohmann::json& j, const char* name, const char* where) {
  const auto& v = json_member(j, name, where);
  if (v.is_number_unsigned() && v.get<std::uint64_t>() <= std::uint64_t{INT_MAX}) {
    return static_cast<int>(v.get<std::uint64_t>());
  }
  if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() >= INT_MIN &&
      v.get<std::int64_t>() <= INT_MAX) {
    return static_cast<int>(v.get<std::int64_t>());
  }
  throw Error(std::string(where) + "'s field '" + name + "' is " + v.dump() +
              ", not an integer that fits in an int");
}

/// A time: a number, or null for NaN. A missing field reads as NaN too.
inline double json_time(const nlohmann::json& j, const char* name, const char* where) {
  const auto it = j.find(name);
  if (it == j.end() || it->is_null()) return std::numeric_limits<double>::quiet_NaN();
  if (!it->is_number()) {
    throw Error(std::string(where) + "'s field '" + name + "' is a " + it->type_name() +
                ", not a number or null");
  }
  return it->get<double>();
}

inline nlohmann::json json_time_value(double t) {
  return std::isfinite(t) ? nlohmann::json(t) : nlohmann::json(nullptr);
}

}  // namespace detail

inline void to_json(nlohmann::json& j, const TuningKey& k) {
  j = {{"factory", k.factory},  {"version", k.version}, {"params", k.params},
       {"device", k.device},    {"arch", k.arch},       {"driver", k.driver_version},
       {"compiler", k.compiler}};
}

inline void from_json(const nlohmann::json& j, TuningKey& k) {
  constexpr const char* where = "the key";
  k.factory = detail::json_string(j, "factory", where);
  k.version = detail::json_int(j, "version", where);
  k.params = detail::json_member(j, "params", where);
  k.device = detail::json_string(j, "device", where);
  k.arch = detail::json_string(j, "arch", where);
  k.driver_version = detail::json_int(j, "driver", where);
  k.compiler = detail::json_string(j, "compiler", where);
}

inline void to_json(nlohmann::json& j, const CandidateResources& r) {
  j = {{"registers", r.registers},
       {"local_bytes", r.local_bytes},
       {"static_shared_bytes", r.static_shared_bytes},
       {"dynamic_shared_bytes", r.dynamic_shared_bytes},
       {"threads_per_block", r.threads_per_block},
       {"blocks_per_sm", r.blocks_per_sm}};
}
/// Every field is required: a resources object is written whole or not at all.
inline void from_json(const nlohmann::json& j, CandidateResources& r) {
  constexpr const char* where = "a candidate's resources";
  r.registers = detail::json_int(j, "registers", where);
  r.local_bytes = detail::json_int(j, "local_bytes", where);
  r.static_shared_bytes = detail::json_int(j, "static_shared_bytes", where);
  r.dynamic_shared_bytes = detail::json_int(j, "dynamic_shared_bytes", where);
  r.threads_per_block = detail::json_int(j, "threads_per_block", where);
  r.blocks_per_sm = detail::json_int(j, "blocks_per_sm", where);
}

inline void to_json(nlohmann::json& j, const CandidateRecord& c) {
  j = {{"config", c.config},
       {"status", to_string(c.status)},
       {"time_us", detail::json_time_value(c.time_us)},
       {"spread", detail::json_time_value(c.spread)},
       {"reason", c.reason}};
  if (c.resources.known()) j["resources"] = c.resources;
}

inline void from_json(const nlohmann::json& j, CandidateRecord& c) {
  constexpr const char* where = "a candidate";
  c.config = detail::json_member(j, "config", where);
  // An unknown status is an error, not quietly `timed`.
  const std::string status = detail::json_string(j, "status", where);
  const auto parsed = candidate_status_names.parse(status);
  if (!parsed) {
    throw Error("a candidate's status is '" + status + "', not one of " +
                candidate_status_names.choices(", "));
  }
  c.status = *parsed;
  c.time_us = detail::json_time(j, "time_us", where);
  c.spread = detail::json_time(j, "spread", where);
  c.reason = j.contains("reason") ? detail::json_string(j, "reason", where) : std::string();
  // Optional: records written before kiln kept resources have none.
  c.resources = {};
  if (j.contains("resources")) from_json(j.at("resources"), c.resources);
}

inline void to_json(nlohmann::json& j, const TuningEntry& e) {
  j = {{"key", e.key},   {"device_features", e.device_features},
       {"best", e.best}, {"policy", e.policy},
       {"when", e.when}, {"candidates", e.candidates}};
}

/// Reads an entry: "key" and "candidates" are required; "device_features" and "best"
/// default to null and "policy" and "when" to "" (for entries written by hand).
inline void from_json(const nlohmann::json& j, TuningEntry& e) {
  constexpr const char* where = "the entry";
  from_json(detail::json_member(j, "key", where), e.key);
  e.device_features = j.value("device_features", nlohmann::json());
  e.best = j.value("best", nlohmann::json());
  e.policy = j.contains("policy") ? detail::json_string(j, "policy", where) : std::string();
  e.when = j.contains("when") ? detail::json_string(j, "when", where) : std::string();
  const auto& candidates = detail::json_member(j, "candidates", where);
  if (!candidates.is_array()) {
    throw Error(std::string("the entry's field 'candidates' is a ") + candidates.type_name() +
                ", not an array");
  }
  e.candidates.clear();
  e.candidates.reserve(candidates.size());
  for (const auto& c : candidates) from_json(c, e.candidates.emplace_back());
}

}  // namespace kiln::factory
