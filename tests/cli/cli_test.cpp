// The library parts the kiln tool added and its commands' core (tools/kiln/commands.hpp),
// called directly: cache listing, checking and pruning, ptxas's resource report, sizes,
// comparisons.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "commands.hpp"

namespace fs = std::filesystem;
using namespace kiln;

namespace {
fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("kiln-cli-test-" + std::to_string(::getpid()) + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
  return dir;
}
}  // namespace

TEST_CASE("DiskCache: list, check, remove and prune (least recently used first)") {
  const fs::path dir = scratch("cache");
  jit::DiskCacheConfig config;
  config.dir = dir;
  jit::DiskCache cache(config);
  REQUIRE(cache.enabled());
  const jit::CacheKey a{1, 2}, b{3, 4}, c{5, 6};
  cache.store(a, std::string(1000, 'a'));
  cache.store(b, std::string(2000, 'b'));
  cache.store(c, std::string(3000, 'c'));
  // Make a the most recently used, b the least.
  ::utimensat(AT_FDCWD, cache.entry_path(b).c_str(), nullptr, 0);
  struct ::timespec times[2] = {{100, 0}, {100, 0}};
  ::utimensat(AT_FDCWD, cache.entry_path(b).c_str(), times, 0);
  times[0].tv_sec = times[1].tv_sec = 200;
  ::utimensat(AT_FDCWD, cache.entry_path(c).c_str(), times, 0);
  auto entries = cache.list();
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].key == b);
  CHECK(entries[1].key == c);
  CHECK(entries[2].key == a);
  CHECK(entries[0].size == 2064);
  CHECK(entries[0].mtime_sec == 100);
  // check() reads without changing anything.
  const auto checked = cache.check(a);
  CHECK(checked.problem.empty());
  CHECK(checked.payload == std::string(1000, 'a'));
  CHECK(cache.check(jit::CacheKey{7, 8}).problem == "missing");
  {
    std::ofstream damage(cache.entry_path(c), std::ios::binary | std::ios::in | std::ios::out);
    damage.seekp(100);
    damage.put('X');
  }
  CHECK(cache.check(c).problem == "the payload checksum does not match");
  ::utimensat(AT_FDCWD, cache.entry_path(c).c_str(), times, 0);  // the write refreshed it
  CHECK(fs::exists(cache.entry_path(c)));  // still there: check() does not delete
  CHECK(cache.stats().corrupt == 0);
  // prune to 4000 bytes: b (least recent, 2064) and c (3064) go, a stays.
  CHECK(cache.prune(4000) == 2);
  entries = cache.list();
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].key == a);
  CHECK(cache.remove(a));
  CHECK_FALSE(cache.remove(a));
  CHECK(cache.list().empty());
  fs::remove_all(dir);
}

TEST_CASE("parse_ptxas_resources reads ptxas's report; max threads follow registers") {
  const std::string log =
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function '_Z2tkILi64EEvPf' for 'sm_90'\n"
      "ptxas info    : Function properties for _Z2tkILi64EEvPf\n"
      "ptxas         .     16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
      "ptxas info    : Used 168 registers, used 0 barriers, 368 bytes cmem[0]\n"
      "ptxas info    : Compile time = 27.398 ms\n"
      "ptxas info    : Function properties for k\n"
      "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
      "ptxas info    : Used 10 registers, used 1 barriers, 1024 bytes smem, 368 bytes cmem[0]\n";
  const auto k = jit::parse_ptxas_resources(log);
  REQUIRE(k.size() == 2);
  CHECK(k[0].name == "_Z2tkILi64EEvPf");
  CHECK(k[0].registers == 168);
  CHECK(k[0].stack_bytes == 16);
  CHECK(k[0].spill_store_bytes == 8);
  CHECK(k[0].spill_load_bytes == 12);
  CHECK(k[0].shared_bytes == 0);
  CHECK(k[0].constant_bytes == 368);
  CHECK(k[1].registers == 10);
  CHECK(k[1].barriers == 1);
  CHECK(k[1].shared_bytes == 1024);
  // 168 registers: 5376 a warp, 12 warps fit in 65536: 384 threads.
  CHECK(jit::max_threads_for_registers(168) == 384);
  CHECK(jit::max_threads_for_registers(255) == 256);
  CHECK(jit::max_threads_for_registers(32) == 1024);
  CHECK(jit::max_threads_for_registers(32, 256) == 256);
  CHECK(jit::max_threads_for_registers(-1) == -1);
  CHECK(jit::parse_ptxas_resources("no report here").empty());
  CHECK(jit::detail::elf_kernel_names("not an ELF file").empty());
}

