#pragma once
/// The tuning database's file handling: reading a file together with its identity,
/// a lock shared between processes, replacing a file atomically, and setting a corrupt
/// file aside. Failures come back as text ("" for success) for the caller to word.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <string>
#include <string_view>

#include "../../jit/detail/cache_directory.hpp"
#include "../../jit/detail/posix_file.hpp"

namespace kiln::factory::detail {

using jit::detail::errno_text;
using jit::detail::UniqueFd;

/// What tells one version of a file from another: a rename over it changes the inode, a
/// rewrite in place the size or the mtime.
struct FileIdentity {
  ::dev_t dev = 0;
  ::ino_t ino = 0;
  ::off_t size = 0;
  jit::detail::FileTime mtime;
  bool operator==(const FileIdentity&) const = default;
};

inline FileIdentity identity_of(const struct ::stat& st) {
  return {st.st_dev, st.st_ino, st.st_size, jit::detail::mtime_of(st)};
}

/// A file's text and the identity of the version that was read; `error` is 0 or the
/// errno that stopped the read (ENOENT: there is no file).
struct FileRead {
  int error = 0;
  std::string text;
  FileIdentity identity;
};

/// Reads all of `file` through one descriptor, so that its text and identity agree.
inline FileRead read_with_identity(const std::filesystem::path& file) {
  FileRead out;
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  struct ::stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    out.error = errno;
    return out;
  }
  if (!S_ISREG(st.st_mode)) {
    out.error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    return out;
  }
  out.identity = identity_of(st);
  out.error = jit::detail::read_to_end(fd.get(), out.text, static_cast<std::size_t>(st.st_size));
  return out;
}

/// An exclusive flock() on a lock file, held until this object goes. flock() locks
/// belong to the open file, so two of these exclude each other in one process too.
class ExclusiveFileLock {
 public:
  /// Opens (creating) `lock_file` and waits for the lock; returns "" or what failed.
  std::string acquire(const std::filesystem::path& lock_file) {
    fd_ = UniqueFd(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd_) return "open the lock file " + lock_file.string() + ": " + errno_text(errno);
    while (::flock(fd_.get(), LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      fd_.reset();
      return "lock " + lock_file.string() + ": " + errno_text(error);
    }
    return {};
  }

 private:
  UniqueFd fd_;  // closing it releases the lock
};

/// Creates the directory `dir` (mode 0700, with missing parents) where it is missing;
/// returns "" or what failed.
inline std::string ensure_directory(const std::filesystem::path& dir) {
  struct ::stat st {};
  if (dir.empty() || ::stat(dir.c_str(), &st) == 0) return {};
  return jit::detail::create_private_directories(dir);
}

/// Replaces `file` by one holding `text`: writes a temp file beside it, fsyncs it and
/// renames it over `file`, so that readers see the whole old file or the whole new one,
/// and a failure (disk full, permissions) leaves the old one as it was. Returns "" or
/// what failed; `written` gets the new file's identity.
inline std::string replace_file(const std::filesystem::path& file, std::string_view text,
                                FileIdentity* written = nullptr) {
  static std::atomic<std::uint64_t> counter{0};
  const std::filesystem::path dir = file.parent_path();
  std::filesystem::path temp;
  UniqueFd fd;
  int error = EEXIST;
  for (int attempt = 0; attempt < 16 && error == EEXIST; ++attempt) {
    temp = dir / ("." + file.filename().string() + "." + std::to_string(::getpid()) + "." +
                  std::to_string(jit::detail::now_realtime().nsec) + "." +
                  std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + ".tmp");
    fd = UniqueFd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    error = fd ? 0 : errno;
  }
  if (!fd) return "create " + temp.string() + ": " + errno_text(error);
  const char* step = "write";
  error = jit::detail::write_all(fd.get(), text.data(), text.size());
  if (error == 0 && ::fsync(fd.get()) != 0) {
    error = errno;
    step = "fsync";
  }
  struct ::stat st {};
  if (error == 0 && ::fstat(fd.get(), &st) != 0) {
    error = errno;
    step = "stat";
  }
  if (const int close_error = fd.reset(); error == 0 && close_error != 0) {
    error = close_error;
    step = "close";
  }
  if (error == 0 && ::rename(temp.c_str(), file.c_str()) != 0) {
    error = errno;
    ::unlink(temp.c_str());
    return "rename " + temp.string() + " to " + file.string() + ": " + errno_text(error);
  }
  if (error != 0) {
    ::unlink(temp.c_str());
    return std::string(step) + " " + temp.string() + ": " + errno_text(error);
  }
  if (written) *written = identity_of(st);
  // The directory is not fsync'd: a crash may lose this update (the old file stays), but
  // since the data was synced before the rename, it never leaves a torn file.
  return {};
}

/// Renames `file` to "<file>.corrupt-<unix time>" (with ".1", ".2", ... appended where
/// that name is taken). Returns the new name, or "" with `problem` set.
inline std::filesystem::path set_aside(const std::filesystem::path& file, std::string& problem) {
  const std::string base = file.string() + ".corrupt-" + std::to_string(std::time(nullptr));
  for (int n = 0; n < 100; ++n) {
    std::filesystem::path target = n == 0 ? base : base + "." + std::to_string(n);
    struct ::stat st {};
    if (::lstat(target.c_str(), &st) == 0) continue;
    if (::rename(file.c_str(), target.c_str()) == 0) return target;
    problem = "rename to " + target.string() + ": " + errno_text(errno);
    return {};
  }
  problem = "every name " + base + "[.1-99] is taken";
  return {};
}

}  // namespace kiln::factory::detail
