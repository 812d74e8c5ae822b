// The disk cache never serves a binary built from other headers than the ones a compile
// would read now: headers found through the current directory, beside a program loaded by
// path, through an include path that later finds another file, or named by a macro.
// Each "fresh" KernelCache below reads the disk cache as a new process would.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "../support.hpp"
#include "kiln/jit.hpp"

namespace fs = std::filesystem;
using namespace kiln::jit;

namespace {

using kiln_test::count_of;
using kiln_test::StderrCapture;
using kiln_test::TempDir;

DiskCacheConfig config(const fs::path& dir) {
  return DiskCacheConfig{dir / "cache", 64ull << 20, true, "", false};
}

Options sm90(std::vector<std::string> include_dirs = {}) {
  Options o;
  o.target = "sm_90";
  o.include_dirs = std::move(include_dirs);
  return o;
}

/// A header that leaves `name` in the PTX (a __device__ variable is emitted unused).
std::string marker(const std::string& name) {
  return "__device__ int " + name + ";\n";
}

bool has_marker(const Binary& b, const std::string& name) {
  return b.ptx.find(" " + name + ";") != std::string::npos;
}

/// Changes the current directory for one scope.
class ScopedCwd {
 public:
  explicit ScopedCwd(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedCwd() { fs::current_path(old_); }
  ScopedCwd(const ScopedCwd&) = delete;
  ScopedCwd& operator=(const ScopedCwd&) = delete;

 private:
  fs::path old_;
};

/// Compiles `program` in a fresh cache on `dir` and returns the binary; `compiled` says
/// whether it was compiled (true) or came from the disk cache.
std::shared_ptr<const Binary> fresh_get(const fs::path& dir, const Program& program,
                                        const Options& options, bool* compiled = nullptr) {
  KernelCache cache(config(dir));
  auto b = cache.get(program, options);
  if (compiled) *compiled = cache.stats().compiles == 1;
  return b;
}

const std::string kernel = "__global__ void k(int* out) { *out = 1; }\n";

}  // namespace

TEST_CASE("stale headers: \"local.h\" found through the current directory") {
  TempDir dir;
  dir.write("work/local.h", marker("first"));
  ScopedCwd cwd(dir.path() / "work");
  const Program p{"k.cu", "#include \"local.h\"\n" + kernel, {}, {}};
  bool compiled = false;
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "first"));
  CHECK(compiled);
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "first"));
  CHECK_FALSE(compiled);  // unchanged: a disk hit
  dir.write("work/local.h", marker("second"));
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "second"));
  CHECK(compiled);
}

TEST_CASE("stale headers: a header beside a program loaded by absolute path") {
  TempDir dir;
  dir.write("src/k.cu", "#include \"near.h\"\n" + kernel);
  dir.write("src/near.h", "#include \"sub/nested.h\"\n");
  dir.write("src/sub/nested.h", marker("first"));
  const Program p = program_from_file((dir.path() / "src" / "k.cu").string());
  bool compiled = false;
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "first"));
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "first"));
  CHECK_FALSE(compiled);
  dir.write("src/sub/nested.h", marker("second"));
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "second"));
  CHECK(compiled);
  fs::remove(dir.path() / "src" / "sub" / "nested.h");  // a missing header is no hit either
  CHECK_THROWS_AS(fresh_get(dir.path(), p, sm90()), kiln::CompileError);
}

TEST_CASE("stale headers: #include MACRO skips the disk cache with a one-line notice") {
  TempDir dir;
  dir.write("inc/chosen.h", marker("first"));
  const Program p{"macro.cu", "#define CHOSEN \"chosen.h\"\n#include CHOSEN\n" + kernel, {}, {}};
  const Options o = sm90({(dir.path() / "inc").string()});
  {
    StderrCapture err;
    KernelCache cache(config(dir.path()));
    CHECK(has_marker(*cache.get(p, o), "first"));
    cache.clear_memory();
    CHECK(has_marker(*cache.get(p, o), "first"));
    const std::string text = err.text();
    INFO("stderr: " << text);
    CHECK(count_of(text, "kiln:") == 1);  // once per program, not per compile
    CHECK(count_of(text, "\n") == 1);
    CHECK(text.find("macro.cu") != std::string::npos);
    CHECK(text.find("#include CHOSEN") != std::string::npos);
    CHECK(cache.stats().compiles == 2);
    CHECK(cache.stats().disk.stores == 0);
  }
  dir.write("inc/chosen.h", marker("second"));
  bool compiled = false;
  StderrCapture err;
  CHECK(has_marker(*fresh_get(dir.path(), p, o, &compiled), "second"));
  CHECK(compiled);
}

TEST_CASE("stale headers: an include that finds another file after the first compile") {
  TempDir dir;
  dir.write("src/k.cu", "#include \"cfg.h\"\n" + kernel);
  dir.write("late/cfg.h", marker("from_include_dir"));
  const Program p = program_from_file((dir.path() / "src" / "k.cu").string());
  const Options o = sm90({(dir.path() / "early").string(), (dir.path() / "late").string()});
  bool compiled = false;
  CHECK(has_marker(*fresh_get(dir.path(), p, o, &compiled), "from_include_dir"));
  SUBCASE("an earlier include directory") {
    dir.write("early/cfg.h", marker("from_earlier_dir"));
    CHECK(has_marker(*fresh_get(dir.path(), p, o, &compiled), "from_earlier_dir"));
    CHECK(compiled);
  }
  SUBCASE("the program's own directory, searched first for \"cfg.h\"") {
    dir.write("src/cfg.h", marker("from_program_dir"));
    CHECK(has_marker(*fresh_get(dir.path(), p, o, &compiled), "from_program_dir"));
    CHECK(compiled);
  }
}

TEST_CASE("stale headers: __has_include sees a header that appears later") {
  TempDir dir;
  dir.write("src/k.cu", "#if __has_include(\"optional.h\")\n#include \"optional.h\"\n#else\n" +
                            marker("without") + "#endif\n" + kernel);
  const Program p = program_from_file((dir.path() / "src" / "k.cu").string());
  bool compiled = false;
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "without"));
  dir.write("src/optional.h", marker("with"));
  CHECK(has_marker(*fresh_get(dir.path(), p, sm90(), &compiled), "with"));
  CHECK(compiled);
}
