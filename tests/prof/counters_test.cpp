// Hardware counters without a GPU (kiln/prof/metrics.hpp, derived.hpp, counters.hpp and the
// reports): metric-name checks (the built-in table, and CUPTI's host API for GH100 where
// CUPTI loads), the derived metrics on synthetic counters, joining a counter pass to a
// timing pass, the counters in the top table, CSV, JSON, Chrome trace and roofline, and the
// warnings where counters cannot be collected (CUPTI missing, no GPU, no permission).
#include <doctest/doctest.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "../support.hpp"
#include "kiln/prof/counters.hpp"
#include "kiln/prof/report.hpp"
#include "kiln/prof/roofline.hpp"
#include "kiln/prof/trace.hpp"

using namespace kiln::prof;
using kiln_test::ScopedEnv;

namespace {

std::string error_of(auto&& f) {
  try {
    f();
  } catch (const kiln::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const DevicePeaks h200{"H200", 4.8e12, 67e12, 989.5e12, "registry"};

KernelRecord kernel(std::string name, double start_us, double us, double flops = 0) {
  KernelRecord k;
  k.name = std::move(name);
  k.start_us = start_us;
  k.end_us = start_us + us;
  k.flops = flops;
  return k;
}

// A copy kernel (1 GB read + 1 GB written in 0.5 ms: 4000 GB/s) run twice, a GEMM with
// counters (8e12 FLOP over 2 GB), and a kernel without counters.
Profile counted_profile() {
  Profile p;
  p.backend = "cupti";
  p.metrics = default_metrics();
  p.devices.push_back({0, "NVIDIA H200", h200});
  for (int i = 0; i < 2; ++i) {
    KernelRecord copy = kernel("copy", 1000.0 * i, 500);
    copy.bytes = 2e9;
    copy.counters = {{metric::dram_read, 1e9},      {metric::dram_write, 1e9},
                     {metric::duration, 500e3},     {metric::sm_throughput, 20},
                     {metric::dram_throughput, 85}, {metric::tensor_active, 0}};
    p.kernels.push_back(copy);
  }
  KernelRecord gemm = kernel("gemm", 3000, 10000, 8e12);
  gemm.bytes = 1e9;  // declared: less than it really moves
  gemm.counters = {{metric::dram_read, 1.5e9},   {metric::dram_write, 0.5e9},
                   {metric::duration, 10000e3},  {metric::sm_throughput, 90},
                   {metric::dram_throughput, 5}, {metric::tensor_active, 75}};
  p.kernels.push_back(gemm);
  p.kernels.push_back(kernel("plain", 20000, 100));
  return p;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, sep);) out.push_back(item);
  return out;
}

}  // namespace

TEST_CASE("metric names: edit distance, close names, lists") {
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("dram__bytes_read.sum", "dram__bytes_read.sum") == 0);
  CHECK(edit_distance("dram__bytes_reed.sum", "dram__bytes_read.sum") == 1);
  const std::vector<std::string> known = default_metrics();
  auto close = close_names("dram__bytes_reed.sum", known);
  REQUIRE(!close.empty());
  CHECK(close.front() == "dram__bytes_read.sum");
  CHECK(close_names("completely_different_name", known).empty());

  CHECK(parse_metric_list(" a.sum ,b.pct") == std::vector<std::string>{"a.sum", "b.pct"});
  const auto with_default = parse_metric_list("Default, x.sum, dram__bytes_read.sum");
  CHECK(with_default.size() == builtin_metrics.size() + 1);
  CHECK(with_default.back() == "x.sum");
  const std::string empty =
      error_of([] { parse_metric_list("a.sum,,b.sum", "KILN_PROFILE_METRICS"); });
  CHECK(contains(empty, "KILN_PROFILE_METRICS"));
  CHECK(contains(empty, "item 2"));
  {
    ScopedEnv env("KILN_PROFILE_METRICS", " dram__bytes_read.sum , lts__t_sector_hit_rate.pct ");
    CHECK(metrics_from_environment() ==
          std::vector<std::string>{"dram__bytes_read.sum", "lts__t_sector_hit_rate.pct"});
  }
  {
    ScopedEnv env("KILN_PROFILE_METRICS", nullptr);
    CHECK(!metrics_from_environment());
  }
}

