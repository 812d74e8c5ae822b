// kiln: the command-line tool. Parses the command line (CLI11) into the settings of
// commands.hpp and runs the command; every error is one line on stderr and a non-zero exit
// status (2 for a bad command line, 1 for a failed command).

#include <cmath>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"

namespace {

int fail(const std::string& message) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  std::cerr << (line.starts_with("kiln") ? "" : "kiln: ") << line << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kiln::cli;
  CLI::App app{
      "kiln: what kiln sees, compiles, caches, tunes and profiles.\n\n"
      "Examples:\n"
      "  kiln info\n"
      "  kiln compile kernels/softmax.cu --arch sm_90 --resources\n"
      "  kiln cache stats\n"
      "  kiln tune show --factory softmax\n"
      "  kiln profile -o out -- ./my_program --size 4096\n"
      "  kiln report out/profile.json --top 10\n"
      "  kiln compare base.json new.json --threshold 3\n",
      "kiln"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "every command's options");

  InfoSettings info;
  auto* info_cmd = app.add_subcommand(
      "info", "GPUs, driver, compilers, CUPTI, XGBoost, caches and environment kiln sees");
  info_cmd->add_flag("--json", info.json_output, "as JSON");
  info_cmd->footer("Examples:\n  kiln info\n  kiln info --json | jq .devices");

  CompileSettings compile;
  bool ptx = false, sass = false, resources = false;
  auto* compile_cmd = app.add_subcommand(
      "compile",
      "compile a kernel source through kiln's JIT and caches; print PTX, SASS or "
      "resources");
  compile_cmd->add_option("file", compile.file, "the kernel source (.cu)")->required();
  compile_cmd->add_option("--arch", compile.arch, "target (default: the current GPU's)")
      ->check(CLI::IsMember(kiln::jit::supported_targets()));
  compile_cmd->add_option("-D", compile.defines, "define a macro: -DNAME or -DNAME=VALUE");
  compile_cmd->add_option("-I", compile.include_dirs, "add an include directory");
  compile_cmd->add_option("--spec", compile.spec_file,
                          "a kiln::gen::Spec as JSON (docs/cli.md); the source includes its "
                          "header as \"spec.hpp\"");
  auto* ptx_flag = compile_cmd->add_flag("--ptx", ptx, "print the PTX");
  auto* sass_flag =
      compile_cmd->add_flag("--sass", sass, "print the SASS (needs nvdisasm or cuobjdump)");
  auto* res_flag = compile_cmd->add_flag(
      "--resources", resources,
      "per kernel: registers, shared and local memory, spills, max threads per block");
  ptx_flag->excludes(sass_flag)->excludes(res_flag);
  sass_flag->excludes(res_flag);
  compile_cmd->footer(
      "Examples:\n  kiln compile kernels/softmax.cu --arch sm_90 --ptx\n"
      "  kiln compile my_kernel.cu --arch sm_80 -DTILE=64 -I include --resources\n"
      "  kiln compile my_kernel.cu --arch sm_90 --spec my_spec.json --ptx");

  CacheSettings cache;
  auto* cache_cmd = app.add_subcommand("cache", "the kernel disk cache (KILN_CACHE_DIR)");
  cache_cmd->require_subcommand(1);
  auto* cache_ls = cache_cmd->add_subcommand("ls", "entries: key, size, age, target, kernels");
  cache_ls->add_flag("--json", cache.json_output, "as JSON");
  auto* cache_stats = cache_cmd->add_subcommand("stats", "entries, total size, limit");
  cache_stats->add_flag("--json", cache.json_output, "as JSON");
  auto* cache_verify =
      cache_cmd->add_subcommand("verify", "check every entry; exit 1 if any is damaged");
  cache_verify->add_flag("--remove", cache.remove_damaged, "delete the damaged entries");
  auto* cache_prune =
      cache_cmd->add_subcommand("prune", "remove least recently used entries down to a size");
  cache_prune->add_option("--max-size", cache.max_size, "the size to keep: 500M, 2G, bytes")
      ->required();
  cache_cmd->add_subcommand("clear", "remove every entry");
  cache_cmd->footer(
      "Examples:\n  kiln cache ls\n  kiln cache verify --remove\n  kiln cache prune --max-size "
      "200M");

  TuneSettings tune;
  auto* tune_cmd = app.add_subcommand("tune", "the tuning database (KILN_TUNING_DB)");
  tune_cmd->require_subcommand(1);
  auto* tune_show = tune_cmd->add_subcommand("show", "entries: problem, best config and time");
  tune_show->add_option("--factory", tune.factory, "only this factory's entries");
  tune_show->add_flag("--json", tune.json_output, "as JSON");
  auto* tune_export = tune_cmd->add_subcommand("export", "write entries to a file");
  tune_export->add_option("file", tune.file, "the file to write")->required();
  tune_export->add_option("--factory", tune.factory, "only this factory's entries");
  auto* tune_import = tune_cmd->add_subcommand("import", "merge a file's entries in");
  tune_import->add_option("file", tune.file, "the file to read")
      ->required()
      ->check(CLI::ExistingFile);
  auto* tune_train =
      tune_cmd->add_subcommand("train", "train the performance model (needs XGBoost)");
  tune_train->add_option("--factory", tune.factory, "only this factory's entries");
  tune_train->add_option("-o,--output", tune.file, "write the model (JSON) here");
  auto* tune_eval = tune_cmd->add_subcommand(
      "evaluate", "the model's accuracy on held-out problems (needs XGBoost)");
  tune_eval->add_option("--factory", tune.factory, "only this factory's entries");
  tune_eval->add_option("--top-k", tune.top_k, "candidates the model policy times (default 3)")
      ->check(CLI::PositiveNumber);
  tune_eval->add_option("--holdout", tune.holdout, "share of problems held out (default 0.25)")
      ->check(CLI::Range(0.01, 0.99));
  tune_eval->add_option("--seed", tune.seed, "the split's seed (default 1)");
  tune_cmd->footer(
      "Examples:\n  kiln tune show --factory softmax\n  kiln tune export tuned.json\n"
      "  kiln tune evaluate --top-k 3");

