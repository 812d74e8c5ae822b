#pragma once
// What the benchmarks that time cuDNN (softmax, conv, norm) share: its status codes as
// kiln::Error. Only compiled where cuDNN was found (KILN_BENCH_CUDNN).
#include <cudnn.h>

#include <string>

#include "kiln/error.hpp"

namespace bench {

/// Throws kiln::Error naming `what` and cuDNN's message unless `s` is success.
inline void cudnn_check(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS) {
    throw kiln::Error(std::string("cuDNN: ") + what + ": " + cudnnGetErrorString(s));
  }
}

}  // namespace bench
