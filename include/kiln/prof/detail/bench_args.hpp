#pragma once
/// kiln::prof::BenchArgs: the command line every benchmark executable shares, and report(),
/// which prints the table and writes the JSON. Part of kiln/prof/bench.hpp; host-only.

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../error.hpp"
#include "bench_loop.hpp"
#include "bench_result.hpp"

namespace kiln::prof {

/// A benchmark's command line:
///   --json FILE    also write the results as JSON to FILE
///   --noise PCT    stop a variant once its median is known to PCT percent (default 0.5;
///                  0: never stop on noise)
///   --seconds S    time budget for sampling (default 5)
///   --no-flush     do not flush L2 between samples
///   --help         print this and exit 0
/// Values may also be given as --flag=value.
struct BenchArgs {
  std::string json_path;                             ///< empty: no JSON
  double max_noise = StopRule{}.max_relative_noise;  ///< a fraction: --noise 0.5 sets 0.005
  double max_seconds = StopRule{}.max_seconds;
  bool flush_l2 = true;

  static std::string usage(std::string_view program) {
    return fmt::format(
        "usage: {} [--json FILE] [--noise PCT] [--seconds S] [--no-flush]\n"
        "  --json FILE   also write the results as JSON to FILE\n"
        "  --noise PCT   stop once each median is known to PCT percent (default {:g}; 0: never)\n"
        "  --seconds S   time budget for sampling, in seconds (default {:g})\n"
        "  --no-flush    do not flush L2 before each sample\n",
        program, 100 * StopRule{}.max_relative_noise, StopRule{}.max_seconds);
  }

  /// Parses argv. Throws kiln::Error naming the flag for a missing or bad value, and for an
  /// unknown argument unless `unparsed` is given (unknown arguments are then appended to it,
  /// for the benchmark's own flags). --help prints usage() and exits 0.
  static BenchArgs parse(int argc, char** argv, std::vector<std::string>* unparsed = nullptr) {
    BenchArgs a;
    const std::string program = argc > 0 && argv[0] ? argv[0] : "benchmark";
    auto number = [](std::string_view flag, std::string_view text) {
      std::string_view digits = text;
      if (flag == "--noise" && !digits.empty() && digits.back() == '%') digits.remove_suffix(1);
      double v = 0;
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
          !std::isfinite(v)) {
        throw Error(fmt::format("kiln: {} takes a number, not '{}'", flag, text));
      }
      return v;
    };
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      std::string_view flag = arg, value;
      bool inline_value = false;
      if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != arg.npos) {
        flag = arg.substr(0, eq);
        value = arg.substr(eq + 1);
        inline_value = true;
      }
      auto take_value = [&](const char* what) {
        if (inline_value) return value;
        if (i + 1 >= argc) throw Error(fmt::format("kiln: {} needs a value ({})", flag, what));
        return std::string_view(argv[++i]);
      };
      if (flag == "--json") {
        a.json_path = std::string(take_value("FILE"));
        if (a.json_path.empty()) throw Error("kiln: --json needs a file name");
      } else if (flag == "--noise") {
        const double pct = number(flag, take_value("PCT"));
        if (pct < 0) throw Error(fmt::format("kiln: --noise takes a percentage >= 0, not {}", pct));
        a.max_noise = pct / 100;
      } else if (flag == "--seconds") {
        a.max_seconds = number(flag, take_value("S"));
        if (!(a.max_seconds > 0)) {
          throw Error(fmt::format("kiln: --seconds takes a time > 0, not {}", a.max_seconds));
        }
      } else if (flag == "--no-flush" && !inline_value) {
        a.flush_l2 = false;
      } else if ((flag == "--help" || flag == "-h") && !inline_value) {
        std::fputs(usage(program).c_str(), stdout);
        std::exit(0);
      } else if (unparsed) {
        unparsed->emplace_back(arg);
      } else {
        throw Error(fmt::format("kiln: unknown argument '{}'\n{}", arg, usage(program)));
      }
    }
    return a;
  }

  /// BenchOptions with these settings (and the defaults for the rest).
  BenchOptions options() const {
    BenchOptions o;
    o.stop.max_relative_noise = max_noise;
    o.stop.max_seconds = max_seconds;
    o.flush_l2 = flush_l2;
    return o;
  }
};

/// Prints markdown(results) to stdout and, where args.json_path is set, writes
/// to_json(results) there. Throws kiln::Error when the file cannot be written.
inline void report(const std::vector<Result>& results, const BenchArgs& args) {
  std::fputs(markdown(results).c_str(), stdout);
  std::fflush(stdout);
  if (args.json_path.empty()) return;
  std::ofstream f(args.json_path);
  f << to_json(results).dump(2) << '\n';
  if (!f.flush()) throw Error("kiln: cannot write the benchmark's JSON to " + args.json_path);
}

}  // namespace kiln::prof
