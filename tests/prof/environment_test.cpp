// kiln/prof/environment.hpp: KILN_PROFILE is checked when the program starts, and a name
// that cannot be written is replaced by one that can, with one warning line saying where.
#include <doctest/doctest.h>

#include <string>

#include "../support.hpp"
#include "kiln/prof/environment.hpp"

using kiln::prof::detail::checked_profile_path;
using kiln_test::count_of;
using kiln_test::StderrCapture;
using kiln_test::TempDir;

TEST_CASE("KILN_PROFILE with an extension kiln cannot write gets .json added, with a warning") {
  TempDir tmp;
  const std::string asked = (tmp.path() / "profile.txt").string();
  StderrCapture err;
  CHECK(checked_profile_path(asked) == asked + ".json");
  const std::string text = err.text();
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find("KILN_PROFILE=" + asked) != std::string::npos);
  CHECK(text.find(asked + ".json") != std::string::npos);
}

TEST_CASE("KILN_PROFILE in a directory kiln cannot write to falls back to the temp directory") {
  TempDir tmp;
  const std::string asked = (tmp.path() / "missing" / "profile.csv").string();
  StderrCapture err;
  const std::string path = checked_profile_path(asked);
  const std::string text = err.text();
  CHECK(path != asked);
  CHECK(path.find("kiln-profile-") != std::string::npos);
  CHECK(path.ends_with(".csv"));
  CHECK(count_of(text, "kiln:") == 1);
  CHECK(text.find("will be written to " + path) != std::string::npos);
}

TEST_CASE("a KILN_PROFILE that can be written is kept, without a word") {
  TempDir tmp;
  for (const char* name : {"p.json", "p.json.gz", "p.csv", "p.svg"}) {
    const std::string asked = (tmp.path() / name).string();
    StderrCapture err;
    CHECK(checked_profile_path(asked) == asked);
    CHECK(err.text().empty());
  }
}
