#pragma once
/// Small POSIX file helpers shared by the kernel disk cache, the tuning database and the
/// source readers: an owning file descriptor, complete reads and writes that survive EINTR
/// and short transfers, reading a regular file whole (never a FIFO or device), errno
/// messages, file times and private directories.

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

namespace kiln::detail {

/// A file descriptor, closed when the last owner goes.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the descriptor; returns close()'s errno (0 on success or when there was none).
  int reset() noexcept {
    if (fd_ < 0) return 0;
    const int rc = ::close(std::exchange(fd_, -1));
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_ = -1;
};

/// The text of an errno value ("Permission denied").
inline std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

/// Writes all `size` bytes at `data` to `fd`; returns 0 or the errno of the failure.
inline int write_all(int fd, const char* data, std::size_t size) noexcept {
  while (size > 0) {
    const ::ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return 0;
}

/// Reads `fd` from its current offset to its end into `out` (`size_hint`: the expected
/// size); returns 0 or the errno of the failure.
inline int read_to_end(int fd, std::string& out, std::size_t size_hint) {
  out.resize(size_hint + 1);  // one spare byte notices a file that grew
  std::size_t have = 0;
  for (;;) {
    if (have == out.size()) out.resize(out.size() * 2);
    const ::ssize_t n = ::read(fd, out.data() + have, out.size() - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  out.resize(have);
  return 0;
}

/// Reads the regular file `path` whole into `out`; returns 0 or the errno of the failure:
/// EISDIR for a directory, EINVAL for anything else that is not a regular file (a FIFO or
/// a device: opened without blocking and never read, so neither can hang the caller or
/// fill its memory), EFBIG past `max_bytes` (never read: a huge sparse file would cost its
/// size in memory). `st_out`, if given, receives the file's status (also on EFBIG).
inline int read_regular_file(const std::filesystem::path& path, std::string& out,
                             std::uint64_t max_bytes, struct ::stat* st_out = nullptr) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  struct ::stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) return errno;
  if (st_out) *st_out = st;
  if (!S_ISREG(st.st_mode)) return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) return EFBIG;
  return read_to_end(fd.get(), out, static_cast<std::size_t>(st.st_size));
}

/// A file's modification time, ordered oldest first.
struct FileTime {
  ::time_t sec = 0;
  long nsec = 0;
  friend auto operator<=>(const FileTime&, const FileTime&) = default;
};

inline FileTime mtime_of(const struct ::stat& st) {
  return {st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
}

inline FileTime now_realtime() {
  ::timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return {ts.tv_sec, ts.tv_nsec};
}

/// Creates `dir` and its missing parents, each with mode 0700 (exactly: the umask does not
/// apply). Returns "" or what failed.
inline std::string create_private_directories(const std::filesystem::path& dir) {
  std::filesystem::path prefix;
  for (const auto& part : dir) {
    prefix /= part;
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      if (::chmod(prefix.c_str(), 0700) != 0) {
        return "chmod 700 " + prefix.string() + ": " + errno_text(errno);
      }
    } else if (errno != EEXIST) {
      return "mkdir " + prefix.string() + ": " + errno_text(errno);
    }
  }
  return {};
}

}  // namespace kiln::detail
