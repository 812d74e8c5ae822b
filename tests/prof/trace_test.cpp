// kiln/prof/trace.hpp: the Chrome trace follows the Trace Event format, keeps slices on a
// track from overlapping, and writes plain or gzip-compressed files.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "kiln/detail/dynamic_library.hpp"
#include "kiln/prof/trace.hpp"

using namespace kiln::prof;
using nlohmann::json;

namespace {

KernelRecord kernel(std::string name, int device, std::uint64_t stream, double start_us,
                    double end_us) {
  KernelRecord k;
  k.name = std::move(name);
  k.device = device;
  k.stream = stream;
  k.start_us = start_us;
  k.end_us = end_us;
  k.host_us = start_us > 5 ? start_us - 5 : 0.05;
  k.host_launch_us = 2.5;
  return k;
}

Profile trace_profile() {
  Profile p;
  p.backend = "cupti";
  p.devices.push_back({0, "Test GPU", {"Test GPU", 1e12, 10e12, 100e12, "registry"}});
  p.devices.push_back({1, "Other GPU", {}});
  // Back to back on stream 0x10 (one track; times that are not whole microseconds).
  KernelRecord first = kernel("first", 0, 0x10, 0.1, 10.3);
  first.grid = {4, 2, 1};
  first.block = {256, 1, 1};
  first.registers = 32;
  first.static_shared_bytes = 512;
  first.shared_bytes = 4096;
  first.occupancy = 0.75;
  first.bytes = 1e6;
  first.flops = 2e6;
  first.params = "n=1024";
  first.config = "tile=64";
  p.kernels.push_back(first);
  p.kernels.push_back(kernel("second", 0, 0x10, 10.3, 20.25));
  // Three that overlap on stream 0x20 (concurrent kernels seen through CUPTI): a covers
  // b's start, and c lies inside both.
  p.kernels.push_back(kernel("b", 0, 0x20, 150, 250));
  p.kernels.push_back(kernel("a", 0, 0x20, 100, 200));
  p.kernels.push_back(kernel("c", 0, 0x20, 180, 190));
  // After all three: back on the first track.
  p.kernels.push_back(kernel("d", 0, 0x20, 250, 260));
  // An external kernel on device 1's default stream: no host launch.
  KernelRecord ext = kernel("cublas_gemm", 1, 0, 5, 7.5);
  ext.external = true;
  ext.host_us = 0;
  ext.host_launch_us = 0;
  ext.correlation = 42;
  p.kernels.push_back(ext);
  return p;
}

std::int64_t ns(double us) {
  return std::llround(us * 1000);
}

/// Checks the Trace Event format and returns the complete events by name.
std::map<std::string, json> check_trace(const json& trace) {
  REQUIRE(trace.is_object());
  CHECK(trace.at("displayTimeUnit") == "ms");
  const json& events = trace.at("traceEvents");
  REQUIRE(events.is_array());

  std::map<std::pair<int, int>, std::string> thread_names;
  std::map<int, std::string> process_names;
  std::map<int, int> pid_of_tid;
  std::map<std::pair<int, int>, std::vector<std::pair<std::int64_t, std::int64_t>>> slices;
  std::map<std::string, json> by_name;
  std::set<int> pids;
  for (const json& e : events) {
    REQUIRE(e.is_object());
    REQUIRE(e.contains("ph"));
    REQUIRE(e.at("ph").is_string());
    REQUIRE(e.at("pid").is_number_integer());
    REQUIRE(e.at("tid").is_number_integer());
    const std::string ph = e.at("ph");
    const int pid = e.at("pid"), tid = e.at("tid");
    CHECK(pid > 0);  // Perfetto treats pid 0 as the kernel's
    pids.insert(pid);
    if (ph == "M") {
      REQUIRE(e.at("args").is_object());
      if (e.at("name") == "process_name") process_names[pid] = e.at("args").at("name");
      if (e.at("name") == "thread_name") thread_names[{pid, tid}] = e.at("args").at("name");
      continue;
    }
    REQUIRE(ph == "X");
    REQUIRE(e.at("name").is_string());
    REQUIRE(e.at("cat").is_string());
    REQUIRE(e.at("ts").is_number());
    REQUIRE(e.at("dur").is_number());
    CHECK(e.at("dur").get<double>() >= 0);
    auto [at, fresh] = pid_of_tid.emplace(tid, pid);
    CHECK_MESSAGE(at->second == pid, "tid ", tid, " is used in two processes");
    (void)fresh;
    slices[{pid, tid}].push_back({ns(e.at("ts")), ns(e.at("ts")) + ns(e.at("dur"))});
    if (e.at("cat") != "launch") by_name[e.at("name")] = e;
  }
  for (auto& [track, spans] : slices) {
    // A tid that is also a pid would be that process's main thread in Perfetto.
    CHECK_MESSAGE(!pids.count(track.second), "tid ", track.second, " is also a pid");
    CHECK_MESSAGE(thread_names.count(track), "no thread_name for tid ", track.second);
    CHECK_MESSAGE(process_names.count(track.first), "no process_name for pid ", track.first);
    std::sort(spans.begin(), spans.end());
    for (std::size_t i = 1; i < spans.size(); ++i) {
      CHECK_MESSAGE(spans[i - 1].second <= spans[i].first, "slices overlap on tid ", track.second);
    }
  }
  return by_name;
}

std::string thread_name(const json& trace, int tid) {
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name" && e["tid"] == tid) return e["args"]["name"];
  }
  return "";
}

