// The tuning database: its file format, lookups, concurrent updates from threads and
// processes, corrupt and newer files, export and import, and write failures.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../support.hpp"
#include "kiln/factory/tuning_db.hpp"

using kiln::factory::CandidateRecord;
using kiln::factory::CandidateStatus;
using kiln::factory::TuningDatabase;
using kiln::factory::TuningEntry;
using kiln::factory::TuningKey;
using kiln_test::count_of;
using kiln_test::in_child;
using kiln_test::ScopedEnv;
using kiln_test::StderrCapture;
using kiln_test::TempDir;
namespace fs = std::filesystem;

namespace {

TuningKey key_of(const std::string& factory, int n, int version = 1) {
  TuningKey k;
  k.factory = factory;
  k.version = version;
  k.params = {{"n", n}, {"dtype", "f32"}, {"causal", n % 2 == 0}};
  k.device = "NVIDIA H100 80GB HBM3";
  k.arch = "sm_90";
  k.driver_version = 12040;
  k.compiler = "nvrtc 12.4";
  return k;
}

/// An entry with every field set: a timed candidate (NaN spread), a skipped one (NaN
/// time, a reason in several scripts) and the winner.
TuningEntry entry_of(const TuningKey& key, int best_block = 128) {
  TuningEntry e;
  e.key = key;
  e.device_features = {{"multiprocessors", 132}, {"l2_bytes", 52428800.0}};
  CandidateRecord fast{{{"block", best_block}}, CandidateStatus::timed, 12.5, NAN, ""};
  fast.resources = {64, 8, 1024, 49152, 256, 3};
  CandidateRecord broken{{{"block", 4096}},
                         CandidateStatus::compile_error,
                         NAN,
                         NAN,
                         "too many threads — ブロックが大きすぎる ✗ \"quoted\"\n"};
  CandidateRecord big{{{"block", 2048}}, CandidateStatus::resources, NAN, 0.25, "smem"};
  e.candidates = {fast, broken, big};
  e.best = {{"block", best_block}};
  e.policy = "full";
  e.when = "2025-01-02T03:04:05Z";
  return e;
}

/// A small entry: what the concurrency tests store (every store rewrites the whole file).
TuningEntry small_entry_of(const TuningKey& key) {
  TuningEntry e;
  e.key = key;
  e.candidates = {CandidateRecord{{{"block", 64}}, CandidateStatus::timed, 1.5, 0.01, ""}};
  e.best = {{"block", 64}};
  return e;
}

/// An entry's JSON text: equal entries give equal text (NaN reads as null).
std::string text_of(const TuningEntry& e) {
  return nlohmann::json(e).dump();
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

/// The files in `dir` whose names contain `part`.
std::vector<fs::path> files_with(const fs::path& dir, const std::string& part) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(part) != std::string::npos) out.push_back(e.path());
  }
  return out;
}

}  // namespace

TEST_CASE("an entry round-trips through the file with every field, NaN times included") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  const TuningEntry stored = entry_of(key_of("softmax", 1024));
  TuningDatabase(file).store(stored);

  const auto got = TuningDatabase(file).find(stored.key);  // a fresh instance reads the file
  REQUIRE(got.has_value());
  CHECK(got->key.id() == stored.key.id());
  CHECK(got->device_features == stored.device_features);
  CHECK(got->best == stored.best);
  CHECK(got->policy == "full");
  CHECK(got->when == "2025-01-02T03:04:05Z");
  REQUIRE(got->candidates.size() == 3);
  CHECK(got->candidates[0].config == stored.candidates[0].config);
  CHECK(got->candidates[0].status == CandidateStatus::timed);
  CHECK(got->candidates[0].time_us == 12.5);
  CHECK(std::isnan(got->candidates[0].spread));
  CHECK(got->candidates[1].status == CandidateStatus::compile_error);
  CHECK(std::isnan(got->candidates[1].time_us));
  CHECK(got->candidates[1].reason == stored.candidates[1].reason);
  CHECK(got->candidates[2].status == CandidateStatus::resources);
  CHECK(got->candidates[2].spread == 0.25);
  CHECK(got->candidates[0].resources == stored.candidates[0].resources);
  CHECK(got->candidates[0].resources.blocks_per_sm == 3);
  CHECK_FALSE(got->candidates[1].resources.known());  // none recorded: none written or read
  CHECK(text_of(*got) == text_of(stored));

  // The file is the documented format, NaN written as null.
  const auto doc = nlohmann::json::parse(read_file(file));
  CHECK(doc.at("kiln_tuning_db") == 1);
  const auto& entry = doc.at("entries").at(stored.key.id());
  CHECK(entry.at("candidates").at(1).at("time_us").is_null());
  CHECK(entry.at("candidates").at(1).at("status") == "compile_error");
  CHECK(entry.at("candidates").at(0).at("resources").at("local_bytes") == 8);
  CHECK_FALSE(entry.at("candidates").at(1).contains("resources"));
}

