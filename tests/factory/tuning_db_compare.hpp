#pragma once
// Comparing two reads of a tuning database (or two sets of entries) field by field, for the
// tests that check the fast reader (kiln/factory/detail/tuning_db_reader.hpp) against the
// general one: the unit tests and the fuzz target.

#include <cmath>
#include <cstring>
#include <string>

#include "kiln/factory/detail/tuning_db_format.hpp"

namespace kiln_test {

/// Whether two doubles are the same value, bit for bit (NaN equals NaN, -0 is not 0).
inline bool same_double(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b));
}

/// "" where the two entries are equal in every field, else the first field that differs.
inline std::string entry_difference(const kiln::factory::TuningEntry& a,
                                    const kiln::factory::TuningEntry& b) {
  const auto& ka = a.key;
  const auto& kb = b.key;
  if (ka.factory != kb.factory || ka.version != kb.version || ka.device != kb.device ||
      ka.arch != kb.arch || ka.driver_version != kb.driver_version || ka.compiler != kb.compiler) {
    return "the key's names or numbers";
  }
  // dump() tells numbers of different types apart no better than ==, so both.
  if (ka.params != kb.params || ka.params.dump() != kb.params.dump()) return "the key's params";
  if (a.device_features != b.device_features) return "device_features";
  if (a.best != b.best) return "best";
  if (a.policy != b.policy) return "policy";
  if (a.when != b.when) return "when";
  if (a.candidates.size() != b.candidates.size()) return "the number of candidates";
  for (std::size_t i = 0; i < a.candidates.size(); ++i) {
    const auto& ca = a.candidates[i];
    const auto& cb = b.candidates[i];
    const std::string which = "candidate " + std::to_string(i) + "'s ";
    if (ca.config != cb.config || ca.config.dump() != cb.config.dump()) return which + "config";
    if (ca.status != cb.status) return which + "status";
    if (!same_double(ca.time_us, cb.time_us)) return which + "time_us";
    if (!same_double(ca.spread, cb.spread)) return which + "spread";
    if (ca.reason != cb.reason) return which + "reason";
    if (!(ca.resources == cb.resources)) return which + "resources";
  }
  return {};
}

/// "" where the two sets of entries are equal (the same ids, equal entries), else what
/// differs.
inline std::string entries_difference(const kiln::factory::detail::TuningEntries& a,
                                      const kiln::factory::detail::TuningEntries& b) {
  if (a.size() != b.size()) {
    return std::to_string(a.size()) + " entries against " + std::to_string(b.size());
  }
  for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) {
    if (i->first != j->first) return "the ids " + i->first + " and " + j->first;
    if (std::string d = entry_difference(i->second, j->second); !d.empty()) {
      return "the entry " + i->first + ": " + d;
    }
  }
  return {};
}

/// "" where the two reads of a database file agree in everything they report.
inline std::string read_difference(const kiln::factory::detail::ParsedTuningDb& a,
                                   const kiln::factory::detail::ParsedTuningDb& b) {
  if (a.problem != b.problem) return "the problem: '" + a.problem + "' against '" + b.problem + "'";
  if (a.newer_version != b.newer_version) return "newer_version";
  if (a.damaged != b.damaged) {
    return "damaged: " + std::to_string(a.damaged) + " against " + std::to_string(b.damaged);
  }
  if (a.first_damage != b.first_damage) {
    return "first_damage: '" + a.first_damage + "' against '" + b.first_damage + "'";
  }
  if (a.duplicates != b.duplicates) return "the duplicates reported";
  return entries_difference(a.entries, b.entries);
}

}  // namespace kiln_test
