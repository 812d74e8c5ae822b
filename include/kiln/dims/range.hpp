#pragma once
/// Typed ranges: loops over the values of one dimension, optionally split across threads.
///
///   for (I i : range(I(n))) ...                       // I(0) .. I(n-1)
///   for (I i : range(I(lo), I(hi))) ...               // I(lo) .. I(hi-1)
///   for (I i : range(I(n)).split(rank, count)) ...    // rank, rank+count, ... (strided)
///   for (I i : range<I>(n)) ...                       // the same as range(I(n))

#include "dim.hpp"

namespace kiln {

/// The values begin, begin + step, ... below end (above end for a negative step).
template <class D>
class Range {
 public:
  class iterator {
   public:
    KILN_HOST_DEVICE constexpr iterator(int v, int step) : v_(v), step_(step) {}
    KILN_HOST_DEVICE constexpr D operator*() const { return D(v_); }
    KILN_HOST_DEVICE constexpr iterator& operator++() {
      v_ += step_;
      return *this;
    }
    // Only ever compared with end(): the loop stops once the value passes it.
    // A step of 0 gives an empty range rather than an endless loop.
    KILN_HOST_DEVICE constexpr bool operator!=(const iterator& end) const {
      return step_ > 0 ? v_ < end.v_ : (step_ < 0 && v_ > end.v_);
    }

   private:
    int v_;
    int step_;
  };

  KILN_HOST_DEVICE constexpr Range(D begin, D end, int step = 1)
      : begin_(begin.get()), end_(end.get()), step_(step) {}

  KILN_HOST_DEVICE constexpr iterator begin() const { return iterator(begin_, step_); }
  KILN_HOST_DEVICE constexpr iterator end() const { return iterator(end_, step_); }

  /// This range shared among `count` threads: thread `rank` takes every count-th value,
  /// starting at its rank.
  KILN_HOST_DEVICE constexpr Range split(int rank, int count) const {
    return Range(D(begin_ + rank * step_), D(end_), step_ * count);
  }
  /// The number of values in the range.
  KILN_HOST_DEVICE constexpr int size() const {
    int span = step_ > 0 ? end_ - begin_ : begin_ - end_;
    int step = step_ > 0 ? step_ : -step_;
    return span <= 0 ? 0 : (span + step - 1) / step;
  }

 private:
  int begin_;
  int end_;
  int step_;
};

template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr Range<D> range(D end) {
  return Range<D>(D(0), end);
}
template <class D, class = detail::if_dim<D>>
KILN_HOST_DEVICE constexpr Range<D> range(D begin, D end, int step = 1) {
  return Range<D>(begin, end, step);
}
template <class D>
KILN_HOST_DEVICE constexpr Range<D> range(int end) {
  return Range<D>(D(0), D(end));
}
template <class D>
KILN_HOST_DEVICE constexpr Range<D> range(int begin, int end, int step = 1) {
  return Range<D>(D(begin), D(end), step);
}

}  // namespace kiln
