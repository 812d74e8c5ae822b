// The disk cache's entries: round trips, misses, corrupt entries, eviction, failures.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <string>

#include "../support.hpp"
#include "kiln/jit/disk_cache.hpp"
#include "test_support.hpp"

using kiln::jit::CacheKey;
using kiln::jit::DiskCache;
using namespace kiln_cache_test;

namespace {
constexpr std::uint64_t header = kiln::jit::detail::cache_entry_header_size;
}

TEST_CASE("store then load returns the payload: small, empty, binary and 10 MB") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path() / "cache"));
  REQUIRE(cache.enabled());
  CHECK(cache.disabled_reason().empty());

  const std::string small = "a kernel binary";
  const std::string binary("\0\x01\xff\0KILNBIN\0", 12);
  const std::string big = make_payload(42, 10u << 20);
  cache.store(key_of("small"), small);
  cache.store(key_of("empty"), "");
  cache.store(key_of("binary"), binary);
  cache.store(key_of("big"), big);

  CHECK(cache.load(key_of("small")) == small);
  const auto empty = cache.load(key_of("empty"));
  REQUIRE(empty.has_value());
  CHECK(empty->empty());
  CHECK(cache.load(key_of("binary")) == binary);
  CHECK(cache.load(key_of("big")) == big);

  // The layout: <dir>/<2 hex>/<32 hex>.bin, each file header + payload, mode 0600.
  const CacheKey k = key_of("small");
  const auto path = cache.entry_path(k);
  CHECK(path == tmp.path() / "cache" / k.hex().substr(0, 2) / (k.hex() + ".bin"));
  CHECK(std::filesystem::file_size(path) == header + small.size());
  const std::string file = read_file(path);
  CHECK(file.substr(0, 8) == std::string("KILNBIN\0", 8));
  CHECK(file.substr(header) == small);
  struct ::stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // Storing again replaces the entry.
  cache.store(k, "another binary");
  CHECK(cache.load(k) == "another binary");

  const auto s = cache.stats();
  CHECK(s.hits == 5);
  CHECK(s.misses == 0);
  CHECK(s.stores == 5);
  CHECK(s.corrupt == 0);
  CHECK(s.store_failures == 0);
  CHECK(files_ending(tmp.path(), ".tmp").empty());

  // Another cache on the same directory (as another process would) sees the entries.
  DiskCache again(config_for(tmp.path() / "cache"));
  CHECK(again.load(key_of("big")) == big);
  CHECK(again.size_bytes() ==
        4 * header + std::string("another binary").size() + binary.size() + big.size());
}

TEST_CASE("a key never stored is a miss") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  CHECK_FALSE(cache.load(key_of("nothing")).has_value());
  cache.store(key_of("something"), "x");
  CHECK_FALSE(cache.load(key_of("nothing")).has_value());
  CHECK(cache.stats().misses == 2);
  CHECK(cache.stats().hits == 0);
  CHECK(cache.stats().corrupt == 0);
}

namespace {

/// Stores an entry, lets `damage` change its file, and checks that the next load misses,
/// deletes the file and counts it corrupt; then that the entry can be stored again.
template <class Damage>
void check_detected(Damage damage) {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  const CacheKey k = key_of("victim");
  const std::string payload = make_payload(7, 1000);
  cache.store(k, payload);
  const auto path = cache.entry_path(k);
  REQUIRE(std::filesystem::exists(path));
  damage(path);
  CHECK_FALSE(cache.load(k).has_value());
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(cache.stats().corrupt == 1);
  CHECK(cache.stats().misses == 1);
  CHECK(cache.stats().hits == 0);
  CHECK_FALSE(cache.load(k).has_value());  // now a plain miss
  CHECK(cache.stats().corrupt == 1);
  cache.store(k, payload);
  CHECK(cache.load(k) == payload);
}

void flip_byte(const std::filesystem::path& p, std::size_t at) {
  std::string bytes = read_file(p);
  REQUIRE(at < bytes.size());
  bytes[at] = static_cast<char>(bytes[at] ^ 0x01);
  write_file(p, bytes);
}

}  // namespace

