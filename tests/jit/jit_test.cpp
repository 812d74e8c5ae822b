// Host-side logic of kiln/jit: options, binaries, logs, includes, sources, embedding.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "../support.hpp"
#include "kiln/jit.hpp"
#include "kiln/jit/hiprtc.hpp"
#include "kiln/rt/default_target.hpp"

namespace fs = std::filesystem;
using namespace kiln::jit;

using kiln_test::ScopedEnv;
using kiln_test::TempDir;

TEST_CASE("options: validation names the offending option") {
  Options o;
  o.target = "sm_75";
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("unsupported target 'sm_75'"), kiln::Error);
  o.target = "sm_90";
  o.cxx_standard = 14;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("C++ standard 14"), kiln::Error);
  o.cxx_standard = 20;
  o.max_registers = 300;
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("max_registers 300"), kiln::Error);
  o.max_registers = 64;
  o.defines = {{"2BAD", "1"}};
  CHECK_THROWS_WITH_AS(o.validate(), doctest::Contains("define '2BAD'"), kiln::Error);
  o.defines = {{"GOOD_1", "1"}, {"FLAG", ""}};
  CHECK_NOTHROW(o.validate());
}

TEST_CASE("options: backend flags") {
  Options o;
  o.target = "sm_90";
  o.cxx_standard = 20;
  o.line_info = o.fast_math = true;
  o.max_registers = 64;
  o.defines = {{"N", "4"}, {"FLAG", ""}};
  o.include_dirs = {"/inc"};
  auto f = o.nvrtc_flags();
  std::vector<std::string> want = {
      "--gpu-architecture=sm_90", "-std=c++20", "-lineinfo", "--use_fast_math",
      "--maxrregcount=64",        "-DN=4",      "-DFLAG",    "-I/inc"};
  CHECK(f == want);
  o.target = "gfx942";
  CHECK_THROWS_WITH_AS(o.hiprtc_flags(), doctest::Contains("max_registers is not supported"),
                       kiln::Error);
  o.max_registers = 0;
  auto h = o.hiprtc_flags();
  CHECK(h.front() == "--offload-arch=gfx942");
  CHECK(std::find(h.begin(), h.end(), "-ffast-math") != h.end());
  CHECK(is_amd_target("gfx942"));
  CHECK_FALSE(is_amd_target("sm_90"));
}

TEST_CASE("binary: serialize round trip, and malformed input is an error") {
  Binary b;
  b.compiler = "nvrtc";
  b.compiler_version = "13.0";
  b.target = "sm_90";
  b.code = std::string(
      "\x7f"
      "ELF\0\1\2",
      7);
  b.ptx = ".version 8.0";
  b.log = "warning: x";
  b.lowered_names = {{"&k<float>", "_Z1kIfEvv"}, {"&k<int>", "_Z1kIiEvv"}};
  b.compile_ms = 12.5;
  std::string bytes = b.serialize();
  Binary c = Binary::deserialize(bytes);
  CHECK(c.code == b.code);
  CHECK(c.lowered_name("&k<int>") == "_Z1kIiEvv");
  CHECK(c.compile_ms == 12.5);
  CHECK_THROWS_AS(c.lowered_name("&k<double>"), kiln::Error);
  CHECK_THROWS_AS(Binary::deserialize(bytes.substr(0, bytes.size() - 3)), kiln::Error);
  CHECK_THROWS_AS(Binary::deserialize(bytes + "x"), kiln::Error);
}

TEST_CASE("compile errors: logs are parsed in both styles") {
  auto d = parse_compiler_log(
      "k.cu(12): error: identifier \"x\" is undefined\n"
      "/a/b.hpp(3): warning: unused\n"
      "k.hip:7:5: error: use of undeclared identifier 'y'\n"
      "1 error detected\n");
  REQUIRE(d.size() == 3);
  CHECK(d[0].file == "k.cu");
  CHECK(d[0].line == 12);
  CHECK(d[0].severity == "error");
  CHECK(d[1].severity == "warning");
  CHECK(d[2].file == "k.hip");
  CHECK(d[2].line == 7);
}