TEST_CASE("check_metrics against the built-in table: unknown names with close ones") {
  BuiltinMetricCatalog builtin("libcupti.so.13: not found");
  CHECK_NOTHROW(check_metrics(default_metrics(), builtin));
  const std::string e = error_of([&] {
    check_metrics({"dram__bytes_read.sum", "dram__bytes_wrte.sum", "nonsense"}, builtin,
                  "KILN_PROFILE_METRICS");
  });
  CHECK(contains(e, "KILN_PROFILE_METRICS"));
  CHECK(contains(e, "'dram__bytes_wrte.sum' is not a metric; close names: dram__bytes_write.sum"));
  CHECK(contains(e, "'nonsense' is not a metric (no known name is close)"));
  CHECK(!contains(e, "'dram__bytes_read.sum'"));
  CHECK(contains(e, "kiln's built-in metric table"));
  CHECK(contains(e, "libcupti.so.13: not found"));
  const std::string twice = error_of([&] {
    check_metrics({"lts__t_sector_hit_rate.pct", "lts__t_sector_hit_rate.pct"}, builtin);
  });
  CHECK(contains(twice, "listed twice"));
}

TEST_CASE("CUPTI's host API lists GH100's metrics (where CUPTI loads)") {
  std::unique_ptr<MetricCatalog> catalog = metric_catalog("GH100");
  MESSAGE("metric names checked against: " << catalog->source());
  if (!contains(catalog->source(), "CUPTI's metric list for GH100")) {
    MESSAGE("CUPTI's Profiler Host API could not be loaded here: CUPTI's list not checked");
    return;
  }
  for (const std::string& m : default_metrics()) CHECK_MESSAGE(catalog->known(m), m);
  CHECK(catalog->known("l1tex__t_bytes.sum"));  // beyond the built-in table
  CHECK(!catalog->known("dram__bytes_reed.sum"));
  auto close = catalog->suggestions("dram__bytes_reed.sum");
  REQUIRE(!close.empty());
  CHECK(close.front() == "dram__bytes_read.sum");
  close = catalog->suggestions("dram__bytes_read.summ");  // right base, wrong rollup
  REQUIRE(!close.empty());
  CHECK(close.front() == "dram__bytes_read.sum");
  const std::string e = error_of(
      [&] { check_metrics({"sm__throughput.avg.pct_of_peak_sustaned_elapsed"}, *catalog); });
  CHECK(contains(e, "sm__throughput.avg.pct_of_peak_sustained_elapsed"));
  CHECK(contains(e, "CUPTI's metric list for GH100"));
  // The cost of the counter pass: replays per kernel for the default set.
  const std::size_t passes = counter_passes(default_metrics(), "GH100");
  MESSAGE("default metric set on GH100: " << passes << " passes per kernel");
  CHECK(passes >= 1);
  const std::size_t dram_passes =
      counter_passes({metric::dram_read, metric::dram_write, metric::duration}, "GH100");
  MESSAGE("DRAM bytes and duration alone: " << dram_passes << " pass(es) per kernel");
  CHECK(dram_passes >= 1);
  CHECK(dram_passes < passes);
}

