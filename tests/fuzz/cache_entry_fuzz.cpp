// Fuzz target: the disk cache's entry parser (include/kiln/jit/detail/cache_entry_format.hpp).
//
// Properties, for any bytes read back as an entry file:
// - cache_entry_problem() never crashes or reads out of bounds;
// - bytes it accepts are exactly what make_cache_entry_header() writes for that key and
//   payload, and are refused under any other key;
// - the bytes as a payload round-trip: the entry written for them is accepted, and the same
//   entry with one bit flipped, cut short by a byte or grown by one is refused.

#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "kiln/jit/detail/cache_entry_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using kiln::jit::CacheKey;
  namespace d = kiln::jit::detail;
  const std::string_view file(reinterpret_cast<const char*>(data), size);

  // The key the bytes say they hold (zeros where they are too short to say).
  CacheKey claimed{};
  if (size >= d::cache_entry_header_size) {
    claimed.high = d::le64_value(file.data() + d::entry_field::key_high);
    claimed.low = d::le64_value(file.data() + d::entry_field::key_low);
  }
  if (d::cache_entry_problem(file, claimed) == nullptr) {
    const d::CacheEntryHeader header =
        d::make_cache_entry_header(claimed, file.substr(d::cache_entry_header_size));
    KILN_FUZZ_CHECK(file.substr(0, header.size()) == std::string_view(header.data(), header.size()),
                    "an accepted entry's header is the one the writer writes");
    const CacheKey other{claimed.high, claimed.low ^ 1};
    KILN_FUZZ_CHECK(d::cache_entry_problem(file, other) != nullptr,
                    "an entry is refused under another key");
  }

  // The bytes as the payload of an entry.
  const CacheKey key{XXH3_64bits(data, size), size};
  const d::CacheEntryHeader header = d::make_cache_entry_header(key, file);
  std::string entry(header.data(), header.size());
  entry.append(file);
  KILN_FUZZ_CHECK(d::cache_entry_problem(entry, key) == nullptr,
                  "an entry as the writer writes it is accepted");
  KILN_FUZZ_CHECK(
      d::cache_entry_problem(std::string_view(entry).substr(0, entry.size() - 1), key) != nullptr,
      "an entry cut short by one byte is refused");
  KILN_FUZZ_CHECK(d::cache_entry_problem(entry + '\0', key) != nullptr,
                  "an entry with a byte appended is refused");
  // One bit flipped, at a place the bytes choose: in the header or the payload.
  std::uint32_t at = 0;
  std::memcpy(&at, data, std::min<std::size_t>(size, sizeof at));
  std::string flipped = entry;
  flipped[at % flipped.size()] ^= static_cast<char>(1u << (at >> 29));
  KILN_FUZZ_CHECK(d::cache_entry_problem(flipped, key) != nullptr,
                  "an entry with one bit flipped is refused");
  return 0;
}
