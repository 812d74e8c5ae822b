#pragma once
// Helpers shared by kiln's fuzz targets: a check that stops the run with a message (so
// libFuzzer saves the input as a crash), and a reader that turns the fuzzer's bytes into
// choices, numbers and strings.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

/// Stops the run when `cond` is false, naming the property that failed: a fuzz target's
/// finding is a property broken, not only a crash.
#define KILN_FUZZ_CHECK(cond, what)                                                       \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "kiln fuzz: property broken at %s:%d: %s\n  (%s)\n", __FILE__, \
                   __LINE__, what, #cond);                                                \
      std::abort();                                                                       \
    }                                                                                     \
  } while (false)

namespace kiln_fuzz {

/// The fuzzer's bytes, read front to back; reads past the end give zeros and "".
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size)
      : text_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return text_.empty(); }
  std::uint8_t byte() {
    if (text_.empty()) return 0;
    const auto b = static_cast<std::uint8_t>(text_.front());
    text_.remove_prefix(1);
    return b;
  }
  /// Four bytes as a signed int (little-endian): any int, negative ones included.
  int int32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(byte()) << (8 * i);
    return static_cast<int>(v);
  }
  std::uint64_t uint64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(byte()) << (8 * i);
    return v;
  }
  /// A string of up to `max` bytes: its length first, then its bytes.
  std::string string(std::size_t max) {
    const std::size_t n = std::min<std::size_t>(byte() % (max + 1), text_.size());
    std::string s(text_.substr(0, n));
    text_.remove_prefix(n);
    return s;
  }

 private:
  std::string_view text_;
};

}  // namespace kiln_fuzz
