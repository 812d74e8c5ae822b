#pragma once
/// The file format of one disk cache entry: a 64-byte header, then the payload.
///
///   offset size  field
///        0    8  magic "KILNBIN\0"
///        8    4  format version (cache_entry_format_version), little-endian
///       12    4  header size in bytes (64), little-endian
///       16    8  payload size in bytes, little-endian
///       24    8  XXH3-64 of the payload (seed 0), little-endian
///       32    8  key.high, little-endian
///       40    8  key.low, little-endian
///       48    8  reserved, zero
///       56    8  XXH3-64 of bytes [0, 56) of the header (seed 0), little-endian
///       64    -  payload
///
/// An entry is valid only if every one of these checks out and the file holds exactly
/// 64 + payload size bytes. Entries of another format version count as corrupt (and are
/// replaced): a format change must bump cache_schema_version too, so that the keys of the
/// two formats never meet.

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "../cache_key.hpp"

namespace kiln::jit::detail {

inline constexpr std::uint32_t cache_entry_format_version = 1;
inline constexpr std::size_t cache_entry_header_size = 64;
inline constexpr char cache_entry_magic[8] = {'K', 'I', 'L', 'N', 'B', 'I', 'N', '\0'};

using CacheEntryHeader = std::array<char, cache_entry_header_size>;

namespace entry_field {
inline constexpr std::size_t magic = 0, version = 8, header_size = 12, payload_size = 16,
                             payload_hash = 24, key_high = 32, key_low = 40, reserved = 48,
                             header_hash = 56;
}  // namespace entry_field

inline void put_le64(char* at, std::uint64_t value) {
  const std::array<char, 8> le = le64_bytes(value);
  std::memcpy(at, le.data(), le.size());
}

inline void put_le32(char* at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; ++i) {
    at[i] = static_cast<char>(static_cast<unsigned char>((value >> (8 * i)) & 0xffu));
  }
}

inline std::uint32_t le32_value(const char* p) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return v;
}

/// The header of the entry that stores `payload` under `key`.
inline CacheEntryHeader make_cache_entry_header(const CacheKey& key, std::string_view payload) {
  CacheEntryHeader h{};
  std::memcpy(h.data() + entry_field::magic, cache_entry_magic, sizeof cache_entry_magic);
  put_le32(h.data() + entry_field::version, cache_entry_format_version);
  put_le32(h.data() + entry_field::header_size,
           static_cast<std::uint32_t>(cache_entry_header_size));
  put_le64(h.data() + entry_field::payload_size, payload.size());
  put_le64(h.data() + entry_field::payload_hash, XXH3_64bits(payload.data(), payload.size()));
  put_le64(h.data() + entry_field::key_high, key.high);
  put_le64(h.data() + entry_field::key_low, key.low);
  put_le64(h.data() + entry_field::reserved, 0);
  put_le64(h.data() + entry_field::header_hash, XXH3_64bits(h.data(), entry_field::header_hash));
  return h;
}

/// Why `file` (a whole entry file's bytes) is not a valid entry for `key`, or nullptr
/// when it is one.
inline const char* cache_entry_problem(std::string_view file, const CacheKey& key) {
  if (file.empty()) return "the file is empty";
  if (file.size() < cache_entry_header_size) return "the file is shorter than the header";
  const char* h = file.data();
  if (std::memcmp(h + entry_field::magic, cache_entry_magic, sizeof cache_entry_magic) != 0) {
    return "bad magic";
  }
  if (le64_value(h + entry_field::header_hash) != XXH3_64bits(h, entry_field::header_hash)) {
    return "the header checksum does not match";
  }
  if (le32_value(h + entry_field::version) != cache_entry_format_version ||
      le32_value(h + entry_field::header_size) != cache_entry_header_size) {
    return "another format version";
  }
  if (le64_value(h + entry_field::reserved) != 0) return "reserved bytes are set";
  if (le64_value(h + entry_field::key_high) != key.high ||
      le64_value(h + entry_field::key_low) != key.low) {
    return "the entry holds another key";
  }
  const std::string_view payload = file.substr(cache_entry_header_size);
  if (le64_value(h + entry_field::payload_size) != payload.size()) {
    return "the payload size does not match the file size (truncated?)";
  }
  if (le64_value(h + entry_field::payload_hash) != XXH3_64bits(payload.data(), payload.size())) {
    return "the payload checksum does not match";
  }
  return nullptr;
}

}  // namespace kiln::jit::detail
