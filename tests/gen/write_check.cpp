// Writes full_spec()'s header (spec.hpp) and the kernel that checks it (gen_check.cu)
// into the directory given as the only argument, for the gfx942 HIP compile.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "full_spec.hpp"

namespace {
bool write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) std::fprintf(stderr, "gen_write_check: cannot write %s\n", path.c_str());
  return static_cast<bool>(out);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gen_write_check <output directory>\n");
    return 2;
  }
  std::filesystem::path dir(argv[1]);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  try {
    bool ok = write(dir / "spec.hpp", gen_test::full_spec().header()) &&
              write(dir / "gen_check.cu", gen_test::check_kernel());
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_write_check: %s\n", e.what());
    return 1;
  }
}