TEST_CASE("a candidate's resources are read whole or refused, naming the field") {
  nlohmann::json j = {{"config", {{"block", 64}}},
                      {"status", "timed"},
                      {"time_us", 1.0},
                      {"spread", 0.01},
                      {"reason", ""},
                      {"resources", {{"registers", 32}}}};
  CandidateRecord c;
  CHECK_THROWS_WITH_AS(kiln::factory::from_json(j, c),
                       doctest::Contains("resources has no field 'local_bytes'"), kiln::Error);
}

TEST_CASE("find misses on a key that differs in any field") {
  TempDir tmp;
  TuningDatabase db(tmp.path() / "tuning.json");
  const TuningKey base = key_of("softmax", 1024);
  db.store(entry_of(base));
  CHECK(db.find(base).has_value());
  std::vector<TuningKey> others(7, base);
  others[0].factory = "softmax2";
  others[1].version = 2;
  others[2].params["n"] = 1025;
  others[3].device = "NVIDIA A100";
  others[4].arch = "sm_80";
  others[5].driver_version = 12050;
  others[6].compiler = "nvrtc 12.5";
  for (const auto& other : others) {
    CAPTURE(other.id());
    CHECK_FALSE(db.find(other).has_value());
    CHECK_FALSE(TuningDatabase(db.file()).find(other).has_value());
  }
}

TEST_CASE("store replaces the entry of the same key; erase removes it") {
  TempDir tmp;
  TuningDatabase db(tmp.path() / "tuning.json");
  const TuningKey key = key_of("softmax", 64);
  db.store(entry_of(key, 128));
  db.store(entry_of(key, 256));
  db.store(entry_of(key_of("softmax", 65)));
  CHECK(db.entries().size() == 2);
  CHECK(db.find(key)->best == nlohmann::json{{"block", 256}});
  CHECK(TuningDatabase(db.file()).find(key)->best == nlohmann::json{{"block", 256}});
  db.erase(key);
  CHECK_FALSE(db.find(key).has_value());
  CHECK_FALSE(TuningDatabase(db.file()).find(key).has_value());
  CHECK(TuningDatabase(db.file()).entries().size() == 1);
}

TEST_CASE("entries() gives all entries, or one factory's of any version") {
  TempDir tmp;
  TuningDatabase db(tmp.path() / "tuning.json");
  db.store(entry_of(key_of("softmax", 1, 1)));
  db.store(entry_of(key_of("softmax", 1, 2)));
  db.store(entry_of(key_of("gemm", 1)));
  CHECK(db.entries().size() == 3);
  const auto softmax = db.entries("softmax");
  REQUIRE(softmax.size() == 2);
  for (const auto& e : softmax) CHECK(e.key.factory == "softmax");
  CHECK(db.entries("gemm").size() == 1);
  CHECK(db.entries("soft").empty());
}

TEST_CASE("a database sees what another one stored in its file") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  TuningDatabase a(file), b(file);
  const TuningKey key = key_of("softmax", 7);
  CHECK_FALSE(a.find(key).has_value());  // no file yet
  b.store(entry_of(key, 128));
  REQUIRE(a.find(key).has_value());  // the file appeared
  CHECK(a.find(key)->best == nlohmann::json{{"block", 128}});
  b.store(entry_of(key, 512));
  CHECK(a.find(key)->best == nlohmann::json{{"block", 512}});  // it changed under a
  a.store(entry_of(key_of("softmax", 8)));                     // a's store keeps b's entry
  CHECK(b.entries().size() == 2);
  fs::remove(file);
  CHECK(a.entries().empty());
}

