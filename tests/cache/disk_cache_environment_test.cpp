// DiskCacheConfig::from_environment: the directory, the size limit and the switch.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "../support.hpp"
#include "kiln/jit/disk_cache.hpp"
#include "test_support.hpp"

using kiln::jit::DiskCache;
using kiln::jit::DiskCacheConfig;
using namespace kiln_cache_test;

namespace {
constexpr std::uint64_t mib = std::uint64_t{1} << 20;
}

TEST_CASE("the cache directory: KILN_CACHE_DIR, else XDG_CACHE_HOME/kiln, else HOME/.cache/kiln") {
  EnvGuard env{"KILN_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "KILN_CACHE", "KILN_CACHE_MAX_MB"};
  TempDir tmp;

  EnvGuard::set("HOME", (tmp.path() / "home").c_str());
  auto c = DiskCacheConfig::from_environment();
  CHECK(c.enabled);
  CHECK(c.dir == tmp.path() / "home" / ".cache" / "kiln");
  CHECK(c.max_bytes == 1024 * mib);

  EnvGuard::set("XDG_CACHE_HOME", (tmp.path() / "xdg").c_str());
  CHECK(DiskCacheConfig::from_environment().dir == tmp.path() / "xdg" / "kiln");

  EnvGuard::set("KILN_CACHE_DIR", (tmp.path() / "mine").c_str());
  CHECK(DiskCacheConfig::from_environment().dir == tmp.path() / "mine");

  // Empty counts as unset; a relative XDG_CACHE_HOME is ignored (the XDG spec).
  EnvGuard::set("KILN_CACHE_DIR", "");
  EnvGuard::set("XDG_CACHE_HOME", "relative/cache");
  CHECK(DiskCacheConfig::from_environment().dir == tmp.path() / "home" / ".cache" / "kiln");

  // A relative KILN_CACHE_DIR is made absolute.
  EnvGuard::set("KILN_CACHE_DIR", "relative/kiln");
  CHECK(DiskCacheConfig::from_environment().dir ==
        std::filesystem::current_path() / "relative/kiln");

  // None set: disabled, saying why.
  EnvGuard::unset("KILN_CACHE_DIR");
  EnvGuard::unset("XDG_CACHE_HOME");
  EnvGuard::unset("HOME");
  c = DiskCacheConfig::from_environment();
  CHECK_FALSE(c.enabled);
  CHECK(c.disabled_reason.find("KILN_CACHE_DIR") != std::string::npos);
  CHECK(c.disabled_reason.find("HOME") != std::string::npos);
  DiskCache cache(c);
  CHECK_FALSE(cache.enabled());
  CHECK(cache.disabled_reason() == c.disabled_reason);

  // The configuration makes a working cache.
  EnvGuard::set("KILN_CACHE_DIR", (tmp.path() / "mine").c_str());
  DiskCache from_env(DiskCacheConfig::from_environment());
  CHECK(from_env.enabled());
  from_env.store(key_of("k"), "v");
  CHECK(from_env.load(key_of("k")) == "v");
  CHECK(std::filesystem::exists(tmp.path() / "mine" / key_of("k").hex().substr(0, 2)));
}

TEST_CASE("with no directory to use, the cache says that it is off; turned off, it is quiet") {
  EnvGuard env{"KILN_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "KILN_CACHE", "KILN_CACHE_MAX_MB"};
  EnvGuard::unset("KILN_CACHE_DIR");
  EnvGuard::unset("XDG_CACHE_HOME");
  EnvGuard::unset("HOME");
  std::string text;
  {
    kiln_test::StderrCapture err;
    DiskCache cache(DiskCacheConfig::from_environment());
    CHECK_FALSE(cache.enabled());
    text = err.text();
  }
  CHECK(kiln_test::count_of(text, "kiln: the kernel disk cache is off: none of KILN_CACHE_DIR") ==
        1);
  CHECK(kiln_test::count_of(text, "kiln:") == 1);
  EnvGuard::set("KILN_CACHE", "0");
  kiln_test::StderrCapture err;
  DiskCache off(DiskCacheConfig::from_environment());
  CHECK_FALSE(off.enabled());
  CHECK(err.text().empty());
}

TEST_CASE("KILN_CACHE_MAX_MB: a positive whole number of MiB, else an error naming it") {
  EnvGuard env{"KILN_CACHE_DIR", "KILN_CACHE", "KILN_CACHE_MAX_MB"};
  EnvGuard::set("KILN_CACHE_DIR", "/nonexistent/kiln");
  EnvGuard::set("KILN_CACHE_MAX_MB", "5");
  CHECK(DiskCacheConfig::from_environment().max_bytes == 5 * mib);
  EnvGuard::set("KILN_CACHE_MAX_MB", "1");
  CHECK(DiskCacheConfig::from_environment().max_bytes == mib);
  EnvGuard::set("KILN_CACHE_MAX_MB", "0010");
  CHECK(DiskCacheConfig::from_environment().max_bytes == 10 * mib);
  EnvGuard::set("KILN_CACHE_MAX_MB", "17592186044415");  // the most that fits
  CHECK(DiskCacheConfig::from_environment().max_bytes == 17592186044415ull * mib);
  EnvGuard::set("KILN_CACHE_MAX_MB", "");
  CHECK(DiskCacheConfig::from_environment().max_bytes == 1024 * mib);
  for (const char* spaced : {" 5", "5 ", "\t5 "}) {  // as every variable kiln reads
    EnvGuard::set("KILN_CACHE_MAX_MB", spaced);
    CHECK(DiskCacheConfig::from_environment().max_bytes == 5 * mib);
  }

  for (const char* bad : {"0", "-1", "abc", "1.5", "5 5", "5MB", "+5", "1e3", "0x10",
                          "17592186044416", "99999999999999999999999"}) {
    CAPTURE(bad);
    EnvGuard::set("KILN_CACHE_MAX_MB", bad);
    try {
      (void)DiskCacheConfig::from_environment();
      FAIL("no error for KILN_CACHE_MAX_MB=" << bad);
    } catch (const kiln::Error& e) {
      const std::string what = e.what();
      CHECK(what.find("KILN_CACHE_MAX_MB") != std::string::npos);
      CHECK(what.find(std::string("'") + bad + "'") != std::string::npos);
      CHECK(what.find("positive whole number") != std::string::npos);
    }
  }
}

TEST_CASE("KILN_CACHE: 0/off/false disable, 1/on/true enable, anything else is an error") {
  EnvGuard env{"KILN_CACHE_DIR", "KILN_CACHE", "KILN_CACHE_MAX_MB"};
  TempDir tmp;
  EnvGuard::set("KILN_CACHE_DIR", (tmp.path() / "cache").c_str());
  for (const char* off : {"0", "off", "false", "OFF", "False"}) {
    CAPTURE(off);
    EnvGuard::set("KILN_CACHE", off);
    const auto c = DiskCacheConfig::from_environment();
    CHECK_FALSE(c.enabled);
    CHECK(c.disabled_reason.find("KILN_CACHE") != std::string::npos);
    DiskCache cache(c);
    CHECK_FALSE(cache.enabled());
    cache.store(key_of("a"), "b");
    CHECK_FALSE(cache.load(key_of("a")).has_value());
    CHECK_FALSE(std::filesystem::exists(tmp.path() / "cache"));
  }
  for (const char* on : {"1", "on", "true", "TRUE", "", " On "}) {
    CAPTURE(on);
    EnvGuard::set("KILN_CACHE", on);
    CHECK(DiskCacheConfig::from_environment().enabled);
  }
  for (const char* bad : {"2", "yes", "no", "disable", "0 0", "o"}) {
    CAPTURE(bad);
    EnvGuard::set("KILN_CACHE", bad);
    const std::string expected = std::string("KILN_CACHE is '") + bad + "'";
    CHECK_THROWS_WITH_AS((void)DiskCacheConfig::from_environment(),
                         doctest::Contains(expected.c_str()), kiln::Error);
  }
  // A bad size is an error even while the cache is off.
  EnvGuard::set("KILN_CACHE", "0");
  EnvGuard::set("KILN_CACHE_MAX_MB", "lots");
  CHECK_THROWS_AS((void)DiskCacheConfig::from_environment(), kiln::Error);
}
