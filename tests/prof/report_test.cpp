// kiln/prof/report.hpp: the top-N table's numbers, CSV quoting, JSON round trips and
// writing files.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/prof/report.hpp"
#include "kiln/prof/roofline.hpp"

using namespace kiln::prof;

namespace {

KernelRecord call(std::string name, int device, double start_us, double us, double bytes = 0,
                  double flops = 0) {
  KernelRecord k;
  k.name = std::move(name);
  k.device = device;
  k.start_us = start_us;
  k.end_us = start_us + us;
  k.bytes = bytes;
  k.flops = flops;
  return k;
}

// Device 0: 1 TB/s, FP32 10 TFLOP/s, FP16 tensor 100 TFLOP/s. Device 1 has no peaks.
Profile report_profile() {
  Profile p;
  p.backend = "events";
  p.devices.push_back({0, "Test GPU", {"Test GPU", 1e12, 10e12, 100e12, "registry"}});
  // gemm: 400 us, 6e9 FLOP -> 15 TFLOP/s (over the FP32 peak: 15% of tensor), 8e7 B ->
  // 200 GB/s (20%).
  p.kernels.push_back(call("gemm", 0, 0, 100, 4e7, 3e9));
  // copy: 200 us, 1.5e8 B -> 750 GB/s (75%); no FLOPs.
  p.kernels.push_back(call("copy", 0, 100, 50, 5e7));
  p.kernels.push_back(call("gemm", 0, 150, 300, 4e7, 3e9));
  p.kernels.push_back(call("copy", 0, 450, 50, 5e7));
  p.kernels.push_back(call("copy", 0, 500, 100, 5e7));
  // tiny: nothing declared.
  p.kernels.push_back(call("tiny", 0, 600, 10));
  // gemm on device 1, whose peaks are unknown: 1e6 B in 50 us -> 20 GB/s.
  p.kernels.push_back(call("gemm", 1, 0, 50, 1e6));
  return p;  // 660 us in all
}

std::vector<std::string> lines(const std::string& text, char end = '\n') {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line, end);) out.push_back(line);
  return out;
}

// A small RFC 4180 reader: rows of fields, CRLF line ends, quoted fields with "" for ".
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      REQUIRE_MESSAGE(field.empty(), "a quote inside an unquoted field");
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (c == '\r') {
      REQUIRE(i + 1 < text.size());
      REQUIRE(text[i + 1] == '\n');
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
      ++i;
    } else {
      REQUIRE_MESSAGE(c != '\n', "a bare LF outside quotes");
      field += c;
    }
  }
  CHECK_FALSE(quoted);
  CHECK(field.empty());
  rows.pop_back();  // after the last CRLF
  return rows;
}

std::filesystem::path temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "kiln_prof_XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

std::string read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE(
    "top_table: grouped by (name, device), sorted by total time, with hand-computed figures") {
  const std::string table = top_table(report_profile());
  INFO(table);
  const auto rows = lines(table);
  auto row = [&](const std::string& start) {
    for (const auto& r : rows) {
      if (r.starts_with(start)) return r;
    }
    return std::string("(no row starting " + start + ")");
  };
  CHECK(row("Peaks of GPU 0") ==
        "Peaks of GPU 0 (Test GPU, from registry): 1 TB/s, FP32 10 TFLOP/s, FP16 tensor 100 "
        "TFLOP/s");
  CHECK(row("| # |") ==
        "| # | kernel | dev | calls | total ms | mean us | min us | max us | % time | GB/s | % BW "
        "| TFLOP/s | % FLOP peak |");
  CHECK(row("| 1 |") ==
        "| 1 | gemm | 0 | 2 | 0.400 | 200.00 | 100.00 | 300.00 | 60.6 | 200.0 | 20.0 | 15.00 | "
        "15.0 (tensor) |");
  CHECK(row("| 2 |") ==
        "| 2 | copy | 0 | 3 | 0.200 | 66.67 | 50.00 | 100.00 | 30.3 | 750.0 | 75.0 | - | - |");
  CHECK(row("| 3 |") ==
        "| 3 | gemm | 1 | 1 | 0.050 | 50.00 | 50.00 | 50.00 | 7.6 | 20.0 | - | - | - |");
  CHECK(row("| 4 |") ==
        "| 4 | tiny | 0 | 1 | 0.010 | 10.00 | 10.00 | 10.00 | 1.5 | - | - | - | - |");
  CHECK(rows.back() == "|  | **total** (4 kernels) |  | 7 | 0.660 |  |  |  | 100.0 |  |  |  |  |");
}

