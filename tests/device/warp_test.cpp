// Warp reductions (kiln/device/warp.hpp) on the host: butterfly_reduce, the algorithm
// warp_reduce runs on the GPU, driven with a simulated warp whose lanes run in lock step.
// A value of the simulated warp holds every lane's value; the shuffle permutes them.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <random>

#include "kiln/device/warp.hpp"

namespace {

template <int Width>
struct SimWarp {
  std::array<long long, Width> lane{};
};

// op applied lane by lane, as every lane of a real warp applies it to its own values.
template <class Op>
struct Lanewise {
  Op op;
  template <int Width>
  SimWarp<Width> operator()(const SimWarp<Width>& a, const SimWarp<Width>& b) const {
    SimWarp<Width> r;
    for (int l = 0; l < Width; ++l) r.lane[size_t(l)] = op(a.lane[size_t(l)], b.lane[size_t(l)]);
    return r;
  }
};

// Lane l receives the value of lane l ^ mask, as __shfl_xor_sync / ds_bpermute do.
struct SimShuffleXor {
  template <int Width>
  SimWarp<Width> operator()(const SimWarp<Width>& v, int mask) const {
    SimWarp<Width> r;
    for (int l = 0; l < Width; ++l) r.lane[size_t(l)] = v.lane[size_t(l ^ mask)];
    return r;
  }
};

// Every lane of every group of Lanes lanes must hold op over its group.
template <int Width, int Lanes, class Op, class Reference>
void check_reduction(Op op, Reference reference, std::mt19937& rng) {
  SimWarp<Width> in;
  std::uniform_int_distribution<long long> value(-1000, 1000);
  for (auto& x : in.lane) x = value(rng);
  const auto out = kiln::butterfly_reduce<Lanes>(in, Lanewise<Op>{op}, SimShuffleXor{});
  for (int l = 0; l < Width; ++l) {
    const int first = l / Lanes * Lanes;
    const auto begin = in.lane.begin() + first;
    CAPTURE(Width);
    CAPTURE(Lanes);
    CAPTURE(l);
    CHECK(out.lane[size_t(l)] == reference(begin, begin + Lanes));
  }
}

template <int Width, int Lanes>
void check_all_ops(std::mt19937& rng) {
  using It = typename std::array<long long, Width>::const_iterator;
  check_reduction<Width, Lanes>(
      kiln::Plus{},
      [](It b, It e) {
        long long s = 0;
        for (; b != e; ++b) s += *b;
        return s;
      },
      rng);
  check_reduction<Width, Lanes>(
      kiln::Maximum{}, [](It b, It e) { return *std::max_element(b, e); }, rng);
  check_reduction<Width, Lanes>(
      kiln::Minimum{}, [](It b, It e) { return *std::min_element(b, e); }, rng);
}

}  // namespace

TEST_CASE("warp: the operations") {
  static_assert(kiln::Plus{}(2, 3) == 5);
  static_assert(kiln::Maximum{}(2, 3) == 3 && kiln::Maximum{}(3, 2) == 3);
  static_assert(kiln::Minimum{}(2, 3) == 2 && kiln::Minimum{}(3, 2) == 2);
  CHECK(kiln::Maximum{}(-1.5f, -2.5f) == -1.5f);
  CHECK(kiln::Minimum{}(-1.5f, -2.5f) == -2.5f);
}

TEST_CASE("warp: a butterfly gives every lane its group's result, 32-lane warps") {
  std::mt19937 rng(11);
  check_all_ops<32, 1>(rng);
  check_all_ops<32, 2>(rng);
  check_all_ops<32, 8>(rng);
  check_all_ops<32, 16>(rng);
  check_all_ops<32, 32>(rng);
}

TEST_CASE("warp: a butterfly gives every lane its group's result, 64-lane wavefronts") {
  std::mt19937 rng(12);
  check_all_ops<64, 4>(rng);
  check_all_ops<64, 32>(rng);
  check_all_ops<64, 64>(rng);
}

TEST_CASE("warp: a butterfly takes log2(Lanes) steps, widest mask first") {
  int masks[8] = {};
  int steps = 0;
  auto recording = [&](int v, int mask) {
    masks[steps++] = mask;
    return v;
  };
  kiln::butterfly_reduce<16>(1, kiln::Plus{}, recording);
  REQUIRE(steps == 4);
  CHECK(masks[0] == 8);
  CHECK(masks[1] == 4);
  CHECK(masks[2] == 2);
  CHECK(masks[3] == 1);
}