TEST_CASE("a corrupt file is moved aside with one warning, and stores work afterwards") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  const TuningKey key = key_of("softmax", 3);
  std::string bad;
  SUBCASE("garbage bytes") {
    bad = std::string(
        "\x7f"
        "ELF\x02\x01\x00\xff\xfe garbage",
        17);
  }
  SUBCASE("truncated JSON") {
    TuningDatabase(file).store(entry_of(key));
    bad = read_file(file);
    bad.resize(bad.size() / 2);
  }
  SUBCASE("an empty file") {
    bad = "";
  }
  SUBCASE("not an object") {
    bad = "[1, 2, 3]";
  }
  SUBCASE("no format version") {
    bad = R"({"entries": {}})";
  }
  SUBCASE("entries not an object") {
    bad = R"({"kiln_tuning_db": 1, "entries": []})";
  }
  SUBCASE("nested 200000 levels deep (would overflow the stack of code walking it)") {
    bad = R"({"kiln_tuning_db": )" + std::string(200000, '[') + std::string(200000, ']') + "}";
  }
  SUBCASE("params nested 100 levels deep in a valid file") {
    auto doc = nlohmann::json::parse(R"({"kiln_tuning_db": 1, "entries": {}})");
    auto entry = nlohmann::json(entry_of(key));
    nlohmann::json deep = 1;
    for (int i = 0; i < 100; ++i) deep = nlohmann::json::array({deep});
    entry["key"]["params"] = deep;
    doc["entries"]["x"] = entry;
    bad = doc.dump();
  }
  write_file(file, bad);
  CAPTURE(bad.substr(0, 200));

  TuningDatabase db(file);
  StderrCapture err;
  CHECK_FALSE(db.find(key).has_value());
  CHECK(db.entries().empty());
  const std::string text = err.text();
  CHECK(count_of(text, "kiln: the tuning database " + file.string() + " is corrupt (") == 1);
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find("and starting empty") != std::string::npos);
  CHECK_FALSE(fs::exists(file));
  const auto aside = files_with(tmp.path(), "tuning.json.corrupt-");
  REQUIRE(aside.size() == 1);
  CHECK(read_file(aside[0]) == bad);  // kept for a person to look at
  CHECK(text.find("moved it to " + aside[0].string()) != std::string::npos);

  db.store(entry_of(key));
  CHECK(TuningDatabase(file).find(key).has_value());
}

TEST_CASE("damaged entries cost only themselves: the good ones are kept, with one warning") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  auto doc = nlohmann::json::parse(R"({"kiln_tuning_db": 1, "entries": {}})");
  for (int i = 1; i <= 3; ++i)
    doc["entries"]["good" + std::to_string(i)] = entry_of(key_of("softmax", i));
  doc["entries"]["no_key"] = nlohmann::json::parse(R"({"candidates": []})");
  auto odd = nlohmann::json(entry_of(key_of("softmax", 9)));
  odd["candidates"][0]["status"] = "fastest";  // not a status kiln knows
  doc["entries"]["odd_status"] = odd;
  const std::string original = doc.dump();
  write_file(file, original);

  TuningDatabase db(file);
  StderrCapture err;
  for (int i = 1; i <= 3; ++i) CHECK(db.find(key_of("softmax", i)).has_value());
  CHECK_FALSE(db.find(key_of("softmax", 9)).has_value());
  CHECK(db.entries().size() == 3);
  const std::string text = err.text();
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find("had 2 damaged entries") != std::string::npos);
  CHECK(text.find("kept its 3 good ones") != std::string::npos);
  const auto aside = files_with(tmp.path(), "tuning.json.corrupt-");
  REQUIRE(aside.size() == 1);
  CHECK(read_file(aside[0]) == original);  // the whole original, for a person to look at
  CHECK(text.find("moved the original to " + aside[0].string()) != std::string::npos);
  // The file now holds the good entries alone, and reads without a word.
  StderrCapture again;
  TuningDatabase reread(file);
  CHECK(reread.entries().size() == 3);
  CHECK(again.text().empty());
}

