// The cache directory: created private, and refused (with one warning) where others could
// write kernel binaries into it.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "kiln/jit/disk_cache.hpp"
#include "test_support.hpp"

using kiln::jit::DiskCache;
using namespace kiln_cache_test;

namespace {

::mode_t mode_of(const std::filesystem::path& p) {
  struct ::stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

/// Opens a cache on `dir` and checks that it is refused: disabled, with a reason holding
/// `reason`, exactly one warning on stderr naming the directory and holding `advice`, and
/// nothing written into the directory.
void check_refused(const std::filesystem::path& dir, const std::string& reason,
                   const std::string& advice) {
  StderrCapture err;
  DiskCache cache(config_for(dir));
  cache.store(key_of("a"), "payload");
  CHECK_FALSE(cache.load(key_of("a")).has_value());
  const std::string text = err.text();
  INFO("stderr: " << text);
  INFO("reason: " << cache.disabled_reason());
  CHECK_FALSE(cache.enabled());
  CHECK(cache.disabled_reason().find(reason) != std::string::npos);
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find(dir.string()) != std::string::npos);
  CHECK(text.find(reason) != std::string::npos);
  CHECK(text.find(advice) != std::string::npos);
  CHECK(cache.stats().stores == 0);
  CHECK(cache.stats().store_failures == 0);
  std::error_code ec;
  CHECK_FALSE(std::filesystem::exists(cache.entry_path(key_of("a")), ec));
}

}  // namespace

TEST_CASE("the cache directory and its missing parents are created with mode 0700") {
  TempDir tmp;
  const ::mode_t old_umask = ::umask(022);
  const auto dir = tmp.path() / "a" / "b" / "cache";
  DiskCache cache(config_for(dir));
  ::umask(old_umask);
  REQUIRE(cache.enabled());
  CHECK(std::filesystem::is_directory(dir));
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(tmp.path() / "a") == 0700);
  CHECK(mode_of(tmp.path() / "a" / "b") == 0700);
  cache.store(key_of("x"), "y");
  CHECK(mode_of(cache.entry_path(key_of("x")).parent_path()) == 0700);
  // A directory that exists and is private is used as it is.
  DiskCache again(config_for(dir));
  CHECK(again.enabled());
  CHECK(again.load(key_of("x")) == "y");
}

TEST_CASE("a directory writable by others or by its group is refused with one warning") {
  for (::mode_t mode : {::mode_t{0777}, ::mode_t{0770}, ::mode_t{0702}, ::mode_t{0720}}) {
    CAPTURE(mode);
    TempDir tmp;
    REQUIRE(::chmod(tmp.path().c_str(), mode) == 0);
    check_refused(tmp.path(), "writable by", "chmod 700 " + tmp.path().string());
  }
  // The same directory, made private, is fine.
  TempDir tmp;
  REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
  DiskCache cache(config_for(tmp.path()));
  CHECK(cache.enabled());
}

TEST_CASE("a directory owned by another user is refused") {
  if (::geteuid() == 0) {
    TempDir tmp;
    const auto dir = tmp.path() / "theirs";
    std::filesystem::create_directory(dir);
    REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
    REQUIRE(::chmod(dir.c_str(), 0700) == 0);
    check_refused(dir, "owned by uid 65534", "KILN_CACHE_DIR");
  } else {
    check_refused("/", "owned by uid 0", "KILN_CACHE_DIR");  // root's, 0755: nothing written
  }
}