TEST_CASE("top_table: n rows, the rest summed in one row, totals last") {
  const auto rows = lines(top_table(report_profile(), 2));
  CHECK(rows.back() == "|  | **total** (4 kernels) |  | 7 | 0.660 |  |  |  | 100.0 |  |  |  |  |");
  CHECK(rows[rows.size() - 2] ==
        "|  | (2 more kernels) |  | 2 | 0.060 |  |  |  | 9.1 |  |  |  |  |");
  CHECK(rows[rows.size() - 3].starts_with("| 2 | copy |"));
  for (const auto& r : rows) CHECK_FALSE(r.starts_with("| 3 |"));
}

TEST_CASE("top_table: FP32 percentages, part-declared kernels, pipes in names") {
  Profile p;
  p.devices.push_back({0, "Test GPU", {"Test GPU", 1e12, 10e12, 100e12, "attributes"}});
  p.kernels.push_back(call("fma|loop", 0, 0, 100, 0, 5e8));  // 5 TFLOP/s: 50% of FP32
  p.kernels.push_back(call("half", 0, 100, 100, 1e8));       // bytes on one call of two:
  p.kernels.push_back(call("half", 0, 200, 100));            // 1e8 B / 100 us = 1000 GB/s
  const auto rows = lines(top_table(p));
  CHECK(rows[rows.size() - 3] ==
        "| 1 | half | 0 | 2 | 0.200 | 100.00 | 100.00 | 100.00 | 66.7 | 1000.0 | 100.0 | - | - |");
  CHECK(rows[rows.size() - 2] ==
        "| 2 | fma\\|loop | 0 | 1 | 0.100 | 100.00 | 100.00 | 100.00 | 33.3 | - | - | 5.00 | 50.0 "
        "|");
}

TEST_CASE("top_table: an empty profile is a header and a total of nothing") {
  const auto rows = lines(top_table(Profile{}));
  REQUIRE(rows.size() == 3);
  CHECK(rows.back() == "|  | **total** (0 kernels) |  | 0 | 0.000 |  |  |  | - |  |  |  |  |");
}

TEST_CASE("to_csv: numbers with at most 3 decimals, no float noise") {
  Profile p;
  KernelRecord k = call("k", 0, 1234567.891234567, 0.1 + 0.2, 1e9, 2.5e12);
  k.occupancy = 2.0 / 3.0;
  k.host_us = 1234567.0004;  // rounds to a whole microsecond
  k.host_launch_us = 0.0016;
  p.kernels.push_back(k);
  const auto rows = parse_csv(to_csv(p));
  REQUIRE(rows.size() == 2);
  const auto& r = rows[1];
  CHECK(r[14] == "0.667");        // occupancy
  CHECK(r[15] == "1234567.891");  // start_us
  CHECK(r[17] == "0.3");          // duration_us: 0.30000000000000004 in a double
  CHECK(r[18] == "1234567");      // host_us
  CHECK(r[19] == "0.002");        // host_launch_us, rounded to nanoseconds
  CHECK(r[20] == "1000000000");   // bytes
  CHECK(r[21] == "2500000000000");
  CHECK(kiln::prof::detail::csv_number(-0.0001, 3) == "0");
  CHECK(kiln::prof::detail::csv_number(2.0, 3) == "2");
}

TEST_CASE("to_csv: a header, one row per record, RFC 4180 quoting") {
  Profile p;
  KernelRecord k = call("gemm<float, 128>", 1, 1.5, 2.25, 4096, 8192);
  k.params = "say \"hi\", twice";
  k.config = "line1\nline2";
  k.stream = 0xabc;
  k.grid = {4, 2, 1};
  k.block = {128, 1, 1};
  k.shared_bytes = 1024;
  k.static_shared_bytes = 512;
  k.registers = 40;
  k.occupancy = 0.5;
  k.host_us = 1.0;
  k.host_launch_us = 0.25;
  k.correlation = 7;
  p.kernels.push_back(k);
  p.kernels.push_back(call("plain", 0, 10, 1));
  const std::string csv = to_csv(p);
  CHECK(csv.starts_with("name,params,config,device,stream,"));
  const auto rows = parse_csv(csv);
  REQUIRE(rows.size() == 3);
  const std::vector<std::string> header = {"name",
                                           "params",
                                           "config",
                                           "device",
                                           "stream",
                                           "grid_x",
                                           "grid_y",
                                           "grid_z",
                                           "block_x",
                                           "block_y",
                                           "block_z",
                                           "shared_bytes",
                                           "static_shared_bytes",
                                           "registers",
                                           "occupancy",
                                           "start_us",
                                           "end_us",
                                           "duration_us",
                                           "host_us",
                                           "host_launch_us",
                                           "bytes",
                                           "flops",
                                           "external",
                                           "correlation",
                                           "mangled_name"};
  CHECK(rows[0] == header);
  const std::vector<std::string> first = {"gemm<float, 128>",
                                          "say \"hi\", twice",
                                          "line1\nline2",
                                          "1",
                                          "0xabc",
                                          "4",
                                          "2",
                                          "1",
                                          "128",
                                          "1",
                                          "1",
                                          "1024",
                                          "512",
                                          "40",
                                          "0.5",
                                          "1.5",
                                          "3.75",
                                          "2.25",
                                          "1",
                                          "0.25",
                                          "4096",
                                          "8192",
                                          "false",
                                          "7",
                                          "gemm<float, 128>"};
  CHECK(rows[1] == first);
  CHECK(rows[2][0] == "plain");
  CHECK(rows[2][4] == "0x0");
  // Exactly the fields that need quotes are quoted.
  CHECK(csv.find("\r\n\"gemm<float, 128>\",\"say \"\"hi\"\", twice\",\"line1\nline2\",1,0xabc,") !=
        std::string::npos);
  CHECK(csv.find("\r\nplain,,,0,0x0,") != std::string::npos);
}

