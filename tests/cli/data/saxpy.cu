// A kernel for the cli tests (kiln compile): one plain kernel with launch bounds and shared
// memory, and one template kernel whose name is mangled.
#ifndef SCALE
#define SCALE 2.0f
#endif

extern "C" __global__ void __launch_bounds__(256) saxpy(float* y, const float* x, int n) {
  __shared__ float tile[256];
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  tile[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  if (i < n) y[i] += SCALE * tile[blockDim.x - 1 - threadIdx.x];
}

template <int N>
__global__ void gather(float* out, const float* in) {
  float a[N];
  for (int k = 0; k < N; ++k) a[k] = in[k * threadIdx.x];
  out[threadIdx.x] = a[int(in[0]) % N];
}
template __global__ void gather<64>(float*, const float*);