TEST_CASE("symlinks and non-directories as the cache directory") {
  TempDir tmp;
  SUBCASE("a symlink to a private directory of ours is followed") {
    std::filesystem::create_directory(tmp.path() / "real");
    REQUIRE(::chmod((tmp.path() / "real").c_str(), 0700) == 0);
    std::filesystem::create_directory_symlink(tmp.path() / "real", tmp.path() / "link");
    DiskCache cache(config_for(tmp.path() / "link"));
    CHECK(cache.enabled());
    cache.store(key_of("a"), "b");
    CHECK(files_ending(tmp.path() / "real", ".bin").size() == 1);
  }
  SUBCASE("a symlink to a world-writable directory is refused") {
    std::filesystem::create_directory(tmp.path() / "real");
    REQUIRE(::chmod((tmp.path() / "real").c_str(), 0777) == 0);
    std::filesystem::create_directory_symlink(tmp.path() / "real", tmp.path() / "link");
    check_refused(tmp.path() / "link", "the directory it links to is writable by", "chmod 700");
  }
  SUBCASE("a dangling symlink is refused, and nothing is created through it") {
    std::filesystem::create_directory_symlink(tmp.path() / "missing", tmp.path() / "link");
    check_refused(tmp.path() / "link", "symlink", "KILN_CACHE_DIR");
    CHECK_FALSE(std::filesystem::exists(tmp.path() / "missing"));
  }
  SUBCASE("a regular file is refused") {
    write_file(tmp.path() / "file", "x");
    check_refused(tmp.path() / "file", "not a directory", "KILN_CACHE_DIR");
  }
  SUBCASE("a directory that cannot be created is refused") {
    write_file(tmp.path() / "file", "x");
    check_refused(tmp.path() / "file" / "cache", "could not be created", "KILN_CACHE_DIR");
  }
}

TEST_CASE(
    "a shard directory that is a symlink, or writable by others, is neither read nor written") {
  // Someone who can replace `<dir>/ab` (a shard) with a symlink to a directory of theirs
  // must not get a forged entry served, nor receive the entries kiln writes.
  TempDir tmp;
  const std::filesystem::path dir = tmp.path() / "cache";
  const kiln::jit::CacheKey key = key_of("kernel");
  {
    DiskCache cache(config_for(dir));
    cache.store(key, "genuine");
  }
  const std::filesystem::path entry = DiskCache(config_for(dir)).entry_path(key);
  const std::filesystem::path shard = entry.parent_path();
  const std::string forged_entry = [&] {
    const auto header = kiln::jit::detail::make_cache_entry_header(key, "forged");
    return std::string(header.data(), header.size()) + "forged";
  }();
  const std::filesystem::path evil = tmp.path() / "evil";
  std::filesystem::create_directory(evil);
  REQUIRE(::chmod(evil.c_str(), 0777) == 0);
  write_file(evil / entry.filename(), forged_entry);

  auto check_unused = [&](const std::string& problem) {
    StderrCapture err;
    DiskCache cache(config_for(dir));
    REQUIRE(cache.enabled());
    CHECK_FALSE(cache.load(key).has_value());
    cache.store(key, "new");
    CHECK_FALSE(cache.load(key).has_value());
    const std::string text = err.text();
    INFO("stderr: " << text);
    CHECK(count_of(text, "kiln:") == 1);  // one warning, however often the shard is met
    CHECK(text.find(shard.string()) != std::string::npos);
    CHECK(text.find(problem) != std::string::npos);
    CHECK(text.find("remove it") != std::string::npos);
    CHECK(cache.stats().hits == 0);
    CHECK(cache.stats().stores == 0);
    CHECK(cache.stats().store_failures == 1);
  };
  SUBCASE("a symlink to a world-writable directory holding a forged entry") {
    std::filesystem::remove_all(shard);
    std::filesystem::create_directory_symlink(evil, shard);
    check_unused("symlink");
    CHECK(read_file(evil / entry.filename()) == forged_entry);  // nothing written through it
    CHECK(files_ending(evil, ".tmp").empty());
  }
  SUBCASE("a shard directory that others may write to") {
    write_file(entry, forged_entry);
    REQUIRE(::chmod(shard.c_str(), 0777) == 0);
    check_unused("writable by");
  }
  SUBCASE("a file in a shard's place") {
    std::filesystem::remove_all(shard);
    write_file(shard, forged_entry);
    check_unused("not a directory");
  }
  SUBCASE("a private shard directory is used as before") {
    StderrCapture err;
    DiskCache cache(config_for(dir));
    CHECK(cache.load(key) == "genuine");
    CHECK(err.text().empty());
  }
}
