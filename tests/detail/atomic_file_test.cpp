// kiln/detail/atomic_file.hpp: the one way kiln replaces a file that others may read.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../support.hpp"
#include "kiln/detail/atomic_file.hpp"

namespace fs = std::filesystem;
using kiln_test::TempDir;

namespace {
std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
int temp_files(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    n += e.path().filename().string().ends_with(".tmp") ? 1 : 0;
  }
  return n;
}
}  // namespace

TEST_CASE(
    "replace_file writes its parts in order, with the mode asked for, and no temp file stays") {
  TempDir tmp;
  const std::string file = (tmp.path() / "db.json").string();
  struct ::stat st {};
  CHECK(kiln::detail::replace_file(AT_FDCWD, file, {"old"}, {.mode = 0600, .fsync = false}) == "");
  CHECK(kiln::detail::replace_file(AT_FDCWD, file, {"new ", "text"}, {.mode = 0600, .fsync = true},
                                   &st) == "");
  CHECK(read(file) == "new text");
  CHECK(st.st_size == 8);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(temp_files(tmp.path()) == 0);
}

TEST_CASE("temp names sit beside the file, hidden and ending in .tmp") {
  const std::string t = kiln::detail::temp_name_for("ab/0123.bin");
  CHECK(t.rfind("ab/.0123.bin.", 0) == 0);
  CHECK(t.ends_with(".tmp"));
  CHECK(kiln::detail::temp_name_for("x") != kiln::detail::temp_name_for("x"));
}

TEST_CASE("a failed replace leaves the old file and no temp file") {
  TempDir tmp;
  const fs::path file = tmp.path() / "sub" / "db.json";
  fs::create_directories(file.parent_path());
  CHECK(kiln::detail::replace_file(AT_FDCWD, file.string(), {"old"}, {}) == "");
  // A directory in the way of the rename: the write succeeds, the rename fails.
  const fs::path blocked = tmp.path() / "sub" / "dir";
  fs::create_directories(blocked / "inside");
  const std::string problem = kiln::detail::replace_file(AT_FDCWD, blocked.string(), {"new"}, {});
  CHECK(problem.rfind("rename ", 0) == 0);
  CHECK(fs::is_directory(blocked / "inside"));
  CHECK(read(file) == "old");
  CHECK(temp_files(file.parent_path()) == 0);
  // No directory at all: the temp file cannot be created.
  CHECK(kiln::detail::replace_file(AT_FDCWD, (tmp.path() / "none" / "f").string(), {"x"}, {})
            .rfind("create ", 0) == 0);
}
