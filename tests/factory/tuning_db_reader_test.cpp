// The tuning database's fast reader (kiln/factory/detail/tuning_db_reader.hpp) against the
// general one (parse_tuning_db(), apply_journal()): the same entries, the same damaged
// entries with the same words, the same duplicates, the same refusals, on databases kiln
// writes, on every kind of damaged entry, on files it leaves to the general reader, on the
// fuzz corpus and on every one-byte change of a small database. And TuningKey::id(), which
// the fast reader calls for every entry, against the JSON text it stands for.
#include <doctest/doctest.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kiln/factory/detail/tuning_db_reader.hpp"
#include "tuning_db_compare.hpp"

using kiln::factory::CandidateRecord;
using kiln::factory::CandidateStatus;
using kiln::factory::TuningEntry;
using kiln::factory::TuningKey;
using kiln_test::entries_difference;
using kiln_test::read_difference;
using nlohmann::json;
namespace d = kiln::factory::detail;

namespace {

/// A varied entry from `rng`: names with quotes, escapes, control characters and other
/// scripts, params of every JSON type, every candidate status, NaN and finite times,
/// resources known or not.
TuningEntry random_entry(std::mt19937& rng, int n) {
  const auto pick = [&](int k) { return static_cast<int>(rng() % static_cast<unsigned>(k)); };
  static const char* const strings[] = {
      "",         "softmax",    "with \"quotes\"",  "back\\slash", "tab\tnew\n",
      "\x01\x1f", "ブロック ✗", "\xf0\x9f\x98\x80", "slash/",      "\x7f"};
  const auto text = [&] { return std::string(strings[pick(10)]) + std::to_string(pick(1000)); };
  const std::function<json(int)> any = [&](int depth) -> json {
    switch (depth > 3 ? pick(7) : pick(9)) {
      case 0:
        return nullptr;
      case 1:
        return pick(2) == 0;
      case 2:
        return static_cast<std::uint64_t>(rng()) << 32 | rng();
      case 3:
        return -static_cast<std::int64_t>(rng() % 1000000) - 1;
      case 4:
        return std::ldexp(static_cast<double>(rng()), pick(80) - 40) * (pick(2) ? 1 : -1);
      case 5:
        return text();
      case 6:
        return json::array();
      case 7: {
        json a = json::array();
        for (int i = pick(4); i > 0; --i) a.push_back(any(depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (int i = pick(4); i > 0; --i) o[text()] = any(depth + 1);
        return o;
      }
    }
  };
  TuningEntry e;
  e.key.factory = pick(3) ? "softmax" : text();
  e.key.version = pick(2) ? n : -n;
  e.key.params = {{"n", n}, {"extra", any(0)}};
  e.key.device = text();
  e.key.arch = "sm_" + std::to_string(pick(100));
  e.key.driver_version = pick(2) ? INT_MAX - pick(3) : INT_MIN + pick(3);
  e.key.compiler = text();
  if (pick(3)) e.device_features = {{"multiprocessors", pick(200)}, {"l2_bytes", 5.0e7 + n}};
  for (int c = pick(4); c > 0; --c) {
    CandidateRecord r;
    r.config = any(1);
    r.status = static_cast<CandidateStatus>(pick(4));
    r.time_us = pick(3) ? 0.5 + pick(10000) / 7.0 : NAN;
    r.spread = pick(3) ? pick(100) / 1e3 : NAN;
    r.reason = pick(2) ? text() : "";
    if (pick(2)) r.resources = {pick(255) + 1, pick(100), pick(49152), pick(49152), 1024, pick(8)};
    e.candidates.push_back(r);
  }
  if (pick(2)) e.best = any(1);
  if (pick(2)) e.policy = pick(2) ? "full" : text();
  if (pick(2)) e.when = "2025-06-01T12:00:00Z";
  return e;
}

d::TuningEntries random_entries(std::uint32_t seed, int count) {
  std::mt19937 rng(seed);
  d::TuningEntries out;
  for (int n = 0; n < count; ++n) {
    TuningEntry e = random_entry(rng, n);
    std::string id = e.key.id();
    out.insert_or_assign(std::move(id), std::move(e));
  }
  return out;
}

/// A plain, good entry (every field as kiln writes it).
json good_entry(int n) {
  TuningEntry e;
  e.key.factory = "softmax";
  e.key.version = 2;
  e.key.params = {{"n", n}, {"dtype", "f16"}};
  e.key.device = "NVIDIA H200";
  e.key.arch = "sm_90";
  e.key.driver_version = 12080;
  e.key.compiler = "nvrtc 12.8";
  e.device_features = {{"multiprocessors", 132}};
  CandidateRecord fast{{{"block", 128}}, CandidateStatus::timed, 12.5, 0.01, ""};
  fast.resources = {64, 0, 1024, 0, 128, 4};
  CandidateRecord skipped{{{"block", 4096}}, CandidateStatus::resources, NAN, NAN, "smem"};
  e.candidates = {fast, skipped};
  e.best = {{"block", 128}};
  e.policy = "full";
  e.when = "2025-06-01T12:00:00Z";
  return e;
}

/// A database file text holding good entries "good0".."good2" and `extra` under the name
/// "x", written as kiln writes files.
std::string file_with(const json& extra) {
  json doc = {{"kiln_tuning_db", 1}, {"entries", json::object()}};
  for (int n = 0; n < 3; ++n) doc["entries"]["good" + std::to_string(n)] = good_entry(n);
  doc["entries"]["x"] = extra;
  return doc.dump(1);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// "" where the fast reader and the general one agree on `text`: parse_tuning_db_fast()
/// gives what parse_tuning_db() gives, or nothing; read_tuning_db() gives it either way.
std::string readers_differ(const std::string& text) {
  const d::ParsedTuningDb general = d::parse_tuning_db(text);
  if (std::string diff = read_difference(d::read_tuning_db(text), general); !diff.empty()) {
    return diff;
  }
  if (const auto fast = d::parse_tuning_db_fast(text)) return read_difference(*fast, general);
  return {};
}

/// Applies `journal` with both readers; "" where they leave the same entries and damage.
std::string journals_differ(const d::TuningEntries& start, const std::string& journal) {
  d::TuningEntries fast = start, general = start;
  d::JournalDamage fast_damage, general_damage;
  d::apply_journal_fast(journal, fast, fast_damage);
  d::apply_journal(journal, general, general_damage);
  if (fast_damage.damaged != general_damage.damaged || fast_damage.first != general_damage.first) {
    return "the damage: " + std::to_string(fast_damage.damaged) + " (" + fast_damage.first +
           ") against " + std::to_string(general_damage.damaged) + " (" + general_damage.first +
           ")";
  }
  return entries_difference(fast, general);
}

}  // namespace

TEST_CASE("TuningKey::id() is the compact JSON text of the key, for any names and params") {
  std::mt19937 rng(12);
  const auto reference = [](const TuningKey& k) {
    const json j = {{"factory", k.factory},  {"version", k.version}, {"params", k.params},
                    {"device", k.device},    {"arch", k.arch},       {"driver", k.driver_version},
                    {"compiler", k.compiler}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  for (int n = 0; n < 300; ++n) {
    const TuningKey key = random_entry(rng, n).key;
    CAPTURE(key.params.dump());
    CHECK(key.id() == reference(key));
  }
  TuningKey odd;
  odd.factory = "bad \xff\xfe utf-8";  // replaced by U+FFFD, not an exception
  odd.device = std::string("nul \0 inside", 12);
  odd.params = {{"f", 0.1},
                {"g", -0.0},
                {"big", 1e300},
                {"list", {1, "two", nullptr, false}},
                {"empty", json::object()},
                {"u", std::numeric_limits<std::uint64_t>::max()},
                {"i", std::numeric_limits<std::int64_t>::min()}};
  CHECK(odd.id() == reference(odd));
  CHECK(odd.id().find("\xef\xbf\xbd") != std::string::npos);
}

TEST_CASE("the fast reader reads every database kiln writes, as the general reader does") {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    const d::TuningEntries entries = random_entries(seed, 40);
    const std::string text = d::dump_tuning_db(entries);
    const auto fast = d::parse_tuning_db_fast(text);
    REQUIRE(fast.has_value());  // nothing kiln writes is left to the general reader
    CHECK(read_difference(*fast, d::parse_tuning_db(text)).empty());
    CHECK(entries_difference(fast->entries, entries).empty());
    CHECK(fast->damaged == 0);
    CHECK(fast->duplicates.empty());
  }
  // An empty database, and one written compactly on one line.
  CHECK(readers_differ(d::dump_tuning_db({})).empty());
  CHECK(d::parse_tuning_db_fast(d::dump_tuning_db({}))->entries.empty());
  const std::string compact =
      json::parse(d::dump_tuning_db(random_entries(99, 10))).dump(-1, ' ', true);  // \u escapes
  REQUIRE(d::parse_tuning_db_fast(compact).has_value());
  CHECK(readers_differ(compact).empty());
  CHECK(d::parse_tuning_db_fast(compact)->entries.size() == 10);
}

TEST_CASE("every kind of damaged entry costs only itself, in the general reader's words") {
  struct Case {
    std::string what;
    std::function<void(json&)> change;
    bool damaged;
  };
  const std::vector<Case> cases = {
      {"no key", [](json& e) { e.erase("key"); }, true},
      {"a key that is an array", [](json& e) { e["key"] = json::array(); }, true},
      {"a key that is null", [](json& e) { e["key"] = nullptr; }, true},
      {"a key without factory", [](json& e) { e["key"].erase("factory"); }, true},
      {"a key without params", [](json& e) { e["key"].erase("params"); }, true},
      {"a key without compiler", [](json& e) { e["key"].erase("compiler"); }, true},
      {"a factory that is a number", [](json& e) { e["key"]["factory"] = 3; }, true},
      {"a version with a fraction", [](json& e) { e["key"]["version"] = 1.5; }, true},
      {"a version written 2.0", [](json& e) { e["key"]["version"] = 2.0; }, true},
      {"a version past INT_MAX", [](json& e) { e["key"]["version"] = 2147483648LL; }, true},
      {"a driver below INT_MIN", [](json& e) { e["key"]["driver"] = -2147483649LL; }, true},
      {"a driver that is a string", [](json& e) { e["key"]["driver"] = "12080"; }, true},
      {"a device that is null", [](json& e) { e["key"]["device"] = nullptr; }, true},
      {"no candidates", [](json& e) { e.erase("candidates"); }, true},
      {"candidates that are an object", [](json& e) { e["candidates"] = json::object(); }, true},
      {"a candidate that is a number", [](json& e) { e["candidates"][0] = 7; }, true},
      {"a candidate without config", [](json& e) { e["candidates"][0].erase("config"); }, true},
      {"a candidate without status", [](json& e) { e["candidates"][0].erase("status"); }, true},
      {"an unknown status", [](json& e) { e["candidates"][0]["status"] = "fastest"; }, true},
      {"a status in capitals", [](json& e) { e["candidates"][0]["status"] = "TIMED"; }, true},
      {"a status that is a number", [](json& e) { e["candidates"][0]["status"] = 0; }, true},
      {"a time that is a string", [](json& e) { e["candidates"][0]["time_us"] = "1"; }, true},
      {"a spread that is true", [](json& e) { e["candidates"][0]["spread"] = true; }, true},
      {"a reason that is a number", [](json& e) { e["candidates"][0]["reason"] = 1; }, true},
      {"resources that are null", [](json& e) { e["candidates"][0]["resources"] = nullptr; }, true},
      {"resources without a field",
       [](json& e) { e["candidates"][0]["resources"].erase("registers"); }, true},
      {"resources with a fraction",
       [](json& e) { e["candidates"][0]["resources"]["local_bytes"] = 0.5; }, true},
      {"a policy that is a number", [](json& e) { e["policy"] = 1; }, true},
      {"a when that is null", [](json& e) { e["when"] = nullptr; }, true},
      {"an entry that is an array",
       [](json& e) {
         e = json::array({1, 2});
       },
       true},
      {"an entry that is a string", [](json& e) { e = "entry"; }, true},
      {"an entry that is null", [](json& e) { e = nullptr; }, true},
      {"an entry that is empty", [](json& e) { e = json::object(); }, true},
      // Read, not damaged: what the general reader accepts besides what kiln writes.
      {"fields it does not know",
       [](json& e) {
         e["note"] = {1, {{"a", nullptr}}};
       },
       false},
      {"a key field it does not know", [](json& e) { e["key"]["extra"] = 1; }, false},
      {"a candidate field it does not know", [](json& e) { e["candidates"][0]["x"] = 1; }, false},
      {"a resources field it does not know",
       [](json& e) { e["candidates"][0]["resources"]["x"] = "y"; }, false},
      {"no best, policy, when or features",
       [](json& e) {
         for (const char* f : {"best", "policy", "when", "device_features"}) e.erase(f);
       },
       false},
      {"times that are integers",
       [](json& e) {
         e["candidates"][0]["time_us"] = 12;
         e["candidates"][0]["spread"] = -3;
       },
       false},
      {"no times or reason",
       [](json& e) {
         for (const char* f : {"time_us", "spread", "reason"}) e["candidates"][0].erase(f);
       },
       false},
      {"no candidates at all", [](json& e) { e["candidates"] = json::array(); }, false},
      {"a version of INT_MIN", [](json& e) { e["key"]["version"] = INT_MIN; }, false},
      {"a key that is another problem's", [](json& e) { e["key"]["params"]["n"] = 77; }, false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    json entry = good_entry(9);
    c.change(entry);
    const std::string text = file_with(entry);
    const auto fast = d::parse_tuning_db_fast(text);
    REQUIRE(fast.has_value());  // the file is the fast reader's; only the entry is handed over
    CHECK(read_difference(*fast, d::parse_tuning_db(text)).empty());
    CHECK(fast->damaged == (c.damaged ? 1u : 0u));
    CHECK(fast->entries.size() == (c.damaged ? 3u : 4u));
    if (c.damaged) CHECK(fast->first_damage.starts_with("the entry x: "));
  }
}

TEST_CASE("fields written in another order, escaped or twice read as the general reader reads") {
  const std::string entry = json(good_entry(5)).dump();
  const auto with = [&](const std::string& from, const std::string& to) {
    std::string e = entry;
    const auto at = e.find(from);
    REQUIRE(at != std::string::npos);
    e.replace(at, from.size(), to);
    return R"({"entries": {"a": )" + e + R"(}, "kiln_tuning_db": 1})";
  };
  const std::vector<std::string> texts = {
      with(R"("factory":)", R"("f\u0061ctory":)"),                        // an escaped field name
      with(R"("policy":"full")", R"("policy":"full","policy":"model")"),  // a field twice
      with(R"("device_features")", R"("candidates":[],"device_features")"),  // twice: the last
      with(R"("policy")", R"("key":)" + good_entry(6)["key"].dump() + R"(,"policy")"),  // ditto
      with(R"({"arch")", R"({"arch":"sm_90","arch")"),          // a key field twice
      with(R"("block":128)", R"("block":128,"block":256)"),     // a config key twice
      with(R"("status":"timed")", R"("status":"t\u0069med")"),  // an escaped value
      with(R"({"best")", R"({"when":"early","best")"),          // another order
      with(R"("time_us":12.5)", R"("time_us":1.25e1)"),         // another spelling
      with(R"("time_us":12.5)", R"("time_us":-0)"),
      with(R"("n":5)", R"("n":-0)"),
      with(R"("n":5)", R"("n":18446744073709551615)"),  // the largest unsigned
      with(R"("n":5)", R"("n":18446744073709551616)"),  // a double to nlohmann::json
      with(R"("n":5)", R"("n":4.9e-324)"),              // the least subnormal
      with(R"("dtype":"f16")", R"("dtype":"\ud83d\ude00 \u00e9 \u0000")"),
  };
  for (const auto& text : texts) {
    CAPTURE(text);
    CHECK(readers_differ(text).empty());
    CHECK(d::read_tuning_db(text).problem.empty());
    CHECK(d::read_tuning_db(text).entries.size() == 1);
  }
}

TEST_CASE("names out of order, listed twice or for one problem: the same entries and warnings") {
  const std::string a = json(good_entry(1)).dump();
  const std::string b = json(good_entry(2)).dump();
  const std::string bad = R"({"key": 1, "candidates": []})";
  const std::vector<std::string> texts = {
      // Out of order, with a damaged one between.
      R"({"kiln_tuning_db": 1, "entries": {"z": )" + a + R"(, "m": )" + bad + R"(, "b": )" + b +
          "}}",
      // "a" twice (the last value kept, the first never read), "c" and "d" one problem.
      R"({"kiln_tuning_db": 1, "entries": {"a": )" + bad + R"(, "a": )" + a + R"(, "c": )" + b +
          R"(, "d": )" + b + "}}",
      // The same, the other way round.
      R"({"kiln_tuning_db": 1, "entries": {"d": )" + b + R"(, "c": )" + b + R"(, "a": )" + a +
          R"(, "a": )" + bad + "}}",
      // Two problems under two names each: both are named in the warnings.
      R"({"kiln_tuning_db": 1, "entries": {"a": )" + a + R"(, "b": )" + a + R"(, "c": )" + b +
          R"(, "d": )" + b + "}}",
      // Three names for one problem, and a damaged entry listed three times.
      R"({"entries": {"p": )" + a + R"(, "q": )" + a + R"(, "r": )" + a + R"(, "x": )" + bad +
          R"(, "x": )" + bad + R"(, "x": )" + bad + R"(}, "kiln_tuning_db": 1})",
  };
  for (const auto& text : texts) {
    CAPTURE(text.substr(0, 300));
    const auto fast = d::parse_tuning_db_fast(text);
    REQUIRE(fast.has_value());
    CHECK(read_difference(*fast, d::parse_tuning_db(text)).empty());
    CHECK_FALSE((fast->duplicates.empty() && fast->damaged == 0));
  }
}

TEST_CASE("what the fast reader leaves to the general reader is refused or read all the same") {
  const std::string good = file_with(good_entry(9));
  json deep = 1;
  for (int i = 0; i < 59; ++i) deep = json::array({deep});
  json at_bound = good_entry(1);  // params are the 5th level, deep's arrays the 6th to 64th
  at_bound["key"]["params"] = {{"deep", deep}};
  json past_bound = at_bound;
  past_bound["key"]["params"]["deep"] = json::array({deep});
  struct Case {
    std::string what;
    std::string text;
    bool invalid;  // not JSON or too deep: the fast reader must not read it
  };
  const std::vector<Case> cases = {
      {"an empty file", "", true},
      {"cut short", good.substr(0, good.size() / 2), true},
      {"a byte after the document", good + "x", true},
      {"two documents", good + good, true},
      {"a raw control character in a name", "{\"kiln_tuning_db\": 1, \"entries\": {\"a\x01\": {}}}",
       true},
      {"a raw newline in a name", "{\"kiln_tuning_db\": 1, \"entries\": {\"a\nb\": {}}}", true},
      {"invalid UTF-8 in a name", "{\"kiln_tuning_db\": 1, \"entries\": {\"\xc0\xaf\": 1}}", true},
      {"a lone surrogate", R"({"kiln_tuning_db": 1, "entries": {"\udc00": 1}})", true},
      {"a leading zero", R"({"kiln_tuning_db": 01, "entries": {}})", true},
      {"a number past the largest double",
       R"({"kiln_tuning_db": 1, "entries": {"a": {"key": {"params": 1e400}}}})", true},
      {"a trailing comma", R"({"kiln_tuning_db": 1, "entries": {},})", true},
      {"a comment", R"({"kiln_tuning_db": 1, /* c */ "entries": {}})", true},
      {"params past the depth bound", file_with(past_bound), true},
      {"params at the depth bound", file_with(at_bound), false},
      {"a byte order mark", "\xef\xbb\xbf" + good, false},
      {"a newer version", R"({"kiln_tuning_db": 2, "entries": {"a": 1}})", false},
      {"a version that is a string", R"({"kiln_tuning_db": "1", "entries": {}})", false},
      {"a version 1.0", R"({"kiln_tuning_db": 1.0, "entries": {}})", false},
      {"no version", R"({"entries": {}})", false},
      {"entries that are an array", R"({"kiln_tuning_db": 1, "entries": []})", false},
      {"another top-level field", R"({"kiln_tuning_db": 1, "entries": {}, "x": {"a": 1}})", false},
      {"a version listed twice", R"({"kiln_tuning_db": 2, "kiln_tuning_db": 1, "entries": {}})",
       false},
      {"not an object", "[1, 2, 3]", false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    CHECK(readers_differ(c.text).empty());
    if (c.invalid) {
      CHECK_FALSE(d::parse_tuning_db_fast(c.text).has_value());
      CHECK_FALSE(d::read_tuning_db(c.text).problem.empty());
    }
  }
  CHECK(d::parse_tuning_db_fast(file_with(at_bound)).has_value());
  CHECK(d::read_tuning_db(file_with(past_bound)).problem.starts_with("nested deeper than 64"));
}

TEST_CASE("the fast and general readers agree on the fuzz corpus") {
  const auto dir = std::filesystem::path(KILN_SOURCE_DIR) / "tests/fuzz/corpus/tuning_db";
  int files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    CAPTURE(f.path().string());
    const std::string text = read_file(f.path());
    CHECK(readers_differ(text).empty());
    CHECK(journals_differ({}, text).empty());
    ++files;
  }
  CHECK(files >= 6);
}

TEST_CASE("every one-byte change of a small database reads the same with both readers") {
  // One entry as kiln writes it (without the indentation), with names that need escapes and
  // a float in its params.
  TuningEntry entry = good_entry(1).get<TuningEntry>();
  entry.key.device = "GPU \"x\" \u00e9";
  entry.key.params["scale"] = -0.25;
  const std::string text = json::parse(d::dump_tuning_db({{entry.key.id(), entry}})).dump();
  const std::string bytes = "\"\\{}[],:0-e \n\x80";
  std::size_t inputs = 0, fast_read = 0, failures = 0;
  std::string first_failure;
  const auto check = [&](const std::string& changed) {
    ++inputs;
    const d::ParsedTuningDb general = d::parse_tuning_db(changed);
    const auto fast = d::parse_tuning_db_fast(changed);
    if (!fast) return;
    ++fast_read;
    if (const std::string diff = read_difference(*fast, general);
        !diff.empty() && failures++ == 0) {
      first_failure = diff + " on " + changed;
    }
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    std::string cut = text;
    cut.erase(i, 1);
    check(cut);
    for (const char b : bytes) {
      if (text[i] == b) continue;
      std::string changed = text;
      changed[i] = b;
      check(changed);
    }
  }
  CAPTURE(first_failure);
  CHECK(failures == 0);
  // Both readers were exercised: most changes are refused, many are still read fast.
  CHECK(fast_read > inputs / 20);
  CHECK(fast_read < inputs);
}

TEST_CASE("journal lines: the fast reader applies what apply_journal() applies, damage alike") {
  const d::TuningEntries start = random_entries(3, 5);
  const d::TuningEntries more = random_entries(4, 5);
  std::string journal;
  for (const auto& [id, e] : more) journal += d::journal_put_line(e);
  journal += d::journal_erase_line(start.begin()->first);
  journal += d::journal_erase_line("not there");
  journal += "\n";         // an empty line
  journal += "garbage\n";  // not JSON
  journal += R"({"put": {"candidates": []}})"
             "\n";  // no key
  journal += R"({"erase": 3})"
             "\n";  // not a string
  journal += R"({"neither": 1})"
             "\n";
  journal += R"([1, 2])"
             "\n";
  std::string both = d::journal_put_line(good_entry(3).get<TuningEntry>());
  both.insert(both.size() - 2, R"(,"erase":"x")");  // "put" wins over "erase"
  journal += both;
  std::string twice = d::journal_put_line(good_entry(4).get<TuningEntry>());
  twice.insert(1, R"("put":1,)");  // the last "put" wins
  journal += twice;
  std::string crlf = d::journal_put_line(good_entry(5).get<TuningEntry>());
  crlf.insert(crlf.size() - 1, "\r");
  journal += crlf;
  journal += d::journal_put_line(good_entry(6).get<TuningEntry>()).substr(0, 40);  // cut short

  CHECK(journals_differ(start, journal).empty());
  d::TuningEntries applied = start;
  d::JournalDamage damage;
  d::apply_journal_fast(journal, applied, damage);
  CHECK(damage.damaged == 6);  // the empty line to [1, 2]
  CHECK(applied.size() == start.size() - 1 + more.size() + 3);
  for (const auto& [id, e] : more) CHECK(applied.contains(id));

  // Every one-byte change of one line.
  const std::string line = d::journal_put_line(good_entry(8).get<TuningEntry>());
  std::size_t failures = 0;
  std::string first_failure;
  for (std::size_t i = 0; i < line.size(); ++i) {
    for (const char b : std::string("\"\\{}:,0 \n\xff")) {
      std::string changed = line;
      changed[i] = b;
      if (const std::string diff = journals_differ(start, changed);
          !diff.empty() && failures++ == 0) {
        first_failure = diff + " on " + changed;
      }
    }
  }
  CAPTURE(first_failure);
  CHECK(failures == 0);
}
