// The include layering of include/kiln (tests/layering/include_layers.hpp): the check finds
// each kind of bad edge in a small made-up tree, and finds none in kiln's own headers.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "../support.hpp"
#include "include_layers.hpp"

using kiln_test::TempDir;
using kiln_test::layering::check_include_layers;
using kiln_test::layering::Violation;

namespace {

std::string describe(const std::vector<Violation>& violations) {
  std::string out;
  for (const auto& v : violations) out += "\n  " + v.from + " -> " + v.to + ": " + v.why;
  return out;
}

bool has(const std::vector<Violation>& violations, const std::string& from, const std::string& to,
         const std::string& why_starts) {
  for (const auto& v : violations) {
    if (v.from == from && v.to == to && v.why.rfind(why_starts, 0) == 0) return true;
  }
  return false;
}

/// A small tree with the shape of include/kiln, every edge in it allowed.
void write_clean_tree(TempDir& dir) {
  dir.write("include/kiln/error.hpp", "#pragma once\n");
  dir.write("include/kiln/detail/posix_file.hpp", "#include \"../error.hpp\"\n");
  dir.write("include/kiln/detail/portability.hpp", "#pragma once\n");
  dir.write("include/kiln/dims/dim.hpp", "#include \"../detail/portability.hpp\"\n");
  dir.write("include/kiln/device/thread.hpp", "#include \"../detail/portability.hpp\"\n");
  dir.write("include/kiln/gen/spec.hpp", "#include \"../dims/dim.hpp\"\n");
  dir.write("include/kiln/jit/detail/cache.hpp", "#include \"../../detail/posix_file.hpp\"\n");
  dir.write("include/kiln/jit/cache.hpp", "#include \"detail/cache.hpp\"\n");
  dir.write("include/kiln/rt/module.hpp", "#include \"../jit/cache.hpp\"\n#include <vector>\n");
  dir.write("include/kiln/ops/softmax.hpp",
            "#include \"kiln/rt/module.hpp\"\n#include <kiln/gen/spec.hpp>\n");
  dir.write("include/kiln/kiln.hpp", "#include \"ops/softmax.hpp\"\n#include \"rt/module.hpp\"\n");
}

}  // namespace

TEST_CASE("the layer check passes a tree whose edges all go down") {
  TempDir dir;
  write_clean_tree(dir);
  const auto violations = check_include_layers(dir.path() / "include" / "kiln");
  INFO(describe(violations));
  CHECK(violations.empty());
}

TEST_CASE("the layer check finds upward and detail edges") {
  TempDir dir;
  write_clean_tree(dir);
  dir.write("include/kiln/jit/target.hpp", "#include \"../rt/module.hpp\"\n");         // up
  dir.write("include/kiln/dims/meta.hpp", "  #  include \"../device/thread.hpp\"\n");  // up
  dir.write("include/kiln/ops/norm.hpp", "#include \"../jit/detail/cache.hpp\"\n");    // detail
  dir.write("include/kiln/detail/bad.hpp", "#include <kiln/gen/spec.hpp>\n");  // up from base
  dir.write("include/kiln/gen/all.hpp", "#include \"../kiln.hpp\"\n");         // an umbrella
  dir.write("include/kiln/extra/x.hpp", "#pragma once\n");  // a folder not in the order
  const auto violations = check_include_layers(dir.path() / "include" / "kiln");
  INFO(describe(violations));
  CHECK(has(violations, "jit/target.hpp", "rt/module.hpp", "upward"));
  CHECK(has(violations, "dims/meta.hpp", "device/thread.hpp", "upward: dims is below device"));
  CHECK(has(violations, "ops/norm.hpp", "jit/detail/cache.hpp", "into the detail/ of jit"));
  CHECK(has(violations, "detail/bad.hpp", "gen/spec.hpp", "upward"));
  CHECK(has(violations, "gen/all.hpp", "kiln.hpp", "upward"));
  CHECK(has(violations, "extra/x.hpp", "", "folder extra"));
  CHECK(violations.size() == 6);
}

TEST_CASE("kiln's own headers include only their own layer and the layers below") {
  const auto violations = check_include_layers(KILN_SOURCE_DIR "/include/kiln");
  INFO(describe(violations));
  CHECK(violations.empty());
}
