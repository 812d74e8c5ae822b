// Cache keys: determinism, sensitivity to every byte and to field boundaries, hex format.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "kiln/jit/cache_key.hpp"

using kiln::jit::CacheKey;
using kiln::jit::KeyBuilder;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

CacheKey key_of(const Fields& fields) {
  KeyBuilder b;
  b.add("schema", kiln::jit::cache_schema_version);
  for (const auto& [name, value] : fields) b.add(name, value);
  return b.finish();
}

const Fields sample = {{"source", "__global__ void k(float* x) { x[0] = 1; }"},
                       {"arch", "sm_90"},
                       {"options", std::string("-O3\0-std=c++20", 14)},
                       {"empty", ""}};

}  // namespace

TEST_CASE("a key depends only on its fields") {
  CHECK(key_of(sample) == key_of(sample));
  CHECK(key_of(sample).hex() == key_of(sample).hex());
  CHECK_FALSE(key_of(sample) == key_of({}));
  // finish() does not end the builder: more fields give another key.
  KeyBuilder b;
  b.add("a", "1");
  const CacheKey first = b.finish();
  CHECK(b.finish() == first);
  b.add("b", "2");
  CHECK_FALSE(b.finish() == first);
  // Field order matters.
  CHECK_FALSE(KeyBuilder().add("a", "1").add("b", "2").finish() ==
              KeyBuilder().add("b", "2").add("a", "1").finish());
}

TEST_CASE("changing any single byte of any field name or value changes the key") {
  const CacheKey base = key_of(sample);
  std::unordered_set<CacheKey> seen{base};
  std::size_t variants = 0;
  for (std::size_t f = 0; f < sample.size(); ++f) {
    for (int part = 0; part < 2; ++part) {
      const std::size_t n = part == 0 ? sample[f].first.size() : sample[f].second.size();
      for (std::size_t i = 0; i < n; ++i) {
        for (int flip : {0x01, 0x80}) {
          Fields changed = sample;
          std::string& s = part == 0 ? changed[f].first : changed[f].second;
          s[i] = static_cast<char>(static_cast<unsigned char>(s[i]) ^ flip);
          const CacheKey k = key_of(changed);
          CHECK_FALSE(k == base);
          seen.insert(k);
          ++variants;
        }
      }
    }
  }
  CHECK(seen.size() == variants + 1);  // all different from each other too
}

TEST_CASE("moving a byte across a field boundary changes the key") {
  CHECK_FALSE(KeyBuilder().add("x", "ab").add("y", "c").finish() ==
              KeyBuilder().add("x", "a").add("y", "bc").finish());
  // between a field's name and its value
  CHECK_FALSE(KeyBuilder().add("ab", "c").finish() == KeyBuilder().add("a", "bc").finish());
  // between one field's value and the next field's name
  CHECK_FALSE(KeyBuilder().add("a", "bc").add("d", "e").finish() ==
              KeyBuilder().add("a", "b").add("cd", "e").finish());
  // an empty field is still a field
  CHECK_FALSE(KeyBuilder().add("a", "b").finish() ==
              KeyBuilder().add("a", "b").add("", "").finish());
  // every split of the same concatenated bytes differs
  const std::string all = "sourcearchoptions";
  std::unordered_set<CacheKey> keys;
  for (std::size_t cut = 0; cut <= all.size(); ++cut) {
    keys.insert(KeyBuilder().add(all.substr(0, cut), all.substr(cut)).finish());
  }
  CHECK(keys.size() == all.size() + 1);
}

TEST_CASE("integer fields are hashed by value as 8 little-endian bytes") {
  CHECK(KeyBuilder().add("n", 7).finish() == KeyBuilder().add("n", std::uint64_t{7}).finish());
  CHECK(KeyBuilder().add("n", std::uint8_t{7}).finish() == KeyBuilder().add("n", 7L).finish());
  CHECK(KeyBuilder().add("n", 0x0102030405060708ull).finish() ==
        KeyBuilder().add("n", std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8)).finish());
  CHECK(KeyBuilder().add("n", -1).finish() ==
        KeyBuilder().add("n", std::string(8, '\xff')).finish());
  CHECK_FALSE(KeyBuilder().add("n", 1).finish() == KeyBuilder().add("n", 2).finish());
  CHECK_FALSE(KeyBuilder().add("n", 1).finish() == KeyBuilder().add("m", 1).finish());
  enum class Arch : int { sm80 = 80, sm90 = 90 };
  CHECK(KeyBuilder().add("arch", Arch::sm90).finish() == KeyBuilder().add("arch", 90).finish());
  CHECK(kiln::jit::cache_schema_version == 1);
}

TEST_CASE("hex is 32 lowercase digits, high half first, and parses back") {
  const CacheKey k{0x0123456789abcdefull, 0xfedcba9876543210ull};
  CHECK(k.hex() == "0123456789abcdeffedcba9876543210");
  CHECK(CacheKey{}.hex() == std::string(32, '0'));
  CHECK(CacheKey{~0ull, ~0ull}.hex() == std::string(32, 'f'));
  const CacheKey real = key_of(sample);
  const std::string h = real.hex();
  CHECK(h.size() == 32);
  CHECK(h.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(CacheKey::from_hex(h) == real);
  CHECK(CacheKey::from_hex(k.hex()) == k);
  CHECK_FALSE(CacheKey::from_hex("0123").has_value());
  CHECK_FALSE(CacheKey::from_hex("0123456789ABCDEFFEDCBA9876543210").has_value());
  CHECK_FALSE(CacheKey::from_hex(std::string(31, '0') + "g").has_value());
}

TEST_CASE("keys work in unordered containers") {
  std::unordered_map<CacheKey, int> by_key;
  by_key[key_of(sample)] = 1;
  by_key[CacheKey{1, 2}] = 2;
  by_key[CacheKey{2, 1}] = 3;
  CHECK(by_key.size() == 3);
  CHECK(by_key.at(key_of(sample)) == 1);
  CHECK(by_key.at(CacheKey{2, 1}) == 3);
  CHECK(std::hash<CacheKey>{}(CacheKey{1, 2}) == kiln::jit::CacheKeyHash{}(CacheKey{1, 2}));
}
