#pragma once
/// Opening shared libraries at run time, so that building against kiln needs only the
/// vendor headers and running needs only the libraries the machine has.

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"

namespace kiln::detail {

/// A shared library opened with dlopen, closed when the last handle goes.
class DynamicLibrary {
 public:
  DynamicLibrary() = default;
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;
  DynamicLibrary(DynamicLibrary&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), path_(std::move(other.path_)) {}
  DynamicLibrary& operator=(DynamicLibrary&& other) noexcept {
    if (this != &other) {
      close();
      handle_ = std::exchange(other.handle_, nullptr);
      path_ = std::move(other.path_);
    }
    return *this;
  }
  ~DynamicLibrary() { close(); }

  /// Opens the first loadable of `candidates` (names or paths), or, where the environment
  /// variable `env_var` is set, exactly the library it names. Throws LibraryError naming
  /// every candidate tried, why each failed, and the variable that overrides the search.
  static DynamicLibrary open_first(const std::string& what,
                                   const std::vector<std::string>& candidates,
                                   const char* env_var) {
    std::vector<std::string> tried;
    if (const char* forced = env_var ? std::getenv(env_var) : nullptr; forced && *forced) {
      tried.push_back(forced);
    } else {
      tried = candidates;
    }
    std::string reasons;
    for (const auto& name : tried) {
      // RTLD_NODELETE: the code stays mapped after the last handle goes (at exit), so what
      // the library left to run or to report then (its atexit handlers; a leak checker's
      // stack traces of its allocations) still finds it.
      if (void* h = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)) {
        DynamicLibrary lib;
        lib.handle_ = h;
        lib.path_ = name;
        return lib;
      }
      const char* why = ::dlerror();
      reasons += "\n  " + name + ": " + (why ? why : "not found");
    }
    std::string hint = env_var ? std::string("; set ") + env_var + " to the full path of " + what +
                                     (std::getenv(env_var) ? " (it is set, and failed)" : "")
                               : std::string();
    throw LibraryError("kiln could not load " + what + reasons + "\nInstall it" + hint +
                       ", or add its directory to LD_LIBRARY_PATH.");
  }

  /// The address of `symbol`, or nullptr when the library lacks it.
  void* find(const char* symbol) const { return handle_ ? ::dlsym(handle_, symbol) : nullptr; }

  /// The address of `symbol` as a function pointer of type F; throws if it is missing.
  template <class F>
  F get(const char* symbol) const {
    void* p = find(symbol);
    if (!p) {
      throw LibraryError("kiln: " + path_ + " has no symbol " + symbol +
                         " (is the library too old? kiln needs it)");
    }
    return reinterpret_cast<F>(p);
  }

  const std::string& path() const { return path_; }
  explicit operator bool() const { return handle_ != nullptr; }

 private:
  void close() {
    if (handle_) ::dlclose(handle_);
    handle_ = nullptr;
  }
  void* handle_ = nullptr;
  std::string path_;
};

}  // namespace kiln::detail
