#pragma once
/// A small length-prefixed binary encoding for cache entries. Reading checks every
/// length against what is left, so a damaged entry is an exception, never a crash.

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../error.hpp"

namespace kiln::detail {

class Writer {
 public:
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(char((v >> (8 * i)) & 0xff));
  }
  void bytes(std::string_view s) {
    u64(s.size());
    out_.append(s.data(), s.size());
  }
  void f64(double v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    u64(bits);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::uint64_t u64() {
    need(8);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= std::uint64_t(static_cast<unsigned char>(in_[pos_ + size_t(i)])) << (8 * i);
    pos_ += 8;
    return v;
  }
  std::string bytes() {
    std::uint64_t n = u64();
    need(n);
    std::string s(in_.substr(pos_, size_t(n)));
    pos_ += size_t(n);
    return s;
  }
  double f64() {
    std::uint64_t bits = u64();
    double v = 0;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  void need(std::uint64_t n) const {
    if (n > in_.size() - pos_) throw Error("kiln: malformed cache entry (truncated field)");
  }
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace kiln::detail
