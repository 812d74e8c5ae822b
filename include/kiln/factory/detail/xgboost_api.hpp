#pragma once
/// XGBoost's C API (Debian: libxgboost-dev), loaded at run time: the library that
/// KILN_XGBOOST_LIBRARY names, else libxgboost.so.0, libxgboost.so, libxgboost.so.2,
/// libxgboost.so.1. kiln neither includes xgboost/c_api.h nor links the library, so a
/// machine without XGBoost builds and runs kiln; only the `model` tuning policy needs it.
///
/// The signatures below are those of xgboost/c_api.h (1.x and 2.x agree on them).

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../../detail/dynamic_library.hpp"
#include "../../error.hpp"

namespace kiln::factory::detail {

/// The C API's handles and sizes (c_api.h: DMatrixHandle, BoosterHandle, bst_ulong).
using XgbDMatrix = void*;
using XgbBooster = void*;
using XgbSize = std::uint64_t;

/// The XGBoost entry points kiln uses.
struct XGBoostApi {
  const char* (*get_last_error)();
  int (*dmatrix_create_from_mat)(const float* data, XgbSize rows, XgbSize cols, float missing,
                                 XgbDMatrix* out);
  int (*dmatrix_set_float_info)(XgbDMatrix, const char* field, const float* values, XgbSize n);
  int (*dmatrix_set_uint_info)(XgbDMatrix, const char* field, const unsigned* values, XgbSize n);
  int (*dmatrix_free)(XgbDMatrix);
  int (*booster_create)(const XgbDMatrix dmats[], XgbSize n, XgbBooster* out);
  int (*booster_free)(XgbBooster);
  int (*booster_set_param)(XgbBooster, const char* name, const char* value);
  int (*booster_update_one_iter)(XgbBooster, int iter, XgbDMatrix train);
  int (*booster_predict)(XgbBooster, XgbDMatrix, int option_mask, unsigned ntree_limit,
                         int training, XgbSize* out_len, const float** out);
  int (*booster_save_model_to_buffer)(XgbBooster, const char* config, XgbSize* out_len,
                                      const char** out);
  int (*booster_load_model_from_buffer)(XgbBooster, const void* buffer, XgbSize len);
  void (*version)(int* major, int* minor, int* patch);  ///< XGBoostVersion

  ::kiln::detail::DynamicLibrary library;

