#pragma once
/// kiln's exceptions. Every error kiln throws derives from kiln::Error, and its
/// message says what failed, with what, and what to do about it.

#include <stdexcept>
#include <string>

namespace kiln {

/// The base of every exception kiln throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A shared library kiln needs at run time (libnvrtc, libcuda, ...) could not be loaded,
/// or lacks a symbol kiln needs.
class LibraryError : public Error {
 public:
  using Error::Error;
};

/// A kernel failed to compile; the message holds the compiler's log with context.
class CompileError : public Error {
 public:
  CompileError(std::string message, std::string log)
      : Error(std::move(message)), log_(std::move(log)) {}
  /// The compiler's raw log.
  const std::string& log() const noexcept { return log_; }

 private:
  std::string log_;
};

}  // namespace kiln
