#pragma once
// The `kiln` command-line tool's commands, without their command line: each takes its
// settings and writes to an output stream, returns the exit status, and throws
// kiln::Error with one line saying what was wrong and what to do. main.cpp parses the
// command line into these settings (CLI11); tests/cli calls them directly too.

#ifndef FMT_HEADER_ONLY
#define FMT_HEADER_ONLY 1
#endif
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gzip.hpp"
#include "kiln/factory/model.hpp"
#include "kiln/factory/tuning_db.hpp"
#include "kiln/gen/spec_json.hpp"
#include "kiln/jit.hpp"
#include "kiln/jit/resources.hpp"
#include "kiln/prof/bench.hpp"
#include "kiln/prof/compare.hpp"
#include "kiln/prof/counters.hpp"
#include "kiln/prof/registry.hpp"
#include "kiln/prof/report.hpp"
#include "kiln/prof/roofline.hpp"
#include "kiln/prof/trace.hpp"
#include "kiln/rt/default_target.hpp"
#include "kiln/rt/device.hpp"
#include "kiln/rt/driver.hpp"

namespace kiln::cli {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------- helpers

/// The whole of the file at `path`, or kiln::Error naming it.
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("kiln: cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The JSON in `path`, gzip-compressed or not (kiln writes traces as .json.gz where asked).
inline json read_json(const std::string& path) {
  std::string text = read_text(path);
  if (is_gzip(text)) text = read_gzip_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error("kiln: " + path + " is not JSON (" + std::string(e.what()) +
                "); pass a kiln profile, a kiln trace or a benchmark --json file");
  }
}

/// A size in bytes written as "12K", "3.5M", "1G" (powers of 1024) or plain bytes.
inline std::uint64_t parse_size(const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if (unit.ends_with("IB")) unit.erase(unit.size() - 2);
  if (unit.ends_with("B")) unit.pop_back();
  const std::map<std::string, double> scale = {
      {"", 1.0}, {"K", 1024.0}, {"M", 1024.0 * 1024}, {"G", 1024.0 * 1024 * 1024}};
  const auto it = scale.find(unit);
  if (used == 0 || it == scale.end() || !(v >= 0) || !std::isfinite(v)) {
    throw Error("kiln: --max-size takes a size such as 500M, 2G or 1048576, not '" + text + "'");
  }
  return static_cast<std::uint64_t>(v * it->second);
}

inline std::string human_size(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < (1u << 20)) return fmt::format("{:.1f} KiB", double(bytes) / 1024);
  if (bytes < (1u << 30)) return fmt::format("{:.1f} MiB", double(bytes) / (1 << 20));
  return fmt::format("{:.2f} GiB", double(bytes) / (1 << 30));
}

/// How long ago `sec` (seconds since the epoch) was: "12s", "5m", "3h", "2d".
inline std::string age(std::int64_t sec) {
  const std::int64_t now = std::int64_t(std::time(nullptr));
  const std::int64_t d = std::max<std::int64_t>(now - sec, 0);
  if (d < 120) return fmt::format("{}s", d);
  if (d < 2 * 3600) return fmt::format("{}m", d / 60);
  if (d < 2 * 86400) return fmt::format("{}h", d / 3600);
  return fmt::format("{}d", d / 86400);
}

// ---------------------------------------------------------------------------------- info

struct InfoSettings {
  bool json_output = false;
};

/// The first of `candidates` that the dynamic loader opens, or "" (with `why`).
inline std::string library_found(const char* what, const std::vector<std::string>& candidates,
                                 const char* variable, std::string& why) {
  try {
    return kiln::detail::DynamicLibrary::open_first(what, candidates, variable).path();
  } catch (const std::exception& e) {
    why = e.what();
    return {};
  }
}

