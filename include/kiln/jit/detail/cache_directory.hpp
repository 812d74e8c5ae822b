#pragma once
/// The disk cache's directory: creating it privately, checking that nobody else can write
/// to it, and listing its entries.
///
/// Layout: `<dir>/<first 2 hex digits of the key>/<32 hex digits>.bin` for entries, and
/// `<dir>/<first 2 hex digits>/.<32 hex digits>.bin.<pid>.<nonce>.<counter>.tmp` for entries
/// being written (renamed over the .bin when complete). Nothing else in the directory is
/// ever read or removed.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "../../detail/posix_file.hpp"
#include "../../detail/private_directory.hpp"
#include "../cache_key.hpp"

namespace kiln::jit::detail {

using kiln::detail::create_private_directories;
using kiln::detail::errno_text;
using kiln::detail::FileTime;
using kiln::detail::mtime_of;
using kiln::detail::now_realtime;
using kiln::detail::read_to_end;
using kiln::detail::UniqueFd;
using kiln::detail::write_all;

/// The result of opening the cache directory: `fd` is open, or `problem` says why the
/// directory is not used and `advice` what to do about it.
struct OpenedCacheDirectory {
  UniqueFd fd;
  std::string problem;
  std::string advice;
};

using kiln::detail::describe_uid;
using kiln::detail::octal_mode;

/// Why the directory `st` describes is not safe to hold kernel binaries (owned by another
/// user, or writable by its group or others), or "" where it is. `what` names it ("it").
inline std::string not_private_problem(const struct ::stat& st, const std::string& what) {
  if (st.st_uid != ::geteuid()) {
    return what + " is owned by " + describe_uid(st.st_uid) + ", not by you (" +
           describe_uid(::geteuid()) + "), so its owner could plant kernel binaries";
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    const bool grp = (st.st_mode & S_IWGRP) != 0, oth = (st.st_mode & S_IWOTH) != 0;
    return what + " is writable by " +
           (grp && oth ? "its group and by others"
            : grp      ? "its group"
                       : "others") +
           " (mode " + octal_mode(st.st_mode) +
           "), so they could plant kernel binaries that kiln would run on the GPU";
  }
  return {};
}

/// Opens the cache directory `dir` (absolute), creating it (mode 0700) where it is missing,
/// and checks that it is safe: a directory owned by this process's effective user and not
/// writable by its group or by others. `dir` itself may be a symlink only if the symlink
/// belongs to this user (or root) and leads to such a directory. The checks run on the
/// opened descriptor, which the cache then works through, so the path cannot be swapped
/// for another directory afterwards. Only `dir` is checked here, not its parents; each shard
/// below it is checked as it is opened (open_shard).
inline OpenedCacheDirectory open_private_directory(const std::filesystem::path& dir) {
  OpenedCacheDirectory out;
  const std::string shown = dir.string();
  const std::string elsewhere =
      "set KILN_CACHE_DIR to a private directory of yours (or KILN_CACHE=0 to turn the cache "
      "off)";
  struct ::stat link {};
  if (::lstat(dir.c_str(), &link) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) {
      out.problem = "it cannot be examined (lstat: " + errno_text(errno) + ")";
      out.advice = elsewhere;
      return out;
    }
    if (std::string failed = create_private_directories(dir); !failed.empty()) {
      out.problem = "it could not be created (" + failed + ")";
      out.advice = elsewhere;
      return out;
    }
    if (::lstat(dir.c_str(), &link) != 0) {
      out.problem = "it vanished after it was created (lstat: " + errno_text(errno) + ")";
      out.advice = elsewhere;
      return out;
    }
  }
  const bool is_link = S_ISLNK(link.st_mode);
  if (is_link && link.st_uid != ::geteuid() && link.st_uid != 0) {
    out.problem = "it is a symlink owned by " + describe_uid(link.st_uid) + ", not by you";
    out.advice = "remove the symlink, or " + elsewhere;
    return out;
  }
  if (!is_link && !S_ISDIR(link.st_mode)) {
    out.problem = "it is not a directory";
    out.advice = elsewhere;
    return out;
  }
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | (is_link ? 0 : O_NOFOLLOW)));
  if (!fd) {
    out.problem = is_link ? "it is a symlink that does not lead to a usable directory (" +
                                errno_text(errno) + ")"
                          : "it cannot be opened (" + errno_text(errno) + ")";
    out.advice = elsewhere;
    return out;
  }
  struct ::stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    out.problem = "it is not a directory";
    out.advice = elsewhere;
    return out;
  }
  const std::string what = is_link ? "the directory it links to" : "it";
  if (std::string problem = not_private_problem(st, what); !problem.empty()) {
    out.problem = std::move(problem);
    out.advice = st.st_uid != ::geteuid()
                     ? elsewhere
                     : "run `chmod 700 " + shown + "` if it is meant to be yours, or " + elsewhere;
    return out;
  }
  out.fd = std::move(fd);
  return out;
}