TEST_CASE("CUPTI missing: the built-in table, one warning naming the cause and the fix") {
  ScopedEnv env("KILN_CUPTI_LIBRARY", "/nonexistent/libcupti.so.13");
  std::unique_ptr<MetricCatalog> catalog = metric_catalog();
  CHECK(contains(catalog->source(), "kiln's built-in metric table"));
  CHECK(contains(catalog->source(), "/nonexistent/libcupti.so.13"));

  CounterSession session(CounterOptions{});
  CHECK(!session.active());
  CHECK(contains(session.note(), "CUPTI's profiler could not be loaded"));
  CHECK(contains(session.note(), "KILN_CUPTI_LIBRARY"));
  CHECK(contains(session.note(), "(/nonexistent/libcupti.so.13: "));
  CHECK(contains(session.note(), "cannot open shared object file"));
  // Printed once for this cause: a second attempt says nothing more.
  CHECK(!detail::warn_counters_once(session.note()));
  const CounterResult r = session.finish();
  CHECK(r.ranges.empty());
  CHECK(r.note == session.note());

  // Timing goes on: the work runs once (no counter pass), the profile says why.
  int runs = 0;
  ProfileOptions options;
  options.backend = Backend::events;
  options.metrics = default_metrics();
  const Profile p = profile_with_counters([&] { ++runs; }, options);
  CHECK(runs == 1);
  CHECK(p.backend == "events");
  CHECK(p.metrics == default_metrics());
  CHECK(contains(p.counters_note, "KILN_CUPTI_LIBRARY"));

  // A bad name is still an error, before the work runs.
  options.metrics = std::vector<std::string>{"dram__bytes_raed.sum"};
  const std::string e = error_of([&] { profile_with_counters([&] { ++runs; }, options); });
  CHECK(contains(e, "ProfileOptions::metrics"));
  CHECK(contains(e, "dram__bytes_read.sum"));
  CHECK(runs == 1);
}

TEST_CASE("no GPU, or counters refused: the warning and the note") {
  if (kiln::rt::device_count() == 0) {
    CounterSession session(CounterOptions{});
    CHECK(!session.active());
    MESSAGE("without a GPU: " << session.note());
    CHECK((contains(session.note(), "no GPU") || contains(session.note(), "could not be loaded")));
    int runs = 0;
    ProfileOptions options;
    options.backend = Backend::events;
    {
      ScopedEnv env("KILN_PROFILE_METRICS", "dram__bytes_read.sum");
      const Profile p = profile_with_counters([&] { ++runs; }, options);
      CHECK(p.metrics == std::vector<std::string>{"dram__bytes_read.sum"});
      CHECK(!p.counters_note.empty());
    }
    CHECK(runs == 1);
  }
  const std::string refused = detail::counters_privilege_message("cuptiRangeProfilerEnable");
  CHECK(contains(refused, "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES"));
  CHECK(contains(refused, "ERR_NVGPUCTRPERM"));
  CHECK(contains(refused, "NVreg_RestrictProfilingToAdminUsers=0"));
  CHECK(contains(refused, "root"));
  CHECK(contains(refused, "cuptiRangeProfilerEnable"));
  const std::string line = detail::counters_warning(refused);
  CHECK(line.starts_with("kiln: hardware counters are not collected: "));
  CHECK(contains(line, "Timing continues"));
#if KILN_PROF_HAS_RANGE_PROFILER
  const detail::CuptiFailure f("cuptiRangeProfilerSetConfig", CUPTI_ERROR_INSUFFICIENT_PRIVILEGES,
                               "CUPTI_ERROR_INSUFFICIENT_PRIVILEGES");
  CHECK(std::string(f.what()) == detail::counters_privilege_message("cuptiRangeProfilerSetConfig"));
  const detail::CuptiFailure other("cuptiRangeProfilerStart", CUPTI_ERROR_NOT_SUPPORTED,
                                   "CUPTI_ERROR_NOT_SUPPORTED");
  CHECK(std::string(other.what()) ==
        "CUPTI's range profiler failed in cuptiRangeProfilerStart: CUPTI_ERROR_NOT_SUPPORTED");
#endif
  CHECK(detail::warn_counters_once("a test cause seen first here"));
  CHECK(!detail::warn_counters_once("a test cause seen first here"));
}