/// What kiln sees on this machine, as JSON (`kiln info --json`).
inline json info_json() {
  json j;
  // Devices and the driver.
  json devices = json::array();
  std::string driver_problem;
  try {
    (void)rt::driver();
  } catch (const std::exception& e) {
    driver_problem = e.what();
  }
  j["driver"] = {{"available", driver_problem.empty()}};
  if (!driver_problem.empty()) {
    j["driver"]["reason"] = driver_problem;
  } else {
    // The version as the driver reports it: CUDA's 13000 is 13.0, HIP's its own number.
    const rt::DriverApi& api = rt::driver();
    const int v = api.driver_version;
    j["driver"]["platform"] = api.platform == rt::Platform::cuda ? "CUDA" : "HIP";
    j["driver"]["version"] = api.platform == rt::Platform::cuda
                                 ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10)
                                 : std::to_string(v);
    j["driver"]["library"] = api.library;
  }
  for (int i = 0; i < rt::device_count(); ++i) {
    const rt::DeviceProperties p = rt::Device(i).properties();
    const prof::DevicePeaks peaks = prof::peaks_for(p);
    devices.push_back({{"ordinal", i},
                       {"name", p.name},
                       {"arch", p.arch},
                       {"multiprocessors", p.multiprocessors},
                       {"memory_bytes", p.total_memory},
                       {"sm_clock_mhz", p.sm_clock_khz / 1000},
                       {"memory_clock_mhz", p.memory_clock_khz / 1000},
                       {"l2_bytes", p.l2_bytes},
                       {"peaks",
                        {{"bandwidth", peaks.bandwidth},
                         {"fp32_flops", peaks.fp32_flops},
                         {"tensor_fp16_flops", peaks.tensor_fp16_flops},
                         {"source", peaks.source}}}});
  }
  j["devices"] = devices;
  // Compilers.
  json nvrtc = {{"library", jit::nvrtc_library_path()}};
  try {
    nvrtc["version"] = jit::compiler_for("sm_90").version();
    nvrtc["available"] = true;
  } catch (const std::exception& e) {
    nvrtc["available"] = false;
    nvrtc["reason"] = e.what();
  }
  j["nvrtc"] = nvrtc;
  json hiprtc;
  try {
    hiprtc["version"] = jit::compiler_for("gfx942").version();
    hiprtc["available"] = true;
  } catch (const std::exception& e) {
    hiprtc["available"] = false;
    hiprtc["reason"] = e.what();
  }
  j["hiprtc"] = hiprtc;
  const fs::path cuda_include = jit::find_cuda_include_dir(jit::nvrtc_library_path());
  j["cuda_include_dir"] = cuda_include.string();
  // CUPTI and XGBoost, as kiln's profiler and performance model load them.
  std::string why;
  std::vector<std::string> cupti = {"libcupti.so.13", "/usr/local/cuda/lib64/libcupti.so.13",
                                    "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13",
                                    "libcupti.so.12"};
  for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
    if (const char* v = std::getenv(var); v && *v) {
      cupti.insert(cupti.begin(), std::string(v) + "/lib64/libcupti.so.13");
    }
  }
  const std::string cupti_found = library_found("CUPTI", cupti, "KILN_CUPTI_LIBRARY", why);
  j["cupti"] = {{"available", !cupti_found.empty()}, {"library", cupti_found}};
  j["xgboost"] = {{"available", factory::PerformanceModel::available()}};
  if (!factory::PerformanceModel::available()) {
    j["xgboost"]["reason"] = factory::PerformanceModel::unavailable_reason();
  } else {
    why.clear();
    j["xgboost"]["library"] = library_found(
        "XGBoost", factory::detail::xgboost_library_candidates(), "KILN_XGBOOST_LIBRARY", why);
  }
  // Caches.
  json cache;
  try {
    const jit::DiskCacheConfig c = jit::DiskCacheConfig::from_environment();
    cache = {{"dir", c.dir.string()}, {"enabled", c.enabled}, {"max_bytes", c.max_bytes}};
    if (!c.enabled) cache["reason"] = c.disabled_reason;
  } catch (const std::exception& e) {
    cache = {{"enabled", false}, {"reason", e.what()}};
  }
  j["cache"] = cache;
  try {
    const fs::path db = factory::TuningDatabase::default_file();
    j["tuning_db"] = {{"file", db.string()}, {"in_memory", db.empty()}};
  } catch (const std::exception& e) {
    j["tuning_db"] = {{"error", e.what()}};
  }
  try {
    j["kiln_include_dir"] = jit::kiln_include_dir().string();
  } catch (const std::exception& e) {
    j["kiln_include_dir"] = std::string("not found: ") + e.what();
  }
  // The environment variables kiln reads that are set.
  json env = json::object();
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    const std::string name = entry.substr(0, eq);
    if (name.starts_with("KILN_") || name == "CUDA_PATH" || name == "CUDA_HOME" ||
        name == "XDG_CACHE_HOME") {
      env[name] = eq == std::string::npos ? "" : entry.substr(eq + 1);
    }
  }
  j["environment"] = env;
  return j;
}

inline std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

/// `text` on one line: line breaks become "; ", and a leading "kiln: " goes.
inline std::string one_line(std::string text) {
  if (text.starts_with("kiln: ")) text.erase(0, 6);
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ' ' && (out.empty() || out.back() == ' ')) continue;
    if (text[i] != '\n') {
      out += text[i];
    } else if (i + 1 < text.size()) {
      out += out.ends_with(':') ? " " : "; ";
    }
  }
  return out;
}