TEST_CASE("entries listed twice: one warning says which value is kept") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  const std::string a1 = nlohmann::json(entry_of(key_of("softmax", 1), 64)).dump();
  const std::string a2 = nlohmann::json(entry_of(key_of("softmax", 1), 256)).dump();
  const std::string b = nlohmann::json(entry_of(key_of("softmax", 2), 32)).dump();
  const std::string c = nlohmann::json(entry_of(key_of("softmax", 2), 512)).dump();
  // "a" twice (JSON keeps the last), and "b" and "c" filed under other names for one problem.
  write_file(file, R"({"kiln_tuning_db": 1, "entries": {"a": )" + a1 + R"(, "a": )" + a2 +
                       R"(, "b": )" + b + R"(, "c": )" + c + "}}");
  StderrCapture err;
  TuningDatabase db(file);
  CHECK(db.find(key_of("softmax", 1))->best == nlohmann::json{{"block", 256}});
  CHECK(db.find(key_of("softmax", 2))->best == nlohmann::json{{"block", 512}});
  const std::string text = err.text();
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find("the entry a is listed more than once; kiln keeps the last one") !=
        std::string::npos);
  CHECK(text.find("the entries b and c are the same problem; kiln keeps c") != std::string::npos);
  CHECK(db.entries().size() == 2);
}

TEST_CASE("a FIFO as the database is not read (no hang), and a huge file is set aside") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  const TuningKey key = key_of("softmax", 3);
  SUBCASE("a FIFO") {
    REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
    const int code = in_child([&] {
      ::alarm(10);
      StderrCapture err;
      TuningDatabase db(file);
      if (db.find(key).has_value()) return 2;
      return err.text().find("not a regular file") != std::string::npos ? 0 : 3;
    });
    CHECK(code == 0);  // -1: the alarm ended it (the open hung)
  }
  SUBCASE("a 3 GiB sparse file") {
    { std::ofstream touch(file); }
    REQUIRE(::truncate(file.c_str(), off_t(3) << 30) == 0);
    StderrCapture err;
    TuningDatabase db(file);
    CHECK_FALSE(db.find(key).has_value());
    CHECK(err.text().find("larger than 1024 MiB") != std::string::npos);
    CHECK_FALSE(fs::exists(file));
    CHECK(files_with(tmp.path(), "tuning.json.corrupt-").size() == 1);
    db.store(entry_of(key));
    CHECK(TuningDatabase(file).find(key).has_value());
  }
}

TEST_CASE("a corrupt file found by store() is moved aside and replaced") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  write_file(file, "{\"kiln_tuning_db\": 1, \"entries\": {");
  TuningDatabase db(file);
  StderrCapture err;
  db.store(entry_of(key_of("gemm", 1)));
  CHECK(count_of(err.text(), "is corrupt") == 1);
  CHECK(files_with(tmp.path(), ".corrupt-").size() == 1);
  CHECK(TuningDatabase(file).entries().size() == 1);
}

TEST_CASE("a file of a newer format version is neither used nor overwritten") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  const std::string newer = R"({"kiln_tuning_db": 2, "entries": {"anything": 1}})";
  write_file(file, newer);
  TuningDatabase db(file);
  StderrCapture err;
  CHECK(db.entries().empty());
  CHECK_FALSE(db.find(key_of("softmax", 1)).has_value());
  CHECK_THROWS_WITH_AS(db.store(entry_of(key_of("softmax", 1))),
                       doctest::Contains("format version 2"), kiln::Error);
  const std::string text = err.text();
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find("newer kiln") != std::string::npos);
  CHECK(read_file(file) == newer);
  CHECK(files_with(tmp.path(), ".corrupt-").empty());
}

