// Fuzz target: the tuning database loader (include/kiln/factory/detail/tuning_db_format.hpp,
// bounded_json.hpp and the fast reader tuning_db_reader.hpp), which reads a file any process
// of the user may have written.
//
// Properties, for any bytes read as a database file and as its journal:
// - nothing throws or crashes; the depth bound holds;
// - the bounded reader agrees with nlohmann::json: what it reads is the document
//   json::parse gives, and what it calls invalid JSON json::accept refuses;
// - a database read back is a fixed point: dumping its entries and reading them again gives
//   the same entries, none damaged, none listed twice;
// - each entry round-trips through a journal "put" line, and an "erase" line removes it;
// - the fast reader, which the database uses, gives what the general reader gives (the
//   same entries, damaged entries, words and refusals), for the file and for the journal,
//   and reads every database kiln writes itself (it hands none to the general reader);
// - a key's id() is the compact JSON text of the key.

#include <string>
#include <string_view>

#include "../factory/tuning_db_compare.hpp"
#include "fuzz_support.hpp"
#include "kiln/factory/detail/tuning_db_format.hpp"
#include "kiln/factory/detail/tuning_db_reader.hpp"

namespace {

namespace d = kiln::factory::detail;

void check_bounded_json(std::string_view text) {
  const d::BoundedJsonRead read = d::read_bounded_json(text, d::tuning_db_max_depth, 1);
  const bool valid = nlohmann::json::accept(text);
  if (read.problem.empty()) {
    KILN_FUZZ_CHECK(valid, "what the bounded reader reads is JSON");
    KILN_FUZZ_CHECK(read.doc == nlohmann::json::parse(text),
                    "the bounded reader's document is json::parse's");
  } else if (read.problem.starts_with("not valid JSON")) {
    KILN_FUZZ_CHECK(!valid, "what the bounded reader calls invalid is not JSON");
  } else {
    KILN_FUZZ_CHECK(read.problem.starts_with("nested deeper than"),
                    "the bounded reader refuses only invalid or too deep JSON");
  }
}

void check_database(std::string_view text) {
  const d::ParsedTuningDb db = d::parse_tuning_db(text);
  KILN_FUZZ_CHECK(kiln_test::read_difference(d::read_tuning_db(text), db).empty(),
                  "the database's reader gives what the general reader gives");
  if (const auto fast = d::parse_tuning_db_fast(text)) {
    KILN_FUZZ_CHECK(kiln_test::read_difference(*fast, db).empty(),
                    "what the fast reader reads, it reads as the general reader does");
  }
  if (!db.problem.empty() || db.newer_version != 0) return;
  const std::string dumped = d::dump_tuning_db(db.entries);
  const d::ParsedTuningDb again = d::parse_tuning_db(dumped);
  const auto fast_again = d::parse_tuning_db_fast(dumped);
  KILN_FUZZ_CHECK(fast_again.has_value(), "the fast reader reads every database kiln writes");
  KILN_FUZZ_CHECK(kiln_test::read_difference(*fast_again, again).empty(),
                  "the fast reader reads a database kiln writes as the general reader does");
  KILN_FUZZ_CHECK(again.problem.empty() && again.newer_version == 0,
                  "a database kiln writes reads back");
  KILN_FUZZ_CHECK(again.damaged == 0 && again.duplicates.empty(),
                  "a database kiln writes has no damaged or repeated entries");
  KILN_FUZZ_CHECK(again.entries.size() == db.entries.size(), "no entry is lost on a rewrite");
  KILN_FUZZ_CHECK(d::dump_tuning_db(again.entries) == dumped,
                  "a database read back and written again is the same text");

  for (const auto& [id, entry] : db.entries) {
    const auto& k = entry.key;
    const nlohmann::json key = {{"factory", k.factory},  {"version", k.version},
                                {"params", k.params},    {"device", k.device},
                                {"arch", k.arch},        {"driver", k.driver_version},
                                {"compiler", k.compiler}};
    KILN_FUZZ_CHECK(id == key.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                    "a key's id() is its compact JSON text");
    d::TuningEntries one;
    d::JournalDamage damage;
    d::apply_journal(d::journal_put_line(entry), one, damage);
    KILN_FUZZ_CHECK(damage.damaged == 0 && one.size() == 1 && one.begin()->first == id,
                    "a journal put line puts the entry under its id");
    KILN_FUZZ_CHECK(d::dump_tuning_db(one) == d::dump_tuning_db({{id, entry}}),
                    "a journal put line keeps the whole entry");
    d::apply_journal(d::journal_erase_line(id), one, damage);
    KILN_FUZZ_CHECK(damage.damaged == 0 && one.empty(), "a journal erase line removes it");
  }
}

void check_journal(std::string_view text) {
  d::TuningEntries entries;
  d::JournalDamage damage;
  d::apply_journal(text, entries, damage);
  KILN_FUZZ_CHECK(damage.damaged == 0 || !damage.first.empty(),
                  "damaged journal lines are explained");
  d::TuningEntries fast;
  d::JournalDamage fast_damage;
  d::apply_journal_fast(text, fast, fast_damage);
  KILN_FUZZ_CHECK(fast_damage.damaged == damage.damaged && fast_damage.first == damage.first &&
                      kiln_test::entries_difference(fast, entries).empty(),
                  "the fast journal reader applies what apply_journal() applies");
  // What a journal leaves behind is a database kiln can write and read back.
  const d::ParsedTuningDb back = d::parse_tuning_db(d::dump_tuning_db(entries));
  KILN_FUZZ_CHECK(
      back.problem.empty() && back.damaged == 0 && back.entries.size() == entries.size(),
      "the entries a journal puts are a database that reads back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_bounded_json(text);
    check_database(text);
    check_journal(text);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln fuzz: an exception escaped: %s\n", e.what());
    std::abort();
  }
  return 0;
}
