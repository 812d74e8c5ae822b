#pragma once
// cuDNN's LayerNorm and RMSNorm, forward and backward, for benchmarks/norm: an operation
// graph of one normalization node (the backend API, cudnn_graph.h; cuDNN has no legacy call
// for them), the engines its heuristics list tried in order until one builds an execution
// plan, and that plan run on a variant pack of the benchmark's buffers. The graph is laid out as
// cuDNN's frontend samples lay out theirs: x and y (rows, cols, 1, 1), scale and bias
// (1, cols, 1, 1) in f32, the saved mean and inverse variance (rows, 1, 1, 1) in f32,
// epsilon a float passed by value; the training phase, so that the statistics are saved as
// kiln's forward saves them. The backward node takes those statistics (and dy, x, the scale;
// no epsilon) and makes dx with dscale and dbias in f32, (1, cols, 1, 1).
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cudnn_support.hpp"
#include "kiln/error.hpp"
#include "kiln/gen/spec.hpp"
#include "kiln/rt.hpp"

namespace bench {

/// One backend descriptor, destroyed with its owner.
class CudnnDescriptor {
 public:
  explicit CudnnDescriptor(cudnnBackendDescriptorType_t type) {
    cudnn_check(cudnnBackendCreateDescriptor(type, &d_), "cudnnBackendCreateDescriptor");
  }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  CudnnDescriptor(CudnnDescriptor&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }
  ~CudnnDescriptor() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  cudnnBackendDescriptor_t get() const { return d_; }