// Runs `processes` programs at once (forked, each with its own database object on `file`),
// each storing `keys` entries of its own, and checks that every one succeeded.
static void run_writers(const fs::path& file, int processes, int keys) {
  std::vector<::pid_t> children;
  for (int p = 0; p < processes; ++p) {
    const ::pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // another program, with its own database object; no doctest here
      int code = 0;
      try {
        TuningDatabase db(file);
        for (int k = 0; k < keys; ++k) db.store(small_entry_of(key_of("p" + std::to_string(p), k)));
      } catch (...) {
        code = 1;
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  for (const ::pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}

TEST_CASE("8 processes storing 20 keys each at once all land in the file") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  constexpr int processes = 8, keys = 20;
  constexpr std::size_t total = processes * keys;
  std::fflush(stdout);
  std::fflush(stderr);
  run_writers(file, processes, keys);
  TuningDatabase db(file);
  CHECK(db.entries().size() == total);
  for (int p = 0; p < processes; ++p) {
    for (int k = 0; k < keys; ++k) CHECK(db.find(key_of("p" + std::to_string(p), k)).has_value());
  }
  CHECK(files_with(tmp.path(), ".tmp").empty());
}

TEST_CASE("8 processes storing at once lose nothing while a ninth deletes lock files") {
  // A cleaner (or another user) deleting the lock file while writers hold it let two
  // writers in at once, each writing back what it had read: 114 of 400 entries survived.
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  constexpr int processes = 8, keys = 50;
  constexpr std::size_t total = processes * keys;
  std::fflush(stdout);
  std::fflush(stderr);
  const ::pid_t deleter = ::fork();
  REQUIRE(deleter >= 0);
  if (deleter == 0) {
    for (;;) {  // until killed: every lock file kiln ever used, as fast as it can
      for (const auto& e : fs::directory_iterator(tmp.path())) {
        if (e.path().extension() == ".lock") ::unlink(e.path().c_str());
      }
    }
  }
  run_writers(file, processes, keys);
  ::kill(deleter, SIGKILL);
  ::waitpid(deleter, nullptr, 0);
  TuningDatabase db(file);
  CHECK(db.entries().size() == total);
  for (int p = 0; p < processes; ++p) {
    for (int k = 0; k < keys; ++k) CHECK(db.find(key_of("p" + std::to_string(p), k)).has_value());
  }
}

TEST_CASE("8 threads storing at once, through one database and through their own, all land") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  constexpr int threads = 8, keys = 10;
  constexpr std::size_t total = threads * keys;
  TuningDatabase shared(file);
  std::vector<std::thread> pool;
  std::atomic<int> misses{0};
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::optional<TuningDatabase> own;
      if (t % 2 == 1) own.emplace(file);
      TuningDatabase& db = own ? *own : shared;
      for (int k = 0; k < keys; ++k) {
        const TuningKey key = key_of("t" + std::to_string(t), k);
        db.store(small_entry_of(key));
        if (!db.find(key)) ++misses;
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(misses.load() == 0);
  CHECK(shared.entries().size() == total);
  CHECK(TuningDatabase(file).entries().size() == total);
}

TEST_CASE("export, then import into a fresh database, gives the same entries") {
  TempDir tmp;
  TuningDatabase db(tmp.path() / "tuning.json");
  db.store(entry_of(key_of("softmax", 1)));
  db.store(entry_of(key_of("softmax", 2)));
  db.store(entry_of(key_of("gemm", 1)));
  const fs::path all = tmp.path() / "shipped.json", softmax = tmp.path() / "softmax.json";
  CHECK(db.export_to(all) == 3);
  CHECK(db.export_to(softmax, "softmax") == 2);

  TuningDatabase fresh(tmp.path() / "sub" / "fresh.json");  // its directory is created
  CHECK(fresh.import_from(all) == 3);
  const auto want = db.entries(), got = fresh.entries();
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(text_of(got[i]) == text_of(want[i]));
  CHECK(TuningDatabase(fresh.file()).entries().size() == 3);  // stored in its file

  // Importing merges: what the database had stays, entries of the same key are replaced.
  TuningDatabase other(tmp.path() / "other.json");
  other.store(entry_of(key_of("softmax", 1), 999));
  other.store(entry_of(key_of("conv", 1)));
  CHECK(other.import_from(softmax) == 2);
  CHECK(other.entries().size() == 3);
  CHECK(other.find(key_of("softmax", 1))->best == nlohmann::json{{"block", 128}});

  // A database in memory only imports and exports too.
  TuningDatabase memory{fs::path()};
  CHECK(memory.in_memory());
  CHECK(memory.import_from(all) == 3);
  CHECK(memory.export_to(tmp.path() / "again.json", "gemm") == 1);
}

TEST_CASE("importing a file that is not a tuning database throws, naming the file") {
  TempDir tmp;
  TuningDatabase db(tmp.path() / "tuning.json");
  db.store(entry_of(key_of("softmax", 1)));
  const fs::path in = tmp.path() / "incoming.json";
  std::string what;
  SUBCASE("garbage") {
    write_file(in, "not json at all");
    what = "not valid JSON";
  }
  SUBCASE("wrong schema") {
    write_file(in, R"({"kiln_tuning_db": 1, "entries": {"k": {"key": 5, "candidates": []}}})");
    what = "the entry k: the key is a JSON number, not an object";
  }
  SUBCASE("newer") {
    write_file(in, R"({"kiln_tuning_db": 7, "entries": {}})");
    what = "format version 7";
  }
  SUBCASE("missing") {
    what = "No such file or directory";
  }
  CAPTURE(what);
  const std::string before = fs::exists(in) ? read_file(in) : "";
  CHECK_THROWS_WITH_AS(db.import_from(in), doctest::Contains(in.string().c_str()), kiln::Error);
  CHECK_THROWS_WITH_AS(db.import_from(in), doctest::Contains(what.c_str()), kiln::Error);
  CHECK(fs::exists(in) == !before.empty());  // not moved aside: it is the user's input
  if (!before.empty()) CHECK(read_file(in) == before);
  CHECK(db.entries().size() == 1);
}

TEST_CASE("a store into a directory it cannot write throws, naming the file, and keeps the old") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  TuningDatabase(file).store(entry_of(key_of("softmax", 1)));
  const std::string before = read_file(file);
  ::chmod(tmp.path().c_str(), 0555);  // readable, not writable (restored by ~TempDir)
  ::chmod(file.c_str(), 0644);
  const int code = in_child([&] {
    // Root writes anywhere: drop to nobody, for whom the directory is as unwritable.
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) return 77;
    TuningDatabase db(file);
    if (!db.find(key_of("softmax", 1))) return 2;  // still readable
    try {
      db.store(entry_of(key_of("softmax", 2)));
    } catch (const kiln::Error& e) {
      const std::string text = e.what();
      const bool names = text.find(file.string()) != std::string::npos &&
                         text.find("Permission denied") != std::string::npos;
      return names ? 0 : 3;
    }
    return 4;  // no throw
  });
  if (code == 77) {
    MESSAGE("skipped: root could not switch to uid 65534");
    return;
  }
  CHECK(code == 0);
  CHECK(read_file(file) == before);
}

