// kiln::split_round (kiln/device/split_rows.hpp), the schedule of the split row ops'
// persistent grid (kernels/softmax.cu, kernels/norm.cu), on the host: every block of a
// grid simulated round by round, and what the kernels rely on checked.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "kiln/device/split_rows.hpp"

namespace {

// What a grid of `grid` blocks does over `rows` rows of `row_slices` slices, "" where it is
// what the kernels rely on: each slice read once and written once, by the same block a
// round later; a block stops once it has written its last slice; and no block waits for a
// slice read in a later round. (A block publishes the sums of what it reads before it
// waits for those of the row it writes, in the same round, so with every block resident
// a write in round t waits on nothing read after round t.)
std::string violation(long long rows, int row_slices, long long grid) {
  const long long total = rows * row_slices;
  std::vector<long long> read_round(std::size_t(total), -1), reader(std::size_t(total), -1);
  std::vector<long long> write_round(std::size_t(total), -1), writer(std::size_t(total), -1);
  for (long long b = 0; b < grid; ++b) {
    for (long long t = 0;; ++t) {
      if (t > total + 2) return "block " + std::to_string(b) + " never stops";
      const kiln::SplitRound r = kiln::split_round(t, grid, b, total);
      if (r.parity != int(t % 2)) return "round " + std::to_string(t) + " has the wrong parity";
      if (r.done) {
        if (r.reads) return "block " + std::to_string(b) + " stops with a slice to read";
        break;
      }
      if (r.reads) {
        const auto s = std::size_t(r.read);
        if (read_round[s] >= 0) return "slice " + std::to_string(r.read) + " read twice";
        read_round[s] = t;
        reader[s] = b;
      }
      if (r.writes) {
        const auto o = std::size_t(r.written);
        if (write_round[o] >= 0) return "slice " + std::to_string(r.written) + " written twice";
        write_round[o] = t;
        writer[o] = b;
      }
    }
  }
  for (long long s = 0; s < total; ++s) {
    const auto i = std::size_t(s);
    const std::string slice = "slice " + std::to_string(s);
    if (read_round[i] < 0 || write_round[i] < 0) return slice + " not read and written";
    if (writer[i] != reader[i]) return slice + " written by a block that did not read it";
    if (write_round[i] != read_round[i] + 1)
      return slice + " not written a round after it was read";
    const long long first = s / row_slices * row_slices;
    for (long long q = first; q < first + row_slices; ++q) {
      if (read_round[std::size_t(q)] > write_round[i]) {
        return slice + " waits in round " + std::to_string(write_round[i]) + " for slice " +
               std::to_string(q) + ", read in round " + std::to_string(read_round[std::size_t(q)]);
      }
    }
  }
  return "";
}

}  // namespace

TEST_CASE("split rows: a grid of at least a row's slices reads, publishes and writes each once") {
  for (int row_slices : {1, 2, 3, 7, 64, 128, 256}) {
    for (long long grid : {1LL, 2LL, 63LL, 64LL, 65LL, 127LL, 132LL, 264LL, 528LL}) {
      if (grid < row_slices) continue;  // what kernels trap on (SplitRounds)
      for (long long rows : {1LL, 2LL, 3LL, 64LL, 1000LL}) {
        CAPTURE(row_slices);
        CAPTURE(grid);
        CAPTURE(rows);
        CHECK(violation(rows, row_slices, grid) == "");
      }
    }
  }
}

TEST_CASE("split rows: a grid of fewer blocks than a row's slices would wait on later rounds") {
  // The check can fail: a row spread over three rounds makes its first slice's writer
  // wait for a slice no block reads until the round after. (A grid one block short still
  // holds each row within two rounds; SplitRounds traps on it all the same.)
  CHECK(violation(4, 64, 21).find("waits in round") != std::string::npos);
  CHECK(violation(4, 3, 1).find("waits in round") != std::string::npos);
  CHECK(violation(1000, 256, 132).find("waits in round") != std::string::npos);
  CHECK(violation(4, 64, 63) == "");
  // A block's rounds: it reads slices b, b + grid, ... and stops the round after its last.
  const kiln::SplitRound first = kiln::split_round(0, 132, 5, 1000);
  CHECK(first.read == 5);
  CHECK(first.reads);
  CHECK_FALSE(first.writes);
  const kiln::SplitRound last = kiln::split_round(8, 132, 5, 1000);  // 5 + 7 * 132 = 929
  CHECK_FALSE(last.reads);
  CHECK(last.written == 929);
  CHECK_FALSE(last.done);
  CHECK(kiln::split_round(9, 132, 5, 1000).done);
  static_assert(kiln::split_round(1, 4, 2, 16).read == 6, "host code, constexpr");
}

TEST_CASE("split rows: on a grid of whole multiples of a row's slices a block keeps its columns") {
  // (The norms' backward: each block sums dweight and dbias over its own columns and
  // leaves them as partial row block / row_slices, which holds every row it takes.)
  for (int row_slices : {1, 3, 8, 128, 256}) {
    for (long long groups : {1LL, 2LL, 4LL}) {
      const long long grid = groups * row_slices;
      for (long long rows : {1LL, 3LL, 64LL, 65LL}) {
        CAPTURE(row_slices);
        CAPTURE(grid);
        CAPTURE(rows);
        CHECK(violation(rows, row_slices, grid) == "");
        const long long total = rows * row_slices;
        std::vector<long long> rows_seen(std::size_t(rows), 0);
        for (long long b = 0; b < grid; ++b) {
          for (long long t = 0;; ++t) {
            const kiln::SplitRound r = kiln::split_round(t, grid, b, total);
            if (r.done) break;
            if (!r.reads) continue;
            CHECK(r.read % row_slices == b % row_slices);           // the same columns every round
            CHECK(r.read / row_slices % groups == b / row_slices);  // rows of its group
            ++rows_seen[std::size_t(r.read / row_slices)];
          }
        }
        for (long long n : rows_seen) CHECK(n == row_slices);  // every slice of every row
      }
    }
  }
  // Not so on a grid that is no multiple: 264 blocks over rows of 128 slices.
  CHECK(kiln::split_round(1, 264, 0, 64 * 128).read % 128 != 0);
}
