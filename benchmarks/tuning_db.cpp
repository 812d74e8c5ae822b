// benchmarks/tuning_db: what the tuning database costs at scale (no GPU needed). A database
// of N entries (default 100,000, each with C timed candidates, default 1, with their
// resources) is written to a fresh private directory; then, in the same run:
//
//   load              a fresh TuningDatabase's first find(), which reads the file whole
//                     (target: under 1 s at 100,000 entries)
//   json::parse       nlohmann's plain parse of the same text into a document, for scale:
//                     the load reads the text straight into the records, without one
//   store             one store into the loaded database (mean of --stores, default 200):
//                     appended to the journal, with the folds into the file amortized in
//   find after store  another database's first lookup after such a store (it reads only
//                     the journal's new line)
//
//   tuning_db [--entries N] [--candidates C] [--stores S] [--json FILE]
//
// The load reads with the fast reader (kiln/factory/detail/tuning_db_reader.hpp), which
// builds the records in one pass over the text, with no JSON document in between. Measured on
// a shared 2-core x86-64 machine, Release build (-O3): 100,000 entries, C = 1 (102 MB), load
// 0.47-0.51 s, json::parse 0.94-1.04 s in the same runs (0.49-0.81 s when the machine was
// busier); through the document, as before the fast reader, the load took 2.9-3.0 s. C = 4
// (209 MB): load 0.81 s, before 5.3 s.
//
// Prints a markdown table; --json FILE writes load_s, parse_s, store_ms, find_after_store_ms.
// Exit status: 0 done, 1 a step failed, 2 bad arguments.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "kiln/factory/tuning_db.hpp"

using namespace kiln::factory;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

TuningEntry entry_of(int n, int candidates) {
  TuningEntry e;
  e.key.factory = n % 2 ? "softmax" : "rms_norm";
  e.key.version = 3;
  e.key.params = {{"rows", n}, {"cols", 4096 + n % 7}, {"dtype", "f16"}};
  e.key.device = "NVIDIA H200";
  e.key.arch = "sm_90";
  e.key.driver_version = 12080;
  e.key.compiler = "nvrtc 12.8";
  e.device_features = {{"multiprocessors", 132}, {"l2_bytes", 52428800.0}};
  for (int c = 0; c < candidates; ++c) {
    CandidateRecord r{
        {{"block", 64 << c}, {"vector", 4}}, CandidateStatus::timed, 10.0 + c + n % 13, 0.01, ""};
    r.resources = {32 + c, 0, 64 << c, 0, 0, 8};
    e.candidates.push_back(r);
  }
  e.best = {{"block", 128}, {"vector", 4}};
  e.policy = "full";
  e.when = "2025-06-01T12:00:00Z";
  return e;
}

int usage(const char* self) {
  std::fprintf(stderr, "usage: %s [--entries N] [--candidates C] [--stores S] [--json FILE]\n",
               self);
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  long entries = 100000, candidates = 1, stores = 200;
  std::string json_out;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if ((a == "--entries" || a == "--candidates" || a == "--stores") && has_value) {
      char* end = nullptr;
      const long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v < 1 || v > 10000000) return usage(argv[0]);
      (a == "--entries" ? entries : a == "--stores" ? stores : candidates) = v;
    } else if (a == "--json" && has_value) {
      json_out = argv[++i];
    } else {
      return usage(argv[0]);
    }
  }

  std::string dir_name = (fs::temp_directory_path() / "kiln-bench-tuning-db-XXXXXX").string();
  if (!::mkdtemp(dir_name.data())) {
    std::fprintf(stderr, "tuning_db: cannot create a temp directory\n");
    return 1;
  }
  const fs::path dir = dir_name;
  const fs::path file = dir / "tuning.json";
  {
    detail::TuningEntries all;
    for (int n = 0; n < entries; ++n) {
      TuningEntry e = entry_of(n, int(candidates));
      std::string id = e.key.id();
      all.insert_or_assign(std::move(id), std::move(e));
    }
    std::ofstream(file, std::ios::binary) << detail::dump_tuning_db(all);
  }
  const auto bytes = fs::file_size(file);

  auto start = Clock::now();
  TuningDatabase db(file);
  const bool found = db.find(entry_of(int(entries) - 1, int(candidates)).key).has_value();
  const double load_s = seconds_since(start);
  const std::size_t loaded = db.entries().size();

  std::string text;
  {
    std::ifstream in(file, std::ios::binary);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  start = Clock::now();
  const auto doc = nlohmann::json::parse(text);
  const double parse_s = seconds_since(start);

  TuningDatabase other(file);
  (void)other.entries();
  double store_s = 0, find_s = 0;
  for (long s = 0; s < stores; ++s) {
    start = Clock::now();
    db.store(entry_of(static_cast<int>(entries + s), int(candidates)));
    store_s += seconds_since(start);
    start = Clock::now();
    const bool seen =
        other.find(entry_of(static_cast<int>(entries + s), int(candidates)).key).has_value();
    find_s += seconds_since(start);
    if (!seen) {
      std::fprintf(stderr, "tuning_db: a store was not seen by another database\n");
      return 1;
    }
  }
  const double store_ms = 1e3 * store_s / double(stores);
  const double find_ms = 1e3 * find_s / double(stores);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!found || loaded != static_cast<std::size_t>(entries) || doc.at("entries").size() != loaded) {
    std::fprintf(stderr, "tuning_db: loaded %zu of %ld entries\n", loaded, entries);
    return 1;
  }

  std::printf("tuning database of %ld entries of %ld candidates (%.1f MB)\n\n", entries, candidates,
              double(bytes) / 1e6);
  std::printf("| step | time | peer: json::parse | ratio |\n|---|---:|---:|---:|\n");
  std::printf("| load | %.3f s | %.3f s | %.2f |\n", load_s, parse_s, load_s / parse_s);
  std::printf("| store (mean of %ld) | %.3f ms | | |\n", stores, store_ms);
  std::printf("| find after another's store | %.3f ms | | |\n", find_ms);
  if (!json_out.empty()) {
    std::ofstream(json_out) << nlohmann::json{{"entries", entries},
                                              {"candidates", candidates},
                                              {"bytes", bytes},
                                              {"load_s", load_s},
                                              {"parse_s", parse_s},
                                              {"store_ms", store_ms},
                                              {"find_after_store_ms", find_ms}}
                                   .dump(2)
                            << "\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tuning_db: %s\n", e.what());
  return 1;
}