TEST_CASE("a flipped payload byte is detected, the entry deleted and reported as a miss") {
  for (std::size_t at : {std::size_t{0}, std::size_t{500}, std::size_t{999}}) {
    CAPTURE(at);
    check_detected([&](const std::filesystem::path& p) { flip_byte(p, header + at); });
  }
}

TEST_CASE("a flipped byte anywhere in the header is detected") {
  for (std::size_t at = 0; at < header; ++at) {
    CAPTURE(at);
    check_detected([&](const std::filesystem::path& p) { flip_byte(p, at); });
  }
}

TEST_CASE("truncated, extended and empty entries are detected") {
  SUBCASE("one byte short") {
    check_detected([](const std::filesystem::path& p) {
      std::filesystem::resize_file(p, std::filesystem::file_size(p) - 1);
    });
  }
  SUBCASE("header only") {
    check_detected([](const std::filesystem::path& p) { std::filesystem::resize_file(p, header); });
  }
  SUBCASE("cut inside the header") {
    check_detected([](const std::filesystem::path& p) { std::filesystem::resize_file(p, 30); });
  }
  SUBCASE("0 bytes") {
    check_detected([](const std::filesystem::path& p) { std::filesystem::resize_file(p, 0); });
  }
  SUBCASE("one byte too many") {
    check_detected([](const std::filesystem::path& p) { write_file(p, read_file(p) + "x"); });
  }
  SUBCASE("an entry under another key's name") {
    check_detected([](const std::filesystem::path& p) {
      TempDir other;
      DiskCache c(config_for(other.path()));
      c.store(key_of("someone else"), make_payload(7, 1000));
      write_file(p, read_file(c.entry_path(key_of("someone else"))));
    });
  }
}

TEST_CASE("a FIFO in an entry's place is a miss, not a hang; a store replaces it") {
  TempDir tmp;
  const auto config = config_for(tmp.path());
  const CacheKey k = key_of("fifo");
  const std::string payload = make_payload(3, 100);
  std::filesystem::path path;
  {
    DiskCache cache(config);
    cache.store(k, payload);
    path = cache.entry_path(k);
  }
  std::filesystem::remove(path);
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  // In a child with an alarm: a blocking open() would hang there, not here.
  const int code = kiln_test::in_child([&] {
    ::alarm(10);
    kiln_test::StderrCapture quiet;
    DiskCache cache(config);
    if (cache.load(k).has_value()) return 2;
    if (cache.stats().corrupt != 1) return 3;
    cache.store(k, payload);
    return cache.load(k) == payload ? 0 : 4;
  });
  CHECK(code == 0);  // -1: the alarm ended it (the open hung)
}

TEST_CASE("a huge (sparse) entry is dropped unread, with a warning") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  const CacheKey k = key_of("huge");
  cache.store(k, make_payload(5, 100));
  const auto path = cache.entry_path(k);
  REQUIRE(::truncate(path.c_str(), off_t(3) << 30) == 0);  // 3 GiB, no blocks
  kiln_test::StderrCapture err;
  CHECK_FALSE(cache.load(k).has_value());
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(cache.stats().corrupt == 1);
  const std::string text = err.text();
  CHECK(text.find("is damaged (larger than 256 MiB)") != std::string::npos);
}

TEST_CASE("damaged entries are each reported, the first three, then only counted") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  kiln_test::StderrCapture err;
  for (int i = 0; i < 5; ++i) {
    const CacheKey k = key_of("bad" + std::to_string(i));
    cache.store(k, make_payload(i, 200));
    flip_byte(cache.entry_path(k), header + 10);
    CHECK_FALSE(cache.load(k).has_value());
  }
  CHECK(cache.stats().corrupt == 5);
  const std::string text = err.text();
  CHECK(kiln_test::count_of(text, "kiln: the kernel cache entry ") == 3);
  CHECK(kiln_test::count_of(text, "Further damaged entries are only counted") == 1);
}

