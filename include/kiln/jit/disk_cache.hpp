#pragma once
/// The content-addressed on-disk cache of compiled kernel binaries.
///
/// Entries live at `<dir>/<first 2 hex digits of the key>/<key.hex()>.bin`, one file each:
/// a 64-byte header (magic, format version, payload size, payload checksum, the key, a
/// header checksum; see detail/cache_entry_format.hpp) and then the payload. Every load
/// checks all of it; an entry that fails is deleted and reported as a miss, so the caller
/// compiles again. Stores write a temp file in the entry's directory and rename() it over
/// the entry (kiln/detail/atomic_file.hpp), so readers in any process see a whole old entry, a
/// whole new one, or none. Loads refresh the entry's mtime, and the cache evicts the least recently
/// used entries (oldest mtime) when their total size passes the limit.
///
/// Since binaries from the cache run on the GPU, the cache directory must belong to the
/// user and be writable by nobody else; otherwise the cache warns once on stderr and stays
/// off. Each shard directory (`<dir>/ab`) is opened without following a symlink and checked
/// the same way before an entry in it is read or written: one that fails is not used (a
/// miss, a dropped store, one warning). Failures to write an entry (disk full, permissions) never
/// throw: the cache warns once and carries on without the entry.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../detail/atomic_file.hpp"
#include "../error.hpp"
#include "cache_key.hpp"
#include "detail/cache_directory.hpp"
#include "detail/cache_entry_format.hpp"
#include "detail/cache_environment.hpp"

namespace kiln::jit {

/// Where the disk cache lives and how big it may grow.
struct DiskCacheConfig {
  /// The cache directory; created (mode 0700, with missing parents) where missing.
  std::filesystem::path dir;
  /// The limit on the total size of the entry files, in bytes (headers included).
  std::uint64_t max_bytes = std::uint64_t{1024} << 20;
  /// False: the cache does nothing (loads miss, stores are dropped).
  bool enabled = true;
  /// Why `enabled` is false, where from_environment() turned the cache off.
  std::string disabled_reason;
  /// Say so on stderr when a cache made from this config is off (one line; the process's
  /// kernel cache is made once): set by from_environment() where the cache is off for want
  /// of a directory, not by choice.
  bool warn_when_disabled = false;
  /// fsync() each entry before renaming it into place. Off by default: a torn entry left
  /// by a crash fails its checksum and is recompiled anyway.
  bool fsync = false;

