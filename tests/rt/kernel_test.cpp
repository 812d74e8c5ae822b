// kiln::kernel and kiln::compile without a GPU: the source found by name, the Spec's header
// added, compiled through the cache; launch sizes checked; errors that say what to do.
#include <doctest/doctest.h>

#include <string>

#include "../support.hpp"
#include "scale_rows_spec.hpp"

using namespace scale_rows_test;

TEST_CASE("Dim3 takes counts of any integer type and refuses negative or oversized ones") {
  using kiln::rt::Dim3;
  const int rows = 1000;
  const long long big = 1ll << 33;
  CHECK(Dim3(rows).x == 1000u);
  CHECK(Dim3(std::size_t(7), 2, short(3)).count() == 42);
  CHECK_THROWS_WITH_AS(Dim3(-1), doctest::Contains("at least 1"), kiln::Error);
  CHECK_THROWS_WITH_AS(Dim3(1, big), doctest::Contains("32 bits"), kiln::Error);
}

TEST_CASE("kiln::compile finds the source by name and compiles it with the Spec's header") {
  kiln_test::ScopedEnv path("KILN_KERNEL_PATH", KILN_SOURCE_DIR "/tests/rt/kernels");
  kiln::jit::Options o;
  o.target = "sm_90";
  auto binary = kiln::compile("scale_rows_test.cu", spec(), o);
  REQUIRE(binary);
  CHECK(binary->target == "sm_90");
  CHECK_FALSE(binary->code.empty());
  // The entry point is there under its own (extern "C") name.
  CHECK(binary->ptx.find(".entry scale_rows(") != std::string::npos);

  SUBCASE("without KILN_KERNEL_PATH, a source beside the calling file is found") {
    kiln_test::ScopedEnv no_path("KILN_KERNEL_PATH", "");
    auto same = kiln::compile("kernels/scale_rows_test.cu", spec(), o);
    CHECK(same->ptx.find(".entry scale_rows(") != std::string::npos);
  }
  SUBCASE("a missing target says where to give it") {
    CHECK_THROWS_WITH_AS(kiln::compile("scale_rows_test.cu", spec(), {}),
                         doctest::Contains("needs options.target"), kiln::Error);
  }
  SUBCASE("a missing source lists where kiln looked") {
    CHECK_THROWS_WITH_AS(kiln::compile("no_such_kernel.cu", spec(), o),
                         doctest::Contains("KILN_KERNEL_PATH"), kiln::Error);
  }
  SUBCASE("a compile error names the file") {
    kiln::gen::Spec missing;  // no In, Scale, Out or COLS: the kernel cannot compile
    missing.dim("ROW");
    CHECK_THROWS_WITH_AS(kiln::compile("scale_rows_test.cu", missing, o),
                         doctest::Contains("scale_rows_test.cu"), kiln::CompileError);
  }
}