TEST_CASE("a hit refreshes the entry's mtime") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  cache.store(key_of("a"), "payload");
  const auto path = cache.entry_path(key_of("a"));
  set_mtime(path, 1'000'000'000);
  REQUIRE(mtime_seconds(path) == 1'000'000'000);
  REQUIRE(cache.load(key_of("a")).has_value());
  CHECK(mtime_seconds(path) >= static_cast<std::int64_t>(std::time(nullptr)) - 60);
}

TEST_CASE("eviction keeps the total under the cap, least recently used first") {
  TempDir tmp;
  const std::size_t payload = 1000;
  const std::uint64_t entry = header + payload;
  DiskCache cache(config_for(tmp.path(), 5 * entry + entry / 2));  // room for 5 entries

  for (const char* name : {"a", "b", "c", "d", "e"})
    cache.store(key_of(name), std::string(payload, *name));
  CHECK(cache.size_bytes() == 5 * entry);
  CHECK(cache.stats().evictions == 0);
  // Least recently used first: c, a, e, b, d (mtimes in the past).
  const std::int64_t base = static_cast<std::int64_t>(std::time(nullptr)) - 10'000;
  std::int64_t t = base;
  for (const char* name : {"c", "a", "e", "b", "d"}) set_mtime(cache.entry_path(key_of(name)), t++);

  cache.store(key_of("f"), std::string(payload, 'f'));
  CHECK(cache.stats().evictions == 1);
  CHECK_FALSE(std::filesystem::exists(cache.entry_path(key_of("c"))));
  for (const char* name : {"a", "b", "d", "e", "f"}) {
    CHECK(std::filesystem::exists(cache.entry_path(key_of(name))));
  }
  CHECK(cache.size_bytes() <= cache.max_bytes());

  // Using "a" makes it the most recently used, so "e" goes next, then "b".
  CHECK(cache.load(key_of("a")) == std::string(payload, 'a'));
  cache.store(key_of("g"), std::string(payload, 'g'));
  CHECK_FALSE(std::filesystem::exists(cache.entry_path(key_of("e"))));
  CHECK(std::filesystem::exists(cache.entry_path(key_of("a"))));
  cache.store(key_of("h"), std::string(payload, 'h'));
  CHECK_FALSE(std::filesystem::exists(cache.entry_path(key_of("b"))));
  CHECK(cache.stats().evictions == 3);
  CHECK(cache.size_bytes() == 5 * entry);

  // A bigger entry evicts as many as it needs to, oldest first, never itself.
  t = base + 100;
  for (const char* name : {"d", "f", "a", "g", "h"}) set_mtime(cache.entry_path(key_of(name)), t++);
  cache.store(key_of("big"), std::string(3 * entry, 'x'));  // 3 entries + a header
  CHECK(cache.load(key_of("big")).has_value());
  CHECK(cache.size_bytes() <= cache.max_bytes());
  for (const char* name : {"d", "f", "a"}) {
    CHECK_FALSE(std::filesystem::exists(cache.entry_path(key_of(name))));
  }
  CHECK(std::filesystem::exists(cache.entry_path(key_of("g"))));
  CHECK(std::filesystem::exists(cache.entry_path(key_of("h"))));
  CHECK(files_ending(tmp.path(), ".bin").size() == 3);
  CHECK(cache.stats().evictions == 6);
}

TEST_CASE("an entry bigger than the cap alone is not kept, and counted") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path(), 4096));
  cache.store(key_of("fits"), std::string(1000, 'a'));
  cache.store(key_of("too big"), std::string(4096, 'b'));  // + header > cap
  CHECK_FALSE(cache.load(key_of("too big")).has_value());
  CHECK_FALSE(std::filesystem::exists(cache.entry_path(key_of("too big"))));
  CHECK(cache.load(key_of("fits")).has_value());  // untouched
  CHECK(cache.stats().evictions == 1);
  CHECK(cache.stats().stores == 1);
  // Exactly at the cap is kept.
  cache.store(key_of("exact"), std::string(4096 - header, 'c'));
  CHECK(cache.load(key_of("exact")).has_value());
  CHECK_FALSE(cache.load(key_of("fits")).has_value());
  CHECK(cache.size_bytes() == 4096);
}