std::string process_name(const json& trace, int pid) {
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name" && e["pid"] == pid) return e["args"]["name"];
  }
  return "";
}

std::filesystem::path temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "kiln_trace_XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Reads a gzip file back with zlib, opened the way kiln opens it.
std::string gunzip(const std::filesystem::path& path) {
  auto z = kiln::detail::DynamicLibrary::open_first("zlib", {"libz.so.1"}, nullptr);
  auto gzopen = z.get<void* (*)(const char*, const char*)>("gzopen");
  auto gzread = z.get<int (*)(void*, void*, unsigned)>("gzread");
  auto gzclose = z.get<int (*)(void*)>("gzclose");
  void* f = gzopen(path.c_str(), "rb");
  REQUIRE(f != nullptr);
  std::string out;
  char buffer[1 << 14];
  for (int n; (n = gzread(f, buffer, sizeof buffer)) > 0;) out.append(buffer, std::size_t(n));
  CHECK(gzclose(f) == 0);
  return out;
}

}  // namespace

TEST_CASE("chrome_trace: Trace Event format, processes per GPU, tracks per stream") {
  const Profile p = trace_profile();
  // Through text, as a viewer reads it.
  const json trace = json::parse(chrome_trace(p).dump());
  const auto kernels = check_trace(trace);
  REQUIRE(kernels.size() == 7);

  CHECK(process_name(trace, 1) == "GPU 0: Test GPU");
  CHECK(process_name(trace, 2) == "GPU 1: Other GPU");
  CHECK(process_name(trace, 3) == "host");

  // Times in microseconds match the records.
  for (const KernelRecord& k : p.kernels) {
    const json& e = kernels.at(k.name);
    CHECK(e["ts"].get<double>() == doctest::Approx(k.start_us).epsilon(1e-12));
    CHECK(e["dur"].get<double>() == doctest::Approx(k.duration_us()).epsilon(1e-9));
    CHECK(e["pid"] == k.device + 1);
    CHECK(e["cat"] == (k.external ? "external kernel" : "kernel"));
  }

  // Back-to-back kernels share their stream's track.
  CHECK(kernels.at("first")["tid"] == kernels.at("second")["tid"]);
  CHECK(thread_name(trace, kernels.at("first")["tid"]) == "stream 0x10");
  CHECK(thread_name(trace, kernels.at("cublas_gemm")["tid"]) == "stream 0x0");

  // Three overlapping kernels on stream 0x20 take three tracks; d, after them, the first.
  const int a = kernels.at("a")["tid"], b = kernels.at("b")["tid"], c = kernels.at("c")["tid"];
  CHECK(std::set<int>{a, b, c}.size() == 3);
  CHECK(thread_name(trace, a) == "stream 0x20");
  CHECK(thread_name(trace, b) == "stream 0x20 (2)");
  CHECK(thread_name(trace, c) == "stream 0x20 (3)");
  CHECK(kernels.at("d")["tid"] == a);
}