TEST_CASE("derived metrics on synthetic counters") {
  const std::map<std::string, double> c = {{metric::dram_read, 3e9},
                                           {metric::dram_write, 1e9},
                                           {metric::duration, 2e6},  // 2 ms
                                           {metric::tensor_active, 37.5}};
  const CounterInputs in{c, 2500, 8e9, &h200};  // the timing pass says 2.5 ms
  const auto d = derived_metrics(in);
  CHECK(d.at("dram_bytes") == doctest::Approx(4e9));
  CHECK(d.at("dram_gbps") == doctest::Approx(2000));  // 4e9 B / 2 ms: the counter pass's time
  CHECK(d.at("dram_pct_of_peak") == doctest::Approx(100 * 2000e9 / 4.8e12));
  CHECK(d.at("measured_intensity") == doctest::Approx(2.0));
  CHECK(d.at("tensor_pct") == doctest::Approx(37.5));
  // Roofline rule (no throughput counters): 2 FLOP/B is under the FP32 ridge (67/4.8 = 14).
  CHECK(classify(in) == "memory");
  const CounterInputs dense{c, 2500, 8e12, &h200};  // 2000 FLOP/B at 3.2 PFLOP/s: tensor ridge
  CHECK(classify(dense) == "compute");

  // Without gpu__time_duration the timing pass's duration is used.
  const std::map<std::string, double> no_time = {{metric::dram_read, 1e9}};
  const auto d2 = derived_metrics(CounterInputs{no_time, 1000, 0, nullptr});
  CHECK(d2.at("dram_gbps") == doctest::Approx(1000));
  CHECK(!d2.contains("dram_pct_of_peak"));    // no peaks
  CHECK(!d2.contains("measured_intensity"));  // no FLOPs
  CHECK(!d2.contains("tensor_pct"));
  CHECK(classify(CounterInputs{no_time, 1000, 0, nullptr}).empty());

  // Throughput rule.
  auto with = [](double sm, double dram) {
    return std::map<std::string, double>{{metric::sm_throughput, sm},
                                         {metric::dram_throughput, dram}};
  };
  const auto compute = with(80, 30), memory = with(20, 90), latency = with(40, 55);
  CHECK(classify(CounterInputs{compute, 1, 0, &h200}) == "compute");
  CHECK(classify(CounterInputs{memory, 1, 0, &h200}) == "memory");
  CHECK(classify(CounterInputs{latency, 1, 0, &h200}) == "latency");
  CHECK(derived_metrics(CounterInputs{compute, 1, 0, &h200}).empty());

  // Calls combined: counts summed, percentages weighted by duration.
  CounterTotals totals;
  KernelRecord a = kernel("k", 0, 100), b = kernel("k", 200, 300);
  a.counters = {{metric::dram_read, 1e6}, {metric::dram_throughput, 80}};
  b.counters = {{metric::dram_read, 3e6}, {metric::dram_throughput, 40}};
  totals.add(a);
  totals.add(b);
  totals.add(kernel("k", 600, 50));  // no counters: not counted
  CHECK(totals.calls() == 2);
  CHECK(totals.us() == doctest::Approx(400));
  CHECK(totals.counters().at(metric::dram_read) == doctest::Approx(4e6));
  CHECK(totals.counters().at(metric::dram_throughput) ==
        doctest::Approx((80 * 100 + 40 * 300) / 400.0));
}

TEST_CASE("attach_counters joins the counter pass to the timing pass in launch order") {
  Profile p;
  p.kernels = {kernel("_Z4copyPfS_", 0, 10), kernel("gemm", 20, 10), kernel("_Z4copyPfS_", 40, 10)};
  p.kernels[1].correlation = 0;
  KernelRecord other = kernel("gemm", 5, 10);
  other.device = 1;
  p.kernels.push_back(other);
  std::vector<CounterRange> ranges = {
      {0, 1, "gemm", {{metric::dram_read, 2}}},
      {0, 0, "copy(float*, float*)", {{metric::dram_read, 1}}},  // demangled: the same kernel
      {0, 2, "_Z4copyPfS_", {{metric::dram_read, 3}}},
      {1, 0, "7", {{metric::dram_read, 4}}},  // a numbered range matches any kernel
  };
  CHECK(attach_counters(p, ranges) == 4);
  CHECK(p.kernels[0].counters.at(metric::dram_read) == 1);
  CHECK(p.kernels[1].counters.at(metric::dram_read) == 2);
  CHECK(p.kernels[2].counters.at(metric::dram_read) == 3);
  CHECK(p.kernels[3].counters.at(metric::dram_read) == 4);
  CHECK(p.counters_note.empty());

  // Passes that disagree: counters up to the first difference, and a note.
  Profile q;
  q.kernels = {kernel("a", 0, 1), kernel("b", 2, 1), kernel("c", 4, 1)};
  std::vector<CounterRange> wrong = {
      {0, 0, "a", {{metric::dram_read, 1}}},
      {0, 1, "x", {{metric::dram_read, 2}}},
      {0, 2, "c", {{metric::dram_read, 3}}},
  };
  CHECK(attach_counters(q, wrong) == 1);
  CHECK(q.kernels[1].counters.empty());
  CHECK(contains(q.counters_note, "kernel 2 of the timing pass is b but the counter pass's is x"));
  Profile r;
  r.kernels = {kernel("a", 0, 1), kernel("b", 2, 1)};
  CHECK(attach_counters(r, {{0, 0, "a", {{metric::dram_read, 1}}}}) == 1);
  CHECK(contains(r.counters_note, "the timing pass has 2 kernels and the counter pass 1"));
}