  ReportSettings report;
  auto* report_cmd =
      app.add_subcommand("report",
                         "tables of a saved profile (profile.json or trace.json, or either "
                         "gzip-compressed: .json.gz)");
  report_cmd->add_option("profile", report.file, "the profile or trace")->required();
  report_cmd->add_option("--top", report.top, "kernels in the table (default 20)")
      ->check(CLI::PositiveNumber);
  report_cmd->add_option("--by", report.by, "kernel (default): top-N; device: the straggler view")
      ->check(CLI::IsMember({"kernel", "device"}));
  auto* csv_flag = report_cmd->add_flag("--csv", report.csv, "every record as CSV");
  report_cmd->add_flag("--json", report.json_output, "the profile as JSON")->excludes(csv_flag);
  report_cmd->footer(
      "Examples:\n  kiln report out/profile.json --top 10\n  kiln report out/trace.json --by "
      "device\n  kiln report out/profile.json --csv > kernels.csv\n"
      "  kiln report trace.json.gz   (a trace KILN_PROFILE=trace.json.gz wrote)");

  CompareSettings compare;
  auto* compare_cmd = app.add_subcommand(
      "compare",
      "per-kernel time of two profiles, traces or benchmark --json files (.json.gz too); "
      "the exit status is the number of regressions (at most 125)");
  compare_cmd->add_option("base", compare.base, "the reference run")->required();
  compare_cmd->add_option("new", compare.next, "the run to compare")->required();
  compare_cmd
      ->add_option("--threshold", compare.threshold,
                   "smallest change in percent that counts (default 5)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            try {
              std::size_t used = 0;
              const double d = std::stod(v, &used);
              if (used == v.size() && d >= 0 && std::isfinite(d)) return {};
            } catch (const std::exception&) {
            }
            return "takes a percentage >= 0, not '" + v + "'";
          },
          "PCT"));
  compare_cmd->footer(
      "Examples:\n  kiln compare base/profile.json new/profile.json\n"
      "  kiln compare bench-main.json bench-pr.json --threshold 2 || echo regressions: $?");

  ProfileSettings profile;
  auto* profile_cmd = app.add_subcommand(
      "profile",
      "run a program with kiln's profiler on; print the top kernels and write the "
      "trace, profile, CSV and roofline");
  profile_cmd->add_option("--counters", profile.counters,
                          "also collect hardware counters: 'default' or metric names separated by "
                          "commas (runs the program a second time, each kernel replayed)");
  profile_cmd->add_option("-o,--output", profile.dir,
                          "the output directory (default kiln-profile)");
  profile_cmd->add_option("--top", profile.top, "kernels in the table (default 20)")
      ->check(CLI::PositiveNumber);
  profile_cmd->add_option("command", profile.command, "-- PROGRAM ARGS...")->required();
  profile_cmd->prefix_command(false);
  profile_cmd->footer(
      "Examples:\n  kiln profile -o out -- ./build/examples/quickstart/quickstart\n"
      "  kiln profile --counters default -o out -- ./build/examples/profile/profile\n"
      "  kiln profile --counters dram__bytes_read.sum,dram__bytes_write.sum -- ./app");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "kiln";
    for (const auto* sub : app.get_subcommands()) {
      where += " " + sub->get_name();
      for (const auto* subsub : sub->get_subcommands()) where += " " + subsub->get_name();
    }
    std::string what = e.what();
    for (char& c : what) {
      if (c == '\n') c = ' ';
    }
    std::cerr << where << ": " << what << "; see " << where << " --help\n";
    return 2;
  }

  try {
    if (info_cmd->parsed()) return run_info(info, std::cout);
    if (compile_cmd->parsed()) {
      compile.output = ptx         ? CompileOutput::ptx
                       : sass      ? CompileOutput::sass
                       : resources ? CompileOutput::resources
                                   : CompileOutput::summary;
      return run_compile(compile, std::cout, std::cerr);
    }
    if (cache_cmd->parsed()) {
      cache.action = cache_cmd->get_subcommands().front()->get_name();
      return run_cache(cache, std::cout);
    }
    if (tune_cmd->parsed()) {
      tune.action = tune_cmd->get_subcommands().front()->get_name();
      return run_tune(tune, std::cout);
    }
    if (report_cmd->parsed()) return run_report(report, std::cout);
    if (compare_cmd->parsed()) return run_compare(compare, std::cout);
    if (profile_cmd->parsed()) return run_profile(profile, std::cout, std::cerr);
  } catch (const kiln::CompileError& e) {
    std::cerr << e.what() << "\n";  // the library's message, whole: the failing lines
    return 1;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