TEST_CASE("to_json and profile_from_json: every field survives a round trip through text") {
  Profile p = report_profile();
  p.devices.push_back({1, "Other GPU", {"Other GPU", 2e12, 0, 0, "attributes"}});
  KernelRecord& k = p.kernels[1];
  k.params = "n=\"4096\"";
  k.config = "tile=128";
  k.stream = 0xffffffffffff0000ull;
  k.grid = {7, 8, 9};
  k.block = {32, 4, 2};
  k.shared_bytes = 48u * 1024;
  k.static_shared_bytes = 100;
  k.registers = 96;
  k.occupancy = 0.375;
  k.host_us = 0.125;
  k.host_launch_us = 3.5;
  k.external = true;
  k.correlation = 123456789;

  const nlohmann::json j = to_json(p);
  CHECK(j["format"] == "kiln-profile");
  CHECK(j["kernels"].size() == p.kernels.size());
  CHECK(j["kernels"][0]["duration_us"] == 100.0);
  CHECK(j["devices"][0]["peaks"]["bandwidth"] == 1e12);

  const Profile back = profile_from_json(nlohmann::json::parse(j.dump()));
  CHECK(back.backend == p.backend);
  REQUIRE(back.devices.size() == p.devices.size());
  for (std::size_t i = 0; i < p.devices.size(); ++i) {
    CHECK(back.devices[i].ordinal == p.devices[i].ordinal);
    CHECK(back.devices[i].name == p.devices[i].name);
    CHECK(back.devices[i].peaks.name == p.devices[i].peaks.name);
    CHECK(back.devices[i].peaks.bandwidth == p.devices[i].peaks.bandwidth);
    CHECK(back.devices[i].peaks.fp32_flops == p.devices[i].peaks.fp32_flops);
    CHECK(back.devices[i].peaks.tensor_fp16_flops == p.devices[i].peaks.tensor_fp16_flops);
    CHECK(back.devices[i].peaks.source == p.devices[i].peaks.source);
  }
  REQUIRE(back.kernels.size() == p.kernels.size());
  for (std::size_t i = 0; i < p.kernels.size(); ++i) {
    const KernelRecord &a = p.kernels[i], &b = back.kernels[i];
    CHECK(b.name == a.name);
    CHECK(b.params == a.params);
    CHECK(b.config == a.config);
    CHECK(b.device == a.device);
    CHECK(b.stream == a.stream);
    CHECK(b.grid == a.grid);
    CHECK(b.block == a.block);
    CHECK(b.shared_bytes == a.shared_bytes);
    CHECK(b.static_shared_bytes == a.static_shared_bytes);
    CHECK(b.registers == a.registers);
    CHECK(b.occupancy == a.occupancy);
    CHECK(b.start_us == a.start_us);
    CHECK(b.end_us == a.end_us);
    CHECK(b.host_us == a.host_us);
    CHECK(b.host_launch_us == a.host_launch_us);
    CHECK(b.bytes == a.bytes);
    CHECK(b.flops == a.flops);
    CHECK(b.external == a.external);
    CHECK(b.correlation == a.correlation);
  }
}