TEST_CASE("a store that runs out of space throws, naming the file, and keeps the old") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  TuningDatabase(file).store(entry_of(key_of("softmax", 1)));
  const std::string before = read_file(file);
  const int code = in_child([&] {
    // A file size limit makes writes past it fail with EFBIG, as a full disk would fail
    // (both the journal's append and a rewrite of the file).
    ::signal(SIGXFSZ, SIG_IGN);
    const ::rlim_t limit = 64;
    const ::rlimit small{limit, limit};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) return 77;
    TuningDatabase db(file);
    try {
      db.store(entry_of(key_of("softmax", 2)));
    } catch (const kiln::Error& e) {
      const std::string text = e.what();
      return text.find(file.string()) != std::string::npos &&
                     text.find("File too large") != std::string::npos
                 ? 0
                 : 3;
    }
    return 4;
  });
  REQUIRE(code != 77);
  CHECK(code == 0);
  CHECK(read_file(file) == before);
  CHECK(files_with(tmp.path(), ".tmp").empty());
  StderrCapture err;
  CHECK(TuningDatabase(file).entries().size() == 1);  // no half-written journal line
  CHECK(err.text().empty());
}

TEST_CASE("the environment names the global database's file") {
  TempDir tmp;
  ScopedEnv db_var("KILN_TUNING_DB", nullptr), cache("KILN_CACHE", nullptr),
      dir("KILN_CACHE_DIR", tmp.path().c_str()), xdg("XDG_CACHE_HOME", nullptr);
  CHECK(TuningDatabase::default_file() == tmp.path() / "tuning.json");
  {
    ScopedEnv named("KILN_TUNING_DB", "rel/tuning.json");
    CHECK(TuningDatabase::default_file() == fs::current_path() / "rel" / "tuning.json");
  }
  {
    ScopedEnv no_dir("KILN_CACHE_DIR", nullptr), no_home("HOME", nullptr);
    CHECK(TuningDatabase::default_file().empty());
  }
  for (const char* on : {"1", "on", "TRUE"}) {
    ScopedEnv switched("KILN_TUNING_DB", on);
    CHECK(TuningDatabase::default_file() == tmp.path() / "tuning.json");
  }
  for (const char* off : {"0", "off", "False"}) {
    ScopedEnv switched("KILN_TUNING_DB", off);
    CHECK(TuningDatabase::default_file().empty());
  }
  {
    ScopedEnv literal("KILN_TUNING_DB", "./off");  // a file named like a switch
    CHECK(TuningDatabase::default_file() == fs::absolute("./off"));
  }
}

