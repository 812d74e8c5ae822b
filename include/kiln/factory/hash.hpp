#pragma once
/// A hash of values mixed field by field, for a std::hash<Params> of a factory whose Params
/// have padding (their bytes are then no unique representation, and the factory's memo
/// would hash their JSON instead, a dump per lookup):
///
///   template <> struct std::hash<MyParams> {
///     std::size_t operator()(const MyParams& p) const noexcept {
///       return kiln::factory::hash_combine(0, {p.rows, p.cols, std::int64_t(p.flag)});
///     }
///   };

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>

namespace kiln::factory {

/// `seed` with each of `values` mixed in, in order (boost's hash_combine step).
inline std::size_t hash_combine(std::size_t seed,
                                std::initializer_list<std::int64_t> values) noexcept {
  for (std::int64_t v : values) {
    seed ^= std::hash<std::int64_t>{}(v) + 0x9e3779b97f4a7c15ull + (seed << 6) + (seed >> 2);
  }
  return seed;
}

}  // namespace kiln::factory
