#pragma once
/// The key of a factory's memo: (device, Params). Hashed by std::hash<Params> where the
/// program specializes it, else from the Params' bytes where they are a unique
/// representation of the value (no padding, no floats), else from their JSON (slower: a
/// JSON dump per lookup; benchmarks/factory_lookup measures both).

#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace kiln::factory::detail {

template <class Params>
struct MemoKey {
  int device = 0;
  Params params;
};

template <class Params>
constexpr bool hash_bytes_v =
    std::is_trivially_copyable_v<Params>&& std::has_unique_object_representations_v<Params>;

template <class Params>
concept has_std_hash = requires(const Params& p) {
  { std::hash<Params>{}(p) } -> std::convertible_to<std::size_t>;
};

template <class Params>
struct MemoHash {
  std::size_t operator()(const MemoKey<Params>& k) const {
    if constexpr (has_std_hash<Params>) {
      return std::hash<Params>{}(k.params) ^ (std::size_t(k.device) * 0x9e3779b97f4a7c15ull);
    } else if constexpr (hash_bytes_v<Params>) {
      return std::size_t(XXH3_64bits_withSeed(&k.params, sizeof(Params), XXH64_hash_t(k.device)));
    } else {
      const std::string text = nlohmann::json(k.params).dump();
      return std::size_t(XXH3_64bits_withSeed(text.data(), text.size(), XXH64_hash_t(k.device)));
    }
  }
};

template <class Params>
struct MemoEqual {
  bool operator()(const MemoKey<Params>& a, const MemoKey<Params>& b) const {
    if (a.device != b.device) return false;
    if constexpr (std::equality_comparable<Params>) {
      return a.params == b.params;
    } else {
      return nlohmann::json(a.params) == nlohmann::json(b.params);
    }
  }
};

}  // namespace kiln::factory::detail