  template <class T>
  CudnnDescriptor& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                       std::int64_t count, const T* values) {
    cudnn_check(cudnnBackendSetAttribute(d_, name, type, count, values),
                "cudnnBackendSetAttribute");
    return *this;
  }
  void finalize(const char* what) { cudnn_check(cudnnBackendFinalize(d_), what); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

/// LayerNorm (with bias) or RMSNorm (without) of (rows x cols), forward or backward, as one
/// cuDNN execution plan. The forward makes y from x, saving the mean (LayerNorm) and the
/// inverse standard deviation; the backward makes dx, dscale (and dbias for LayerNorm) from
/// dy, x, the scale and those saved statistics.
class CudnnNorm {
 public:
  enum Direction { forward, backward };

  CudnnNorm(Direction direction, cudnnHandle_t handle, bool layer, kiln::gen::DType dt,
            std::int64_t rows, std::int64_t cols, float epsilon, const kiln::rt::Device& gpu)
      : handle_(handle), direction_(direction), layer_(layer), epsilon_(epsilon) {
    const cudnnDataType_t io = dt == kiln::gen::DType::f16    ? CUDNN_DATA_HALF
                               : dt == kiln::gen::DType::bf16 ? CUDNN_DATA_BFLOAT16
                                                              : CUDNN_DATA_FLOAT;
    const std::int64_t dx[4] = {rows, cols, 1, 1}, sx[4] = {cols, 1, cols, cols};
    const std::int64_t dw[4] = {1, cols, 1, 1}, sw[4] = {cols, 1, cols, cols};
    const std::int64_t ds[4] = {rows, 1, 1, 1}, ss[4] = {1, 1, 1, 1};
    const std::int64_t one[4] = {1, 1, 1, 1};
    const bool bwd = direction_ == backward;
    // The tensors of the node: the matrices in the problem's dtype, the per-column scale
    // (bias, and their gradients) and per-row statistics in f32, epsilon a float by value.
    tensors_.push_back(tensor(kX, io, dx, sx, false));
    tensors_.push_back(tensor(bwd ? kDy : kY, io, dx, sx, false));
    tensors_.push_back(tensor(kScale, CUDNN_DATA_FLOAT, dw, sw, false));
    if (layer_) {
      if (!bwd) tensors_.push_back(tensor(kBias, CUDNN_DATA_FLOAT, dw, sw, false));
      tensors_.push_back(tensor(kMean, CUDNN_DATA_FLOAT, ds, ss, false));
    }
    tensors_.push_back(tensor(kInvVariance, CUDNN_DATA_FLOAT, ds, ss, false));
    // (The backward takes no epsilon: the saved inverse deviation has it. cuDNN's own
    // frontend sets none for backends from 8.9.6; given one, the plan ran into
    // CUDNN_STATUS_BAD_PARAM_NULL_POINTER at every execution.)
    if (!bwd) {
      tensors_.push_back(tensor(kEpsilon, CUDNN_DATA_FLOAT, one, one, true));
    } else {
      tensors_.push_back(tensor(kDx, io, dx, sx, false));
      tensors_.push_back(tensor(kDscale, CUDNN_DATA_FLOAT, dw, sw, false));
      if (layer_) tensors_.push_back(tensor(kDbias, CUDNN_DATA_FLOAT, dw, sw, false));
    }
    auto desc = [&](std::int64_t id) {
      for (std::size_t i = 0; i < ids_.size(); ++i) {
        if (ids_[i] == id) return tensors_[i].get();
      }
      throw kiln::Error("cuDNN norm: no tensor " + std::to_string(id));
    };

    const cudnnBackendNormMode_t mode = layer_ ? CUDNN_LAYER_NORM : CUDNN_RMS_NORM;
    cudnnBackendDescriptor_t x = desc(kX), scale = desc(kScale), inv = desc(kInvVariance);
    std::optional<CudnnDescriptor> op;
    if (!bwd) {
      op.emplace(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
      const cudnnBackendNormFwdPhase_t phase = CUDNN_NORM_FWD_TRAINING;
      cudnnBackendDescriptor_t y = desc(kY), eps = desc(kEpsilon);
      op->set(CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode)
          .set(CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase)
          .set(CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)
          .set(CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y)
          .set(CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &scale)
          .set(CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
               &inv)
          .set(CUDNN_ATTR_OPERATION_NORM_FWD_EPSILON_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &eps);
      if (layer_) {
        cudnnBackendDescriptor_t bias = desc(kBias), mean = desc(kMean);
        op->set(CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bias)
            .set(CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mean);
      }
    } else {
      op.emplace(CUDNN_BACKEND_OPERATION_NORM_BACKWARD_DESCRIPTOR);
      cudnnBackendDescriptor_t dy = desc(kDy), dxd = desc(kDx), dscale = desc(kDscale);
      op->set(CUDNN_ATTR_OPERATION_NORM_BWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode)
          .set(CUDNN_ATTR_OPERATION_NORM_BWD_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)
          .set(CUDNN_ATTR_OPERATION_NORM_BWD_DYDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &dy)
          .set(CUDNN_ATTR_OPERATION_NORM_BWD_SCALE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &scale)
          .set(CUDNN_ATTR_OPERATION_NORM_BWD_INV_VARIANCE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
               &inv)
          .set(CUDNN_ATTR_OPERATION_NORM_BWD_DXDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &dxd)
          .set(CUDNN_ATTR_OPERATION_NORM_BWD_DSCALE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
               &dscale);
      if (layer_) {
        cudnnBackendDescriptor_t mean = desc(kMean), dbias = desc(kDbias);
        op->set(CUDNN_ATTR_OPERATION_NORM_BWD_MEAN_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mean)
            .set(CUDNN_ATTR_OPERATION_NORM_BWD_DBIAS_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                 &dbias);
      }
    }
    op->finalize("the normalization node");

    CudnnDescriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    cudnnBackendDescriptor_t ops = op->get();
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_)
        .set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &ops);
    graph.finalize("the operation graph");

    // The engine configs cuDNN's heuristics rank (mode A, then the fallback list), tried in
    // order until one builds a plan.
    cudnnBackendDescriptor_t g = graph.get();
    std::string why = "the heuristics listed no engine";
    for (cudnnBackendHeurMode_t heur : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      CudnnDescriptor heuristics(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
      heuristics.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &g)
          .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &heur);
      if (cudnnBackendFinalize(heuristics.get()) != CUDNN_STATUS_SUCCESS) continue;
      std::int64_t count = 0;
      cudnn_check(cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                           CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr),
                  "the engine heuristics' count");
      std::vector<CudnnDescriptor> configs;
      std::vector<cudnnBackendDescriptor_t> raw;
      for (std::int64_t i = 0; i < count; ++i) {
        configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
        raw.push_back(configs.back().get());
      }
      std::int64_t got = 0;
      if (count > 0) {
        cudnn_check(
            cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                     CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got, raw.data()),
            "the engine heuristics' results");
      }
      for (std::int64_t i = 0; i < got && !plan_; ++i) {
        auto plan = std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        plan->set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &handle_)
            .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                 &raw[std::size_t(i)]);
        const cudnnStatus_t s = cudnnBackendFinalize(plan->get());
        if (s != CUDNN_STATUS_SUCCESS) {
          why = std::string("no engine built a plan (the last: ") + cudnnGetErrorString(s) + ")";
          continue;
        }
        plan_ = std::move(plan);
      }
      if (plan_) break;
    }
    if (!plan_) throw kiln::Error("cuDNN norm: " + why);
    std::int64_t workspace = 0, elements = 0;
    cudnn_check(cudnnBackendGetAttribute(plan_->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &elements, &workspace),
                "the plan's workspace size");
    workspace_ = kiln::rt::DeviceBuffer<unsigned char>(
        std::size_t(std::max<std::int64_t>(workspace, 16)), gpu);
  }

  /// Binds the buffers the plan runs on: y from x, scale and bias (f32; the bias ignored for
  /// RMSNorm), saving mean (LayerNorm) and the inverse standard deviation.
  void bind(const void* x, void* y, const void* scale, const void* bias, float* mean,
            float* inv_std) {
    if (direction_ != forward) throw kiln::Error("cuDNN norm: bind() is the forward's");
    Bindings b;
    b.add(kX, x).add(kY, y).add(kScale, scale);
    if (layer_) b.add(kBias, bias).add(kMean, mean);
    b.add(kInvVariance, inv_std).add(kEpsilon, &epsilon_);
    pack(b);
  }

  /// Binds the backward's buffers: dx, dscale (f32) and dbias (f32, LayerNorm's; ignored for
  /// RMSNorm) from dy, x, the scale (f32) and the forward's saved mean (LayerNorm) and
  /// inverse standard deviation.
  void bind_backward(const void* dy, const void* x, const void* scale, const float* mean,
                     const float* inv_std, void* dx, float* dscale, float* dbias) {
    if (direction_ != backward) throw kiln::Error("cuDNN norm: bind_backward() is the backward's");
    Bindings b;
    b.add(kX, x).add(kDy, dy).add(kScale, scale);
    if (layer_) b.add(kMean, mean);
    b.add(kInvVariance, inv_std).add(kDx, dx).add(kDscale, dscale);
    if (layer_) b.add(kDbias, dbias);
    pack(b);
  }

  /// Runs the plan on `st` over the buffers bound last.
  void operator()(kiln::rt::StreamRef st) {
    if (!pack_) throw kiln::Error("cuDNN norm: run before bind()");
    cudnn_check(cudnnSetStream(handle_, static_cast<cudaStream_t>(st.handle)), "cudnnSetStream");
    cudnn_check(cudnnBackendExecute(handle_, plan_->get(), pack_->get()), "cudnnBackendExecute");
  }

 private:
  enum : std::int64_t {
    kX = 1,
    kY,
    kScale,
    kBias,
    kMean,
    kInvVariance,
    kEpsilon,
    kDy,
    kDx,
    kDscale,
    kDbias
  };

  /// A variant pack's tensors: their ids and device pointers (epsilon's a host one).
  struct Bindings {
    std::vector<std::int64_t> ids;
    std::vector<void*> ptrs;
    Bindings& add(std::int64_t id, const void* p) {
      ids.push_back(id);
      ptrs.push_back(const_cast<void*>(p));
      return *this;
    }
  };

  void pack(const Bindings& b) {
    auto pack = std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    void* ws = workspace_.data();
    pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, std::int64_t(b.ids.size()),
              b.ids.data())
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
             std::int64_t(b.ptrs.size()), b.ptrs.data())
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    pack->finalize("the variant pack");
    pack_ = std::move(pack);
  }

  CudnnDescriptor tensor(std::int64_t id, cudnnDataType_t type, const std::int64_t* dims,
                         const std::int64_t* strides, bool by_value) {
    CudnnDescriptor t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const std::int64_t alignment = 16;
    t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type)
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims)
        .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides)
        .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &id)
        .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &alignment);
    if (by_value) {
      const bool yes = true;
      t.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &yes);
    }
    t.finalize("a tensor descriptor");
    ids_.push_back(id);
    return t;
  }

  cudnnHandle_t handle_;
  Direction direction_;
  bool layer_;
  float epsilon_;
  std::vector<std::int64_t> ids_;
  std::vector<CudnnDescriptor> tensors_;
  std::unique_ptr<CudnnDescriptor> plan_, pack_;
  kiln::rt::DeviceBuffer<unsigned char> workspace_;
};

}  // namespace bench
