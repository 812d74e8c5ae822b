#pragma once
// Reading a gzip-compressed file (a trace kiln wrote as .json.gz, or a profile someone
// gzipped) through zlib, opened at run time by kiln/prof/detail/gzip_file.hpp: the tool
// needs no zlib headers to build, and only .gz input needs zlib.

#include <string>

#include "kiln/prof/detail/gzip_file.hpp"

namespace kiln::cli {

/// Whether `bytes` begin with gzip's magic number (1f 8b).
inline bool is_gzip(const std::string& bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

/// The decompressed content of the gzip file at `path` (kiln's own reader, beside the
/// profiler's writer).
using kiln::prof::detail::read_gzip_file;

}  // namespace kiln::cli
