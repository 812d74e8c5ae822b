// The kernel cache end to end with NVRTC (no GPU needed): hits, misses on any changed
// byte, corrupt entries, one compile per key under contention, parallel batches, and
// compile errors that show the right lines.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../support.hpp"
#include "kiln/jit.hpp"

namespace fs = std::filesystem;
using namespace kiln::jit;

namespace {

using kiln_test::TempDir;

DiskCacheConfig config(const fs::path& dir) {
  return DiskCacheConfig{dir / "cache", 64ull << 20, true, "", false};
}

// A typed kernel of realistic shape: a generated-style header plus a source using it.
Program typed_program(const std::string& extra = "") {
  Program p;
  p.name = "scale.cu";
  p.headers = {{"spec.hpp",
                "#pragma once\n#include \"kiln/device.hpp\"\nKILN_DIM(ROW);\nKILN_DIM(COL);\n"
                "inline constexpr int COLS = 256;\n"}};
  p.source =
      "#include \"spec.hpp\"\n"
      "template <int N>\n"
      "__global__ void scale(const float* in, float* out, int rows) {\n"
      "  using namespace kiln;\n"
      "  Tensor<const float, Extent<ROW, dynamic>, Extent<COL, N>> x(in, ROW(rows));\n"
      "  Tensor<float, Extent<ROW, dynamic>, Extent<COL, N>> y(out, ROW(rows));\n"
      "  ROW r(block_index());\n"
      "  for (COL c : range(COL(N)).split(thread_index(), block_size())) *y[r][c] = 2.0f * "
      "*x[c][r];\n"
      "}\n" +
      extra;
  p.name_expressions = {"&scale<COLS>", "&scale<128>"};
  return p;
}

Options sm90() {
  Options o;
  o.target = "sm_90";
  return o;
}

}  // namespace

TEST_CASE("cache: identical input hits memory, then disk in a new cache; lowered names survive") {
  TempDir dir;
  std::string lowered;
  {
    KernelCache cache(config(dir.path()));
    auto a = cache.get(typed_program(), sm90());
    auto b = cache.get(typed_program(), sm90());
    CHECK(a == b);  // the same object: a memory hit
    CHECK(cache.stats().compiles == 1);
    CHECK(cache.stats().memory_hits == 1);
    CHECK(a->code.substr(0, 4) ==
          "\x7f"
          "ELF");
    lowered = a->lowered_name("&scale<COLS>");
    CHECK(lowered.find("scale") != std::string::npos);
    CHECK(cache.stats().disk.stores == 1);
  }
  KernelCache fresh(config(dir.path()));  // as a new process would
  auto c = fresh.get(typed_program(), sm90());
  CHECK(fresh.stats().compiles == 0);
  CHECK(fresh.stats().disk_hits == 1);
  CHECK(c->lowered_name("&scale<COLS>") == lowered);
  CHECK(c->lowered_name("&scale<128>") != lowered);
}

TEST_CASE("cache: one changed byte of source, header, option or target changes the key") {
  TempDir dir;
  KernelCache cache(config(dir.path()));
  const CacheKey base = cache.content_key(typed_program(), sm90());
  CHECK(cache.content_key(typed_program(), sm90()) == base);

  Program p = typed_program();
  p.source[p.source.find("2.0f")] = '3';
  CHECK_FALSE(cache.content_key(p, sm90()) == base);
  p = typed_program();
  p.headers[0].contents.back() = ' ';
  CHECK_FALSE(cache.content_key(p, sm90()) == base);
  p = typed_program();
  p.name_expressions.pop_back();
  CHECK_FALSE(cache.content_key(p, sm90()) == base);
  Options o = sm90();
  o.defines = {{"X", "1"}};
  CHECK_FALSE(cache.content_key(typed_program(), o) == base);
  o = sm90();
  o.cxx_standard = 20;
  CHECK_FALSE(cache.content_key(typed_program(), o) == base);
  o = sm90();
  o.line_info = true;
  CHECK_FALSE(cache.content_key(typed_program(), o) == base);
  o = sm90();
  o.target = "sm_89";
  CHECK_FALSE(cache.content_key(typed_program(), o) == base);

  // A changed byte in a header included from disk (not in memory) changes the key too.
  fs::create_directories(dir.path() / "inc");
  std::ofstream(dir.path() / "inc" / "user.hpp") << "#define USER_VALUE 1\n";
  p = typed_program("#include \"user.hpp\"\n");
  o = sm90();
  o.include_dirs = {(dir.path() / "inc").string()};
  const CacheKey with_user = cache.content_key(p, o);
  std::ofstream(dir.path() / "inc" / "user.hpp") << "#define USER_VALUE 2\n";
  CHECK_FALSE(cache.content_key(p, o) == with_user);

  // And a real compile follows a changed key: two compiles, two entries.
  cache.get(typed_program(), sm90());
  p = typed_program();
  p.source[p.source.find("2.0f")] = '3';
  cache.get(p, sm90());
  CHECK(cache.stats().compiles == 2);
  CHECK(cache.stats().disk.stores == 2);
}