TEST_CASE("turning the kernel cache off leaves the tuning database on") {
  TempDir tmp;
  ScopedEnv db_var("KILN_TUNING_DB", nullptr), dir("KILN_CACHE_DIR", tmp.path().c_str()),
      xdg("XDG_CACHE_HOME", nullptr);
  for (const char* value : {"0", "off", "maybe"}) {  // even a value the cache rejects
    ScopedEnv cache("KILN_CACHE", value);
    CHECK(TuningDatabase::default_file() == tmp.path() / "tuning.json");
  }
  ScopedEnv cache("KILN_CACHE", "0"), off("KILN_TUNING_DB", "0");
  CHECK(TuningDatabase::default_file().empty());
}

TEST_CASE("a database in memory only keeps entries and writes nothing") {
  TempDir tmp;
  const fs::path cwd = fs::current_path();
  fs::current_path(tmp.path());
  TuningDatabase db{fs::path()};
  CHECK(db.file().empty());
  db.store(entry_of(key_of("softmax", 1)));
  db.store(entry_of(key_of("gemm", 1)));
  db.erase(key_of("gemm", 1));
  fs::current_path(cwd);
  CHECK(db.find(key_of("softmax", 1)).has_value());
  CHECK(db.entries().size() == 1);
  CHECK(fs::is_empty(tmp.path()));
}

namespace {

/// This process's bytes read and written through read() and write() so far (Linux's
/// /proc/self/io rchar and wchar), or -1 where they cannot be read.
long long io_bytes() {
  std::ifstream in("/proc/self/io");
  std::string name;
  long long value = 0, total = 0;
  int found = 0;
  while (in >> name >> value) {
    if (name == "rchar:" || name == "wchar:") {
      total += value;
      ++found;
    }
  }
  return found == 2 ? total : -1;
}

}  // namespace

TEST_CASE("stores cost their own entry's bytes, amortized, not the whole database's") {
  // Every store used to read the whole file back and write it whole: n stores cost n^2/2
  // entries' bytes. Counted in bytes read and written, not timed.
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  constexpr int stores = 1000;
  long long moved = 0;
  const int code = in_child([&] {
    const long long before = io_bytes();
    if (before < 0) return 77;
    TuningDatabase db(file);
    for (int k = 0; k < stores; ++k) db.store(small_entry_of(key_of("softmax", k)));
    const long long after = io_bytes();
    std::FILE* out = std::fopen((tmp.path() / "moved").c_str(), "w");
    if (!out) return 2;
    std::fprintf(out, "%lld", after - before);
    std::fclose(out);
    return 0;
  });
  if (code == 77) {
    MESSAGE("skipped: /proc/self/io cannot be read");
    return;
  }
  REQUIRE(code == 0);
  moved = std::stoll(read_file(tmp.path() / "moved"));
  std::uintmax_t size = fs::file_size(file);
  if (fs::exists(file.string() + ".journal")) size += fs::file_size(file.string() + ".journal");
  CAPTURE(moved);
  CAPTURE(size);
  CHECK(moved < static_cast<long long>(8 * size));  // was ~1500 times the size
  TuningDatabase db(file);
  CHECK(db.entries().size() == stores);
  CHECK(db.find(key_of("softmax", 0)).has_value());
  CHECK(db.find(key_of("softmax", stores - 1)).has_value());
}