inline int run_info(const InfoSettings& s, std::ostream& out) {
  const json j = info_json();
  if (s.json_output) {
    out << j.dump(2) << "\n";
    return 0;
  }
  out << "GPUs:\n";
  if (j["devices"].empty()) {
    out << "  no GPU found: "
        << (j["driver"]["available"].get<bool>() ? std::string("the driver reports no device")
                                                 : one_line(j["driver"].value("reason", "")))
        << "\n";
  }
  for (const auto& d : j["devices"]) {
    const auto& p = d["peaks"];
    out << fmt::format(
        "  {}: {} ({}), {} SMs, {}, SM clock {} MHz, memory clock {} MHz, L2 {}\n"
        "     peaks ({}): {}, FP32 {}, FP16 tensor {}\n",
        d["ordinal"].get<int>(), d["name"].get<std::string>(), d["arch"].get<std::string>(),
        d["multiprocessors"].get<int>(), human_size(d["memory_bytes"].get<std::uint64_t>()),
        d["sm_clock_mhz"].get<int>(), d["memory_clock_mhz"].get<int>(),
        human_size(d["l2_bytes"].get<std::uint64_t>()), p["source"].get<std::string>(),
        prof::detail::si(p["bandwidth"].get<double>(), "B/s"),
        prof::detail::si(p["fp32_flops"].get<double>(), "FLOP/s"),
        prof::detail::si(p["tensor_fp16_flops"].get<double>(), "FLOP/s"));
  }
  if (j["driver"]["available"].get<bool>()) {
    out << fmt::format("{:<10}{} {} ({})\n", "driver:", j["driver"]["platform"].get<std::string>(),
                       j["driver"]["version"].get<std::string>(),
                       j["driver"]["library"].get<std::string>());
  } else {
    out << fmt::format("{:<10}not found\n", "driver:");
  }
  auto found = [&](const char* what, const json& c, const std::string& detail) {
    out << fmt::format("{:<10}{}\n", what,
                       c["available"].get<bool>()
                           ? detail
                           : "not found: " + first_line(c.value("reason", std::string("-"))));
  };
  found("NVRTC:", j["nvrtc"],
        j["nvrtc"].value("version", "") + " (" + j["nvrtc"]["library"].get<std::string>() + ")");
  found("hipRTC:", j["hiprtc"], j["hiprtc"].value("version", ""));
  found("CUPTI:", j["cupti"], j["cupti"].value("library", ""));
  found("XGBoost:", j["xgboost"], j["xgboost"].value("library", ""));
  out << fmt::format("{:<10}{}\n", "CUDA:",
                     j["cuda_include_dir"].get<std::string>().empty()
                         ? std::string("headers not found")
                         : "headers in " + j["cuda_include_dir"].get<std::string>());
  out << fmt::format("{:<10}{}\n", "headers:", j["kiln_include_dir"].get<std::string>());
  const json& c = j["cache"];
  out << fmt::format("{:<10}{}\n", "cache:",
                     c.value("enabled", false)
                         ? c["dir"].get<std::string>() + " (limit " +
                               human_size(c["max_bytes"].get<std::uint64_t>()) + ")"
                         : "off: " + c.value("reason", std::string()));
  const json& t = j["tuning_db"];
  out << fmt::format("{:<10}{}\n", "tuning:",
                     t.contains("error")          ? t["error"].get<std::string>()
                     : t["in_memory"].get<bool>() ? std::string("in memory only")
                                                  : t["file"].get<std::string>());
  out << "environment:";
  if (j["environment"].empty()) out << " (no kiln variable set)";
  out << "\n";
  for (const auto& [name, value] : j["environment"].items()) {
    out << "  " << name << "=" << value.get<std::string>() << "\n";
  }
  return 0;
}

// ---------------------------------------------------------------------------------- compile

enum class CompileOutput { summary, ptx, sass, resources };

struct CompileSettings {
  std::string file;
  std::string arch;  // empty: the current device's
  std::vector<std::string> defines;
  std::vector<std::string> include_dirs;
  std::string spec_file;  // a kiln::gen::Spec as JSON, handed to the source as "spec.hpp"
  CompileOutput output = CompileOutput::summary;
};

/// The first of `names` found as an executable in PATH or in the CUDA toolkit's bin.
inline std::string find_tool(const std::vector<std::string>& names) {
  std::vector<fs::path> dirs;
  if (const char* path = std::getenv("PATH")) {
    for (const auto& d : jit::detail::split_path_list(path)) dirs.push_back(d);
  }
  for (const char* var : {"CUDA_PATH", "CUDA_HOME"}) {
    if (const char* v = std::getenv(var); v && *v) dirs.push_back(fs::path(v) / "bin");
  }
  dirs.emplace_back("/usr/local/cuda/bin");
  for (const auto& name : names) {
    for (const auto& d : dirs) {
      const fs::path p = d / name;
      if (::access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return {};
}

/// Runs `argv` and returns what it wrote to stdout; kiln::Error where it fails.
inline std::string capture(const std::vector<std::string>& argv) {
  std::string command;
  for (const auto& a : argv) {
    std::string quoted = "'";
    for (char c : a) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    command += (command.empty() ? "" : " ") + quoted + "'";
  }
  std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (!p) throw Error("kiln: could not run " + argv.front());
  std::string out;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, p)) > 0;) out.append(buffer, n);
  const int status = ::pclose(p);
  if (status != 0) {
    throw Error("kiln: " + argv.front() + " failed: " + first_line(out));
  }
  return out;
}