TEST_CASE("clear removes every entry and size_bytes counts them") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  CHECK(cache.size_bytes() == 0);
  for (int i = 0; i < 20; ++i) cache.store(key_of(std::to_string(i)), std::string(100, 'x'));
  CHECK(cache.size_bytes() == 20 * (header + 100));
  write_file(tmp.path() / "README", "not an entry");  // not the cache's: left alone
  cache.clear();
  CHECK(cache.size_bytes() == 0);
  CHECK(files_ending(tmp.path(), ".bin").empty());
  CHECK(std::filesystem::exists(tmp.path() / "README"));
  CHECK_FALSE(cache.load(key_of("3")).has_value());
}

TEST_CASE("temp files left by dead writers are removed by the scan, fresh ones are not") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  std::filesystem::create_directory(tmp.path() / "ab");
  const auto stale = tmp.path() / "ab" / ".abcd.1.2.3.tmp";
  const auto fresh = tmp.path() / "ab" / ".abcd.1.2.4.tmp";
  write_file(stale, "partial");
  write_file(fresh, "partial");
  set_mtime(stale, static_cast<std::int64_t>(std::time(nullptr)) - 3600);
  cache.store(key_of("x"), "y");  // the first store scans
  CHECK_FALSE(std::filesystem::exists(stale));
  CHECK(std::filesystem::exists(fresh));
  CHECK(cache.size_bytes() == header + 1);  // temp files are not entries
}

TEST_CASE("a disabled cache stores nothing and always misses") {
  TempDir tmp;
  auto config = config_for(tmp.path() / "cache");
  config.enabled = false;
  DiskCache cache(config);
  CHECK_FALSE(cache.enabled());
  CHECK_FALSE(cache.disabled_reason().empty());
  cache.store(key_of("a"), "b");
  CHECK_FALSE(cache.load(key_of("a")).has_value());
  CHECK_FALSE(std::filesystem::exists(tmp.path() / "cache"));
  CHECK(cache.size_bytes() == 0);
  CHECK(cache.stats().misses == 1);
  CHECK(cache.stats().stores == 0);
}

TEST_CASE("configurations that cannot be meant throw") {
  TempDir tmp;
  CHECK_THROWS_AS(DiskCache(config_for("")), kiln::Error);
  CHECK_THROWS_WITH_AS(DiskCache(config_for(tmp.path(), 0)), doctest::Contains("max_bytes"),
                       kiln::Error);
}

TEST_CASE("store failures do not throw: one warning, counted") {
  SUBCASE("the cache directory is made read-only") {
    if (::geteuid() == 0) {
      MESSAGE("skipped: running as root, which writes to read-only directories anyway");
      return;
    }
    TempDir tmp;
    DiskCache cache(config_for(tmp.path()));
    REQUIRE(cache.enabled());
    REQUIRE(::chmod(tmp.path().c_str(), 0500) == 0);
    StderrCapture err;
    CHECK_NOTHROW(cache.store(key_of("a"), "payload"));
    CHECK_NOTHROW(cache.store(key_of("b"), "payload"));
    const std::string text = err.text();
    ::chmod(tmp.path().c_str(), 0700);
    CHECK(count_of(text, "kiln:") == 1);
    CHECK(text.find(tmp.path().string()) != std::string::npos);
    CHECK(cache.stats().store_failures == 2);
    CHECK(cache.stats().stores == 0);
    CHECK_FALSE(cache.load(key_of("a")).has_value());
  }
  SUBCASE("an entry's directory is a file (fails for root too)") {
    TempDir tmp;
    DiskCache cache(config_for(tmp.path()));
    REQUIRE(cache.enabled());
    const CacheKey k = key_of("a");
    write_file(tmp.path() / k.hex().substr(0, 2), "in the way");
    StderrCapture err;
    CHECK_NOTHROW(cache.store(k, "payload"));
    CHECK_NOTHROW(cache.store(k, "payload"));
    const std::string text = err.text();
    CHECK(count_of(text, "kiln:") == 1);
    CHECK(text.find(tmp.path().string()) != std::string::npos);
    CHECK(cache.stats().store_failures == 2);
    CHECK(cache.stats().stores == 0);
    CHECK_FALSE(cache.load(k).has_value());
    cache.store(key_of("b"), "other shards still work");
    CHECK(cache.load(key_of("b")).has_value());
  }
}