TEST_CASE("a store appends to the journal; another database reads only what is new") {
  TempDir tmp;
  const fs::path file = tmp.path() / "tuning.json";
  const fs::path journal = file.string() + ".journal";
  TuningDatabase a(file), b(file);
  a.store(entry_of(key_of("softmax", 1)));  // the first store writes the file
  CHECK(fs::exists(file));
  a.store(entry_of(key_of("softmax", 2)));
  a.erase(key_of("softmax", 1));
  REQUIRE(fs::exists(journal));
  CHECK(count_of(read_file(journal), "\n") == 2);
  CHECK_FALSE(b.find(key_of("softmax", 1)).has_value());
  CHECK(b.find(key_of("softmax", 2)).has_value());
  // A line cut short by a writer that died is not read, and the next store cuts it off.
  { std::ofstream(journal, std::ios::app) << R"({"put": {"key": )"; }
  CHECK(b.entries().size() == 1);
  b.store(entry_of(key_of("softmax", 3)));
  CHECK(count_of(read_file(journal), "\n") == 3);
  StderrCapture err;
  TuningDatabase c(file);
  CHECK(c.entries().size() == 2);
  CHECK(err.text().empty());
  // A damaged whole line costs only itself, with a warning; the next store folds the
  // journal into the file.
  { std::ofstream(journal, std::ios::app) << "not json\n"; }
  StderrCapture err2;
  TuningDatabase d(file);
  CHECK(d.entries().size() == 2);
  const std::string text = err2.text();
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find("1 damaged lines") != std::string::npos);
  d.store(entry_of(key_of("softmax", 4)));
  CHECK_FALSE(fs::exists(journal));
  CHECK(TuningDatabase(file).entries().size() == 3);
}

TEST_CASE("the database is created private, and not used in a directory others can write") {
  TempDir tmp;
  SUBCASE("the file and its journal are created mode 0600") {
    const fs::path file = tmp.path() / "tuning.json";
    TuningDatabase db(file);
    db.store(entry_of(key_of("softmax", 1)));
    db.store(entry_of(key_of("softmax", 2)));
    struct ::stat st {};
    REQUIRE(::stat(file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat((file.string() + ".journal").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  SUBCASE("a directory others can write: one warning, nothing read or written there") {
    const fs::path dir = tmp.path() / "shared";
    fs::create_directory(dir);
    ::chmod(dir.c_str(), 0777);
    const fs::path file = dir / "tuning.json";
    {
      TuningDatabase planter(tmp.path() / "source.json");
      planter.store(entry_of(key_of("softmax", 1), 4096));
      planter.export_to(file);
    }
    const std::string planted = read_file(file);
    TuningDatabase db(file);
    StderrCapture err;
    CHECK_FALSE(db.find(key_of("softmax", 1)).has_value());
    db.store(entry_of(key_of("softmax", 2)));  // kept in memory for this run
    CHECK(db.find(key_of("softmax", 2)).has_value());
    const std::string text = err.text();
    CHECK(count_of(text, "kiln:") == 1);
    CHECK(text.find(dir.string()) != std::string::npos);
    CHECK(text.find("is writable by its group and by others (mode 0777)") != std::string::npos);
    CHECK(text.find("chmod 700") != std::string::npos);
    CHECK(text.find("KILN_TUNING_DB") != std::string::npos);
    CHECK(read_file(file) == planted);
    CHECK_FALSE(fs::exists(file.string() + ".journal"));
  }
  SUBCASE("a dangling symlink where an earlier kiln kept its lock file is not followed") {
    const fs::path file = tmp.path() / "tuning.json";
    const fs::path target = tmp.path() / "elsewhere";
    fs::create_symlink(target, file.string() + ".lock");
    TuningDatabase db(file);
    db.store(entry_of(key_of("softmax", 1)));
    CHECK_FALSE(fs::exists(target));
    CHECK(TuningDatabase(file).find(key_of("softmax", 1)).has_value());
  }
}
