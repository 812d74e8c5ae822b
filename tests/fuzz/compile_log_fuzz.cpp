// Fuzz target: the compile-log parser (include/kiln/jit/compile_error.hpp), which reads
// whatever NVRTC, hipRTC or clang print, and the CompileError message built from it.
//
// Input: a compiler log, optionally followed by a NUL byte and the program's source (the
// log is the source too where there is none). A first byte of 0xF0 or more repeats the rest
// 2048 to 32768 times, so that short inputs reach the very long lines of real logs
// (template names); the result is cut at 1 MiB.
//
// Properties:
// - parse_compiler_log() never throws or crashes, whatever the line lengths;
// - each diagnostic has a file, a known severity, and a line that is 0 (unknown) or one a
//   file can have with lines after it (below 2^31 - 17);
// - on lines short enough for std::regex, it finds what the two documented patterns find;
// - describe_compile_failure() never throws and always ends with the whole log.

#include <climits>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "kiln/jit/compile_error.hpp"

namespace {

constexpr std::size_t max_log = std::size_t(1) << 20;
constexpr std::size_t regex_line_limit = 512;  // libstdc++'s regex recurses per character

// The documented patterns, matched with std::regex: the reference on short lines.
std::vector<kiln::jit::Diagnostic> reference_parse(const std::string& log) {
  static const std::regex nvrtc_style(
      R"(^(.+)\((\d+)\): (catastrophic error|error|warning|remark|note): (.*)$)");
  static const std::regex clang_style(
      R"(^(.+?):(\d+):\d+: (fatal error|error|warning|note): (.*)$)");
  std::vector<kiln::jit::Diagnostic> out;
  std::istringstream in(log);
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, m, nvrtc_style) || std::regex_match(line, m, clang_style)) {
      const std::string digits = m[2].str();
      const std::size_t first = digits.find_first_not_of('0');
      const std::string value = first == digits.npos ? "0" : digits.substr(first);
      long long n = value.size() > 12 ? LLONG_MAX : std::stoll(value);
      const int line_no = n > 0 && n < INT_MAX - 16 ? int(n) : 0;
      out.push_back({m[1].str(), line_no, m[3].str(), m[4].str()});
    }
  }
  return out;
}

bool lines_shorter_than(const std::string& text, std::size_t limit) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == text.npos) end = text.size();
    if (end - start >= limit) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && static_cast<unsigned char>(input[0]) >= 0xF0) {
    const std::size_t times = std::size_t(static_cast<unsigned char>(input[0]) - 0xEF) * 2048;
    const std::string unit = input.substr(1);
    input.clear();
    for (std::size_t i = 0; i < times && input.size() < max_log && !unit.empty(); ++i) {
      input += unit;
    }
    input.resize(std::min(input.size(), max_log));
  }
  const std::size_t nul = input.find('\0');
  const std::string log = input.substr(0, nul);
  const std::string source = nul == input.npos ? log : input.substr(nul + 1);
  const std::string name = "kernel.cu";
  const std::vector<kiln::jit::NamedSource> headers = {{"spec.h", source}};

  try {
    const std::vector<kiln::jit::Diagnostic> found = kiln::jit::parse_compiler_log(log);
    bool reads_disk = false;
    for (const auto& d : found) {
      KILN_FUZZ_CHECK(!d.file.empty(), "a diagnostic names a file");
      KILN_FUZZ_CHECK(d.line == 0 || (d.line > 0 && d.line < INT_MAX - 16),
                      "a diagnostic's line is unknown (0) or one a file can have");
      static const char* const severities[] = {
          "catastrophic error", "fatal error", "error", "warning", "remark", "note"};
      bool known = false;
      for (const char* s : severities) known = known || d.severity == s;
      KILN_FUZZ_CHECK(known, "a diagnostic's severity is one the patterns name");
      // describe_compile_failure() shows lines of files other than the program's own from
      // disk: keep the fuzzer off the machine's files (a /dev/zero would never end).
      if (d.file != name && d.file != "spec.h") {
        std::error_code ec;
        reads_disk = reads_disk || d.file.find('\0') != d.file.npos ||
                     std::filesystem::symlink_status(d.file, ec).type() !=
                         std::filesystem::file_type::not_found;
      }
    }
    if (lines_shorter_than(log, regex_line_limit)) {
      const std::vector<kiln::jit::Diagnostic> expected = reference_parse(log);
      KILN_FUZZ_CHECK(found.size() == expected.size(), "the parser finds what the patterns find");
      for (std::size_t i = 0; i < found.size(); ++i) {
        KILN_FUZZ_CHECK(found[i].file == expected[i].file && found[i].line == expected[i].line &&
                            found[i].severity == expected[i].severity &&
                            found[i].message == expected[i].message,
                        "each diagnostic is the one the patterns find");
      }
    }
    if (!reads_disk) {
      const std::string message = kiln::jit::describe_compile_failure(
          "NVRTC", name, source, headers, {"--gpu-architecture=sm_90", "-DKILN"}, log,
          "NVRTC_ERROR_COMPILATION");
      KILN_FUZZ_CHECK(message.starts_with("kiln: NVRTC could not compile kernel.cu for sm_90"),
                      "the message names the compiler, program and target");
      KILN_FUZZ_CHECK(message.ends_with("\nfull log:\n" + log), "the message keeps the whole log");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln fuzz: an exception escaped: %s\n", e.what());
    std::abort();
  }
  return 0;
}