  /// Throws kiln::Error with XGBoost's own message when `result` is not 0.
  void check(int result, const char* what) const {
    if (result != 0) {
      const char* why = get_last_error();
      throw Error(std::string("kiln: XGBoost ") + what +
                  " failed: " + (why && *why ? why : "no message"));
    }
  }
};

/// The libraries to try, in order: exactly $KILN_XGBOOST_LIBRARY where it is set (a
/// library the user names is not second-guessed), else the usual sonames. Read at each
/// call; the process-wide API below reads it once.
inline std::vector<std::string> xgboost_library_candidates() {
  if (const char* forced = std::getenv("KILN_XGBOOST_LIBRARY"); forced && *forced) return {forced};
  return {"libxgboost.so.0", "libxgboost.so", "libxgboost.so.2", "libxgboost.so.1"};
}

/// What loading XGBoost gave: the API, or (api null) why there is none.
struct XGBoostLoad {
  std::unique_ptr<XGBoostApi> api;
  std::string reason;
};

/// Loads the first of `candidates` that opens and has every entry point kiln needs. Does
/// not throw: a failure comes back as a reason naming each candidate and what went wrong.
inline XGBoostLoad load_xgboost(const std::vector<std::string>& candidates) {
  XGBoostLoad out;
  try {
    auto api = std::make_unique<XGBoostApi>();
    api->library = ::kiln::detail::DynamicLibrary::open_first(
        "XGBoost (libxgboost.so, Debian package libxgboost-dev)", candidates, nullptr);
    const auto& lib = api->library;
    api->get_last_error = lib.get<decltype(api->get_last_error)>("XGBGetLastError");
    api->dmatrix_create_from_mat =
        lib.get<decltype(api->dmatrix_create_from_mat)>("XGDMatrixCreateFromMat");
    api->dmatrix_set_float_info =
        lib.get<decltype(api->dmatrix_set_float_info)>("XGDMatrixSetFloatInfo");
    api->dmatrix_set_uint_info =
        lib.get<decltype(api->dmatrix_set_uint_info)>("XGDMatrixSetUIntInfo");
    api->dmatrix_free = lib.get<decltype(api->dmatrix_free)>("XGDMatrixFree");
    api->booster_create = lib.get<decltype(api->booster_create)>("XGBoosterCreate");
    api->booster_free = lib.get<decltype(api->booster_free)>("XGBoosterFree");
    api->booster_set_param = lib.get<decltype(api->booster_set_param)>("XGBoosterSetParam");
    api->booster_update_one_iter =
        lib.get<decltype(api->booster_update_one_iter)>("XGBoosterUpdateOneIter");
    api->booster_predict = lib.get<decltype(api->booster_predict)>("XGBoosterPredict");
    api->booster_save_model_to_buffer =
        lib.get<decltype(api->booster_save_model_to_buffer)>("XGBoosterSaveModelToBuffer");
    api->booster_load_model_from_buffer =
        lib.get<decltype(api->booster_load_model_from_buffer)>("XGBoosterLoadModelFromBuffer");
    api->version = lib.get<decltype(api->version)>("XGBoostVersion");
    out.api = std::move(api);
  } catch (const Error& e) {
    const char* forced = std::getenv("KILN_XGBOOST_LIBRARY");
    out.reason =
        std::string(e.what()) +
        (forced && *forced
             ? "\nKILN_XGBOOST_LIBRARY names it; unset it to search the usual names."
             : "\nSet KILN_XGBOOST_LIBRARY to the full path of libxgboost.so to use another.");
  }
  return out;
}

/// Whether the process is exiting past the point where XGBoost's own static objects go.
/// A model held by an object that outlives them (a factory's model cache, a static) must
/// not free its handles then: XGBoost would free them a second time (a crash at exit).
inline std::atomic<bool>& xgboost_exiting() {
  static std::atomic<bool> exiting{false};
  return exiting;
}

/// Keeps `handle` reachable from a global to the process's end: what is not freed at exit
/// (see xgboost_exiting()) is then not reported as leaked by leak checkers.
inline void keep_until_exit(void* handle) {
  static std::mutex mutex;
  static auto* kept = new std::vector<void*>();  // never freed, by design
  std::lock_guard lock(mutex);
  kept->push_back(handle);
}

/// Frees `handle` with `free`, unless XGBoost's own static objects are already gone (see
/// xgboost_exiting()): then it is kept to the process's end.
inline void release_handle(void* handle, int (*free)(void*)) {
  if (!handle) return;
  if (xgboost_exiting().load()) {
    keep_until_exit(handle);
  } else {
    free(handle);
  }
}

/// The process-wide XGBoost, loaded on first use from xgboost_library_candidates(); null
/// when it is missing (xgboost_unavailable_reason() says why). Never unloaded: XGBoost's
/// static and thread-local destructors would otherwise run after dlclose at exit. Its
/// static destructors were registered while it loaded; the handler registered just after
/// runs before them at exit and sets xgboost_exiting().
inline const XGBoostLoad& xgboost_load() {
  static const XGBoostLoad* loaded = [] {
    auto* l = new XGBoostLoad(load_xgboost(xgboost_library_candidates()));
    xgboost_exiting();  // constructed now, so destroyed after the handler has run
    if (l->api) std::atexit([] { xgboost_exiting().store(true); });
    return l;
  }();
  return *loaded;
}
inline const XGBoostApi* xgboost_api() {
  return xgboost_load().api.get();
}

/// The process-wide XGBoost, or LibraryError saying why there is none.
inline const XGBoostApi& xgboost() {
  if (const XGBoostApi* api = xgboost_api()) return *api;
  throw LibraryError(xgboost_load().reason);
}

/// A DMatrix (training or prediction rows), freed when it goes.
class XgbMatrix {
 public:
  /// `rows` × `cols` floats, row-major; NaN marks a missing feature.
  XgbMatrix(const XGBoostApi& api, const std::vector<float>& data, std::size_t rows,
            std::size_t cols)
      : api_(&api) {
    if (data.size() != rows * cols) throw Error("kiln: XgbMatrix: data is not rows x cols");
    api.check(api.dmatrix_create_from_mat(data.data(), rows, cols, NAN, &handle_),
              "XGDMatrixCreateFromMat");
  }
  XgbMatrix(const XgbMatrix&) = delete;
  XgbMatrix& operator=(const XgbMatrix&) = delete;
  ~XgbMatrix() { release_handle(handle_, api_->dmatrix_free); }
  XgbDMatrix get() const { return handle_; }

 private:
  const XGBoostApi* api_;
  XgbDMatrix handle_ = nullptr;
};

/// A Booster (the model), freed when it goes; movable so models can be returned.
class XgbBoosterOwner {
 public:
  XgbBoosterOwner() = default;
  XgbBoosterOwner(const XGBoostApi& api, const std::vector<XgbDMatrix>& cache) : api_(&api) {
    api.check(api.booster_create(cache.data(), cache.size(), &handle_), "XGBoosterCreate");
  }
  XgbBoosterOwner(XgbBoosterOwner&& o) noexcept
      : api_(o.api_), handle_(std::exchange(o.handle_, nullptr)) {}
  XgbBoosterOwner& operator=(XgbBoosterOwner&& o) noexcept {
    if (this != &o) {
      reset();
      api_ = o.api_;
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  XgbBoosterOwner(const XgbBoosterOwner&) = delete;
  XgbBoosterOwner& operator=(const XgbBoosterOwner&) = delete;
  ~XgbBoosterOwner() { reset(); }

  XgbBooster get() const { return handle_; }
  void set(const char* name, const std::string& value) const {
    api_->check(api_->booster_set_param(handle_, name, value.c_str()),
                (std::string("XGBoosterSetParam ") + name + "=" + value).c_str());
  }

 private:
  void reset() {
    if (handle_) release_handle(handle_, api_->booster_free);
    handle_ = nullptr;
  }
  const XGBoostApi* api_ = nullptr;
  XgbBooster handle_ = nullptr;
};

}  // namespace kiln::factory::detail