TEST_CASE("chrome_trace: kernel args, and host launches joined to their kernels") {
  const json trace = chrome_trace(trace_profile());
  const auto kernels = check_trace(trace);
  const json& args = kernels.at("first")["args"];
  CHECK(args["grid"] == "4x2x1");
  CHECK(args["block"] == "256x1x1");
  CHECK(args["registers_per_thread"] == 32);
  CHECK(args["shared_bytes"] == 4608);
  CHECK(args["dynamic_shared_bytes"] == 4096);
  CHECK(args["occupancy"] == 0.75);
  CHECK(args["bytes"] == 1e6);
  CHECK(args["flops"] == 2e6);
  CHECK(args["achieved_GB/s"].get<double>() == doctest::Approx(1e6 / 10.2e-6 / 1e9));
  CHECK(args["achieved_TFLOP/s"].get<double>() == doctest::Approx(2e6 / 10.2e-6 / 1e12));
  CHECK(args["params"] == "n=1024");
  CHECK(args["config"] == "tile=64");
  CHECK(args["stream"] == "0x10");
  const json& plain = kernels.at("second")["args"];
  for (const char* absent :
       {"params", "config", "bytes", "flops", "achieved_GB/s", "registers_per_thread"}) {
    CHECK_MESSAGE(!plain.contains(absent), absent);
  }
  CHECK(kernels.at("cublas_gemm")["args"]["correlation"] == 42);

  // Each kiln launch is a slice on the host process, joined by a flow to its kernel.
  std::map<std::uint64_t, json> launches;
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] == "X" && e["cat"] == "launch") {
      CHECK(e["pid"] == 3);
      CHECK(e["flow_out"] == true);
      CHECK(thread_name(trace, e["tid"]).starts_with("launches"));
      launches[e["bind_id"]] = e;
    }
  }
  CHECK(launches.size() == 6);  // every kernel but the external one
  for (const auto& [name, k] : kernels) {
    if (name == "cublas_gemm") {
      CHECK_FALSE(k.contains("bind_id"));
      continue;
    }
    REQUIRE(k.contains("bind_id"));
    CHECK(k["flow_in"] == true);
    const json& launch = launches.at(k["bind_id"]);
    CHECK(launch["name"] == name);
    CHECK(launch["dur"] == 2.5);
  }
}

TEST_CASE("chrome_trace: an empty profile is still a trace") {
  const json trace = chrome_trace(Profile{});
  check_trace(trace);
  CHECK(trace["traceEvents"].empty());
}

TEST_CASE("write_chrome_trace: JSON, or gzip where the path ends in .gz") {
  const Profile p = trace_profile();
  const json expected = chrome_trace(p);
  const auto dir = temp_dir();

  write_chrome_trace(p, (dir / "trace.json").string());
  CHECK(json::parse(read(dir / "trace.json")) == expected);

  const auto gz = dir / "trace.json.gz";
  write_chrome_trace(p, gz.string());
  const std::string packed = read(gz);
  REQUIRE(packed.size() > 2);
  CHECK(static_cast<unsigned char>(packed[0]) == 0x1f);  // the gzip magic bytes
  CHECK(static_cast<unsigned char>(packed[1]) == 0x8b);
  CHECK(json::parse(gunzip(gz)) == expected);

  if (std::system("command -v gzip > /dev/null 2>&1") == 0) {
    const auto out = dir / "gunzipped.json";
    const std::string command = "gzip -dc '" + gz.string() + "' > '" + out.string() + "'";
    REQUIRE(std::system(command.c_str()) == 0);
    CHECK(read(out) == read(dir / "trace.json"));
  } else {
    MESSAGE("gzip is not installed; checked the .gz file with zlib only");
  }

  const std::string missing = (dir / "no-such-dir" / "trace.json.gz").string();
  CHECK_THROWS_WITH_AS(write_chrome_trace(p, missing), doctest::Contains(missing.c_str()),
                       kiln::Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("chrome_trace: demangled slice names, the recorded name in args, and a round trip") {
  Profile p;
  p.backend = "cupti";
  p.devices.push_back({0, "GPU A", {"GPU A", 3e12, 6e13, 9e14, "registry"}});
  p.devices.push_back({1, "GPU B", {"GPU B", 2e12, 0, 0, "attributes"}});
  KernelRecord a;
  a.name = "_Z2tkILi64EEvPf";  // void tk<64>(float*)
  a.params = "n=4";
  a.config = "tile=8";
  a.device = 1;
  a.stream = 0xabc;
  a.grid = {4, 2, 1};
  a.block = {128, 1, 1};
  a.shared_bytes = 1024;
  a.static_shared_bytes = 512;
  a.registers = 40;
  a.occupancy = 0.5;
  a.start_us = 1.5;
  a.end_us = 3.75;
  a.host_us = 1;
  a.host_launch_us = 0.25;
  a.bytes = 4096;
  a.flops = 8192;
  a.correlation = 7;
  KernelRecord b;
  b.name = "cublas_gemm";
  b.external = true;
  b.start_us = 5;
  b.end_us = 9.125;
  p.kernels = {a, b};
  const json t = chrome_trace(p);
  bool seen = false;
  for (const auto& e : t["traceEvents"]) {
    if (e["ph"] == "X" && e["cat"] == "kernel") {
      CHECK(e["name"] == "void tk<64>(float*)");
      CHECK(e["args"]["kernel"] == "_Z2tkILi64EEvPf");
      seen = true;
    }
  }
  CHECK(seen);
  CHECK(is_kiln_trace(t));
  const Profile back = profile_from_chrome_trace(json::parse(t.dump()));
  CHECK(to_json(back) == to_json(p));
  CHECK_FALSE(is_kiln_trace(json{{"traceEvents", json::array()}}));
  CHECK_THROWS_WITH_AS(profile_from_chrome_trace(json::object()),
                       doctest::Contains("not a trace kiln wrote"), kiln::Error);
}
