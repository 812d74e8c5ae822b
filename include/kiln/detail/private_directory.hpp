#pragma once
/// Opening a directory that kiln trusts what it finds in: one owned by this user (or root)
/// that nobody else can write to, so that nobody else can plant files for kiln to read.
/// The tuning database's directory is checked this way; the checks are the kernel disk
/// cache's (jit/detail/cache_directory.hpp), with the words of the messages left to the
/// caller.
///
///   kiln::detail::OpenedDirectory dir = kiln::detail::open_trusted_directory(
///       "/home/me/.cache/kiln", {.planted = "tuning records", .elsewhere = "set ..."});
///   if (!dir.fd) warn(dir.problem + "; " + dir.advice);

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>

#include "posix_file.hpp"

namespace kiln::detail {

/// The words of open_trusted_directory()'s messages.
struct TrustedDirectoryWords {
  /// What others could plant there ("tuning records that choose the kernels kiln runs").
  std::string planted;
  /// What to do instead ("set KILN_TUNING_DB to a file in a private directory of yours").
  std::string elsewhere;
};

/// The result of opening a trusted directory: `fd` is open, or `problem` says why the
/// directory is not used and `advice` what to do about it.
struct OpenedDirectory {
  UniqueFd fd;
  std::string problem;
  std::string advice;
};

inline std::string describe_uid(::uid_t uid) {
  std::string out = "uid " + std::to_string(uid);
  ::passwd pw{};
  ::passwd* found = nullptr;
  char buffer[1024];
  if (::getpwuid_r(uid, &pw, buffer, sizeof buffer, &found) == 0 && found && found->pw_name) {
    out += std::string(" (") + found->pw_name + ")";
  }
  return out;
}

inline std::string octal_mode(::mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

/// Opens the directory `dir` (absolute), creating it and its missing parents (mode 0700)
/// where it is missing, and checks that it is a directory owned by this process's
/// effective user or by root (who can change anything anyway) and not writable by its
/// group or by others. `dir` may be a symlink only if the symlink belongs to this user (or
/// root) and leads to such a directory. The checks run on the opened descriptor, so the
/// path cannot be swapped for another directory afterwards. Only `dir` is checked, not its
/// parents.
inline OpenedDirectory open_trusted_directory(const std::filesystem::path& dir,
                                              const TrustedDirectoryWords& words) {
  OpenedDirectory out;
  const auto refuse = [&](std::string problem, std::string advice = {}) {
    out.problem = std::move(problem);
    out.advice = advice.empty() ? words.elsewhere : std::move(advice);
    return std::move(out);
  };
  struct ::stat link {};
  if (::lstat(dir.c_str(), &link) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      return refuse("it cannot be examined (lstat: " + errno_text(errno) + ")");
    }
    if (std::string failed = create_private_directories(dir); !failed.empty()) {
      return refuse("it could not be created (" + failed + ")");
    }
    if (::lstat(dir.c_str(), &link) != 0) {
      return refuse("it vanished after it was created (lstat: " + errno_text(errno) + ")");
    }
  }
  const ::uid_t me = ::geteuid();
  const bool is_link = S_ISLNK(link.st_mode);
  if (is_link && link.st_uid != me && link.st_uid != 0) {
    return refuse("it is a symlink owned by " + describe_uid(link.st_uid) + ", not by you",
                  "remove the symlink, or " + words.elsewhere);
  }
  if (!is_link && !S_ISDIR(link.st_mode)) return refuse("it is not a directory");
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (is_link ? 0 : O_NOFOLLOW)));
  if (!fd) {
    return refuse(is_link ? "it is a symlink that does not lead to a usable directory (" +
                                errno_text(errno) + ")"
                          : "it cannot be opened (" + errno_text(errno) + ")");
  }
  struct ::stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISDIR(st.st_mode)) return refuse("it is not a directory");
  const std::string what = is_link ? "the directory it links to" : "it";
  if (st.st_uid != me && st.st_uid != 0) {
    return refuse(what + " is owned by " + describe_uid(st.st_uid) + ", not by you (" +
                  describe_uid(me) + "), so its owner could plant " + words.planted);
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    const bool grp = (st.st_mode & S_IWGRP) != 0, oth = (st.st_mode & S_IWOTH) != 0;
    return refuse(
        what + " is writable by " +
            (grp && oth ? "its group and by others"
             : grp      ? "its group"
                        : "others") +
            " (mode " + octal_mode(st.st_mode) + "), so they could plant " + words.planted,
        "run `chmod 700 " + dir.string() + "` if it is meant to be yours, or " + words.elsewhere);
  }
  out.fd = std::move(fd);
  return out;
}

}  // namespace kiln::detail