  /// The configuration the environment asks for: dir from $KILN_CACHE_DIR, else
  /// $XDG_CACHE_HOME/kiln, else $HOME/.cache/kiln (else disabled, with the reason);
  /// max_bytes from KILN_CACHE_MAX_MB (MiB, default 1024); KILN_CACHE=0/off/false
  /// disables it. Empty variables count as unset. Throws kiln::Error for a KILN_CACHE or
  /// KILN_CACHE_MAX_MB value it does not accept, naming the variable and what it accepts.
  static DiskCacheConfig from_environment() {
    DiskCacheConfig config;
    config.enabled = detail::cache_switch_from_environment();
    config.max_bytes = detail::cache_max_bytes_from_environment(1024);
    if (!config.enabled) {
      config.disabled_reason = "the environment variable KILN_CACHE turns it off";
    }
    if (auto dir = detail::cache_dir_from_environment()) {
      config.dir = std::move(*dir);
    } else if (config.enabled) {
      config.enabled = false;
      config.disabled_reason =
          "none of KILN_CACHE_DIR, XDG_CACHE_HOME and HOME is set, so kiln has no directory "
          "for it; set KILN_CACHE_DIR to enable it";
      config.warn_when_disabled = true;
    }
    return config;
  }
};

/// Counts since the cache was made (this process only).
struct DiskCacheStats {
  std::uint64_t hits = 0;            // loads that returned an entry
  std::uint64_t misses = 0;          // loads that returned nullopt (corrupt ones included)
  std::uint64_t stores = 0;          // entries written
  std::uint64_t corrupt = 0;         // invalid entries found by loads, and deleted
  std::uint64_t evictions = 0;       // entries removed to keep under max_bytes, and stores
                                     // dropped because the entry alone exceeds max_bytes
  std::uint64_t store_failures = 0;  // stores that failed on I/O (the entry is not kept)
};

/// One entry file of the disk cache, as list() finds it.
struct DiskCacheEntry {
  CacheKey key;
  std::filesystem::path path;  ///< `<dir>/ab/ab...ef.bin`
  std::uint64_t size = 0;      ///< the file's size, header included
  std::int64_t mtime_sec = 0;  ///< last use (loads refresh it), seconds since the epoch
  std::int64_t mtime_nsec = 0;
};

/// The on-disk kernel binary cache; thread-safe, and safe to share its directory between
/// processes.
class DiskCache {
 public:
  /// Opens (creating where needed) the cache directory of `config`. An unsafe or unusable
  /// directory leaves the cache disabled with one warning on stderr (see disabled_reason()).
  /// Throws kiln::Error only for a config that cannot be meant: enabled with an empty dir
  /// or a max_bytes of 0.
  explicit DiskCache(DiskCacheConfig config)
      : dir_(std::move(config.dir)), max_bytes_(config.max_bytes), fsync_(config.fsync) {
    if (!config.enabled) {
      disabled_reason_ = config.disabled_reason.empty() ? "its configuration turns it off"
                                                        : std::move(config.disabled_reason);
      if (config.warn_when_disabled) {
        warn("kiln: the kernel disk cache is off: " + disabled_reason_ +
             ". Kernels are compiled again in every process.\n");
      }
      return;
    }
    if (dir_.empty()) {
      throw Error(
          "kiln: DiskCacheConfig::dir is empty; set it, or use "
          "DiskCacheConfig::from_environment()");
    }
    if (max_bytes_ == 0) {
      throw Error(
          "kiln: DiskCacheConfig::max_bytes is 0; give the cache a positive size "
          "limit in bytes, or set enabled = false to turn it off");
    }
    std::error_code ec;
    if (auto absolute = std::filesystem::absolute(dir_, ec); !ec) dir_ = std::move(absolute);
    detail::OpenedCacheDirectory opened = detail::open_private_directory(dir_);
    if (!opened.fd) {
      disabled_reason_ = "the cache directory " + dir_.string() + " is not used: " + opened.problem;
      warn("kiln: not using the kernel cache directory " + dir_.string() + ": " + opened.problem +
           ". To use it, " + opened.advice +
           ". Until then kernels are compiled again in every run.\n");
      return;
    }
    dir_fd_ = std::move(opened.fd);
    enabled_ = true;
  }

  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  bool enabled() const noexcept { return enabled_; }
  /// Why the cache is disabled ("" while it is enabled).
  const std::string& disabled_reason() const noexcept { return disabled_reason_; }
  const std::filesystem::path& dir() const noexcept { return dir_; }
  std::uint64_t max_bytes() const noexcept { return max_bytes_; }

  /// Where the entry of `key` lives: `<dir>/<2 hex digits>/<32 hex digits>.bin`.
  std::filesystem::path entry_path(const CacheKey& key) const { return dir_ / relative(key); }

  /// The payload stored under `key`, or nullopt on a miss. An entry that fails any check
  /// is deleted and counted as corrupt (and as a miss). Never throws for a missing,
  /// unreadable or corrupt entry. A hit refreshes the entry's mtime (least recently used
  /// entries are evicted first).
  std::optional<std::string> load(const CacheKey& key) {
    auto result = enabled_ ? read_entry(key) : std::nullopt;
    (result ? hits_ : misses_).fetch_add(1, std::memory_order_relaxed);
    return result;
  }

