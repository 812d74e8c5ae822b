#pragma once
/// What tuning a kernel factory learns, as the tuning database stores it: for one
/// (factory, params, device, driver, compiler) key, every candidate config that was tried,
/// with its time or the reason it was skipped, and the winner.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../detail/enum_names.hpp"
#include "../error.hpp"

namespace kiln::factory {

/// What a tuning result depends on. Two keys that differ anywhere are tuned separately.
struct TuningKey {
  std::string factory;     ///< the factory's name ("softmax")
  int version = 0;         ///< the factory's version: bump it when the kernel changes
  nlohmann::json params;   ///< the Params, as JSON
  std::string device;      ///< the device's name ("NVIDIA H100 80GB HBM3")
  std::string arch;        ///< "sm_90", "gfx942"
  int driver_version = 0;  ///< cuDriverGetVersion / hipDriverGetVersion
  std::string compiler;    ///< the compiler's name and version ("nvrtc 13.0")

  /// The canonical text of the key (the database's map key): compact JSON with sorted
  /// object keys, so equal keys give equal text. Invalid UTF-8 in a name becomes U+FFFD
  /// rather than an exception. The text is nlohmann::json's dump(-1, ' ', false, replace)
  /// of the key as an object, written here without building that object.
  std::string id() const;
  bool operator==(const TuningKey& o) const { return id() == o.id(); }
};

namespace detail {

/// Appends `s` as nlohmann::json's compact dump writes a string (invalid UTF-8 replaced):
/// printable ASCII as it is, anything else through nlohmann::json itself.
inline void append_json_string(std::string& out, const std::string& s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x80 && c != '"' && c != '\\';
  });
  if (!plain) {
    out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

template <class Integer>
void append_json_integer(std::string& out, Integer v) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, end);
}

/// Appends `j` as j.dump(-1, ' ', false, replace) writes it: objects, arrays, strings,
/// integers, booleans and null here; floating-point numbers (and the rest) by nlohmann::json.
inline void append_json(std::string& out, const nlohmann::json& j) {
  using json = nlohmann::json;
  switch (j.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [name, value] : j.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, name);
        out += ':';
        append_json(out, value);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& value : j.get_ref<const json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        append_json(out, value);
      }
      out += ']';
      return;
    }
    case json::value_t::string:
      return append_json_string(out, j.get_ref<const std::string&>());
    case json::value_t::boolean:
      out += j.get<bool>() ? "true" : "false";
      return;
    case json::value_t::null:
      out += "null";
      return;
    case json::value_t::number_integer:
      return append_json_integer(out, j.get<json::number_integer_t>());
    case json::value_t::number_unsigned:
      return append_json_integer(out, j.get<json::number_unsigned_t>());
    default:
      out += j.dump(-1, ' ', false, json::error_handler_t::replace);
      return;
  }
}

}  // namespace detail

inline std::string TuningKey::id() const {
  // The members in the sorted order of their names, as nlohmann::json writes an object.
  std::string out = "{\"arch\":";
  detail::append_json_string(out, arch);
  out += ",\"compiler\":";
  detail::append_json_string(out, compiler);
  out += ",\"device\":";
  detail::append_json_string(out, device);
  out += ",\"driver\":";
  detail::append_json_integer(out, driver_version);
  out += ",\"factory\":";
  detail::append_json_string(out, factory);
  out += ",\"params\":";
  detail::append_json(out, params);
  out += ",\"version\":";
  detail::append_json_integer(out, version);
  out += '}';
  return out;
}

/// Why a candidate has no time.
enum class CandidateStatus {
  timed,          ///< compiled, launched and timed
  compile_error,  ///< the compiler rejected it
  resources,      ///< its launch would exceed the device's limits (threads, shared memory, ...)
  launch_error,   ///< the launch or the run failed
};

inline constexpr auto candidate_status_names =
    kiln::detail::enum_names<CandidateStatus>({{CandidateStatus::timed, "timed"},
                                               {CandidateStatus::compile_error, "compile_error"},
                                               {CandidateStatus::resources, "resources"},
                                               {CandidateStatus::launch_error, "launch_error"}});

inline const char* to_string(CandidateStatus s) {
  return candidate_status_names.name(s);
}

inline void to_json(nlohmann::json& j, CandidateStatus s) {
  j = to_string(s);
}
/// Throws kiln::Error for a name that is no status (not quietly `timed`).
inline void from_json(const nlohmann::json& j, CandidateStatus& s) {
  const auto parsed =
      j.is_string() ? candidate_status_names.parse(j.get<std::string>()) : std::nullopt;
  if (!parsed) {
    throw Error("kiln: " + j.dump() + " is not a candidate status; use one of " +
                candidate_status_names.choices(", "));
  }
  s = *parsed;
}

/// What a compiled candidate costs the multiprocessor, as the driver reports it: the
/// numbers that explain a slow or refused config (spills, occupancy). All 0 when unknown
/// (a candidate that did not compile, or a record written before kiln kept them).
struct CandidateResources {
  int registers = 0;             ///< per thread
  int local_bytes = 0;           ///< per thread: spills and local arrays
  int static_shared_bytes = 0;   ///< per block
  int dynamic_shared_bytes = 0;  ///< per block, as the launch asks
  int threads_per_block = 0;     ///< of the launch
  int blocks_per_sm = 0;         ///< resident blocks of it on one multiprocessor (occupancy)
  bool known() const { return registers > 0 || threads_per_block > 0; }
  bool operator==(const CandidateResources&) const = default;
};

/// One candidate config and what became of it.
struct CandidateRecord {
  nlohmann::json config;  ///< the Config, as JSON
  CandidateStatus status = CandidateStatus::timed;
  double time_us = NAN;            ///< median device time per run (timed candidates only)
  double spread = NAN;             ///< relative spread of the samples (timed candidates only)
  std::string reason;              ///< why it was skipped (the others)
  CandidateResources resources{};  ///< registers, spills, shared memory, occupancy
};

/// Everything one tuning run learned about one key.
struct TuningEntry {
  TuningKey key;
  nlohmann::json device_features;  ///< numeric device properties, for the model (see features.hpp)
  std::vector<CandidateRecord> candidates;
  nlohmann::json best;  ///< the winning Config
  std::string policy;   ///< "full", "model", ... : how the winner was chosen
  std::string when;     ///< UTC time of the run, ISO 8601
};

}  // namespace kiln::factory
