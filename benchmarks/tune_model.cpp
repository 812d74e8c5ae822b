// benchmarks/tune_model: how well the performance model (KILN_TUNE=model) would have tuned,
// judged on a tuning database's own records. For each factory and version, a quarter of its
// tuned problems are held out, the model is trained on the rest and ranks the held-out
// problems' timed candidates; for k = 1, 2, 3, 5 it reports how often the k best-ranked
// include the measured best, how much slower the best of those k is, and how much timing
// `model` saves against `full` (in candidates, and in measured microseconds).
//
//   tune_model [--db FILE] [--factory NAME] [--top-k K] [--objective OBJ] [--json OUT]
//   tune_model --synthetic [...]   a made-up kernel with a known optimum instead of a database
//
// --db defaults to the database kiln uses (KILN_TUNING_DB, else tuning.json in the kernel
// cache directory); the file is only read. Without XGBoost it prints why and exits 0.
// Exit status: 0 done, 1 the database cannot be read, 2 bad arguments.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "kiln/factory/model.hpp"
#include "kiln/factory/tuning_db.hpp"

using namespace kiln::factory;
using nlohmann::json;

namespace {

// The made-up kernel of tests/factory/model_test.cpp: time falls with threads*vec until it
// passes the row length, then idle lanes cost quadratically; vec 4 and 256 threads are best
// among equals. Problems: rows 128..8192, cols 64..64Ki, f16/f32, two devices; 3% noise.
std::vector<TuningEntry> synthetic_entries() {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0, 0.03);
  std::vector<TuningEntry> out;
  for (int sms : {132, 108}) {
    for (int rows : {128, 1024, 8192}) {
      for (int cols = 64; cols <= 65536; cols *= 2) {
        for (const char* dtype : {"f16", "f32"}) {
          TuningEntry e;
          e.key.factory = "synthetic";
          e.key.version = 1;
          e.key.params = {{"rows", rows}, {"cols", cols}, {"dtype", dtype}};
          e.key.device = sms == 132 ? "H100" : "A100";
          e.device_features = {{"multiprocessors", sms}, {"warp_size", 32}, {"l2_bytes", 5e7}};
          for (int threads : {32, 64, 128, 256, 512, 1024}) {
            for (int vec : {1, 2, 4, 8}) {
              CandidateRecord r;
              r.config = {{"threads", threads}, {"vec", vec}};
              if (std::string(dtype) == "f32" && threads == 1024 && vec == 8) {
                r.status = CandidateStatus::resources;
              } else {
                const double lanes = threads * vec, bytes = std::string(dtype) == "f32" ? 4 : 2;
                double t = double(rows) * cols * bytes / (50.0 * lanes);
                if (lanes > cols) t *= (lanes / cols) * (lanes / cols);
                t *= 1 + 0.15 * std::abs(std::log2(vec) - 2) +
                     0.1 * std::abs(std::log2(threads) - 8);
                r.time_us = (2 + t * 132.0 / sms) * std::exp(noise(rng));
              }
              e.candidates.push_back(r);
            }
          }
          out.push_back(std::move(e));
        }
      }
    }
  }
  return out;
}

