#pragma once
// Helpers for the disk cache tests: private temp directories, environment and stderr
// capture, entry files, and self-checking payloads.

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../support.hpp"
#include "kiln/jit/disk_cache.hpp"

namespace kiln_cache_test {

namespace fs = std::filesystem;

/// A fresh directory from mkdtemp, removed (with everything in it) at the end.
class TempDir : public kiln_test::TempDir {
 public:
  TempDir() : kiln_test::TempDir("kiln-cache-test") {}
};

/// Sets and unsets environment variables, restoring what they were at the end.
class EnvGuard {
 public:
  EnvGuard(std::initializer_list<const char*> names) {
    for (const char* name : names) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      ::unsetenv(name);
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  ~EnvGuard() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  static void set(const char* name, const char* value) { ::setenv(name, value, 1); }
  static void unset(const char* name) { ::unsetenv(name); }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

using kiln_test::count_of;
using kiln_test::StderrCapture;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline kiln::jit::CacheKey key_of(const std::string& name) {
  return kiln::jit::KeyBuilder()
      .add("schema", kiln::jit::cache_schema_version)
      .add("name", name)
      .finish();
}

inline kiln::jit::DiskCacheConfig config_for(const fs::path& dir,
                                             std::uint64_t max_bytes = std::uint64_t{1} << 30) {
  kiln::jit::DiskCacheConfig c;
  c.dir = dir;
  c.max_bytes = max_bytes;
  return c;
}

/// Every file under `dir` whose name ends with `suffix`.
inline std::vector<fs::path> files_ending(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      out.push_back(e.path());
    }
  }
  return out;
}

/// Sets a file's mtime to `seconds` since the epoch.
inline void set_mtime(const fs::path& p, std::int64_t seconds) {
  ::timespec times[2] = {{static_cast<::time_t>(seconds), 0}, {static_cast<::time_t>(seconds), 0}};
  if (::utimensat(AT_FDCWD, p.c_str(), times, 0) != 0) throw std::runtime_error("utimensat");
}

inline std::int64_t mtime_seconds(const fs::path& p) {
  struct ::stat st {};
  if (::stat(p.c_str(), &st) != 0) return -1;
  return static_cast<std::int64_t>(st.st_mtim.tv_sec);
}

/// A payload of `size` bytes (at least 16) that names its seed and size in its first 16
/// bytes and is otherwise derived from the seed, so that a reader can check it is whole.
inline std::string make_payload(std::uint64_t seed, std::size_t size) {
  std::string p(size, '\0');
  auto put = [&](std::size_t at, std::uint64_t v) {
    for (std::size_t i = 0; i < 8; ++i) p[at + i] = static_cast<char>((v >> (8 * i)) & 0xffu);
  };
  put(0, seed);
  put(8, size);
  std::uint64_t x = seed;
  for (std::size_t i = 16; i < size; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<char>(x >> 56);
  }
  return p;
}

/// Whether `p` is exactly make_payload(its seed, its size).
inline bool payload_is_whole(const std::string& p) {
  if (p.size() < 16) return false;
  std::uint64_t seed = 0, size = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    seed |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    size |= std::uint64_t{static_cast<unsigned char>(p[8 + i])} << (8 * i);
  }
  return size == p.size() && p == make_payload(seed, p.size());
}

}  // namespace kiln_cache_test
