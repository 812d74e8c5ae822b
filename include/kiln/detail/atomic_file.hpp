#pragma once
/// Replacing a file atomically, kiln's one way to write a file that others may be reading:
/// the new contents go to a temp file beside it, which is then renamed over it, so that
/// readers in any process see the whole old file or the whole new one, never a torn one,
/// and a failure (disk full, permissions) leaves the old file as it was.
///
///   std::string problem = kiln::detail::replace_file(AT_FDCWD, "db/tuning.json", {text},
///                                                    {.mode = 0644, .fsync = true});
///
/// Temp files are named `.<file name>.<pid>.<nonce>.<counter>.tmp` in the file's directory
/// (a leading dot and a .tmp suffix, so scans can tell them from real files). Callers that
/// must do something between writing and renaming (the disk cache renames under its lock)
/// use stage_file() and commit_staged_file() instead of replace_file().

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>

#include "posix_file.hpp"

namespace kiln::detail {

/// How replace_file() writes the new file.
struct ReplaceOptions {
  /// The new file's mode (the umask applies): 0600 for files only their owner may read
  /// (kernel binaries), 0644 for files meant to be shared (a tuning database).
  ::mode_t mode = 0600;
  /// fsync() the data before the rename: a crash then loses at most the update, never
  /// leaves a torn file. The directory itself is not synced.
  bool fsync = true;
};

/// A temp file written completely, not yet renamed into place.
struct StagedFile {
  std::string temp;       ///< its path (relative to the directory descriptor given)
  std::string problem;    ///< "" or what failed (the temp file is then already removed)
  struct ::stat stat {};  ///< the temp file as written (inode, size, mtime)
};

/// How often a temp name is tried where one is taken (by a writer of another process).
inline constexpr int temp_name_attempts = 16;

/// A random number per process, so that temp names differ even between processes of one
/// pid (in other pid namespaces sharing the directory); O_EXCL catches the rest.
inline std::uint64_t process_nonce() {
  static const std::uint64_t nonce = [] {
    std::uint64_t n = static_cast<std::uint64_t>(now_realtime().nsec);
    try {
      std::random_device rd;
      n ^= (std::uint64_t{rd()} << 32) ^ rd();
    } catch (...) {  // no entropy source: the time and O_EXCL will do
    }
    return n;
  }();
  return nonce;
}

/// The temp name for a new version of `file` ("ab/x.bin" -> "ab/.x.bin.<pid>.<nonce>.<n>.tmp").
inline std::string temp_name_for(const std::string& file) {
  static std::atomic<std::uint64_t> counter{0};
  const std::size_t slash = file.rfind('/');
  const std::size_t start = slash == std::string::npos ? 0 : slash + 1;
  return file.substr(0, start) + "." + file.substr(start) + "." + std::to_string(::getpid()) + "." +
         std::to_string(process_nonce()) + "." +
         std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + ".tmp";
}

/// Writes `parts` one after another to a fresh temp file beside `file` (both relative to
/// `dir_fd`, or AT_FDCWD for plain paths). The file is not renamed yet.
inline StagedFile stage_file(int dir_fd, const std::string& file,
                             std::initializer_list<std::string_view> parts,
                             ReplaceOptions options) {
  StagedFile out;
  UniqueFd fd;
  int error = EEXIST;
  for (int attempt = 0; attempt < temp_name_attempts && error == EEXIST; ++attempt) {
    out.temp = temp_name_for(file);
    fd = UniqueFd(::openat(dir_fd, out.temp.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, options.mode));
    error = fd ? 0 : errno;
  }
  if (!fd) {
    out.problem = "create " + out.temp + ": " + errno_text(error);
    return out;
  }
  const char* step = "write";
  for (std::string_view part : parts) {
    if (error == 0) error = write_all(fd.get(), part.data(), part.size());
  }
  if (error == 0 && options.fsync && ::fsync(fd.get()) != 0) {
    error = errno;
    step = "fsync";
  }
  if (error == 0 && ::fstat(fd.get(), &out.stat) != 0) {
    error = errno;
    step = "stat";
  }
  if (const int close_error = fd.reset(); error == 0 && close_error != 0) {
    error = close_error;
    step = "close";
  }
  if (error != 0) {
    ::unlinkat(dir_fd, out.temp.c_str(), 0);
    out.problem = std::string(step) + " " + out.temp + ": " + errno_text(error);
  }
  return out;
}

/// Renames the staged temp file over `file`; returns "" or what failed (the temp file is
/// then removed).
inline std::string commit_staged_file(int dir_fd, const StagedFile& staged,
                                      const std::string& file) {
  if (::renameat(dir_fd, staged.temp.c_str(), dir_fd, file.c_str()) == 0) return {};
  const int error = errno;
  ::unlinkat(dir_fd, staged.temp.c_str(), 0);
  return "rename " + staged.temp + " to " + file + ": " + errno_text(error);
}

/// Replaces `file` (relative to `dir_fd`, or AT_FDCWD) by one holding `parts` one after
/// another. Returns "" or what failed; `written`, where given, gets the new file's stat.
inline std::string replace_file(int dir_fd, const std::string& file,
                                std::initializer_list<std::string_view> parts,
                                ReplaceOptions options, struct ::stat* written = nullptr) {
  StagedFile staged = stage_file(dir_fd, file, parts, options);
  if (!staged.problem.empty()) return staged.problem;
  if (std::string problem = commit_staged_file(dir_fd, staged, file); !problem.empty()) {
    return problem;
  }
  if (written) *written = staged.stat;
  return {};
}

}  // namespace kiln::detail
