#pragma once
// Reading a gzip-compressed file (a trace kiln wrote as .json.gz, or a profile someone
// gzipped) through zlib, opened at run time (libz.so.1) the way kiln's profiler opens it to
// write one (kiln/prof/detail/gzip_file.hpp): the tool needs no zlib headers to build, and
// only .gz input needs zlib.

#include <cerrno>
#include <string>
#include <system_error>

#include "kiln/detail/dynamic_library.hpp"
#include "kiln/error.hpp"

namespace kiln::cli {

/// Whether `bytes` begin with gzip's magic number (1f 8b).
inline bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

/// The decompressed content of the gzip file at `path`. Throws kiln::Error, one line naming
/// the path: zlib missing (and what to do), a file cut short, a damaged stream.
inline std::string read_gzip_file(const std::string& path) {
  struct Zlib {
    kiln::detail::DynamicLibrary library;
    void* (*gzopen)(const char*, const char*) = nullptr;
    int (*gzread)(void*, void*, unsigned) = nullptr;
    int (*gzclose)(void*) = nullptr;
    const char* (*gzerror)(void*, int*) = nullptr;
  };
  Zlib z;
  try {
    z.library = kiln::detail::DynamicLibrary::open_first("zlib", {"libz.so.1"}, nullptr);
    z.gzopen = z.library.get<decltype(z.gzopen)>("gzopen");
    z.gzread = z.library.get<decltype(z.gzread)>("gzread");
    z.gzclose = z.library.get<decltype(z.gzclose)>("gzclose");
    z.gzerror = z.library.get<decltype(z.gzerror)>("gzerror");
  } catch (const Error& e) {
    // LibraryError's second line says why: "  libz.so.1: cannot open shared object file".
    std::string why = e.what();
    const auto line = why.find("\n  ");
    why = line == std::string::npos ? why.substr(0, why.find('\n'))
                                    : why.substr(line + 3, why.find('\n', line + 1) - line - 3);
    throw Error("kiln: reading " + path +
                " (gzip-compressed) needs zlib, which could not be loaded (" + why +
                "); install zlib (Debian and Ubuntu: zlib1g) or run `gunzip -k " + path +
                "` and pass the .json");
  }
  errno = 0;
  void* file = z.gzopen(path.c_str(), "rb");
  if (!file) {
    throw Error("kiln: cannot read " + path + ": " +
                (errno ? std::generic_category().message(errno) : "zlib could not open it"));
  }
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    const int n = z.gzread(file, buffer, sizeof buffer);
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
    out.append(buffer, static_cast<std::size_t>(n));
  }
  // gzclose says Z_BUF_ERROR (-5) where the file ended inside the compressed stream.
  if (const int rc = z.gzclose(file); rc != 0 /* Z_OK */) {
    throw Error("kiln: " + path +
                (rc == -5 ? std::string(" is cut short: its gzip stream ends early")
                          : " is not a readable gzip file: zlib error " + std::to_string(rc)));
  }
  return out;
}

}  // namespace kiln::cli