TEST_CASE("kernel_resources: names from the cubin, resources from the log (NVRTC)") {
  jit::Options o;
  o.target = "sm_80";
  o.extra.push_back(jit::resource_usage_flag);
  const jit::Program p{"r.cu",
                       "extern \"C\" __global__ void __launch_bounds__(128) k(float* x) {"
                       " __shared__ float s[128]; s[threadIdx.x] = x[threadIdx.x];"
                       " __syncthreads(); x[threadIdx.x] = s[127 - threadIdx.x]; }",
                       {},
                       {}};
  const jit::Binary b = jit::compiler_for(o.target).compile(p, o);
  const auto k = jit::kernel_resources(b);
  REQUIRE(k.size() == 1);
  CHECK(k[0].name == "k");
  CHECK(k[0].registers > 0);
  CHECK(k[0].shared_bytes == 512);
  CHECK(k[0].launch_bound_threads == 128);
  CHECK(k[0].max_threads_per_block == 128);
}

TEST_CASE("parse_size and compare") {
  CHECK(cli::parse_size("1048576") == 1048576);
  CHECK(cli::parse_size("500M") == 500ull << 20);
  CHECK(cli::parse_size("2G") == 2ull << 30);
  CHECK(cli::parse_size("1.5KiB") == 1536);
  CHECK_THROWS_WITH_AS(cli::parse_size("-1"), doctest::Contains("--max-size takes a size"), Error);
  CHECK_THROWS_AS(cli::parse_size("12X"), Error);

  using prof::Measurement;
  const std::vector<Measurement> base = {
      {"a", 0, 100, 0.001, 10}, {"b", 0, 100, 0.05, 10}, {"gone", 0, 1, 0, 1}};
  const std::vector<Measurement> next = {
      {"a", 0, 110, 0.001, 10}, {"b", 0, 110, 0.05, 10}, {"new", 0, 1, 0, 1}};
  const auto rows = prof::compare(base, next, 5);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].name == "a");
  CHECK(rows[0].status == prof::CompareStatus::slower);  // +10% > 5%, noise 0.14%
  CHECK(rows[1].status == prof::CompareStatus::same);    // +10% < 2 x 7.1% of noise
  CHECK(rows[1].tolerance_percent == doctest::Approx(200 * std::sqrt(2 * 0.05 * 0.05)));
  CHECK(rows[2].status == prof::CompareStatus::only_base);
  CHECK(rows[3].status == prof::CompareStatus::only_new);
  CHECK(prof::regressions(rows) == 1);
  cli::CompareSettings s{std::string(KILN_CLI_DATA) + "/bench_base.json",
                         std::string(KILN_CLI_DATA) + "/bench_new.json", 3};
  std::ostringstream out;
  CHECK(cli::run_compare(s, out) == 1);
  CHECK(out.str().find("| copy | 0 |") != std::string::npos);
}

TEST_CASE("read_json: gzip-compressed files read as the plain ones (zlib, as kiln writes them)") {
  const std::string data = KILN_CLI_DATA;
  CHECK(cli::is_gzip("\x1f\x8b rest"));
  CHECK_FALSE(cli::is_gzip("{}"));
  CHECK(cli::read_json(data + "/trace_base.json.gz") == cli::read_json(data + "/trace_base.json"));
  CHECK(cli::read_json(data + "/profile_new.json.gz") ==
        cli::read_json(data + "/profile_new.json"));
  CHECK_THROWS_WITH_AS(cli::read_json(data + "/truncated.json.gz"),
                       doctest::Contains("truncated.json.gz is cut short"), Error);
  // A file named .gz that is not compressed is read as it is.
  const fs::path dir = scratch("gz");
  fs::copy_file(data + "/profile_new.json", dir / "plain.json.gz");
  CHECK(cli::read_json((dir / "plain.json.gz").string()) ==
        cli::read_json(data + "/profile_new.json"));
  fs::remove_all(dir);
}

TEST_CASE("compile --spec: the Spec's header is the source's spec.hpp (NVRTC)") {
  const std::string data = KILN_CLI_DATA;
  const fs::path dir = scratch("spec");
  ::setenv("KILN_CACHE_DIR", dir.c_str(), 1);
  cli::CompileSettings s;
  s.file = data + "/spec_kernel.cu";
  s.arch = "sm_80";
  s.spec_file = data + "/spec.json";
  s.output = cli::CompileOutput::ptx;
  std::ostringstream out, err;
  CHECK(cli::run_compile(s, out, err) == 0);
  CHECK(out.str().find(".entry scale_rows__f32__cols256(") != std::string::npos);
  CHECK(out.str().find("0f40400000") != std::string::npos);  // kScale, 3.0f
  s.spec_file = data + "/spec_bad_name.json";
  CHECK_THROWS_WITH_AS(cli::run_compile(s, out, err),
                       doctest::Contains("tensors.In.dims[1]: the dimension name 'my-col'"),
                       gen::SpecError);
  ::unsetenv("KILN_CACHE_DIR");
  fs::remove_all(dir);
}
