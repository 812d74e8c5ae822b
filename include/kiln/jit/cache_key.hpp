#pragma once
/// Keys of the kernel caches: a 128-bit XXH3 digest of named fields (the kernel's source,
/// the compiler's version, its options, the target, ...). A KeyBuilder hashes each field
/// with its name and both lengths, so no two different field lists hash the same bytes:
/// ("ab", "c") and ("a", "bc") give different keys.
///
///   CacheKey key = KeyBuilder()
///                      .add("schema", cache_schema_version)   // always first
///                      .add("source", source)
///                      .add("arch", "sm_90")
///                      .finish();

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace kiln::jit {

/// The version of what kiln puts into a cache key and into a cache entry. Every caller
/// hashes it first (`add("schema", cache_schema_version)`), and kiln bumps it whenever the
/// meaning of a key's fields or the entry format changes, so that old entries are never
/// mistaken for new ones.
inline constexpr int cache_schema_version = 1;

namespace detail {

/// `value` as 8 little-endian bytes, whatever the host's byte order.
inline std::array<char, 8> le64_bytes(std::uint64_t value) {
  std::array<char, 8> out{};
  for (std::size_t i = 0; i < 8; ++i) {
    out[i] = static_cast<char>(static_cast<unsigned char>((value >> (8 * i)) & 0xffu));
  }
  return out;
}

/// The little-endian 64-bit integer at `p` (8 bytes).
inline std::uint64_t le64_value(const char* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  return v;
}

}  // namespace detail

/// A 128-bit cache key.
struct CacheKey {
  std::uint64_t high = 0;
  std::uint64_t low = 0;

  /// 32 lowercase hex digits: `high` then `low`, most significant digit first.
  std::string hex() const {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(32, '0');
    for (std::size_t i = 0; i < 16; ++i) {
      out[15 - i] = digits[(high >> (4 * i)) & 0xfu];
      out[31 - i] = digits[(low >> (4 * i)) & 0xfu];
    }
    return out;
  }

  /// The key whose hex() is `text` (32 lowercase hex digits), or nullopt.
  static std::optional<CacheKey> from_hex(std::string_view text) {
    if (text.size() != 32) return std::nullopt;
    CacheKey key;
    for (std::size_t i = 0; i < 32; ++i) {
      const char c = text[i];
      std::uint64_t d = 0;
      if (c >= '0' && c <= '9') {
        d = static_cast<std::uint64_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<std::uint64_t>(c - 'a' + 10);
      } else {
        return std::nullopt;
      }
      std::uint64_t& half = i < 16 ? key.high : key.low;
      half = (half << 4) | d;
    }
    return key;
  }

  friend bool operator==(const CacheKey&, const CacheKey&) = default;
};

/// Hashes a CacheKey for unordered containers (the key is already a good hash).
struct CacheKeyHash {
  std::size_t operator()(const CacheKey& key) const noexcept {
    return static_cast<std::size_t>(key.low ^ (key.high * 0x9e3779b97f4a7c15ull));
  }
};

/// Builds a CacheKey from named fields with a streaming XXH3-128. Each field is hashed as
/// name length, name, value length, value, the lengths as 8-byte little-endian integers;
/// integer values are hashed as 8 little-endian bytes (two's complement for negative
/// values), so a key does not depend on the host's byte order or on the integer's type.
class KeyBuilder {
 public:
  KeyBuilder() noexcept { XXH3_128bits_reset(&state_); }

  /// Adds the field `field` with the value `bytes` (arbitrary bytes, not only text).
  KeyBuilder& add(std::string_view field, std::string_view bytes) noexcept {
    update_length(field.size());
    update(field.data(), field.size());
    update_length(bytes.size());
    update(bytes.data(), bytes.size());
    return *this;
  }

  /// Adds the field `field` with an integer (or enumeration) value.
  template <class T>
  requires(std::integral<T> || std::is_enum_v<T>) KeyBuilder& add(std::string_view field,
                                                                  T value) noexcept {
    std::uint64_t bits = 0;
    if constexpr (std::is_enum_v<T>) {
      bits = static_cast<std::uint64_t>(static_cast<std::underlying_type_t<T>>(value));
    } else {
      bits = static_cast<std::uint64_t>(value);
    }
    const std::array<char, 8> le = detail::le64_bytes(bits);
    return add(field, std::string_view(le.data(), le.size()));
  }

  /// The key of every field added so far; more fields may still be added afterwards.
  CacheKey finish() const noexcept {
    const XXH128_hash_t h = XXH3_128bits_digest(&state_);
    return CacheKey{h.high64, h.low64};
  }

 private:
  void update(const char* data, std::size_t size) noexcept {
    if (size != 0) (void)XXH3_128bits_update(&state_, data, size);
  }
  void update_length(std::size_t size) noexcept {
    const std::array<char, 8> le = detail::le64_bytes(static_cast<std::uint64_t>(size));
    update(le.data(), le.size());
  }

  XXH3_state_t state_;
};

}  // namespace kiln::jit

/// CacheKey keys std::unordered_map and std::unordered_set directly.
template <>
struct std::hash<kiln::jit::CacheKey> {
  std::size_t operator()(const kiln::jit::CacheKey& key) const noexcept {
    return kiln::jit::CacheKeyHash{}(key);
  }
};