TEST_CASE("a counter pass as JSON (KILN_PROFILE_COUNTERS's file), read back and attached") {
  CounterResult result;
  result.passes = 8;
  result.note = "a note";
  result.ranges = {{0, 0, "copy", {{metric::dram_read, 1e6}, {metric::dram_write, 2e6}}},
                   {1, 0, "gemm", {{metric::duration, 5e3}}}};
  const std::vector<std::string> metrics = {metric::dram_read, metric::dram_write,
                                            metric::duration};
  const nlohmann::json j = counters_to_json(result, metrics);
  CHECK(j.at("format") == "kiln-counters");
  std::vector<std::string> read_metrics;
  const CounterResult back = counters_from_json(nlohmann::json::parse(j.dump()), read_metrics);
  CHECK(read_metrics == metrics);
  CHECK(back.passes == 8);
  CHECK(back.note == "a note");
  REQUIRE(back.ranges.size() == 2);
  CHECK(back.ranges[1].device == 1);
  CHECK(back.ranges[1].name == "gemm");
  CHECK(back.ranges[0].values == result.ranges[0].values);

  Profile p;
  p.kernels = {kernel("copy", 0, 10)};
  KernelRecord g = kernel("gemm", 5, 10);
  g.device = 1;
  p.kernels.push_back(g);
  CHECK(attach_counter_pass(p, back, read_metrics) == 2);
  CHECK(p.metrics == metrics);
  CHECK(p.counters_note == "a note");
  CHECK(p.kernels[0].counters.at(metric::dram_write) == 2e6);

  // Anything else is refused, naming the file.
  for (const char* bad :
       {R"({"format": "kiln-profile"})", R"([1, 2])",
        R"({"format": "kiln-counters", "version": 2, "metrics": [], "ranges": []})",
        R"({"format": "kiln-counters", "version": 1, "metrics": [], "ranges": [{"device": 0}]})",
        R"({"format": "kiln-counters", "version": 1, "ranges": []})"}) {
    INFO(bad);
    std::vector<std::string> m;
    CHECK_THROWS_WITH_AS(counters_from_json(nlohmann::json::parse(bad), m, "c.json"),
                         doctest::Contains("kiln: c.json is not a kiln counter pass"), kiln::Error);
  }
}

TEST_CASE("the straggler view with counters: each device's DRAM rate, throughputs and bound") {
  Profile p;
  p.metrics = {metric::dram_read, metric::dram_write, metric::sm_throughput,
               metric::dram_throughput};
  // The same copy on two devices: device 1 takes 25% longer, at a lower DRAM rate.
  for (int d = 0; d < 2; ++d) {
    KernelRecord k = kernel("copy", 0, d == 0 ? 400 : 500);
    k.device = d;
    k.counters = {{metric::dram_read, 1e9},
                  {metric::dram_write, 1e9},
                  {metric::sm_throughput, 20},
                  {metric::dram_throughput, d == 0 ? 90 : 72}};
    p.kernels.push_back(k);
  }
  KernelRecord alone = kernel("alone", 0, 10);
  p.kernels.push_back(alone);
  const std::string t = device_table(p);
  INFO(t);
  CHECK(contains(t, "| behind fastest | DRAM GB/s | SM % | DRAM % | bound |"));
  // 2e9 bytes over 400 us = 5000 GB/s; over 500 us = 4000 GB/s.
  CHECK(contains(t, "| copy | 0 | 1 | 0.400 | 400.00 | fastest | 5000.0 | 20.0 | 90.0 | memory |"));
  CHECK(contains(t, "| copy | 1 | 1 | 0.500 | 500.00 | +25.0% | 4000.0 | 20.0 | 72.0 | memory |"));
  // Without counters the table is as before.
  p.kernels[0].counters.clear();
  p.kernels[1].counters.clear();
  CHECK_FALSE(contains(device_table(p), "DRAM GB/s"));
}

