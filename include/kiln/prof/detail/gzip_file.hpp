#pragma once
/// Writing and reading gzip files through zlib, opened at run time (libz.so.1) like kiln's
/// other libraries, so that building needs no zlib headers and only .gz files need zlib.

#include <algorithm>
#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include "../../detail/dynamic_library.hpp"
#include "../../error.hpp"

namespace kiln::prof::detail {

/// The few zlib functions kiln uses (gzFile is an opaque pointer; zlib.h's prototypes).
struct Zlib {
  kiln::detail::DynamicLibrary library;
  void* (*gzopen)(const char* path, const char* mode) = nullptr;
  int (*gzwrite)(void* file, const void* data, unsigned length) = nullptr;
  int (*gzread)(void* file, void* data, unsigned length) = nullptr;
  int (*gzclose)(void* file) = nullptr;
  const char* (*gzerror)(void* file, int* errnum) = nullptr;
};

/// zlib, loaded on first use. Throws kiln::Error saying what to do where it is missing
/// (and tries again on the next call): `doing` is what needed it ("writing FILE"), `instead`
/// what the user can do without it.
inline const Zlib& zlib(const std::string& doing, const std::string& instead) {
  static const Zlib z = [&] {
    Zlib loaded;
    try {
      loaded.library = kiln::detail::DynamicLibrary::open_first("zlib", {"libz.so.1"}, nullptr);
      loaded.gzopen = loaded.library.get<decltype(loaded.gzopen)>("gzopen");
      loaded.gzwrite = loaded.library.get<decltype(loaded.gzwrite)>("gzwrite");
      loaded.gzread = loaded.library.get<decltype(loaded.gzread)>("gzread");
      loaded.gzclose = loaded.library.get<decltype(loaded.gzclose)>("gzclose");
      loaded.gzerror = loaded.library.get<decltype(loaded.gzerror)>("gzerror");
    } catch (const Error& e) {
      throw Error(
          "kiln: " + doing +
          " gzip-compressed needs zlib (libz.so.1), which could not be loaded: " + e.what() +
          "\nInstall zlib (Debian and Ubuntu: zlib1g; Fedora: zlib), or " + instead + ".");
    }
    return loaded;
  }();
  return z;
}

/// Writes `content` gzip-compressed to `path`. Throws kiln::Error naming the path and the
/// reason when it cannot.
inline void write_gzip_file(const std::string& path, std::string_view content) {
  const Zlib& z = zlib("writing " + path, "write to a path that does not end in \".gz\"");
  auto error = [&](const std::string& why) {
    return Error("kiln: could not write " + path + " (gzip): " + why);
  };
  errno = 0;
  void* file = z.gzopen(path.c_str(), "wb");
  if (!file) {
    throw error(errno ? std::generic_category().message(errno) : "zlib could not open it");
  }
  while (!content.empty()) {
    // gzwrite takes an unsigned length and returns an int: write in chunks of 1 GiB.
    const std::size_t chunk = std::min<std::size_t>(content.size(), std::size_t(1) << 30);
    if (z.gzwrite(file, content.data(), unsigned(chunk)) != int(chunk)) {
      int code = 0;
      const char* why = z.gzerror(file, &code);
      std::string reason = code == -1 /* Z_ERRNO */ ? std::generic_category().message(errno)
                                                    : std::string(why ? why : "zlib error");
      z.gzclose(file);
      throw error(reason);
    }
    content.remove_prefix(chunk);
  }
  errno = 0;
  if (const int rc = z.gzclose(file); rc != 0 /* Z_OK */) {
    throw error(rc == -1 && errno ? std::generic_category().message(errno)
                                  : "zlib error " + std::to_string(rc) + " closing it");
  }
}

/// The decompressed content of the gzip file at `path`. Throws kiln::Error naming the
/// path: zlib missing (and what to do), a file cut short, a damaged stream.
inline std::string read_gzip_file(const std::string& path) {
  const Zlib& z = zlib("reading " + path, "run `gunzip -k " + path + "` and read the result");
  errno = 0;
  void* file = z.gzopen(path.c_str(), "rb");
  if (!file) {
    throw Error("kiln: cannot read " + path + ": " +
                (errno ? std::generic_category().message(errno) : "zlib could not open it"));
  }
  std::string out;
  std::string buffer(std::size_t(1) << 16, '\0');
  for (;;) {
    const int n = z.gzread(file, buffer.data(), unsigned(buffer.size()));
    if (n < 0) {
      int code = 0;
      const char* why = z.gzerror(file, &code);
      std::string reason = code == -1 /* Z_ERRNO */ ? std::generic_category().message(errno)
                                                    : std::string(why ? why : "zlib error");
      if (reason.starts_with(path + ": ")) reason.erase(0, path.size() + 2);  // zlib's prefix
      z.gzclose(file);
      throw Error("kiln: " + path + " is not a readable gzip file: " + reason);
    }
    if (n == 0) break;
    out.append(buffer.data(), static_cast<std::size_t>(n));
  }
  // gzclose says Z_BUF_ERROR (-5) where the file ended inside the compressed stream.
  if (const int rc = z.gzclose(file); rc != 0 /* Z_OK */) {
    throw Error("kiln: " + path +
                (rc == -5 ? std::string(" is cut short: its gzip stream ends early")
                          : " is not a readable gzip file: zlib error " + std::to_string(rc)));
  }
  return out;
}

}  // namespace kiln::prof::detail
