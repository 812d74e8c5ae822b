// kiln/detail/enum_names.hpp, and the to_string()/parse functions built on it.
#include <doctest/doctest.h>

#include <string>

#include "kiln/detail/enum_names.hpp"
#include "kiln/factory/features.hpp"
#include "kiln/factory/tune_policy.hpp"
#include "kiln/factory/tuning_record.hpp"
#include "kiln/prof/profiler.hpp"
#include "kiln/rt/driver_api.hpp"

namespace {
enum class Color { red, green, blue };
constexpr auto color_names = kiln::detail::enum_names<Color>(
    {{Color::red, "red"}, {Color::green, "green"}, {Color::blue, "blue"}});
}  // namespace

TEST_CASE("an enum's names go both ways, at compile time too") {
  static_assert(std::string_view(color_names.name(Color::green)) == "green");
  static_assert(color_names.parse("blue") == Color::blue);
  static_assert(!color_names.parse("Blue").has_value());
  CHECK(std::string(color_names.name(static_cast<Color>(7))) == "?");
  CHECK(color_names.choices() == "red, green or blue");
  CHECK(color_names.choices(", ") == "red, green, blue");
}

TEST_CASE("kiln's enums print through the one mechanism, and their old names still work") {
  using namespace kiln;
  CHECK(std::string(factory::to_string(factory::TunePolicy::model)) == "model");
  CHECK(std::string(factory::to_string(factory::Selection::database)) == "database");
  CHECK(std::string(factory::to_string(factory::CandidateStatus::launch_error)) == "launch_error");
  CHECK(std::string(rt::to_string(rt::Platform::hip)) == "HIP");
  CHECK(std::string(prof::to_string(prof::Backend::automatic)) == "auto");
  CHECK(std::string(prof::to_string(prof::Backend::cupti)) == "cupti");
  CHECK(factory::parse_tune_policy("full", "KILN_TUNE") == factory::TunePolicy::full);
  CHECK_THROWS_WITH_AS(factory::parse_tune_policy("fast", "KILN_TUNE"),
                       doctest::Contains("use off, model or full"), Error);
}

TEST_CASE("every name of an enum table reads back as its value") {
  using namespace kiln;
  for (const auto& e : factory::tune_policy_names.entries) {
    CHECK(factory::tune_policy_names.parse(e.name) == e.value);
  }
  for (const auto& e : factory::candidate_status_names.entries) {
    nlohmann::json j = e.value;
    CHECK(j.get<factory::CandidateStatus>() == e.value);
  }
  CHECK_THROWS_AS(nlohmann::json("finished").get<factory::CandidateStatus>(), Error);
  for (const auto& e : prof::backend_names.entries) {
    CHECK(prof::backend_names.parse(prof::to_string(e.value)) == e.value);
  }
}
