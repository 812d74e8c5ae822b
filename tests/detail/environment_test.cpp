// kiln/detail/environment.hpp: every switch, number and name kiln reads from the environment
// is read the same way (spaces around the value ignored, any letter case), and a bad value
// is refused naming the variable.
#include <doctest/doctest.h>

#include <string>

#include "../support.hpp"
#include "kiln/detail/environment.hpp"
#include "kiln/factory/tune_policy.hpp"
#include "kiln/factory/tuning_db.hpp"
#include "kiln/jit/detail/cache_environment.hpp"
#include "kiln/prof/profiler.hpp"

using kiln_test::ScopedEnv;

TEST_CASE("switches, numbers and names accept spaces around them and any letter case") {
  {
    ScopedEnv tune("KILN_TUNE", " Full "), top_k("KILN_TUNE_TOP_K", " 7 ");
    const auto o = kiln::factory::TuneOptions::from_environment();
    CHECK(o.policy == kiln::factory::TunePolicy::full);
    CHECK(o.top_k == 7);
  }
  {
    ScopedEnv tune("KILN_TUNE", "MODEL"), top_k("KILN_TUNE_TOP_K", "   ");  // blank: unset
    const auto o = kiln::factory::TuneOptions::from_environment();
    CHECK(o.policy == kiln::factory::TunePolicy::model);
    CHECK(o.top_k == 3);
  }
  {
    ScopedEnv backend("KILN_PROFILE_BACKEND", " Events\t");
    CHECK(kiln::prof::backend_from_environment() == kiln::prof::Backend::events);
  }
  {
    ScopedEnv cache("KILN_CACHE", " OFF ");
    CHECK_FALSE(kiln::jit::detail::cache_switch_from_environment());
  }
  {
    ScopedEnv max_mb("KILN_CACHE_MAX_MB", " 64 ");
    CHECK(kiln::jit::detail::cache_max_bytes_from_environment(1024) == 64u << 20);
  }
  {
    kiln_test::TempDir tmp;
    ScopedEnv db("KILN_TUNING_DB", " Off "), dir("KILN_CACHE_DIR", tmp.path().c_str());
    CHECK(kiln::factory::TuningDatabase::default_file().empty());
  }
}

TEST_CASE("a bad value is refused, naming the variable, the value and what it may be") {
  {
    ScopedEnv tune("KILN_TUNE", "fastest");
    CHECK_THROWS_WITH_AS(kiln::factory::TuneOptions::from_environment(),
                         doctest::Contains("KILN_TUNE is 'fastest'"), kiln::Error);
  }
  for (const char* bad : {"0", "1001", "3x", "-2", "99999999999999999999999"}) {
    CAPTURE(bad);
    ScopedEnv top_k("KILN_TUNE_TOP_K", bad);
    CHECK_THROWS_WITH_AS(kiln::factory::TuneOptions::from_environment(),
                         doctest::Contains("from 1 to 1000"), kiln::Error);
  }
  {
    ScopedEnv backend("KILN_PROFILE_BACKEND", "nvprof");
    CHECK_THROWS_WITH_AS(kiln::prof::backend_from_environment(),
                         doctest::Contains("KILN_PROFILE_BACKEND is 'nvprof'"), kiln::Error);
  }
  CHECK(kiln::detail::normalized("  Cupti\n") == "cupti");
  CHECK(kiln::detail::trimmed(" a b ") == "a b");
}
