#pragma once
/// The tuning database's file handling: reading a file together with its identity,
/// a lock shared between processes, replacing a file atomically, and setting a corrupt
/// file aside. Failures come back as text ("" for success) for the caller to word.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <string>
#include <string_view>

#include "../../detail/atomic_file.hpp"
#include "../../detail/posix_file.hpp"

namespace kiln::factory::detail {

using kiln::detail::errno_text;
using kiln::detail::UniqueFd;

/// What tells one version of a file from another: a rename over it changes the inode, a
/// rewrite in place the size or the mtime.
struct FileIdentity {
  ::dev_t dev = 0;
  ::ino_t ino = 0;
  ::off_t size = 0;
  kiln::detail::FileTime mtime;
  bool operator==(const FileIdentity&) const = default;
};

inline FileIdentity identity_of(const struct ::stat& st) {
  return {st.st_dev, st.st_ino, st.st_size, kiln::detail::mtime_of(st)};
}

/// A file's text and the identity of the version that was read; `error` is 0 or the
/// errno that stopped the read (ENOENT: there is no file).
struct FileRead {
  int error = 0;
  std::string text;
  FileIdentity identity;
};

/// Reads all of `file` through one descriptor, so that its text and identity agree.
/// The largest tuning database read: 100,000 entries take far less.
inline constexpr std::uint64_t max_tuning_db_bytes = std::uint64_t(1) << 30;

inline FileRead read_with_identity(const std::filesystem::path& file) {
  FileRead out;
  // Non-blocking: a FIFO in the file's place must not hang the open (regular files
  // ignore the flag).
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  struct ::stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    out.error = errno;
    return out;
  }
  if (!S_ISREG(st.st_mode)) {
    out.error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;  // EINVAL: not a regular file
    return out;
  }
  out.identity = identity_of(st);
  if (static_cast<std::uint64_t>(st.st_size) > max_tuning_db_bytes) {
    out.error = EFBIG;  // never read: a huge (sparse) file would cost its size in memory
    return out;
  }
  out.error = kiln::detail::read_to_end(fd.get(), out.text, static_cast<std::size_t>(st.st_size));
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
  return kiln::detail::create_private_directories(dir);
}

/// Replaces `file` by one holding `text` (kiln's atomic replace, synced, mode 0644 so that
/// a database others are pointed at stays readable to them): readers see the whole old
/// file or the whole new one. Returns "" or what failed; `written` gets the new file's
/// identity.
inline std::string replace_file(const std::filesystem::path& file, std::string_view text,
                                FileIdentity* written = nullptr) {
  struct ::stat st {};
  std::string problem = kiln::detail::replace_file(AT_FDCWD, file.string(), {text},
                                                   {.mode = 0644, .fsync = true}, &st);
  if (problem.empty() && written) *written = identity_of(st);
  return problem;
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