inline jit::Options compile_options(const CompileSettings& s) {
  jit::Options o;
  o.target = s.arch.empty() ? jit::default_target() : s.arch;
  for (const auto& d : s.defines) {
    const auto eq = d.find('=');
    o.defines.emplace_back(d.substr(0, eq), eq == std::string::npos ? "" : d.substr(eq + 1));
  }
  for (const auto& i : s.include_dirs) o.include_dirs.push_back(fs::absolute(i).string());
  if (s.output == CompileOutput::resources && !jit::is_amd_target(o.target)) {
    o.extra.push_back(jit::resource_usage_flag);
  }
  o.validate();
  return o;
}

/// The resources table of `kernels`.
inline std::string resources_table(const std::vector<jit::KernelResources>& kernels,
                                   const std::string& target) {
  auto value = [](long long v) { return v < 0 ? std::string("-") : std::to_string(v); };
  std::string out = fmt::format(
      "| kernel | registers | shared bytes | local bytes (stack) | spill stores | spill loads | "
      "max threads/block |\n|:--|--:|--:|--:|--:|--:|--:|\n");
  for (const auto& k : kernels) {
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {}{} |\n",
                       prof::detail::markdown_cell(prof::short_name(k.name)), value(k.registers),
                       value(k.shared_bytes), value(k.stack_bytes), value(k.spill_store_bytes),
                       value(k.spill_load_bytes), value(k.max_threads_per_block),
                       k.launch_bound_threads > 0 ? " (launch bounds)" : "");
  }
  if (kernels.empty()) out += "|  (no kernels in the binary) |  |  |  |  |  |  |\n";
  if (jit::is_amd_target(target)) {
    out += "\nResources are read from ptxas's report, which only NVIDIA targets have.\n";
  }
  return out;
}

inline int run_compile(const CompileSettings& s, std::ostream& out, std::ostream& err) {
  const jit::Options options = compile_options(s);
  // A file that exists is read at its path; another name is searched for as kiln searches
  // kernel sources (KILN_KERNEL_PATH, embedded sources, kiln's kernels/).
  std::error_code ec;
  const std::string name = fs::is_regular_file(s.file, ec) ? fs::absolute(s.file).string() : s.file;
  jit::Program program = jit::program_from_file(name, {fs::current_path()});
  if (!s.spec_file.empty()) {
    // As kiln's factories do: the Spec's header is the source's "spec.hpp".
    const gen::Spec spec = gen::spec_from_json_text(read_text(s.spec_file), s.spec_file);
    program.headers.push_back({"spec.hpp", spec.header()});
  }
  if (s.output == CompileOutput::sass && jit::is_amd_target(options.target)) {
    throw Error("kiln: --sass is for NVIDIA targets; " + options.target +
                " has no SASS (use --resources or --ptx for NVIDIA targets)");
  }
  std::string tool;
  if (s.output == CompileOutput::sass) {
    tool = find_tool({"nvdisasm", "cuobjdump"});
    if (tool.empty()) {
      throw Error(
          "kiln: --sass needs nvdisasm or cuobjdump from the CUDA toolkit, and neither is in "
          "PATH or the toolkit's bin; install them (cuda-nvdisasm, cuda-cuobjdump) or use --ptx");
    }
  }
  const auto binary = jit::KernelCache::global().get(program, options);
  switch (s.output) {
    case CompileOutput::ptx:
      if (binary->ptx.empty()) throw Error("kiln: the compiler gave no PTX for " + options.target);
      out << binary->ptx << (binary->ptx.ends_with('\n') ? "" : "\n");
      return 0;
    case CompileOutput::sass: {
      const fs::path cubin =
          fs::temp_directory_path() / fmt::format("kiln-sass-{}.cubin", ::getpid());
      prof::write_file(cubin.string(), binary->code);
      std::string text;
      try {
        text = fs::path(tool).filename() == "nvdisasm" ? capture({tool, "-c", cubin.string()})
                                                       : capture({tool, "-sass", cubin.string()});
      } catch (...) {
        fs::remove(cubin);
        throw;
      }
      fs::remove(cubin);
      out << text;
      return 0;
    }
    case CompileOutput::resources:
      out << resources_table(jit::kernel_resources(*binary), options.target);
      return 0;
    case CompileOutput::summary:
      break;
  }
  const auto names = jit::detail::elf_kernel_names(binary->code);
  out << fmt::format("{}: compiled for {} with {} {} ({} bytes of code, {} of PTX)\n", s.file,
                     options.target, binary->compiler, binary->compiler_version,
                     binary->code.size(), binary->ptx.size());
  for (const auto& n : names) out << "  kernel " << prof::demangle(n) << "\n";
  if (!binary->log.empty()) err << binary->log << "\n";
  return 0;
}