int usage(const char* self) {
  std::fprintf(stderr,
               "usage: %s [--db FILE | --synthetic] [--factory NAME] [--top-k K] "
               "[--objective reg:squarederror|rank:pairwise] [--json OUT]\n",
               self);
  return 2;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string db_file, factory, json_out;
  bool synthetic = false;
  std::vector<std::size_t> ks = {1, 2, 3, 5};
  ModelOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--db" && has_value) {
      db_file = argv[++i];
    } else if (a == "--factory" && has_value) {
      factory = argv[++i];
    } else if (a == "--json" && has_value) {
      json_out = argv[++i];
    } else if (a == "--objective" && has_value) {
      options.objective = argv[++i];
    } else if (a == "--synthetic") {
      synthetic = true;
    } else if (a == "--top-k" && has_value) {
      char* end = nullptr;
      const long k = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || k < 1 || k > 1000) return usage(argv[0]);
      ks = {std::size_t(k)};
    } else {
      return usage(argv[0]);
    }
  }
  if (synthetic && !db_file.empty()) return usage(argv[0]);

  if (!PerformanceModel::available()) {
    std::printf("XGBoost is not available, so there is no model to evaluate:\n%s\n",
                PerformanceModel::unavailable_reason().c_str());
    return 0;
  }

  std::vector<TuningEntry> entries;
  if (synthetic) {
    db_file = "(synthetic)";
    entries = synthetic_entries();
  } else {
    if (db_file.empty()) db_file = TuningDatabase::default_file().string();
    if (db_file.empty()) {
      std::fprintf(stderr, "tune_model: no tuning database (KILN_CACHE is off); use --db FILE\n");
      return 1;
    }
    std::ifstream in(db_file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "tune_model: cannot read the tuning database %s\n", db_file.c_str());
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    // Parsed here rather than through TuningDatabase, which sets a corrupt file aside:
    // this tool only reads.
    const auto parsed = detail::parse_tuning_db(text.str());
    if (!parsed.problem.empty() || parsed.newer_version != 0) {
      std::fprintf(stderr, "tune_model: %s is not a tuning database this kiln reads: %s\n",
                   db_file.c_str(),
                   parsed.newer_version ? "its format version is newer" : parsed.problem.c_str());
      return 1;
    }
    for (const auto& [id, entry] : parsed.entries) entries.push_back(entry);
  }

  // One model per factory and version, as KILN_TUNE=model trains them.
  std::map<std::pair<std::string, int>, std::vector<TuningEntry>> groups;
  for (auto& e : entries) {
    if (factory.empty() || e.key.factory == factory) {
      groups[{e.key.factory, e.key.version}].push_back(std::move(e));
    }
  }
  std::printf("tuning database: %s (%zu factory versions); objective %s\n\n", db_file.c_str(),
              groups.size(), options.objective.c_str());
  if (groups.empty()) {
    std::printf("no entries%s%s\n", factory.empty() ? "" : " of factory ", factory.c_str());
  }

  json results = json::array();
  bool header = false;
  for (const auto& [name, group] : groups) {
    for (std::size_t k : ks) {
      ModelEvaluation ev;
      try {
        ev = evaluate(group, k, 0.25, 1, options);
      } catch (const kiln::LibraryError&) {
        throw;
      } catch (const kiln::Error& e) {
        std::printf("%s v%d: not evaluated: %s\n", name.first.c_str(), name.second, e.what());
        results.push_back({{"factory", name.first}, {"version", name.second}, {"error", e.what()}});
        break;
      }
      if (!header) {
        std::printf(
            "| factory | k | train | test | top-k hit | mean best ratio | worst ratio "
            "| timed (model/full) | saved | time saved |\n");
        std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        header = true;
      }
      std::printf(
          "| %s v%d | %zu | %zu | %zu | %.1f%% | %.4f | %.3f | %zu/%zu | %.1f%% | %.1f%% |\n",
          name.first.c_str(), name.second, k, ev.train_entries, ev.test_entries, 100 * ev.hit_rate,
          ev.mean_best_ratio, ev.worst_best_ratio, ev.candidates_model, ev.candidates_full,
          100 * ev.candidates_saved, 100 * ev.time_saved);
      results.push_back({{"factory", name.first},
                         {"version", name.second},
                         {"top_k", k},
                         {"train_entries", ev.train_entries},
                         {"test_entries", ev.test_entries},
                         {"hit_rate", ev.hit_rate},
                         {"mean_best_ratio", ev.mean_best_ratio},
                         {"worst_best_ratio", ev.worst_best_ratio},
                         {"candidates_model", ev.candidates_model},
                         {"candidates_full", ev.candidates_full},
                         {"candidates_saved", ev.candidates_saved},
                         {"time_model_us", ev.time_model_us},
                         {"time_full_us", ev.time_full_us},
                         {"time_saved", ev.time_saved}});
    }
  }
  if (!json_out.empty()) {
    std::ofstream out(json_out);
    out << json({{"tool", "tune_model"},
                 {"db", db_file},
                 {"objective", options.objective},
                 {"holdout_fraction", 0.25},
                 {"results", results}})
               .dump(2)
        << "\n";
    if (!out) {
      std::fprintf(stderr, "tune_model: cannot write %s\n", json_out.c_str());
      return 1;
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tune_model: %s\n", e.what());
  return 1;
}
