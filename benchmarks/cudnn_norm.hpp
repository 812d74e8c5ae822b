#pragma once
// cuDNN's LayerNorm and RMSNorm forward, for benchmarks/norm: an operation graph of one
// normalization node (the backend API, cudnn_graph.h; cuDNN has no legacy call for them),
// the engines its heuristics list tried in order until one builds an execution plan, and
// that plan run on a variant pack of the benchmark's buffers. The graph is laid out as
// cuDNN's frontend samples lay out theirs: x and y (rows, cols, 1, 1), scale and bias
// (1, cols, 1, 1) in f32, the saved mean and inverse variance (rows, 1, 1, 1) in f32,
// epsilon a float passed by value; the training phase, so that the statistics are saved as
// kiln's forward saves them.
#include <algorithm>
#include <cstdint>
#include <memory>
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

/// LayerNorm (with bias) or RMSNorm (without) of (rows x cols) x into y, saving the mean
/// (LayerNorm) and the inverse standard deviation, as one cuDNN execution plan.
class CudnnNorm {
 public:
  CudnnNorm(cudnnHandle_t handle, bool layer, kiln::gen::DType dt, std::int64_t rows,
            std::int64_t cols, float epsilon, const kiln::rt::Device& gpu)
      : handle_(handle), layer_(layer), epsilon_(epsilon) {
    const cudnnDataType_t io = dt == kiln::gen::DType::f16    ? CUDNN_DATA_HALF
                               : dt == kiln::gen::DType::bf16 ? CUDNN_DATA_BFLOAT16
                                                              : CUDNN_DATA_FLOAT;
    const std::int64_t dx[4] = {rows, cols, 1, 1}, sx[4] = {cols, 1, cols, cols};
    const std::int64_t dw[4] = {1, cols, 1, 1}, sw[4] = {cols, 1, cols, cols};
    const std::int64_t ds[4] = {rows, 1, 1, 1}, ss[4] = {1, 1, 1, 1};
    const std::int64_t one[4] = {1, 1, 1, 1};
    tensors_.push_back(tensor(kX, io, dx, sx, false));
    tensors_.push_back(tensor(kY, io, dx, sx, false));
    tensors_.push_back(tensor(kScale, CUDNN_DATA_FLOAT, dw, sw, false));
    if (layer_) {
      tensors_.push_back(tensor(kBias, CUDNN_DATA_FLOAT, dw, sw, false));
      tensors_.push_back(tensor(kMean, CUDNN_DATA_FLOAT, ds, ss, false));
    }
    tensors_.push_back(tensor(kInvVariance, CUDNN_DATA_FLOAT, ds, ss, false));
    tensors_.push_back(tensor(kEpsilon, CUDNN_DATA_FLOAT, one, one, true));
    auto desc = [&](std::int64_t id) {
      for (std::size_t i = 0; i < ids_.size(); ++i) {
        if (ids_[i] == id) return tensors_[i].get();
      }
      throw kiln::Error("cuDNN norm: no tensor " + std::to_string(id));
    };

    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR);
    const cudnnBackendNormMode_t mode = layer_ ? CUDNN_LAYER_NORM : CUDNN_RMS_NORM;
    const cudnnBackendNormFwdPhase_t phase = CUDNN_NORM_FWD_TRAINING;
    cudnnBackendDescriptor_t x = desc(kX), y = desc(kY), scale = desc(kScale),
                             inv = desc(kInvVariance), eps = desc(kEpsilon);
    op.set(CUDNN_ATTR_OPERATION_NORM_FWD_MODE, CUDNN_TYPE_NORM_MODE, 1, &mode)
        .set(CUDNN_ATTR_OPERATION_NORM_FWD_PHASE, CUDNN_TYPE_NORM_FWD_PHASE, 1, &phase)
        .set(CUDNN_ATTR_OPERATION_NORM_FWD_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)
        .set(CUDNN_ATTR_OPERATION_NORM_FWD_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y)
        .set(CUDNN_ATTR_OPERATION_NORM_FWD_SCALE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &scale)
        .set(CUDNN_ATTR_OPERATION_NORM_FWD_INV_VARIANCE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
             &inv)
        .set(CUDNN_ATTR_OPERATION_NORM_FWD_EPSILON_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &eps);
    if (layer_) {
      cudnnBackendDescriptor_t bias = desc(kBias), mean = desc(kMean);
      op.set(CUDNN_ATTR_OPERATION_NORM_FWD_BIAS_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &bias)
          .set(CUDNN_ATTR_OPERATION_NORM_FWD_MEAN_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mean);
    }
    op.finalize("the normalization node");

    CudnnDescriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    cudnnBackendDescriptor_t ops = op.get();
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
    std::vector<std::int64_t> ids{kX, kY, kScale};
    std::vector<void*> ptrs{const_cast<void*>(x), y, const_cast<void*>(scale)};
    if (layer_) {
      ids.insert(ids.end(), {kBias, kMean});
      ptrs.insert(ptrs.end(), {const_cast<void*>(bias), mean});
    }
    ids.insert(ids.end(), {kInvVariance, kEpsilon});
    ptrs.insert(ptrs.end(), {inv_std, &epsilon_});
    auto pack = std::make_unique<CudnnDescriptor>(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    void* ws = workspace_.data();
    pack->set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, std::int64_t(ids.size()),
              ids.data())
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, std::int64_t(ptrs.size()),
             ptrs.data())
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    pack->finalize("the variant pack");
    pack_ = std::move(pack);
  }

  /// Runs the plan on `st` over the buffers bound last.
  void operator()(kiln::rt::StreamRef st) {
    if (!pack_) throw kiln::Error("cuDNN norm: run before bind()");
    cudnn_check(cudnnSetStream(handle_, static_cast<cudaStream_t>(st.handle)), "cudnnSetStream");
    cudnn_check(cudnnBackendExecute(handle_, plan_->get(), pack_->get()), "cudnnBackendExecute");
  }

 private:
  enum : std::int64_t { kX = 1, kY, kScale, kBias, kMean, kInvVariance, kEpsilon };

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
  bool layer_;
  float epsilon_;
  std::vector<std::int64_t> ids_;
  std::vector<CudnnDescriptor> tensors_;
  std::unique_ptr<CudnnDescriptor> plan_, pack_;
  kiln::rt::DeviceBuffer<unsigned char> workspace_;
};

}  // namespace bench