// ---------------------------------------------------------------------------------- cache

struct CacheSettings {
  std::string action;  // ls, stats, verify, prune, clear
  std::string max_size;
  bool remove_damaged = false;
  bool json_output = false;
};

/// The cache as the environment configures it, or kiln::Error saying why it is off.
inline std::unique_ptr<jit::DiskCache> open_cache() {
  jit::DiskCacheConfig config = jit::DiskCacheConfig::from_environment();
  config.warn_when_disabled = false;
  if (!config.enabled) throw Error("kiln: the kernel disk cache is off: " + config.disabled_reason);
  auto cache = std::make_unique<jit::DiskCache>(config);
  if (!cache->enabled()) throw Error("kiln: " + cache->disabled_reason());
  return cache;
}

/// One entry as `cache ls` shows it: the binary's target, compiler and kernels.
inline json describe_entry(jit::DiskCache& cache, const jit::DiskCacheEntry& e) {
  json j = {{"key", e.key.hex()},
            {"path", e.path.string()},
            {"bytes", e.size},
            {"last_used", e.mtime_sec}};
  const auto checked = cache.check(e.key);
  if (!checked.problem.empty()) {
    j["problem"] = checked.problem;
    return j;
  }
  try {
    const jit::Binary b = jit::Binary::deserialize(checked.payload);
    j["target"] = b.target;
    j["compiler"] = b.compiler + " " + b.compiler_version;
    json kernels = json::array();
    for (const auto& n : jit::detail::elf_kernel_names(b.code)) kernels.push_back(n);
    j["kernels"] = kernels;
  } catch (const std::exception& ex) {
    j["problem"] = std::string("the payload is not a kiln binary: ") + ex.what();
  }
  return j;
}

inline int run_cache(const CacheSettings& s, std::ostream& out) {
  const std::unique_ptr<jit::DiskCache> opened = open_cache();
  jit::DiskCache& cache = *opened;
  const auto entries = cache.list();
  std::uint64_t total = 0;
  for (const auto& e : entries) total += e.size;
  if (s.action == "ls") {
    json all = json::array();
    for (const auto& e : entries) all.push_back(describe_entry(cache, e));
    if (s.json_output) {
      out << all.dump(2) << "\n";
      return 0;
    }
    out << "| key | size | last used | target | kernels |\n|:--|--:|--:|:--|:--|\n";
    for (const auto& j : all) {
      std::string kernels;
      for (const auto& k : j.value("kernels", json::array())) {
        kernels += (kernels.empty() ? "" : ", ") + prof::short_name(k.get<std::string>(), 50);
      }
      out << fmt::format("| {} | {} | {} ago | {} | {} |\n", j["key"].get<std::string>(),
                         human_size(j["bytes"].get<std::uint64_t>()),
                         age(j["last_used"].get<std::int64_t>()), j.value("target", "-"),
                         j.contains("problem") ? "damaged: " + j["problem"].get<std::string>()
                                               : prof::detail::markdown_cell(kernels));
    }
    out << fmt::format("\n{} entries, {} in {}\n", entries.size(), human_size(total),
                       cache.dir().string());
    return 0;
  }
  if (s.action == "stats") {
    std::int64_t oldest = 0, newest = 0;
    if (!entries.empty()) {
      oldest = entries.front().mtime_sec;
      newest = entries.back().mtime_sec;
    }
    if (s.json_output) {
      out << json{{"dir", cache.dir().string()},
                  {"entries", entries.size()},
                  {"bytes", total},
                  {"max_bytes", cache.max_bytes()},
                  {"least_recently_used", oldest},
                  {"most_recently_used", newest}}
                 .dump(2)
          << "\n";
      return 0;
    }
    out << fmt::format("directory: {}\nentries:   {}\nsize:      {} of {} ({:.1f}%)\n",
                       cache.dir().string(), entries.size(), human_size(total),
                       human_size(cache.max_bytes()),
                       100.0 * double(total) / double(cache.max_bytes()));
    if (!entries.empty()) {
      out << fmt::format("used:      least recently {} ago, most recently {} ago\n", age(oldest),
                         age(newest));
    }
    return 0;
  }
  if (s.action == "verify") {
    std::size_t damaged = 0;
    for (const auto& e : entries) {
      std::string problem = cache.check(e.key).problem;
      if (problem.empty()) {
        try {
          (void)jit::Binary::deserialize(cache.check(e.key).payload);
        } catch (const std::exception& ex) {
          problem = std::string("the payload is not a kiln binary: ") + ex.what();
        }
      }
      if (problem.empty()) continue;
      ++damaged;
      const bool removed = s.remove_damaged && cache.remove(e.key);
      out << fmt::format("damaged: {}: {}{}\n", e.path.string(), problem,
                         removed ? " (removed)" : "");
    }
    out << fmt::format("{} entries checked, {} damaged{}\n", entries.size(), damaged,
                       damaged && !s.remove_damaged
                           ? "; run `kiln cache verify --remove` to delete them (kiln "
                             "recompiles those kernels)"
                           : "");
    return damaged == 0 ? 0 : 1;
  }
  if (s.action == "prune") {
    const std::uint64_t limit = parse_size(s.max_size);
    const std::uint64_t removed = cache.prune(limit);
    out << fmt::format("removed {} least recently used entries; {} now holds {}\n", removed,
                       cache.dir().string(), human_size(cache.size_bytes()));
    return 0;
  }
  if (s.action == "clear") {
    cache.clear();
    out << fmt::format("removed {} entries ({}) from {}\n", entries.size(), human_size(total),
                       cache.dir().string());
    return 0;
  }
  throw Error("kiln: unknown cache action '" + s.action +
              "'; use ls, stats, verify, prune or clear");
}

