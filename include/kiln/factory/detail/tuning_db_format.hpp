#pragma once
/// The tuning database's file format: one JSON object
///
///   {"kiln_tuning_db": 1,
///    "entries": {"<TuningKey::id()>": <TuningEntry as tuning_json.hpp writes it>, ...}}
///
/// Reading checks all of it. The map keys are only for people reading the file: entries
/// are filed under their key's id() as this kiln computes it.
///
/// Stores since the file was last written go to a journal beside it, "<file>.journal", one
/// change a line, applied in order over the file's entries:
///
///   {"put": <TuningEntry>}
///   {"erase": "<TuningKey::id()>"}
///
/// A line is written whole with one write(); a last line without its newline (a writer that
/// died) is not read, and the next writer cuts it off. Applying a line twice changes
/// nothing, so a journal already folded into the file may be read again over it.

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
#include "bounded_json.hpp"

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
  // The names under "entries" (keys at depth 2) are noted, to report one listed twice
  // (JSON keeps the last).
  BoundedJsonRead read = read_bounded_json(text, tuning_db_max_depth, 2);
  if (!read.problem.empty()) {
    out.problem = printable(read.problem);
    return out;
  }
  const nlohmann::json& doc = read.doc;
  const std::set<std::string>& repeated = read.repeated;
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

/// The journal line that puts `entry` (with its newline).
inline std::string journal_put_line(const TuningEntry& entry) {
  const nlohmann::json line = {{"put", entry}};
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

/// The journal line that erases the entry of key id `id` (with its newline).
inline std::string journal_erase_line(const std::string& id) {
  const nlohmann::json line = {{"erase", id}};
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

/// What applying a journal did: how many lines could not be read, and why the first not.
struct JournalDamage {
  std::size_t damaged = 0;
  std::string first;
};

/// Applies the whole lines of `text` (journal lines) to `entries`, in order; lines that
/// cannot be read are counted in `damage` and skipped.
inline void apply_journal(std::string_view text, TuningEntries& entries, JournalDamage& damage) {
  while (!text.empty()) {
    const auto end = text.find('\n');
    if (end == text.npos) break;
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    std::string problem;
    try {
      BoundedJsonRead read = read_bounded_json(line, tuning_db_max_depth, 0);
      if (!read.problem.empty()) throw Error(read.problem);
      if (const auto put = read.doc.find("put"); read.doc.is_object() && put != read.doc.end()) {
        TuningEntry entry;
        from_json(*put, entry);
        std::string id = entry.key.id();
        entries.insert_or_assign(std::move(id), std::move(entry));
      } else if (const auto erase = read.doc.find("erase");
                 read.doc.is_object() && erase != read.doc.end() && erase->is_string()) {
        entries.erase(erase->get<std::string>());
      } else {
        throw Error("neither a \"put\" nor an \"erase\"");
      }
    } catch (const std::exception& e) {
      if (damage.damaged++ == 0) {
        damage.first = printable(line, 60) + ": " + printable(e.what());
      }
    }
  }
}

}  // namespace kiln::factory::detail
