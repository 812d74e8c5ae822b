#pragma once
/// Sources compiled into the application (see kiln_embed_sources in cmake/KilnEmbed.cmake),
/// so that it can ship as one binary with no kernel or header files beside it.

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "../error.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace kiln::jit {

/// One embedded file: its name relative to its root ("softmax.cu", "kiln/device.hpp").
struct EmbeddedFile {
  const char* name;
  const char* data;
  std::size_t size;
};

/// The process-wide registry of embedded files.
class EmbeddedSources {
 public:
  /// Registers files (a generated header calls this during static initialization).
  /// A name registered twice keeps its first contents.
  static bool add(const EmbeddedFile* files, std::size_t count) {
    auto& r = instance();
    std::lock_guard lock(r.mutex_);
    for (std::size_t i = 0; i < count; ++i) {
      r.files_.emplace(files[i].name, std::string_view(files[i].data, files[i].size));
    }
    r.mirror_.clear();
    return true;
  }
  /// The contents of an embedded file, or nullptr.
  static const std::string_view* find(const std::string& name) {
    auto& r = instance();
    std::lock_guard lock(r.mutex_);
    auto it = r.files_.find(name);
    return it == r.files_.end() ? nullptr : &it->second;
  }
  /// A directory holding every embedded file at its name (so that #include between them
  /// works as it does in the source tree), written once per process under $TMPDIR (or
  /// /tmp) in a private directory named by a hash of the contents; empty if none are
  /// embedded.
  static std::filesystem::path mirror_dir() {
    auto& r = instance();
    std::lock_guard lock(r.mutex_);
    if (r.files_.empty()) return {};
    if (!r.mirror_.empty()) return r.mirror_;
    XXH3_state_t hash_state;
    XXH3_64bits_reset(&hash_state);
    for (const auto& [name, data] : r.files_) {
      XXH3_64bits_update(&hash_state, name.data(), name.size() + 1);
      XXH3_64bits_update(&hash_state, data.data(), data.size());
    }
    std::uint64_t h = XXH3_64bits_digest(&hash_state);
    const char* tmp = std::getenv("TMPDIR");
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    namespace fs = std::filesystem;
    fs::path dir = fs::path(tmp && *tmp ? tmp : "/tmp") /
                   ("kiln-embedded-" + std::to_string(::getuid()) + "-" + hex);
    std::error_code ec;
    ::mkdir(dir.c_str(), 0700);
    // The name is predictable: use the directory only if it is ours, private and real,
    // since what is in it gets compiled and run on the GPU.
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() ||
        (st.st_mode & 077) != 0) {
      throw Error("kiln: " + dir.string() +
                  " exists but is not a private directory of this user; remove it or set "
                  "TMPDIR to a private directory");
    }
    for (const auto& [name, data] : r.files_) {
      fs::path file = dir / name;
      fs::create_directories(file.parent_path(), ec);
      fs::path temp = file;
      temp += ".tmp" + std::to_string(::getpid());
      {
        std::ofstream out(temp, std::ios::binary | std::ios::trunc);
        out.write(data.data(), std::streamsize(data.size()));
        if (!out) throw Error("kiln: cannot write embedded source " + name + " to " + dir.string());
      }
      fs::rename(temp, file, ec);
      if (ec) throw Error("kiln: cannot write embedded source " + name + ": " + ec.message());
    }
    r.mirror_ = dir;
    return dir;
  }

 private:
  static EmbeddedSources& instance() {
    static EmbeddedSources r;
    return r;
  }
  std::mutex mutex_;
  std::map<std::string, std::string_view> files_;
  std::filesystem::path mirror_;
};

}  // namespace kiln::jit