// ---------------------------------------------------------------------------------- tune

struct TuneSettings {
  std::string action;  // show, export, import, train, evaluate
  std::string factory;
  std::string file;  // export / import file, train's model output
  std::size_t top_k = 3;
  double holdout = 0.25;
  unsigned seed = 1;
  bool json_output = false;
};

inline factory::TuningDatabase& tuning_database() {
  const fs::path file = factory::TuningDatabase::default_file();
  if (file.empty()) {
    throw Error(
        "kiln: the tuning database is in memory only (KILN_TUNING_DB is off, or no cache "
        "directory is set); set KILN_TUNING_DB to its file");
  }
  return factory::TuningDatabase::global();
}

inline std::string best_time(const factory::TuningEntry& e) {
  double best = NAN;
  for (const auto& c : e.candidates) {
    if (c.config == e.best && c.status == factory::CandidateStatus::timed) best = c.time_us;
  }
  return std::isnan(best) ? std::string("-") : fmt::format("{:.2f}", best);
}

inline void require_xgboost() {
  if (!factory::PerformanceModel::available()) {
    throw Error("kiln: XGBoost is not available, so kiln cannot train its performance model (" +
                first_line(factory::PerformanceModel::unavailable_reason()) +
                "); install libxgboost-dev or set KILN_XGBOOST_LIBRARY");
  }
}

inline int run_tune(const TuneSettings& s, std::ostream& out) {
  factory::TuningDatabase& db = tuning_database();
  if (s.action == "show") {
    const auto entries = db.entries(s.factory);
    if (s.json_output) {
      json all = json::array();
      for (const auto& e : entries) all.push_back(e);
      out << all.dump(2) << "\n";
      return 0;
    }
    out << "| factory | params | device | best config | best us | timed | candidates | policy "
           "|\n|:--|:--|:--|:--|--:|--:|--:|:--|\n";
    for (const auto& e : entries) {
      const auto timed = std::count_if(e.candidates.begin(), e.candidates.end(), [](const auto& c) {
        return c.status == factory::CandidateStatus::timed;
      });
      out << fmt::format("| {} v{} | {} | {} ({}) | {} | {} | {} | {} | {} |\n",
                         prof::detail::markdown_cell(e.key.factory), e.key.version,
                         prof::detail::markdown_cell(e.key.params.dump()),
                         prof::detail::markdown_cell(e.key.device), e.key.arch,
                         prof::detail::markdown_cell(e.best.dump()), best_time(e), timed,
                         e.candidates.size(), e.policy);
    }
    out << fmt::format("\n{} entries in {}\n", entries.size(), db.file().string());
    return 0;
  }
  if (s.action == "export") {
    const std::size_t n = db.export_to(s.file, s.factory);
    out << fmt::format("exported {} entries to {}\n", n, s.file);
    return 0;
  }
  if (s.action == "import") {
    const std::size_t n = db.import_from(s.file);
    out << fmt::format("imported {} entries from {} into {}\n", n, s.file, db.file().string());
    return 0;
  }
  const auto entries = db.entries(s.factory);
  if (s.action == "train") {
    require_xgboost();
    out << fmt::format("training on {} entries of {}...\n", entries.size(), db.file().string())
        << std::flush;
    auto model = factory::PerformanceModel::train(entries);
    if (!model) {
      throw Error(fmt::format(
          "kiln: too few timed candidates in {} entries to train a model (it needs {} timed "
          "candidates over {} tuned problems); tune more problems with KILN_TUNE=full",
          entries.size(), factory::ModelOptions{}.min_records,
          factory::ModelOptions{}.min_entries));
    }
    out << fmt::format("trained on {} candidates, objective {}\n", model->records(),
                       model->objective());
    if (!s.file.empty()) {
      prof::write_file(s.file, model->to_json().dump());
      out << "model written to " << s.file << "\n";
    }
    return 0;
  }
  if (s.action == "evaluate") {
    require_xgboost();
    out << fmt::format("evaluating on {} entries ({}% of problems held out)...\n", entries.size(),
                       s.holdout * 100)
        << std::flush;
    const factory::ModelEvaluation ev = factory::evaluate(entries, s.top_k, s.holdout, s.seed);
    out << fmt::format(
        "trained on {} problems, tested on {}\n"
        "top-{} holds the best config: {:.1f}% of test problems\n"
        "best of top-{} / best time: mean {:.3f}, worst {:.3f}\n"
        "candidates timed: {} of {} ({:.1f}% saved), time {:.1f}% saved\n",
        ev.train_entries, ev.test_entries, ev.top_k, 100 * ev.hit_rate, ev.top_k,
        ev.mean_best_ratio, ev.worst_best_ratio, ev.candidates_model, ev.candidates_full,
        100 * ev.candidates_saved, 100 * ev.time_saved);
    return 0;
  }
  throw Error("kiln: unknown tune action '" + s.action +
              "'; use show, export, import, train or evaluate");
}