TEST_CASE("compile errors: line numbers past int's range never lose the log") {
  // `#line 4000000000` is legal C++, and NVRTC reports the numbers it is given.
  const std::string log =
      "k.cu(4000000000): error: far away\n"
      "k.cu(2147483646): error: at the edge\n"
      "k.cu(99999999999999999999999): error: past every integer\n"
      "k.cu:2147483647:3: error: clang style\n";
  std::vector<kiln::jit::Diagnostic> d;
  REQUIRE_NOTHROW(d = parse_compiler_log(log));
  REQUIRE(d.size() == 4);
  for (const auto& e : d) CHECK(e.line == 0);  // unknown, not wrapped
  CHECK(d[0].message == "far away");
  std::string msg;
  REQUIRE_NOTHROW(msg = describe_compile_failure("NVRTC", "k.cu", "a\nb\n", {},
                                                 {"--gpu-architecture=sm_90"}, log, "ERR"));
  CHECK(msg.find("error: far away") != std::string::npos);
  CHECK(msg.find("full log:\n" + log) != std::string::npos);
}

TEST_CASE(
    "compile errors: the message shows the failing line with context, from source or header") {
  std::string source = "line1\nline2\nline3\nline4 BAD\nline5\nline6\nline7\n";
  std::vector<NamedSource> headers = {{"gen.hpp", "h1\nh2 WRONG\nh3\n"}};
  std::string log = "k.cu(4): error: bad thing\ngen.hpp(2): error: wrong thing\n";
  std::string msg = describe_compile_failure(
      "NVRTC", "k.cu", source, headers, {"--gpu-architecture=sm_90", "-std=c++17"}, log, "ERR");
  CHECK(msg.find("could not compile k.cu for sm_90") != std::string::npos);
  CHECK(msg.find("options: --gpu-architecture=sm_90 -std=c++17") != std::string::npos);
  CHECK(msg.find("  >     4 | line4 BAD") != std::string::npos);
  CHECK(msg.find("        2 | line2") != std::string::npos);
  CHECK(msg.find("        6 | line6") != std::string::npos);
  CHECK(msg.find("line7") == std::string::npos);  // only two lines of context
  CHECK(msg.find("  >     2 | h2 WRONG") != std::string::npos);
  CHECK(msg.find("full log:") != std::string::npos);
}

