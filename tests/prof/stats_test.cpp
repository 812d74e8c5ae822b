// kiln/prof/stats.hpp: summaries of known samples and each of the stopping rule's reasons.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kiln/prof/stats.hpp"

using namespace kiln;
using namespace kiln::prof;

namespace {
// The documented noise: sqrt(pi/2) * 1.4826 * MAD / sqrt(n) / |median|.
double expected_noise(double mad, double n, double median) {
  return std::sqrt(std::acos(-1.0) / 2) * 1.4826 * mad / std::sqrt(n) / std::abs(median);
}
}  // namespace

TEST_CASE("summarize: an odd count with an outlier, by hand") {
  const std::vector<double> v{3, 100, 1, 4, 2};  // sorted: 1 2 3 4 100
  const SampleStats s = summarize(v);
  CHECK(s.count == 5);
  CHECK(s.median == 3);
  CHECK(s.mean == doctest::Approx(22));
  // deviations from 22: -21 -20 -19 -18 78; squares sum to 7610; / 4 = 1902.5
  CHECK(s.stdev == doctest::Approx(std::sqrt(1902.5)));
  CHECK(s.min == 1);
  CHECK(s.max == 100);
  CHECK(s.p10 == doctest::Approx(1.4));   // h = 0.4: 1 + 0.4 * (2 - 1)
  CHECK(s.p90 == doctest::Approx(61.6));  // h = 3.6: 4 + 0.6 * (100 - 4)
  CHECK(s.mad == 1);                      // |x - 3|: 0 1 1 2 97
  CHECK(s.relative_noise == doctest::Approx(expected_noise(1, 5, 3)).epsilon(1e-4));
}

TEST_CASE("summarize: an even count, unsorted") {
  const std::vector<double> v{4, 1, 3, 2};
  const SampleStats s = summarize(v);
  CHECK(s.count == 4);
  CHECK(s.median == doctest::Approx(2.5));  // the mean of the middle two
  CHECK(s.mean == doctest::Approx(2.5));
  CHECK(s.stdev == doctest::Approx(std::sqrt(5.0 / 3.0)));
  CHECK(s.p10 == doctest::Approx(1.3));  // h = 0.3
  CHECK(s.p90 == doctest::Approx(3.7));  // h = 2.7
  CHECK(s.mad == doctest::Approx(1.0));  // |x - 2.5|: 0.5 0.5 1.5 1.5
  CHECK(s.relative_noise == doctest::Approx(expected_noise(1, 4, 2.5)).epsilon(1e-4));
}

TEST_CASE("summarize: one sample, equal samples, and a median of zero") {
  const std::vector<double> one{7};
  SampleStats s = summarize(one);
  CHECK(s.count == 1);
  CHECK(s.median == 7);
  CHECK(s.mean == 7);
  CHECK(s.stdev == 0);
  CHECK(s.p10 == 7);
  CHECK(s.p90 == 7);
  CHECK(s.mad == 0);
  CHECK(s.relative_noise == 0);

  const std::vector<double> mostly_equal{5, 5, 5, 9, 1};
  s = summarize(mostly_equal);
  CHECK(s.mad == 0);
  CHECK(s.relative_noise == 0);  // the median is pinned down exactly
  CHECK(s.stdev > 0);

  const std::vector<double> around_zero{-1, 0, 1};
  s = summarize(around_zero);
  CHECK(s.median == 0);
  CHECK(std::isinf(s.relative_noise));
}

TEST_CASE("summarize: empty and non-finite samples throw kiln::Error") {
  CHECK_THROWS_WITH_AS(summarize(std::vector<double>{}), doctest::Contains("at least one"), Error);
  const std::vector<double> nan{1, std::numeric_limits<double>::quiet_NaN()};
  CHECK_THROWS_WITH_AS(summarize(nan), doctest::Contains("index 1"), Error);
  const std::vector<double> inf{std::numeric_limits<double>::infinity()};
  CHECK_THROWS_AS(summarize(inf), Error);
}

TEST_CASE("should_stop: each reason, in order") {
  StopRule rule;  // 0.5%, 10 .. 10000 samples, 5 s
  SampleStats s;
  s.median = 100;

  SUBCASE("too few samples: never, whatever the time or noise") {
    s.count = 9;
    s.relative_noise = 0;
    CHECK_FALSE(should_stop(s, 100.0, rule));
    CHECK(stop_reason(s, 100.0, rule).empty());
  }
  SUBCASE("quiet enough") {
    s.count = 10;
    s.relative_noise = 0.003;
    CHECK(should_stop(s, 0.1, rule));
    CHECK(stop_reason(s, 0.1, rule) == "noise 0.3% < 0.5%");
  }
  SUBCASE("noisy, within budget: go on") {
    s.count = 500;
    s.relative_noise = 0.02;
    CHECK_FALSE(should_stop(s, 4.9, rule));
  }
  SUBCASE("noisy, out of time") {
    s.count = 500;
    s.relative_noise = 0.02;
    CHECK(should_stop(s, 5.0, rule));
    CHECK(stop_reason(s, 5.0, rule) == "time budget 5 s");
  }
  SUBCASE("quiet and out of time: the noise is the reason") {
    s.count = 500;
    s.relative_noise = 0.001;
    CHECK(stop_reason(s, 9.0, rule).rfind("noise", 0) == 0);
  }
  SUBCASE("max samples, even below min_samples") {
    rule.max_samples = 5;
    rule.min_samples = 5;
    s.count = 5;
    s.relative_noise = 0.5;
    CHECK(should_stop(s, 0.0, rule));
    CHECK(stop_reason(s, 0.0, rule) == "max samples 5");
  }
  SUBCASE("max_relative_noise 0 turns the noise rule off") {
    rule.max_relative_noise = 0;
    s.count = 100;
    s.relative_noise = 0;
    CHECK_FALSE(should_stop(s, 1.0, rule));
    CHECK(stop_reason(s, 6.0, rule) == "time budget 5 s");
  }
}

TEST_CASE("validate(StopRule) names the field") {
  StopRule r;
  CHECK_NOTHROW(validate(r));
  r.min_samples = 20;
  r.max_samples = 10;
  CHECK_THROWS_WITH_AS(validate(r), doctest::Contains("min_samples"), Error);
  r = {};
  r.max_seconds = 0;
  CHECK_THROWS_WITH_AS(validate(r), doctest::Contains("max_seconds"), Error);
  r = {};
  r.max_relative_noise = -1;
  CHECK_THROWS_WITH_AS(validate(r), doctest::Contains("max_relative_noise"), Error);
  r = {};
  r.max_samples = 0;
  r.min_samples = 0;
  CHECK_THROWS_WITH_AS(validate(r), doctest::Contains("max_samples"), Error);
}