/// A shard directory (`<dir>/ab`) opened for reading or writing entries: `fd` is open, or
/// the shard does not exist (`missing`), or `problem` says why it is not used.
struct OpenedShard {
  UniqueFd fd;
  bool missing = false;
  std::string problem;
};

/// Opens the shard directory `name` of the cache directory `dir_fd` without following a
/// symlink, and checks it as the cache directory itself is checked: a directory of this
/// user that nobody else can write to. Entries are then opened through the shard's
/// descriptor, so no level of an entry's path can lead out of the cache directory.
inline OpenedShard open_shard(int dir_fd, const std::string& name) {
  OpenedShard out;
  out.fd = UniqueFd(
      ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!out.fd) {
    const int error = errno;
    struct ::stat link {};
    if (error == ENOENT) {
      out.missing = true;
    } else if (::fstatat(dir_fd, name.c_str(), &link, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISLNK(link.st_mode)) {
      out.problem = "it is a symlink, which could lead kiln to binaries planted elsewhere";
    } else if (error == ENOTDIR) {
      out.problem = "it is not a directory";
    } else {
      out.problem = "it cannot be opened (" + errno_text(error) + ")";
    }
    return out;
  }
  struct ::stat st {};
  if (::fstat(out.fd.get(), &st) != 0) {
    out.problem = "it cannot be examined (fstat: " + errno_text(errno) + ")";
  } else {
    out.problem = not_private_problem(st, "it");
  }
  if (!out.problem.empty()) out.fd.reset();
  return out;
}

/// One entry file found by a scan.
struct ScannedEntry {
  std::string relative;  // "ab/ab...ef.bin"
  CacheKey key;
  std::uint64_t size = 0;
  FileTime mtime;
};

inline bool is_shard_name(std::string_view name) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  return name.size() == 2 && hex(name[0]) && hex(name[1]);
}

inline bool is_temp_name(std::string_view name) {
  return name.size() > 5 && name.front() == '.' && name.substr(name.size() - 4) == ".tmp";
}

/// Calls `visit(shard_fd, name, stat)` for each regular file in each shard directory of the
/// cache directory `dir_fd`.
template <class Visit>
void for_each_shard_file(int dir_fd, Visit&& visit) {
  UniqueFd top_fd(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ::DIR* top = top_fd ? ::fdopendir(top_fd.get()) : nullptr;
  if (!top) return;
  (void)top_fd.release();  // owned by `top` now
  while (const ::dirent* shard = ::readdir(top)) {
    if (!is_shard_name(shard->d_name)) continue;
    UniqueFd shard_fd(
        ::openat(dir_fd, shard->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!shard_fd) continue;
    UniqueFd list_fd(::openat(shard_fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ::DIR* files = list_fd ? ::fdopendir(list_fd.get()) : nullptr;
    if (!files) continue;
    (void)list_fd.release();
    while (const ::dirent* file = ::readdir(files)) {
      struct ::stat st {};
      if (::fstatat(shard_fd.get(), file->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (!S_ISREG(st.st_mode)) continue;
      visit(shard_fd.get(), std::string_view(shard->d_name), std::string_view(file->d_name), st);
    }
    ::closedir(files);
  }
  ::closedir(top);
}

/// The entries of the cache directory `dir_fd`. Temp files last modified before
/// `stale_before` (left by writers that died) are removed on the way.
inline std::vector<ScannedEntry> scan_cache_directory(int dir_fd, FileTime stale_before) {
  std::vector<ScannedEntry> entries;
  for_each_shard_file(dir_fd, [&](int shard_fd, std::string_view shard, std::string_view name,
                                  const struct ::stat& st) {
    if (is_temp_name(name)) {
      if (mtime_of(st) < stale_before) ::unlinkat(shard_fd, std::string(name).c_str(), 0);
      return;
    }
    if (name.size() != 36 || name.substr(32) != ".bin" || name.substr(0, 2) != shard) return;
    const auto key = CacheKey::from_hex(name.substr(0, 32));
    if (!key) return;
    entries.push_back(ScannedEntry{std::string(shard) + "/" + std::string(name), *key,
                                   static_cast<std::uint64_t>(st.st_size), mtime_of(st)});
  });
  return entries;
}

}  // namespace kiln::jit::detail
