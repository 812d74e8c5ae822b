#pragma once
// cuBLAS for the GPU tests of the profiler, loaded at run time (kiln never links it): only
// the entry points the tests call. open() gives nullopt (and why) where it is missing.
#include <cstdint>
#include <optional>
#include <string>

#include "kiln/detail/dynamic_library.hpp"
#include "kiln/error.hpp"

namespace kiln::test {

struct Cublas {
  detail::DynamicLibrary lib;
  int (*create)(void**) = nullptr;
  int (*destroy)(void*) = nullptr;
  int (*sgemm)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
               const float*, float*, int) = nullptr;
  /// f16 in and out (16-bit patterns), on the tensor cores.
  int (*hgemm)(void*, int, int, int, int, int, const std::uint16_t*, const std::uint16_t*, int,
               const std::uint16_t*, int, const std::uint16_t*, std::uint16_t*, int) = nullptr;

  static std::optional<Cublas> open(std::string& why) {
    Cublas b;
    try {
      b.lib = detail::DynamicLibrary::open_first(
          "cuBLAS", {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13", "libcublas.so.12"},
          nullptr);
      b.create = b.lib.get<decltype(b.create)>("cublasCreate_v2");
      b.destroy = b.lib.get<decltype(b.destroy)>("cublasDestroy_v2");
      b.sgemm = b.lib.get<decltype(b.sgemm)>("cublasSgemm_v2");
      b.hgemm = b.lib.get<decltype(b.hgemm)>("cublasHgemm");
    } catch (const Error& e) {
      why = e.what();
      return std::nullopt;
    }
    return b;
  }
};

}  // namespace kiln::test