// ---------------------------------------------------------------------------------- report

/// A saved profile: kiln's profile JSON (prof::to_json) or a trace kiln wrote (KILN_PROFILE).
inline prof::Profile load_profile(const std::string& path) {
  const json j = read_json(path);
  if (prof::is_kiln_trace(j)) return prof::profile_from_chrome_trace(j);
  if (j.is_object() && j.value("format", "") == "kiln-profile") return prof::profile_from_json(j);
  throw Error("kiln: " + path +
              " is neither a kiln profile nor a trace kiln wrote; pass the file KILN_PROFILE or "
              "`kiln profile` wrote");
}

struct ReportSettings {
  std::string file;
  std::size_t top = 20;
  std::string by = "kernel";
  bool csv = false;
  bool json_output = false;
};

inline int run_report(const ReportSettings& s, std::ostream& out) {
  const prof::Profile p = load_profile(s.file);
  if (s.csv) {
    out << prof::to_csv(p);
  } else if (s.json_output) {
    out << prof::to_json(p).dump(2) << "\n";
  } else if (s.by == "device") {
    out << prof::device_table(p);
  } else {
    out << prof::top_table(p, s.top);
  }
  return 0;
}

// ---------------------------------------------------------------------------------- compare

/// The measurements in a profile, a trace or a benchmark --json file.
inline std::vector<prof::Measurement> load_measurements(const std::string& path) {
  const json j = read_json(path);
  if (j.is_object() && j.contains("results") && j["results"].is_array()) {
    try {
      return prof::measure(prof::results_from_json(j));
    } catch (const std::exception& e) {
      throw Error("kiln: " + path + " has \"results\" but they are not benchmark results (" +
                  e.what() + ")");
    }
  }
  if (prof::is_kiln_trace(j)) return prof::measure(prof::profile_from_chrome_trace(j));
  if (j.is_object() && j.value("format", "") == "kiln-profile") {
    return prof::measure(prof::profile_from_json(j));
  }
  throw Error("kiln: " + path +
              " is neither a kiln profile, a kiln trace nor a benchmark --json file");
}

struct CompareSettings {
  std::string base, next;
  double threshold = 5;
};

/// Prints the comparison; returns the number of SLOWER kernels (capped at 125, so the
/// exit status never reads as a signal).
inline int run_compare(const CompareSettings& s, std::ostream& out) {
  if (!(s.threshold >= 0)) throw Error("kiln: --threshold must be a percentage >= 0");
  const auto rows =
      prof::compare(load_measurements(s.base), load_measurements(s.next), s.threshold);
  out << prof::comparison_table(rows);
  return std::min(prof::regressions(rows), 125);
}

// ---------------------------------------------------------------------------------- profile

struct ProfileSettings {
  std::string counters;  ///< metrics ("default", or names separated by commas); empty: none
  std::string dir = "kiln-profile";
  std::size_t top = 20;
  std::vector<std::string> command;
};