TEST_CASE("top table: counter and derived columns") {
  const Profile p = counted_profile();
  const std::string table = top_table(p);
  const auto rows = split(table, '\n');
  std::string header, copy_row, gemm_row, plain_row, total_row;
  for (const auto& row : rows) {
    if (row.starts_with("| # |")) header = row;
    if (contains(row, "| copy |")) copy_row = row;
    if (contains(row, "| gemm |")) gemm_row = row;
    if (contains(row, "| plain |")) plain_row = row;
    if (contains(row, "**total**")) total_row = row;
  }
  CHECK(header.ends_with("| DRAM GB/s | % DRAM peak | FLOP/B (DRAM) | tensor % | bound |"));
  // copy: 4e9 B over 2 x 0.5 ms = 4000 GB/s, 83.3% of 4.8 TB/s, memory-bound.
  CHECK(copy_row.ends_with("| 4000.0 | 83.3 | - | 0.0 | memory |"));
  // gemm: 2e9 B in 10 ms = 200 GB/s; 8e12 / 2e9 = 4000 FLOP/B; tensor 75%; compute-bound.
  CHECK(gemm_row.ends_with("| 200.0 | 4.2 | 4e+03 | 75.0 | compute |"));
  CHECK(plain_row.ends_with("| - | - | - | - | - |"));
  CHECK(total_row.ends_with("|  |  |  |  |  |"));

  // Chosen columns: a counter by its metric name, and dram_bytes in MB.
  const std::string chosen =
      top_table(p, TableOptions{5, {"dram_bytes", "lts__t_sector_hit_rate.pct", "bound"}});
  CHECK(contains(chosen, "| DRAM MB | lts__t_sector_hit_rate.pct | bound |"));
  const std::string e = error_of([&] { top_table(p, TableOptions{5, {"dram_gb"}}); });
  CHECK(contains(e, "no column 'dram_gb'"));
  CHECK(contains(e, "dram_gbps"));
  CHECK(contains(e, "dram__bytes_read.sum"));

  // Without counters: the table as before, no extra columns.
  Profile plain = p;
  for (auto& k : plain.kernels) k.counters.clear();
  const std::string before = top_table(plain);
  CHECK(!contains(before, "DRAM GB/s"));
  CHECK(contains(before, "| TFLOP/s | % FLOP peak |\n|--:|"));
  plain.counters_note = "CUPTI's profiler could not be loaded";
  CHECK(contains(top_table(plain), "\nCounters: CUPTI's profiler could not be loaded\n"));
}

