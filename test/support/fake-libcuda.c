// A stand-in libcuda.so.1 for testing the driver bindings (backends/cuda/driver.ts) without a GPU: device
// queries answer like an sm_90 part, memory is host malloc, copies are memcpy, modules and launches are
// recorded but run nothing. FAKE_CUDA=nodevice makes cuInit fail as on a machine with the driver but no GPU;
// FAKE_CUDA_FAIL_LAUNCH=1 makes every launch fail. Launches check that every kernel parameter points at a
// device pointer this library allocated (what the koffi `void **` marshalling must produce).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
static int launches = 0, allocs = 0;
static void* live[4096];
static int nlive = 0;

static int is_live(uint64_t p) {
  for (int i = 0; i < nlive; i++) if ((uint64_t)(uintptr_t)live[i] == p) return 1;
  return 0;
}

CUresult cuInit(unsigned flags) {
  const char* m = getenv("FAKE_CUDA");
  return m && !strcmp(m, "nodevice") ? 100 : 0;
}
CUresult cuDriverGetVersion(int* v) { *v = 13000; return 0; }
CUresult cuDeviceGetCount(int* n) { *n = 1; return 0; }
CUresult cuDeviceGet(int* d, int ordinal) { *d = ordinal; return ordinal == 0 ? 0 : 101; }
CUresult cuDeviceGetAttribute(int* v, int attr, int dev) {
  switch (attr) {
    case 75: *v = 9; break;   // compute capability major
    case 76: *v = 0; break;   // minor
    case 16: *v = 132; break; // multiprocessors
    case 10: *v = 32; break;  // warp size
    case 97: *v = 232448; break;
    default: *v = 0;
  }
  return 0;
}
CUresult cuDeviceGetName(char* name, int len, int dev) { snprintf(name, len, "Fake GPU"); return 0; }
CUresult cuDeviceTotalMem_v2(size_t* b, int dev) { *b = (size_t)80 << 30; return 0; }
static int ctx_token, stream_token, module_token, function_token, event_token;
CUresult cuDevicePrimaryCtxRetain(void** ctx, int dev) { *ctx = &ctx_token; return 0; }
CUresult cuCtxSetCurrent(void* ctx) { return ctx == &ctx_token ? 0 : 201; }
CUresult cuStreamCreate(void** s, unsigned flags) { *s = &stream_token; return 0; }
CUresult cuStreamSynchronize(void* s) { return s == &stream_token ? 0 : 400; }
CUresult cuModuleLoadData(void** m, const void* image) {
  if (strncmp((const char*)image, "//", 2) != 0) return 218; // PTX from NVRTC starts with a comment
  *m = &module_token;
  return 0;
}
CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
  if (m != &module_token || strncmp(name, "tw_", 3) != 0) return 500;
  *f = &function_token;
  return 0;
}
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared, void* stream, void** params, void** extra) {
  if (getenv("FAKE_CUDA_FAIL_LAUNCH")) return 700;
  if (f != &function_token || stream != &stream_token || !params || extra) return 1;
  if (!gx || !gy || !gz || !bx || bx > 1024) return 9;
  if (!is_live(*(uint64_t*)params[0])) return 1; // the first parameter must be one of our device pointers
  launches++;
  return 0;
}
CUresult cuMemAlloc_v2(uint64_t* p, size_t n) {
  void* m = malloc(n);
  if (!m) return 2;
  live[nlive++ % 4096] = m;
  allocs++;
  *p = (uint64_t)(uintptr_t)m;
  return 0;
}
CUresult cuMemFree_v2(uint64_t p) { return is_live(p) ? (free((void*)(uintptr_t)p), 0) : 1; }
CUresult cuMemGetInfo_v2(size_t* f, size_t* t) { *f = (size_t)70 << 30; *t = (size_t)80 << 30; return 0; }
CUresult cuMemcpyHtoDAsync_v2(uint64_t d, const void* s, size_t n, void* st) { memcpy((void*)(uintptr_t)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void* d, uint64_t s, size_t n, void* st) { memcpy(d, (void*)(uintptr_t)s, n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, void* st) { memcpy((void*)(uintptr_t)d, (void*)(uintptr_t)s, n); return 0; }
CUresult cuMemsetD8Async(uint64_t d, unsigned char v, size_t n, void* st) { memset((void*)(uintptr_t)d, v, n); return 0; }
CUresult cuEventCreate(void** e, unsigned flags) { *e = &event_token; return 0; }
CUresult cuEventRecord(void* e, void* s) { return 0; }
CUresult cuEventSynchronize(void* e) { return 0; }
CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) { *ms = 1.5f; return 0; }
CUresult cuEventDestroy_v2(void* e) { return 0; }
CUresult cuGetErrorName(CUresult r, const char** s) {
  *s = r == 100 ? "CUDA_ERROR_NO_DEVICE" : r == 700 ? "CUDA_ERROR_ILLEGAL_ADDRESS" : "CUDA_ERROR_UNKNOWN";
  return 0;
}
CUresult cuGetErrorString(CUresult r, const char** s) {
  *s = r == 100 ? "no CUDA-capable device is detected" : r == 700 ? "an illegal memory access was encountered" : "unknown error";
  return 0;
}
// for the test: what happened
int fakeLaunches(void) { return launches; }
