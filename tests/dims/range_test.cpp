// Typed ranges (kiln/dims/range.hpp), and their split across threads.
#include <doctest/doctest.h>

#include <cstddef>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "kiln/dims/range.hpp"

namespace {

KILN_DIM(I);
using I8 = kiln::Fold<I, 8>;

static_assert(std::is_same_v<decltype(kiln::range(I(3))), kiln::Range<I>>);
static_assert(std::is_same_v<decltype(kiln::range<I>(3)), kiln::Range<I>>);
static_assert(std::is_same_v<decltype(*kiln::range(I(3)).begin()), I>);
static_assert(kiln::range(I(10)).size() == 10);

template <class D>
std::vector<int> values(const kiln::Range<D>& r) {
  std::vector<int> out;
  for (D d : r) out.push_back(d.get());
  return out;
}

}  // namespace

TEST_CASE("range: the forms") {
  CHECK(values(kiln::range<I>(5)) == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(values(kiln::range(I(5))) == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(values(kiln::range(I(2), I(7))) == std::vector<int>{2, 3, 4, 5, 6});
  CHECK(values(kiln::range<I>(2, 7)) == std::vector<int>{2, 3, 4, 5, 6});
  CHECK(values(kiln::range(I(2), I(11), 3)) == std::vector<int>{2, 5, 8});
  CHECK(values(kiln::range<I>(2, 12, 3)) == std::vector<int>{2, 5, 8, 11});
  CHECK(values(kiln::range(I8(1), I8(4))) == std::vector<int>{1, 2, 3});
  CHECK(values(kiln::range(I(0))).empty());
  CHECK(values(kiln::range(I(5), I(5))).empty());
  CHECK(values(kiln::range(I(7), I(2))).empty());  // a positive step never goes down
  CHECK(values(kiln::range(I(-3), I(1))) == std::vector<int>{-3, -2, -1, 0});
}

TEST_CASE("range: negative steps") {
  CHECK(values(kiln::range(I(10), I(0), -3)) == std::vector<int>{10, 7, 4, 1});
  CHECK(values(kiln::range(I(4), I(-1), -1)) == std::vector<int>{4, 3, 2, 1, 0});
  CHECK(values(kiln::range<I>(9, 3, -2)) == std::vector<int>{9, 7, 5});
  CHECK(values(kiln::range(I(2), I(7), -1)).empty());
  CHECK(kiln::range(I(10), I(0), -3).size() == 4);
  CHECK(kiln::range(I(4), I(-1), -1).size() == 5);
  CHECK(kiln::range(I(2), I(7), -1).size() == 0);
}

TEST_CASE("range: size matches the values") {
  for (int begin = -4; begin <= 6; ++begin) {
    for (int end = -4; end <= 6; ++end) {
      for (int step : {-3, -2, -1, 1, 2, 3, 5}) {
        auto r = kiln::range(I(begin), I(end), step);
        CHECK(r.size() == static_cast<int>(values(r).size()));
      }
    }
  }
  CHECK(kiln::range(I(7)).size() == 7);
  CHECK(kiln::range(I(2), I(11), 3).size() == 3);
  CHECK(kiln::range(I(2), I(12), 3).size() == 4);
}

TEST_CASE("range: split partitions a range across threads exactly") {
  struct Case {
    int begin, end, step;
  };
  for (Case cs : {Case{0, 37, 1}, Case{5, 40, 3}, Case{30, -3, -1}, Case{20, 1, -4}, Case{0, 1, 1},
                  Case{0, 0, 1}}) {
    auto whole = kiln::range(I(cs.begin), I(cs.end), cs.step);
    const std::vector<int> all = values(whole);
    for (int count = 1; count <= 9; ++count) {
      std::vector<int> seen;
      int sizes = 0;
      for (int rank = 0; rank < count; ++rank) {
        auto part = whole.split(rank, count);
        const std::vector<int> mine = values(part);
        CHECK(part.size() == static_cast<int>(mine.size()));
        sizes += part.size();
        // Rank r takes values r, r + count, ... of the whole range.
        for (std::size_t j = 0; j < mine.size(); ++j)
          CHECK(mine[j] ==
                all[static_cast<std::size_t>(rank) + j * static_cast<std::size_t>(count)]);
        seen.insert(seen.end(), mine.begin(), mine.end());
      }
      CHECK(sizes == whole.size());
      // The union is the whole range, with nothing twice.
      std::vector<int> count_of(all.size(), 0);
      for (int v : seen) {
        bool found = false;
        for (std::size_t j = 0; j < all.size(); ++j) {
          if (all[j] == v) {
            ++count_of[j];
            found = true;
          }
        }
        CHECK(found);
      }
      for (int c : count_of) CHECK(c == 1);
      CHECK(seen.size() == all.size());
    }
  }
}

TEST_CASE("range: split of a typed loop, as in a kernel") {
  // 4 threads share I(0)..I(9): thread 1 gets 1, 5, 9.
  CHECK(values(kiln::range(I(10)).split(1, 4)) == std::vector<int>{1, 5, 9});
  CHECK(values(kiln::range(I(10)).split(3, 4)) == std::vector<int>{3, 7});
  CHECK(values(kiln::range(I(3)).split(5, 8)).empty());  // more threads than values
  CHECK(kiln::range(I(3)).split(5, 8).size() == 0);
  int sum = 0;
  for (I i : kiln::range(I(2), I(9)).split(2, 3)) sum += i.get();  // 4, 7
  CHECK(sum == 11);
}

TEST_CASE("range: a step of 0 is empty, not endless") {
  int n = 0;
  for (auto i : kiln::range(I(0), I(10), 0)) n += 1 + i.get();
  CHECK(n == 0);
}