/// Writes the reports of `p` into `dir`: profile.json, kernels.csv and roofline.svg (one
/// per device: roofline.svg for the first, roofline-gpuN.svg for others), and trace.json
/// where `with_trace` (the program wrote one; it is rewritten where counters were added).
inline std::vector<std::string> write_reports(const prof::Profile& p, const fs::path& dir,
                                              bool with_trace = false) {
  std::vector<std::string> written;
  if (with_trace) {
    prof::write_chrome_trace(p, (dir / "trace.json").string());
    written.push_back((dir / "trace.json").string());
  }
  prof::write_file((dir / "profile.json").string(), prof::to_json(p).dump(1));
  written.push_back((dir / "profile.json").string());
  prof::write_file((dir / "kernels.csv").string(), prof::to_csv(p));
  written.push_back((dir / "kernels.csv").string());
  bool first = true;
  for (const auto& d : p.devices) {
    const fs::path svg =
        dir / (first ? std::string("roofline.svg") : fmt::format("roofline-gpu{}.svg", d.ordinal));
    prof::write_roofline_svg(p, svg.string(), d.ordinal);
    written.push_back(svg.string());
    first = false;
  }
  return written;
}

/// Runs `command` with the environment variables in `set` set and those in `unset` removed;
/// returns its exit status (128 + the signal where one ended it).
inline int run_child(const std::vector<std::string>& command,
                     const std::vector<std::pair<const char*, std::string>>& set,
                     std::initializer_list<const char*> unset) {
  const pid_t child = ::fork();
  if (child < 0) throw Error(std::string("kiln: fork failed: ") + std::strerror(errno));
  if (child == 0) {
    for (const char* u : unset) ::unsetenv(u);
    for (const auto& [name, value] : set) ::setenv(name, value.c_str(), 1);
    std::vector<char*> argv;
    for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "kiln: cannot run %s: %s\n", argv[0], std::strerror(errno));
    std::_Exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// The error for a run of `program` that wrote no `file`.
inline Error no_output_error(const std::string& program, int code, const fs::path& file,
                             const char* variable) {
  if (code == 127) {
    return Error("kiln: could not run " + program +
                 " (see the line above); check the program's path");
  }
  return Error(fmt::format(
      "kiln: {} exited with status {} and wrote no {} to {}: it launched no kernel through "
      "kiln, or does not include kiln/prof/environment.hpp (kiln/kiln.hpp does), which "
      "reads {}",
      program, code, std::string(variable) == "KILN_PROFILE" ? "profile" : "counters",
      file.string(), variable));
}

inline int run_profile(const ProfileSettings& s, std::ostream& out, std::ostream& err) {
  if (s.command.empty()) {
    throw Error("kiln: profile needs a program to run: kiln profile [-o DIR] -- PROGRAM ARGS...");
  }
  std::vector<std::string> metrics;
  if (!s.counters.empty()) {
    metrics = prof::parse_metric_list(s.counters, "--counters");
    prof::check_metrics_for_device(metrics, "--counters");
  }
  std::error_code ec;
  fs::create_directories(s.dir, ec);
  if (ec || !fs::is_directory(s.dir)) {
    throw Error("kiln: cannot create the output directory " + s.dir + ": " + ec.message());
  }
  const fs::path dir = fs::absolute(s.dir);
  const fs::path trace = dir / "trace.json";
  const fs::path counters = dir / "counters.json";
  fs::remove(trace, ec);
  fs::remove(counters, ec);
  const std::string& program = s.command.front();
  if (!metrics.empty()) err << "kiln profile: timing pass: running " << program << "\n";
  const int code = run_child(s.command, {{"KILN_PROFILE", trace.string()}},
                             {"KILN_PROFILE_COUNTERS", "KILN_PROFILE_METRICS"});
  if (!fs::exists(trace)) throw no_output_error(program, code, trace, "KILN_PROFILE");
  prof::Profile p = prof::profile_from_chrome_trace(read_json(trace.string()));
  if (!metrics.empty()) {
    err << fmt::format(
        "kiln profile: counter pass ({} metrics): running {} again, each kernel replayed by "
        "CUPTI\n",
        metrics.size(), program);
    const int again =
        run_child(s.command,
                  {{"KILN_PROFILE_COUNTERS", counters.string()},
                   {"KILN_PROFILE_METRICS", fmt::format("{}", fmt::join(metrics, ","))}},
                  {"KILN_PROFILE"});
    if (!fs::exists(counters))
      throw no_output_error(program, again, counters, "KILN_PROFILE_COUNTERS");
    std::vector<std::string> counted;
    const prof::CounterResult result =
        prof::counters_from_json(read_json(counters.string()), counted, counters.string());
    prof::attach_counter_pass(p, result, counted);
    if (again != code) {
      err << fmt::format(
          "kiln: {} exited with status {} in the timing pass and {} in the "
          "counter pass\n",
          program, code, again);
    }
  }
  out << prof::top_table(p, s.top);
  const auto written = write_reports(p, dir, !metrics.empty());
  out << "\nwritten: " << trace.string();
  for (const auto& w : written) {
    if (w != trace.string()) out << ", " << w;
  }
  if (!metrics.empty()) out << ", " << counters.string();
  out << "\n";
  if (code != 0) err << fmt::format("kiln: {} exited with status {}\n", program, code);
  return code;
}

}  // namespace kiln::cli