TEST_CASE("cache: a corrupt or truncated entry is recompiled") {
  TempDir dir;
  const CacheKey key = KernelCache(config(dir.path())).content_key(typed_program(), sm90());
  {
    KernelCache cache(config(dir.path()));
    cache.get(typed_program(), sm90());
  }
  fs::path entry = DiskCache(config(dir.path())).entry_path(key);
  REQUIRE(fs::exists(entry));
  {  // flip one byte in the middle
    std::fstream f(entry, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(std::streamoff(fs::file_size(entry) / 2));
    f.put('\x5a');
  }
  KernelCache a(config(dir.path()));
  a.get(typed_program(), sm90());
  CHECK(a.stats().compiles == 1);
  CHECK(a.stats().disk.corrupt == 1);
  fs::resize_file(entry, fs::file_size(entry) / 3);  // truncate
  KernelCache b(config(dir.path()));
  b.get(typed_program(), sm90());
  CHECK(b.stats().compiles == 1);
  CHECK(b.stats().disk.corrupt == 1);
  KernelCache c(config(dir.path()));
  c.get(typed_program(), sm90());
  CHECK(c.stats().compiles == 0);  // the rewritten entry is good
}

TEST_CASE("cache: 16 threads asking for one key compile it once") {
  TempDir dir;
  KernelCache cache(config(dir.path()));
  std::vector<std::thread> threads;
  std::vector<std::shared_ptr<const Binary>> got(16);
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] { got[size_t(t)] = cache.get(typed_program(), sm90()); });
  }
  for (auto& t : threads) t.join();
  CHECK(cache.stats().compiles == 1);
  for (const auto& g : got) CHECK(g == got[0]);
}

TEST_CASE("cache: a batch compiles in parallel, and one bad program does not spoil the rest") {
  TempDir dir;
  KernelCache cache(config(dir.path()));
  std::vector<CompileRequest> batch;
  for (int i = 0; i < 4; ++i) {
    batch.push_back({typed_program("// variant " + std::to_string(i) + "\n"), sm90()});
  }
  batch.push_back(
      {Program{"broken.cu", "__global__ void k() { undefined_thing(); }\n", {}, {}}, sm90()});
  auto out = cache.compile_all(batch, 2);
  REQUIRE(out.size() == 5);
  for (int i = 0; i < 4; ++i) {
    CHECK(out[size_t(i)].binary != nullptr);
    CHECK_FALSE(out[size_t(i)].error);
  }
  CHECK(out[4].binary == nullptr);
  CHECK_THROWS_AS(std::rethrow_exception(out[4].error), kiln::CompileError);
  CHECK(cache.stats().compiles == 5);
  CHECK(cache.stats().compile_failures == 1);
}

TEST_CASE("cache: KILN_JOBS is read like every number: spaces around it allowed, junk refused") {
  TempDir dir;
  KernelCache cache(config(dir.path()));
  ::setenv("KILN_JOBS", " 3 ", 1);
  CHECK(cache.compile_all({}).empty());
  for (const char* bad : {"three", "0", "2000", "3x"}) {
    CAPTURE(bad);
    ::setenv("KILN_JOBS", bad, 1);
    try {
      cache.compile_all({});
      FAIL("KILN_JOBS=" << bad << " was accepted");
    } catch (const kiln::Error& e) {
      const std::string what = e.what();
      CHECK(what.find("KILN_JOBS") != std::string::npos);
      CHECK(what.find("1 to 1024") != std::string::npos);
    }
  }
  ::unsetenv("KILN_JOBS");
}

TEST_CASE("cache: compile errors name kernel, target and options, and show the failing lines") {
  TempDir dir;
  KernelCache cache(config(dir.path()));
  Program p = typed_program();
  p.source =
      "#include \"spec.hpp\"\n__global__ void k(float* out) {\n  float x = 1;\n  *out = x + "
      "missing_value;\n}\n";
  try {
    cache.get(p, sm90());
    FAIL("compiled an undefined identifier");
  } catch (const kiln::CompileError& e) {
    std::string m = e.what();
    CHECK(m.find("could not compile scale.cu for sm_90") != std::string::npos);
    CHECK(m.find("--gpu-architecture=sm_90") != std::string::npos);
    CHECK(m.find("scale.cu:4: error") != std::string::npos);
    CHECK(m.find("  >     4 |   *out = x + missing_value;") != std::string::npos);
    CHECK(m.find("    3 |   float x = 1;") != std::string::npos);
  }
  // An error in the in-memory (generated) header points into that header.
  p = typed_program();
  p.headers[0].contents += "inline constexpr int BROKEN = undefined_in_header;\n";
  try {
    cache.get(p, sm90());
    FAIL("compiled a broken header");
  } catch (const kiln::CompileError& e) {
    std::string m = e.what();
    CHECK(m.find("spec.hpp:6: error") != std::string::npos);
    CHECK(m.find("  >     6 | inline constexpr int BROKEN = undefined_in_header;") !=
          std::string::npos);
  }
  CHECK(cache.stats().compile_failures == 2);
  // A failed compile is not remembered: asking again compiles again.
  CHECK_THROWS_AS(cache.get(p, sm90()), kiln::CompileError);
  CHECK(cache.stats().compile_failures == 3);
}

TEST_CASE("cache: an option the compiler rejects is named") {
  TempDir dir;
  KernelCache cache(config(dir.path()));
  Options o = sm90();
  o.extra = {"--bogus-flag"};
  CHECK_THROWS_WITH_AS(cache.get(typed_program(), o),
                       doctest::Contains("rejected option(s): --bogus-flag"), kiln::CompileError);
}

TEST_CASE("cache: every supported NVIDIA target compiles the typed program") {
  TempDir dir;
  KernelCache cache(config(dir.path()));
  std::vector<CompileRequest> batch;
  for (const char* t : {"sm_80", "sm_86", "sm_89", "sm_90", "sm_90a"}) {
    Options o;
    o.target = t;
    batch.push_back({typed_program(), o});
  }
  auto out = cache.compile_all(batch);
  for (size_t i = 0; i < out.size(); ++i) {
    CAPTURE(batch[i].options.target);
    REQUIRE(out[i].binary);
    CHECK(out[i].binary->target == batch[i].options.target);
    CHECK(out[i].binary->ptx.find(".target " + batch[i].options.target) != std::string::npos);
  }
}