TEST_CASE("CSV and JSON: counters and derived metrics, read back") {
  const Profile p = counted_profile();
  const auto rows = split(to_csv(p), '\n');
  REQUIRE(rows.size() == 5);
  const auto header = split(rows[0].substr(0, rows[0].size() - 1), ',');
  const auto copy = split(rows[1].substr(0, rows[1].size() - 1), ',');
  const auto plain = split(rows[4].substr(0, rows[4].size() - 1) + ",", ',');
  auto column = [&](const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return i;
    }
    FAIL("no column " << name);
    return std::size_t(0);
  };
  CHECK(header.size() == 25 + builtin_metrics.size() + 6);
  CHECK(header[24] == "mangled_name");
  CHECK(copy[column("dram__bytes_read.sum")] == "1000000000");
  CHECK(copy[column("dram_gbps")] == "4000");
  CHECK(copy[column("dram_pct_of_peak")] == "83.333333");
  CHECK(copy[column("bound")] == "memory");
  CHECK(plain[column("dram_gbps")].empty());
  // Without counters the CSV is as before.
  Profile none = p;
  none.metrics.clear();
  for (auto& k : none.kernels) k.counters.clear();
  CHECK(split(to_csv(none), '\n')[0] ==
        "name,params,config,device,stream,grid_x,grid_y,grid_z,block_x,block_y,block_z,"
        "shared_bytes,static_shared_bytes,registers,occupancy,start_us,end_us,duration_us,"
        "host_us,host_launch_us,bytes,flops,external,correlation,mangled_name\r");

  Profile q = p;
  q.counters_note = "GPU 1: not counted";
  const nlohmann::json j = to_json(q);
  CHECK(j["kernels"][0]["counters"]["dram__bytes_write.sum"] == 1e9);
  CHECK(j["kernels"][0]["derived"]["dram_gbps"].get<double>() == doctest::Approx(4000));
  CHECK(j["kernels"][2]["derived"]["bound"] == "compute");
  CHECK(!j["kernels"][3].contains("counters"));
  const Profile back = profile_from_json(j);
  CHECK(back.metrics == q.metrics);
  CHECK(back.counters_note == q.counters_note);
  REQUIRE(back.kernels.size() == 4);
  CHECK(back.kernels[2].counters == q.kernels[2].counters);
  CHECK(back.kernels[3].counters.empty());
  CHECK(!to_json(none).contains("metrics"));
  CHECK(!to_json(none)["kernels"][0].contains("counters"));
}

TEST_CASE("Chrome trace: counters and derived metrics as args of each kernel slice") {
  const Profile p = counted_profile();
  const nlohmann::json t = chrome_trace(p);
  int with_counters = 0;
  for (const auto& e : t["traceEvents"]) {
    if (e.value("ph", "") != "X" || e.value("cat", "") != "kernel") continue;
    const auto& a = e["args"];
    if (e["name"] == "gemm") {
      ++with_counters;
      CHECK(
          a["counters"]["sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active"] ==
          75);
      CHECK(a["derived"]["measured_intensity"].get<double>() == doctest::Approx(4000));
      CHECK(a["derived"]["bound"] == "compute");
    }
    if (e["name"] == "plain") CHECK(!a.contains("counters"));
  }
  CHECK(with_counters == 1);
  const Profile back = profile_from_chrome_trace(t);
  CHECK(back.metrics == p.metrics);
  REQUIRE(back.kernels.size() == 4);
  CHECK(back.kernels[0].counters == p.kernels[0].counters);
  CHECK(back.kernels[3].counters.empty());
}

TEST_CASE("roofline: measured bytes where counters exist, declared ones marked") {
  Profile p = counted_profile();
  KernelRecord declared = kernel("declared", 30000, 1000, 1e9);
  declared.bytes = 1e8;  // 10 FLOP/B, declared
  p.kernels.push_back(declared);
  const std::string svg = roofline_svg(p, 0);
  // gemm: 8e12 FLOP over the 2e9 measured bytes (not the 1e9 declared): 4000 FLOP/B.
  CHECK(contains(svg, "gemm: 4000 FLOP/B, 800 TFLOP/s"));
  CHECK(contains(svg, "measured bytes</title>"));
  CHECK(contains(svg, "declared: 10 FLOP/B, 1 TFLOP/s"));
  CHECK(contains(svg, "declared bytes</title>"));
  CHECK(contains(svg, "bytes measured by DRAM counters (filled), or declared (hollow)"));
  CHECK(contains(svg, "fill=\"white\" stroke=\"#ff7f0e\" stroke-width=\"2\"/></g>"));
  // Without counters: no marking at all.
  for (auto& k : p.kernels) k.counters.clear();
  const std::string plain = roofline_svg(p, 0);
  CHECK(!contains(plain, "declared bytes"));
  CHECK(!contains(plain, "measured"));
  CHECK(contains(plain, "gemm: 8000 FLOP/B"));
}