TEST_CASE("profile_from_json: other JSON is refused with a kiln::Error") {
  CHECK_THROWS_AS(profile_from_json(nlohmann::json{{"traceEvents", 1}}), kiln::Error);
  CHECK_THROWS_AS(profile_from_json(nlohmann::json::array()), kiln::Error);
  nlohmann::json wrong = to_json(report_profile());
  wrong["version"] = 99;
  CHECK_THROWS_WITH_AS(profile_from_json(wrong), doctest::Contains("version 99"), kiln::Error);
  wrong = to_json(report_profile());
  wrong["kernels"][0]["start_us"] = "soon";
  CHECK_THROWS_WITH_AS(profile_from_json(wrong), doctest::Contains("wrong type"), kiln::Error);
}

TEST_CASE("write_file: writes the bytes, and names the path and the reason when it cannot") {
  const auto dir = temp_dir();
  const std::string text = "a,b\r\n\"c\",d\r\n";
  write_file((dir / "out.csv").string(), text);
  CHECK(read(dir / "out.csv") == text);
  write_file((dir / "out.csv").string(), "shorter");
  CHECK(read(dir / "out.csv") == "shorter");

  const std::string missing = (dir / "no-such-dir" / "out.csv").string();
  CHECK_THROWS_WITH_AS(write_file(missing, text),
                       doctest::Contains((missing + ": No such file or directory").c_str()),
                       kiln::Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("names: C++ kernel names are demangled where people read them, and kept as recorded") {
  const std::string cutlass =
      "_ZN7cutlass7Kernel2I43cutlass_80_simt_sgemm_256x128_8x4_nn_align1EEvNT_6ParamsE";
  CHECK(demangle(cutlass) ==
        "void cutlass::Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>("
        "cutlass_80_simt_sgemm_256x128_8x4_nn_align1::Params)");
  CHECK(demangle("softmax<f32, 256>") == "softmax<f32, 256>");  // not a symbol: as it is
  CHECK(demangle("_Znot_a_symbol") == "_Znot_a_symbol");
  // Tables: no return type or parameters; template lists collapse, innermost first.
  CHECK(short_name(cutlass) == "cutlass::Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>");
  CHECK(short_name(cutlass, 30) == "cutlass::Kernel2<…>");
  const std::string nested = "_Z1kIN2ns1AIiEELi4EEvv";  // void k<ns::A<int>, 4>()
  CHECK(demangle(nested) == "void k<ns::A<int>, 4>()");
  CHECK(short_name(nested) == "k<ns::A<int>, 4>");
  CHECK(short_name(nested, 14) == "k<ns::A<…>, 4>");
  CHECK(short_name(nested, 12) == "k<…>");
  const std::string long_plain(100, 'x');
  CHECK(detail::display_width(short_name(long_plain, 20)) == 20);

  Profile p;
  p.devices.push_back({0, "GPU", {"GPU", 1e12, 1e13, 0, "registry"}});
  KernelRecord k;
  k.name = cutlass;
  k.end_us = 10;
  k.bytes = 1e6;
  k.flops = 1e8;
  p.kernels.push_back(k);
  const std::string table = top_table(p);
  CHECK(table.find("| cutlass::Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1> |") !=
        std::string::npos);
  CHECK(table.find("_ZN7") == std::string::npos);
  const auto rows = parse_csv(to_csv(p));
  CHECK(rows[1].front() == demangle(cutlass));
  CHECK(rows[1].back() == cutlass);
  CHECK(to_json(p)["kernels"][0]["name"] == cutlass);  // JSON keeps the name as recorded
  const std::string svg = roofline_svg(p, 0);
  CHECK(svg.find("cutlass::Kernel2") != std::string::npos);
  CHECK(svg.find("_ZN7cutlass") == std::string::npos);
}

TEST_CASE("device_table: the straggler view, each device against the fastest on a kernel") {
  Profile p;
  auto add = [&](const std::string& name, int device, double us) {
    KernelRecord k;
    k.name = name;
    k.device = device;
    k.end_us = us;
    p.kernels.push_back(k);
  };
  add("gemm", 0, 100);
  add("gemm", 1, 125);
  add("gemm", 1, 0);  // a second call: 2 calls, 125 us on device 1
  add("solo", 0, 5);
  const std::string t = device_table(p);
  CHECK(t.find("| gemm | 0 | 1 | 0.100 | 100.00 | fastest |") != std::string::npos);
  CHECK(t.find("| gemm | 1 | 2 | 0.125 | 62.50 | +25.0% |") != std::string::npos);
  CHECK(t.find("1 kernel(s) ran on one device only.") != std::string::npos);
  Profile single;
  single.kernels.push_back(p.kernels.back());
  CHECK(device_table(single).find("(no kernel ran on more than one device)") != std::string::npos);
}
