#pragma once
/// The tuning database's file format: one JSON object
///
///   {"kiln_tuning_db": 1,
///    "entries": {"<TuningKey::id()>": <TuningEntry as tuning_json.hpp writes it>, ...}}
///
/// Reading checks all of it. The map keys are only for people reading the file: entries
/// are filed under their key's id() as this kiln computes it.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "../tuning_json.hpp"
#include "../tuning_record.hpp"

namespace kiln::factory::detail {

/// The format version this kiln reads and writes.
inline constexpr int tuning_db_format_version = 1;

/// A database's entries by key id, in a stable order.
using TuningEntries = std::map<std::string, TuningEntry>;

/// The text of a tuning database file read back: its entries, or why it is not one.
struct ParsedTuningDb {
  TuningEntries entries;
  /// Why the text is not a tuning database ("" where it is one).
  std::string problem;
  /// The file's format version where it is newer than this kiln's (0 otherwise); its
  /// entries are then not read.
  std::int64_t newer_version = 0;
  /// Entries that could not be read (the rest are in `entries`), and why the first one not.
  std::size_t damaged = 0;
  std::string first_damage;
  /// What the file lists more than once, and which value kiln keeps: one line each.
  std::vector<std::string> duplicates;
};

/// `text` with bytes that are not printable ASCII shown as '?', cut to `limit` bytes, so
/// that what a garbage file holds can be quoted in a message.
inline std::string printable(std::string_view text, std::size_t limit = 160) {
  std::string out;
  for (char c : text.substr(0, limit)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > limit) out += "...";
  return out;
}

/// How deep a tuning database may nest: a real one nests a few levels; a deeper file is
/// corrupt, and would overflow the stack of the code that walks it.
inline constexpr int tuning_db_max_depth = 64;

inline ParsedTuningDb parse_tuning_db(std::string_view text) {
  ParsedTuningDb out;
  nlohmann::json doc;
  struct TooDeep {};
  // The names under "entries" (keys at depth 2), to report one listed twice (JSON keeps
  // the last).
  std::set<std::string> names;
  std::set<std::string> repeated;
  try {
    doc = nlohmann::json::parse(
        text, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (depth > tuning_db_max_depth) throw TooDeep{};
          if (event == nlohmann::json::parse_event_t::key && depth == 2 && parsed.is_string()) {
            if (!names.insert(parsed.get<std::string>()).second) {
              repeated.insert(parsed.get<std::string>());
            }
          }
          return true;
        });
  } catch (const TooDeep&) {
    out.problem = "nested deeper than " + std::to_string(tuning_db_max_depth) + " levels";
    return out;
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();  // "[json.exception.parse_error.101] parse error at ..."
    if (const auto end = what.find("] "); what.starts_with("[json.") && end != what.npos) {
      what.erase(0, end + 2);
    }
    out.problem = "not valid JSON: " + printable(what);
    return out;
  }
  if (!doc.is_object()) {
    out.problem = std::string("a JSON ") + doc.type_name() + ", not an object";
    return out;
  }
  const auto version = doc.find("kiln_tuning_db");
  if (version == doc.end()) {
    out.problem = "no \"kiln_tuning_db\" format version";
    return out;
  }
  if (!version->is_number_integer() || version->get<std::int64_t>() < 1) {
    out.problem = "its format version \"kiln_tuning_db\" is " + printable(version->dump()) +
                  ", not a positive integer";
    return out;
  }
  if (version->get<std::int64_t>() > tuning_db_format_version) {
    out.newer_version = version->get<std::int64_t>();
    return out;
  }
  const auto entries = doc.find("entries");
  if (entries == doc.end() || !entries->is_object()) {
    out.problem = entries == doc.end() ? "no \"entries\" object"
                                       : std::string("its \"entries\" is a JSON ") +
                                             entries->type_name() + ", not an object";
    return out;
  }
  for (const auto& name : repeated) {
    out.duplicates.push_back("the entry " + printable(name, 100) +
                             " is listed more than once; kiln keeps the last one");
  }
  std::map<std::string, std::string> name_of;  // key id -> the entry name it came from
  for (const auto& [name, value] : entries->items()) {
    try {
      TuningEntry entry;
      from_json(value, entry);
      std::string id = entry.key.id();
      if (const auto seen = name_of.find(id); seen != name_of.end()) {
        // Names iterate in sorted order: this one comes after the one kept so far.
        out.duplicates.push_back("the entries " + printable(seen->second, 100) + " and " +
                                 printable(name, 100) + " are the same problem; kiln keeps " +
                                 printable(name, 100));
      }
      name_of.insert_or_assign(id, name);
      out.entries.insert_or_assign(std::move(id), std::move(entry));
    } catch (const std::exception& e) {
      if (out.damaged++ == 0) {
        out.first_damage = "the entry " + printable(name, 100) + ": " + printable(e.what());
      }
    }
  }
  return out;
}

/// The file text of a database holding `entries`. Strings that are not valid UTF-8 (a
/// compiler's log in a reason, say) have their bad bytes replaced by U+FFFD rather than
/// failing the write.
inline std::string dump_tuning_db(const TuningEntries& entries) {
  nlohmann::json list = nlohmann::json::object();
  for (const auto& [id, entry] : entries) list[id] = entry;
  const nlohmann::json doc = {{"kiln_tuning_db", tuning_db_format_version},
                              {"entries", std::move(list)}};
  return doc.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace kiln::factory::detail