  /// Stores `payload` under `key`, replacing any entry there, then evicts the least
  /// recently used entries while the total passes max_bytes (never the entry just
  /// written; an entry that alone passes max_bytes is not kept at all). I/O failures do
  /// not throw: the first one warns on stderr, each counts as a store failure.
  void store(const CacheKey& key, std::string_view payload) {
    if (!enabled_) return;
    const std::uint64_t entry_size = detail::cache_entry_header_size + payload.size();
    if (entry_size > max_bytes_) {
      evictions_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const std::string shard_name = key.hex().substr(0, 2);
    const std::string file_name = key.hex() + ".bin";
    if (::mkdirat(dir_fd_.get(), shard_name.c_str(), 0700) != 0 && errno != EEXIST) {
      return store_failed("mkdir " + shard_name + ": " + detail::errno_text(errno));
    }
    const detail::UniqueFd shard = open_shard(shard_name);
    if (!shard) {  // unsafe (it warned) or removed meanwhile
      store_failures_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const detail::CacheEntryHeader header = detail::make_cache_entry_header(key, payload);
    const kiln::detail::StagedFile staged = kiln::detail::stage_file(
        shard.get(), file_name, {std::string_view(header.data(), header.size()), payload},
        {.mode = 0600, .fsync = fsync_});
    if (!staged.problem.empty()) return store_failed(shard_name + "/" + staged.problem);
    // Renaming under the lock keeps this process's running total exact.
    std::lock_guard lock(mutex_);
    struct ::stat old {};
    const bool replaces =
        ::fstatat(shard.get(), file_name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(old.st_mode);
    if (std::string problem = kiln::detail::commit_staged_file(shard.get(), staged, file_name);
        !problem.empty()) {
      return store_failed(shard_name + "/" + problem);
    }
    stores_.fetch_add(1, std::memory_order_relaxed);
    account_store_locked(key, entry_size, replaces ? static_cast<std::uint64_t>(old.st_size) : 0);
  }

  /// The counts so far.
  DiskCacheStats stats() const noexcept {
    constexpr auto r = std::memory_order_relaxed;
    return {hits_.load(r),    misses_.load(r),    stores_.load(r),
            corrupt_.load(r), evictions_.load(r), store_failures_.load(r)};
  }

  /// Removes every entry (and stale temp files); other files in the directory stay.
  void clear() {
    if (!enabled_) return;
    std::lock_guard lock(mutex_);
    for (const auto& e : scan_locked()) ::unlinkat(dir_fd_.get(), e.relative.c_str(), 0);
    total_bytes_ = 0;
  }

  /// Every entry file now on disk (a fresh scan; stale temp files are removed on the way),
  /// least recently used first. Empty while disabled. Entries are not read: check() does.
  std::vector<DiskCacheEntry> list() {
    std::vector<DiskCacheEntry> out;
    if (!enabled_) return out;
    std::vector<detail::ScannedEntry> entries;
    {
      std::lock_guard lock(mutex_);
      entries = scan_locked();
    }
    sort_least_recent_first(entries);
    for (const auto& e : entries) {
      out.push_back({e.key, dir_ / e.relative, e.size, std::int64_t(e.mtime.sec),
                     std::int64_t(e.mtime.nsec)});
    }
    return out;
  }

  /// The payload stored under `key` and what is wrong with its entry: `problem` is empty
  /// for an entry that passes every check load() makes (then `payload` holds it), "missing"
  /// where there is none, else the reason load() would drop it. Unlike load() it neither
  /// deletes a damaged entry nor refreshes its time nor counts, so listing or verifying
  /// the cache changes nothing.
  struct EntryCheck {
    std::string problem;
    std::string payload;
  };
  EntryCheck check(const CacheKey& key) {
    EntryCheck out;
    if (!enabled_) return {"the cache is off: " + disabled_reason_, {}};
    const detail::OpenedShard shard = detail::open_shard(dir_fd_.get(), key.hex().substr(0, 2));
    if (!shard.fd) return {shard.missing ? "missing" : "its shard directory " + shard.problem, {}};
    const std::string file_name = key.hex() + ".bin";
    detail::UniqueFd fd(::openat(shard.fd.get(), file_name.c_str(),
                                 O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd)
      return {errno == ENOENT ? "missing" : "cannot be opened: " + detail::errno_text(errno), {}};
    struct ::stat st {};
    if (::fstat(fd.get(), &st) != 0)
      return {"cannot be examined: " + detail::errno_text(errno), {}};
    if (!S_ISREG(st.st_mode)) return {"not a regular file", {}};
    if (static_cast<std::uint64_t>(st.st_size) > max_entry_bytes) {
      return {"larger than " + std::to_string(max_entry_bytes >> 20) + " MiB", {}};
    }
    std::string bytes;
    if (const int error =
            detail::read_to_end(fd.get(), bytes, static_cast<std::size_t>(st.st_size));
        error != 0) {
      return {"cannot be read: " + detail::errno_text(error), {}};
    }
    if (const char* problem = detail::cache_entry_problem(bytes, key)) return {problem, {}};
    bytes.erase(0, detail::cache_entry_header_size);
    out.payload = std::move(bytes);
    return out;
  }

  /// Removes the entry of `key` (a damaged one, say); false where there was none.
  bool remove(const CacheKey& key) {
    if (!enabled_) return false;
    const detail::OpenedShard shard = detail::open_shard(dir_fd_.get(), key.hex().substr(0, 2));
    if (!shard.fd) return false;
    return ::unlinkat(shard.fd.get(), (key.hex() + ".bin").c_str(), 0) == 0;
  }

  /// Removes least recently used entries until the entries total at most `max_bytes`
  /// (the eviction stores make, to another size). Returns how many it removed.
  std::uint64_t prune(std::uint64_t max_bytes) {
    if (!enabled_) return 0;
    std::lock_guard lock(mutex_);
    return evict_locked(max_bytes, nullptr);
  }

  /// The total size of the entry files now on disk (a fresh scan; 0 while disabled).
  std::uint64_t size_bytes() {
    if (!enabled_) return 0;
    std::lock_guard lock(mutex_);
    scan_locked();
    return total_bytes_;
  }

 private:
  /// Temp files older than this are taken to be left by writers that died.
  static constexpr ::time_t stale_temp_seconds = 300;

  static std::string relative(const CacheKey& key) {
    const std::string hex = key.hex();
    return hex.substr(0, 2) + "/" + hex + ".bin";
  }

  static void warn(const std::string& message) {
    std::fwrite(message.data(), 1, message.size(), stderr);
    std::fflush(stderr);
  }

  /// The shard directory `name`, opened through no symlink and checked to be private; or
  /// no descriptor (where it is missing, or unsafe: the first unsafe one warns).
  detail::UniqueFd open_shard(const std::string& name) {
    detail::OpenedShard opened = detail::open_shard(dir_fd_.get(), name);
    if (!opened.problem.empty() && !shard_warned_.exchange(true)) {
      const std::string path = (dir_ / name).string();
      warn("kiln: not using the kernel cache shard directory " + path + ": " + opened.problem +
           ". Its kernels are compiled again and not stored; remove it (rm -r " + path +
           ") and kiln recreates it. Further unsafe shard directories are only counted "
           "(stats()).\n");
    }
    return std::move(opened.fd);
  }

  std::optional<std::string> read_entry(const CacheKey& key) {
    const std::string name = relative(key);
    const detail::UniqueFd shard = open_shard(key.hex().substr(0, 2));
    if (!shard) return std::nullopt;
    const std::string file_name = key.hex() + ".bin";
    // Non-blocking: a FIFO planted as an entry must not hang the open (regular files
    // ignore the flag).
    detail::UniqueFd fd(
        ::openat(shard.get(), file_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return std::nullopt;
    struct ::stat st {};
    if (::fstat(fd.get(), &st) != 0) return std::nullopt;
    if (!S_ISREG(st.st_mode)) {
      damaged(name, "not a regular file");  // a miss; a store replaces it
      return std::nullopt;
    }
    if (static_cast<std::uint64_t>(st.st_size) > max_entry_bytes) {
      // Never read it: a huge (sparse) file would cost its size in memory and time.
      remove_corrupt(shard.get(), name, st,
                     "larger than " + std::to_string(max_entry_bytes >> 20) + " MiB");
      return std::nullopt;
    }
    std::string bytes;
    if (detail::read_to_end(fd.get(), bytes, static_cast<std::size_t>(st.st_size)) != 0) {
      return std::nullopt;
    }
    if (const char* problem = detail::cache_entry_problem(bytes, key)) {
      remove_corrupt(shard.get(), name, st, problem);
      return std::nullopt;
    }
    ::futimens(fd.get(), nullptr);  // now: most recently used
    bytes.erase(0, detail::cache_entry_header_size);
    return bytes;
  }

  /// Counts a damaged entry and says so: the first few each get a line (a failing disk
  /// shows up), later ones are only counted.
  void damaged(const std::string& name, const std::string& problem) {
    corrupt_.fetch_add(1, std::memory_order_relaxed);
    const int n = damaged_warnings_.fetch_add(1, std::memory_order_relaxed);
    if (n >= max_damaged_warnings) return;
    warn("kiln: the kernel cache entry " + (dir_ / name).string() + " is damaged (" + problem +
         "); it is dropped and the kernel compiled again" +
         (n + 1 == max_damaged_warnings ? ". Further damaged entries are only counted (stats())"
                                        : "") +
         "\n");
  }

  /// Deletes the corrupt entry `name` ("ab/ab...ef.bin", in the shard `shard_fd`;
  /// `problem`: what is wrong with it), unless another writer has replaced it meanwhile.
  void remove_corrupt(int shard_fd, const std::string& name, const struct ::stat& seen,
                      const std::string& problem) {
    damaged(name, problem);
    const std::string file_name = name.substr(name.find('/') + 1);
    struct ::stat now {};
    if (::fstatat(shard_fd, file_name.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
        now.st_ino != seen.st_ino || now.st_dev != seen.st_dev) {
      return;
    }
    if (::unlinkat(shard_fd, file_name.c_str(), 0) == 0) {
      std::lock_guard lock(mutex_);
      total_bytes_ -= std::min(total_bytes_, static_cast<std::uint64_t>(seen.st_size));
    }
  }

  /// Counts a failed store; the first one warns. `what`: the step and its error.
  void store_failed(const std::string& what) {
    store_failures_.fetch_add(1, std::memory_order_relaxed);
    if (store_warned_.exchange(true)) return;
    warn("kiln: could not write a kernel to the cache directory " + dir_.string() + " (" + what +
         "). The kernel runs fine but is compiled again next time; check the free space "
         "and permissions there, or set KILN_CACHE_DIR elsewhere (or KILN_CACHE=0). "
         "Further cache write failures are only counted.\n");
  }

  /// Scans the directory: sets the running total, removes stale temp files, and returns
  /// the entries. Needs mutex_.
  std::vector<detail::ScannedEntry> scan_locked() {
    detail::FileTime cutoff = detail::now_realtime();
    cutoff.sec -= stale_temp_seconds;
    auto entries = detail::scan_cache_directory(dir_fd_.get(), cutoff);
    total_bytes_ = 0;
    for (const auto& e : entries) total_bytes_ += e.size;
    scanned_ = true;
    return entries;
  }

  /// Adds a store of `size` bytes (replacing `replaced` bytes) to the running total and
  /// evicts least recently used entries, other than `keep`, while the total passes the cap.
  /// The total is an estimate (other processes write too): it is recounted by a scan
  /// before the first store and whenever it passes the cap. Needs mutex_.
  void account_store_locked(const CacheKey& keep, std::uint64_t size, std::uint64_t replaced) {
    if (scanned_) {
      total_bytes_ = total_bytes_ - std::min(total_bytes_, replaced) + size;
      if (total_bytes_ <= max_bytes_) return;
    }
    evict_locked(max_bytes_, &keep);
  }

  static void sort_least_recent_first(std::vector<detail::ScannedEntry>& entries) {
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.mtime != b.mtime ? a.mtime < b.mtime : a.relative < b.relative;
    });
  }

  /// Scans, then removes least recently used entries (never `keep`) while the total passes
  /// `limit`. Returns how many it removed. Needs mutex_.
  std::uint64_t evict_locked(std::uint64_t limit, const CacheKey* keep) {
    auto entries = scan_locked();
    std::uint64_t removed = 0;
    if (total_bytes_ <= limit) return removed;
    sort_least_recent_first(entries);
    for (const auto& e : entries) {
      if (total_bytes_ <= limit) break;
      if (keep && e.key == *keep) continue;
      if (::unlinkat(dir_fd_.get(), e.relative.c_str(), 0) == 0) {
        evictions_.fetch_add(1, std::memory_order_relaxed);
        ++removed;
      } else if (errno != ENOENT) {
        continue;
      }
      total_bytes_ -= std::min(total_bytes_, e.size);
    }
    return removed;
  }

  std::filesystem::path dir_;
  std::uint64_t max_bytes_;
  bool fsync_;
  bool enabled_ = false;
  std::string disabled_reason_;
  detail::UniqueFd dir_fd_;

  std::mutex mutex_;  // guards the two below; serializes renames, scans and eviction
  std::uint64_t total_bytes_ = 0;
  bool scanned_ = false;

  std::atomic<std::uint64_t> hits_{0}, misses_{0}, stores_{0}, corrupt_{0}, evictions_{0},
      store_failures_{0};
  std::atomic<bool> store_warned_{false};
  std::atomic<bool> shard_warned_{false};
  std::atomic<int> damaged_warnings_{0};
  static constexpr int max_damaged_warnings = 3;
  /// The largest entry read: a kernel binary is far smaller.
  static constexpr std::uint64_t max_entry_bytes = std::uint64_t(256) << 20;
};

}  // namespace kiln::jit
