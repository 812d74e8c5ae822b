// The disk cache used from many threads, and from several processes at once.
#include <doctest/doctest.h>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kiln/jit/disk_cache.hpp"
#include "test_support.hpp"

using kiln::jit::CacheKey;
using kiln::jit::DiskCache;
using namespace kiln_cache_test;

namespace {

/// Every .bin under `dir` holds a whole entry with a whole payload; returns how many.
std::size_t check_all_entries_whole(DiskCache& cache, const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& path : files_ending(dir, ".bin")) {
    const std::string name = path.filename().string();
    const auto key = CacheKey::from_hex(name.substr(0, 32));
    REQUIRE(key.has_value());
    const auto payload = cache.load(*key);
    REQUIRE(payload.has_value());
    CHECK(payload_is_whole(*payload));
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("16 threads storing and loading the same and different keys") {
  TempDir tmp;
  DiskCache cache(config_for(tmp.path()));
  constexpr int threads = 16, rounds = 40;
  const CacheKey shared = key_of("shared");
  std::atomic<int> bad{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const CacheKey own = key_of("own " + std::to_string(t));
      for (int i = 0; i < rounds; ++i) {
        const auto seed = static_cast<std::uint64_t>(t * 1000 + i);
        const std::size_t size = 16 + static_cast<std::size_t>((seed * 7919) % 30000);
        cache.store(shared, make_payload(seed, size));
        const std::string mine = make_payload(seed + 500, size / 2 + 16);
        cache.store(own, mine);
        const auto got_shared = cache.load(shared);
        if (!got_shared || !payload_is_whole(*got_shared)) ++bad;
        if (cache.load(own) != mine) ++bad;
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(bad.load() == 0);
  const auto s = cache.stats();
  CHECK(s.corrupt == 0);
  CHECK(s.store_failures == 0);
  CHECK(s.stores == 2 * threads * rounds);
  CHECK(s.hits == 2 * threads * rounds);
  CHECK(check_all_entries_whole(cache, tmp.path()) == threads + 1);
  CHECK(files_ending(tmp.path(), ".tmp").empty());
}

TEST_CASE("16 threads storing while eviction runs keep the cache whole and under its cap") {
  TempDir tmp;
  constexpr std::uint64_t cap = 96 * 1024;
  DiskCache cache(config_for(tmp.path(), cap));
  constexpr int threads = 16, rounds = 30, keys = 40;
  std::atomic<int> bad{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        const int k = (t * 7 + i * 3) % keys;
        const auto seed = static_cast<std::uint64_t>(t * 1000 + i);
        cache.store(key_of(std::to_string(k)), make_payload(seed, 2000 + (seed * 131) % 6000));
        const auto got = cache.load(key_of(std::to_string((k + 5) % keys)));
        if (got && !payload_is_whole(*got)) ++bad;
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(bad.load() == 0);
  CHECK(cache.stats().corrupt == 0);
  CHECK(cache.stats().store_failures == 0);
  CHECK(cache.stats().evictions > 0);
  CHECK(cache.size_bytes() <= cap);
  check_all_entries_whole(cache, tmp.path());
  CHECK(files_ending(tmp.path(), ".tmp").empty());
}

TEST_CASE("two processes storing the same key while a third loads leave one valid entry") {
  TempDir tmp;
  const CacheKey key = key_of("contended");
  constexpr int stores_per_child = 200;
  std::vector<::pid_t> children;
  std::fflush(stdout);  // so that the children do not write the parent's buffered output
  std::fflush(stderr);
  for (int child = 0; child < 2; ++child) {
    const ::pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // The child: its own cache object, as another program would have. No doctest here.
      int code = 0;
      try {
        DiskCache cache(config_for(tmp.path()));
        if (!cache.enabled()) code = 2;
        for (int i = 0; i < stores_per_child && code == 0; ++i) {
          const auto seed = static_cast<std::uint64_t>(child * 100000 + i);
          cache.store(key, make_payload(seed, 1000 + (seed * 7919) % 100000));
        }
        const auto s = cache.stats();
        if (code == 0 && (s.store_failures != 0 || s.stores != stores_per_child)) code = 3;
      } catch (...) {
        code = 4;
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }

  DiskCache cache(config_for(tmp.path()));
  int running = 2, loads = 0, hits = 0, torn = 0;
  std::vector<int> codes;
  while (running > 0) {
    if (const auto got = cache.load(key)) {
      ++hits;
      if (!payload_is_whole(*got)) ++torn;
    }
    ++loads;
    int status = 0;
    const ::pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      --running;
      codes.push_back(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
  MESSAGE("the parent loaded " << loads << " times, " << hits << " hits");
  CHECK(codes == std::vector<int>{0, 0});
  CHECK(torn == 0);
  CHECK(cache.stats().corrupt == 0);
  const auto entries = files_ending(tmp.path(), ".bin");
  REQUIRE(entries.size() == 1);
  CHECK(entries[0] == cache.entry_path(key));
  const auto last = cache.load(key);
  REQUIRE(last.has_value());
  CHECK(payload_is_whole(*last));
  CHECK(files_ending(tmp.path(), ".tmp").empty());
}
