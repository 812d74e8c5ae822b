#pragma once
/// The tuning database's file handling: reading a file together with its identity, a lock
/// shared between processes, replacing a file atomically, appending to the journal, and
/// setting a corrupt file aside. Failures come back as text ("" for success) for the caller
/// to word.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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
  // A FIFO in the file's place is never read (EINVAL), nor a huge one (EFBIG).
  struct ::stat st {};
  out.error = kiln::detail::read_regular_file(file, out.text, max_tuning_db_bytes, &st);
  if (out.error == 0 || out.error == EFBIG) out.identity = identity_of(st);
  return out;
}

/// An exclusive flock() on a lock file, held until this object goes. flock() locks
/// belong to the open file, so two of these exclude each other in one process too.
/// An exclusive flock() on the database's directory, held until this object goes. The
/// directory, not a lock file: a lock file deleted (by a cleaner, say) while a writer held
/// it would let the next writer lock a new file of the same name, and the two would write
/// at once; a directory holding the database cannot be removed. flock() locks belong to the
/// open file, so two of these exclude each other in one process too.
class DirectoryLock {
 public:
  /// Waits for the lock on the open directory `dir_fd` (`dir` names it in messages);
  /// returns "" or what failed.
  std::string acquire(int dir_fd, const std::filesystem::path& dir) {
    // Its own open file (not a dup()), so that locks of two databases in one process exclude
    // each other.
    fd_ = UniqueFd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd_) return "open " + dir.string() + " to lock it: " + errno_text(errno);
    while (::flock(fd_.get(), LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      fd_.reset();
      return "lock " + dir.string() + ": " + errno_text(error);
    }
    return {};
  }

 private:
  UniqueFd fd_;  // closing it releases the lock
};

/// The mode of the database and its journal: readable and writable by their owner only, as
/// the kernel cache's entries are.
inline constexpr ::mode_t tuning_db_mode = 0600;

/// Whether `name` in the directory `dir_fd` is still the file `written` (not removed or
/// replaced since).
inline bool still_there(int dir_fd, const std::string& name, const struct ::stat& written) {
  struct ::stat now {};
  return ::fstatat(dir_fd, name.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0 &&
         now.st_ino == written.st_ino && now.st_dev == written.st_dev;
}

/// Replaces `name` in the directory `dir_fd` by a file holding `text` (kiln's atomic
/// replace, synced): readers see the whole old file or the whole new one. Checks that the
/// name leads to the new file afterwards. Returns "" or what failed (`raced`: the new file
/// was replaced or removed at once, by someone who does not take the lock); `written` gets
/// the new file's identity.
inline std::string replace_file(int dir_fd, const std::string& name, std::string_view text,
                                FileIdentity& written, bool& raced) {
  struct ::stat st {};
  std::string problem = kiln::detail::replace_file(dir_fd, name, {text},
                                                   {.mode = tuning_db_mode, .fsync = true}, &st);
  if (!problem.empty()) return problem;
  raced = !still_there(dir_fd, name, st);
  if (raced) return name + " was replaced or removed as it was written";
  written = identity_of(st);
  return {};
}

/// Appends `text` (whole lines) to the file `name` in `dir_fd`, created where missing, after
/// cutting it back to `keep` bytes where it is longer (a line cut short by a writer that
/// died), and syncs it. Returns "" or what failed (`raced`: the file was removed meanwhile);
/// `written` gets the file's identity after the append.
inline std::string append_lines(int dir_fd, const std::string& name, std::uint64_t keep,
                                std::string_view text, FileIdentity& written, bool& raced) {
  UniqueFd fd(::openat(dir_fd, name.c_str(),
                       O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK,
                       tuning_db_mode));
  struct ::stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return "open " + name + ": " + errno_text(errno);
  if (!S_ISREG(st.st_mode)) return name + " is not a regular file";
  const auto cut = [&] { return ::ftruncate(fd.get(), static_cast<::off_t>(keep)) == 0; };
  if (static_cast<std::uint64_t>(st.st_size) != keep && !cut()) {
    return "truncate " + name + ": " + errno_text(errno);
  }
  if (int error = kiln::detail::write_all(fd.get(), text.data(), text.size()); error != 0) {
    (void)cut();  // take back the part that went in, so that the next append starts a line
    return "write " + name + ": " + errno_text(error);
  }
  if (::fsync(fd.get()) != 0 || ::fstat(fd.get(), &st) != 0) {
    return "fsync " + name + ": " + errno_text(errno);
  }
  raced = !still_there(dir_fd, name, st);
  if (raced) return name + " was removed as it was written";
  written = identity_of(st);
  return {};
}

/// The bytes of `file` from `offset` to the end of its last whole line, and the file's
/// identity. `error` as for read_with_identity(); `text` is empty where the file has no
/// whole line past `offset`.
inline FileRead read_lines_from(const std::filesystem::path& file, std::uint64_t offset) {
  FileRead out;
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  struct ::stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) {
    out.error = errno;
    return out;
  }
  if (!S_ISREG(st.st_mode)) {
    out.error = EINVAL;
    return out;
  }
  out.identity = identity_of(st);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size <= offset) return out;
  if (size - offset > max_tuning_db_bytes) {
    out.error = EFBIG;
    return out;
  }
  if (::lseek(fd.get(), static_cast<::off_t>(offset), SEEK_SET) < 0) {
    out.error = errno;
    return out;
  }
  out.error =
      kiln::detail::read_to_end(fd.get(), out.text, static_cast<std::size_t>(size - offset));
  const auto end = out.text.rfind('\n');
  out.text.resize(end == std::string::npos ? 0 : end + 1);
  return out;
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