TEST_CASE("compile errors: a log naming a FIFO or a device never hangs the message") {
  // `#line 1 "/dev/zero"` (or the path of a FIFO) in a source makes the compiler name that
  // file; the message shows context lines only from regular files, and never reads others.
  TempDir dir;
  const std::string fifo = (dir.path() / "pipe.cu").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string log = "/dev/zero(3): error: from a device\n" + fifo +
                          "(2): error: from a FIFO\n"
                          "k.cu(1): error: from the source\n";
  std::string msg;
  REQUIRE_NOTHROW(msg = describe_compile_failure("NVRTC", "k.cu", "BAD\n", {},
                                                 {"--gpu-architecture=sm_90"}, log, "ERR"));
  CHECK(msg.find("error: from a device") != std::string::npos);
  CHECK(msg.find("error: from a FIFO") != std::string::npos);
  CHECK(msg.find("  >     1 | BAD") != std::string::npos);  // the source's own line, still shown
  CHECK(msg.size() < 4096);                                 // nothing read from /dev/zero

  // A FIFO or a directory as a kernel source is refused at once, saying why.
  auto error_of = [](const std::string& name) {
    try {
      kiln::jit::load_kernel_source(name);
    } catch (const kiln::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_of(fifo).find("not a regular file") != std::string::npos);
  CHECK(error_of(dir.path().string()).find("cannot read kernel source") != std::string::npos);
}

TEST_CASE("includes: every file reached through #include is passed in memory under its path") {
  TempDir dir;
  dir.write("inc/a.hpp", "#pragma once\n#include \"sub/b.hpp\"\n#include <c.hpp>\n");
  dir.write("inc/sub/b.hpp", "#include \"d.hpp\" // relative to sub/\n");
  dir.write("inc/sub/d.hpp", "int d;\n");
  dir.write("inc/c.hpp", "int c;\n#include <cuda_fp16.h>\n#include \"missing.h\"\n");
  dir.write("toolkit/cuda_fp16.h", "toolkit");
  dir.write("inc/sub/e.hpp", "int e;\n");
  const std::string inc = fs::canonical(dir.path() / "inc").string();
  Program p{"k.cu",
            "#include \"a.hpp\"\n  #  include \"mem.hpp\"\n"
            "#if __has_include( <sub/e.hpp> )\n#endif\n",
            {{"mem.hpp", "#include \"c.hpp\"\n"}},
            {}};
  const ResolvedProgram r = resolve_includes(p, {inc, (dir.path() / "toolkit").string()},
                                             {(dir.path() / "toolkit").string()});
  CHECK(r.unresolved.empty());
  CHECK(r.program.source == "#include \"" + inc + "/a.hpp\"\n  #  include \"mem.hpp\"\n" +
                                "#if __has_include( <" + inc + "/sub/e.hpp> )\n#endif\n");
  REQUIRE(r.program.headers.size() == 6);
  CHECK(r.program.headers[0].name == "mem.hpp");  // the program's own come first
  CHECK(r.program.headers[0].contents == "#include \"" + inc + "/c.hpp\"\n");
  std::vector<std::string> names;
  for (const auto& h : r.program.headers) names.push_back(h.name);
  CHECK(names == std::vector<std::string>{"mem.hpp", inc + "/a.hpp", inc + "/c.hpp",
                                          inc + "/sub/b.hpp", inc + "/sub/d.hpp",
                                          inc + "/sub/e.hpp"});
  // The toolkit's headers and files found nowhere are left to the compiler.
  CHECK(r.program.headers[2].contents ==
        "int c;\n#include <cuda_fp16.h>\n#include \"missing.h\"\n");
  CHECK(r.program.headers[3].contents ==
        "#include \"" + inc + "/sub/d.hpp\" // relative to sub/\n");
  CHECK(r.program.headers[4].contents == "int d;\n");
}

TEST_CASE("includes: what kiln cannot resolve is named, with its file and line") {
  auto unresolved = [](const std::string& source) {
    return resolve_includes(Program{"k.cu", source, {}, {}}, {}).unresolved;
  };
  CHECK(unresolved("int x;\n#include <not_anywhere.h>\n") == "");
  CHECK(unresolved("int x;\n  #include KILN_HEADER // chosen\n") ==
        "line 2 of k.cu, `#include KILN_HEADER // chosen`, names its file through a macro");
  CHECK(unresolved("#include_next <x.h>\n").find("line 1 of k.cu") != std::string::npos);
  CHECK(unresolved("#include \\\n  \"x.h\"\n").find("continued on the next line") !=
        std::string::npos);
  CHECK(unresolved("#if __has_include(HEADER)\n#endif\n").find("through a macro") !=
        std::string::npos);
  CHECK(unresolved("#if __has_include_next(<x.h>)\n#endif\n").find("line 1") != std::string::npos);
  CHECK(unresolved("#  /* c */ include /* c */ \"x.h\"\n") == "");
  CHECK(unresolved("int x;  // __has_include(X) is not used here\n") == "");
}

TEST_CASE(
    "sources: KILN_KERNEL_PATH first, then embedded, then kiln's kernels/; a miss lists every "
    "place") {
  TempDir a, b;
  a.write("k.cu", "from a");
  b.write("k.cu", "from b");
  b.write("only_b.cu", "only b");
  {
    ScopedEnv env("KILN_KERNEL_PATH", (a.path().string() + ":" + b.path().string()).c_str());
    CHECK(load_kernel_source("k.cu").text == "from a");
    CHECK(load_kernel_source("only_b.cu").text == "only b");
    CHECK(load_kernel_source("only_b.cu").origin == (b.path() / "only_b.cu").string());
    try {
      load_kernel_source("missing.cu");
      FAIL("found a missing kernel");
    } catch (const kiln::Error& e) {
      std::string m = e.what();
      CHECK(m.find(a.path().string()) != std::string::npos);
      CHECK(m.find(b.path().string()) != std::string::npos);
      CHECK(m.find("(embedded sources)") != std::string::npos);
      CHECK(m.find("KILN_KERNEL_PATH") != std::string::npos);
    }
  }
  static const char text[] = "embedded text";
  static const EmbeddedFile files[] = {{"jit_test_embedded.cu", text, sizeof(text) - 1}};
  EmbeddedSources::add(files, 1);
  CHECK(load_kernel_source("jit_test_embedded.cu").text == "embedded text");
  CHECK(load_kernel_source("jit_test_embedded.cu").origin == "embedded");
  {
    a.write("jit_test_embedded.cu", "override");
    ScopedEnv env("KILN_KERNEL_PATH", a.path().string().c_str());
    CHECK(load_kernel_source("jit_test_embedded.cu").text == "override");
  }
  CHECK(kiln_include_dir() / "kiln" / "device.hpp" ==
        fs::path(KILN_TEST_INCLUDE_DIR) / "kiln" / "device.hpp");
  {
    ScopedEnv env("KILN_INCLUDE_DIR", a.path().string().c_str());
    CHECK_THROWS_WITH_AS(kiln_include_dir(), doctest::Contains("does not hold kiln/device.hpp"),
                         kiln::Error);
  }
}

TEST_CASE("hipRTC: a missing library names itself and the variable to set") {
  ScopedEnv env("KILN_HIPRTC_LIBRARY", "/nonexistent/libhiprtc.so");
  // The API object is loaded once per process; this test runs before any hipRTC use.
  try {
    HiprtcApi::get();
    FAIL("loaded a library that does not exist");
  } catch (const kiln::LibraryError& e) {
    std::string m = e.what();
    CHECK(m.find("hipRTC") != std::string::npos);
    CHECK(m.find("/nonexistent/libhiprtc.so") != std::string::npos);
    CHECK(m.find("KILN_HIPRTC_LIBRARY") != std::string::npos);
  }
}

TEST_CASE("default target: without a resolver, an empty target is an error saying to set it") {
  // jit alone cannot ask the GPU (rt is a layer up); kiln/rt/default_target.hpp, included
  // by this test, installs a resolver, so take it away here and put it back after.
  const TargetResolver installed = set_default_target_resolver(nullptr);
  CHECK((installed == &kiln::rt::current_device_target));
  CHECK_THROWS_WITH_AS(default_target(), doctest::Contains("set Options::target"), kiln::Error);
  CHECK_THROWS_WITH_AS(default_target(), doctest::Contains("kiln/rt.hpp"), kiln::Error);
  KernelCache cache(DiskCacheConfig{{}, 1, false, "off for this test", false});
  CHECK_THROWS_WITH_AS(cache.get(Program{"k.cu", "", {}, {}}, Options{}),
                       doctest::Contains("Options::target is empty"), kiln::Error);
  CHECK((set_default_target_resolver([] { return std::string("sm_86"); }) == nullptr));
  CHECK(default_target() == "sm_86");
  set_default_target_resolver(installed);
}

TEST_CASE("default target: without a GPU the rt resolver's error says to set Options::target") {
  // The driver is looked up once per process; this is this process's only lookup.
  ScopedEnv env("KILN_CUDA_LIBRARY", "/nonexistent/libcuda.so.1");
  CHECK_THROWS_WITH_AS(kiln::rt::current_device_target(), doctest::Contains("set Options::target"),
                       kiln::Error);
  Options o;  // no target
  KernelCache cache(DiskCacheConfig{{}, 1, false, "off for this test", false});
  CHECK_THROWS_WITH_AS(cache.get(Program{"k.cu", "", {}, {}}, o),
                       doctest::Contains("/nonexistent/libcuda.so.1"), kiln::Error);
}
