// A stand-in libcuda.so.1 for testing and timing the driver bindings (backends/cuda/driver.ts) through koffi
// without a GPU: device queries answer like an sm_90 part, device memory is host malloc, copies are memcpy,
// kernels run nothing. Modules are PTX text: cuModuleLoadData reads each `.entry`'s name and parameter count,
// so a launch can record its function, grid, block and the u64 behind every kernelParams pointer (the last
// LOG_LAUNCHES launches are kept; fakeLaunch reads them back). A launch fails with CUDA_ERROR_INVALID_VALUE
// when a parameter is not a live allocation of this library, as a wrong `void **` marshalling would make it.
// Failures on demand: fakeFail(call, code, skip, count), or FAKE_CUDA_FAIL=call:code (every call fails).
// Built by test/support/fake-libcuda.ts.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;

// ---- failure injection
static char fail_call[64];
static int fail_code, fail_skip, fail_count; // count < 0: every call from then on

void fakeFail(const char* call, int code, int skip, int count) {
  snprintf(fail_call, sizeof fail_call, "%s", call ? call : "");
  fail_code = code;
  fail_skip = skip;
  fail_count = call && *call ? count : 0;
}

static int failing(const char* call) {
  if (!fail_count || strcmp(call, fail_call) != 0) return 0;
  if (fail_skip > 0) return fail_skip--, 0;
  if (fail_count > 0) fail_count--;
  return fail_code;
}
#define FAIL(call) do { int rc_ = failing(call); if (rc_) return rc_; } while (0)

// ---- live allocations: an open-addressing set of base addresses (0 empty, 1 removed)
#define SLOTS (1 << 18)
static uint64_t live[SLOTS];
static int nlive;

static uint32_t slot_of(uint64_t p) { return (uint32_t)((p >> 4) * 0x9E3779B97F4A7C15ull >> 46) & (SLOTS - 1); }
static int live_find(uint64_t p) {
  for (uint32_t i = slot_of(p), n = 0; n < SLOTS; i = (i + 1) & (SLOTS - 1), n++) {
    if (live[i] == p) return (int)i;
    if (live[i] == 0) return -1;
  }
  return -1;
}
static int live_add(uint64_t p) {
  if (nlive >= SLOTS / 2) return 0;
  uint32_t i = slot_of(p);
  while (live[i] > 1) i = (i + 1) & (SLOTS - 1);
  live[i] = p;
  nlive++;
  return 1;
}

// ---- modules and functions, from the PTX's .entry lines
#define FN_MAGIC 0x46554e43u
typedef struct { uint32_t magic; int nparams; char name[120]; } Fn;
typedef struct { int nfns; Fn* fns; } Mod;

static Mod* parse_ptx(const char* ptx) {
  Mod* m = calloc(1, sizeof *m);
  for (const char* s = strstr(ptx, ".entry "); s; s = strstr(s + 1, ".entry ")) {
    const char* name = s + 7;
    while (*name == ' ') name++;
    const char* open = strchr(name, '(');
    if (!open) break;
    const char* close = strchr(open, ')');
    if (!close) break;
    size_t len = (size_t)(open - name);
    while (len && (name[len - 1] == ' ' || name[len - 1] == '\n' || name[len - 1] == '\t')) len--;
    Fn f = { FN_MAGIC, 0, "" };
    snprintf(f.name, sizeof f.name, "%.*s", (int)len, name);
    for (const char* q = strstr(open, ".param"); q && q < close; q = strstr(q + 1, ".param")) f.nparams++;
    m->fns = realloc(m->fns, sizeof(Fn) * (size_t)(m->nfns + 1));
    m->fns[m->nfns++] = f;
  }
  return m;
}

// ---- the launch log: records in a ring, their parameter values in a ring of words
#define LOG_LAUNCHES 8192
#define LOG_WORDS (1 << 20)
typedef struct { const Fn* fn; unsigned dims[7]; int n; uint64_t start; } Launch;
static Launch launch_log[LOG_LAUNCHES];
static uint64_t words[LOG_WORDS];
static uint64_t nwords;
static int launches, allocs;

static int ctx_token, stream_token, event_token;

CUresult cuInit(unsigned flags) {
  const char* f = getenv("FAKE_CUDA_FAIL"); // call:code
  const char* colon = f ? strchr(f, ':') : NULL;
  if (colon) {
    char call[64];
    snprintf(call, sizeof call, "%.*s", (int)(colon - f), f);
    fakeFail(call, atoi(colon + 1), 0, -1);
  }
  FAIL("cuInit");
  return flags ? 1 : 0;
}
CUresult cuDriverGetVersion(int* v) { FAIL("cuDriverGetVersion"); *v = 13000; return 0; }
CUresult cuDeviceGetCount(int* n) { FAIL("cuDeviceGetCount"); *n = 1; return 0; }
CUresult cuDeviceGet(int* d, int ordinal) { FAIL("cuDeviceGet"); *d = ordinal; return ordinal == 0 ? 0 : 101; }
CUresult cuDeviceGetAttribute(int* v, int attr, int dev) {
  FAIL("cuDeviceGetAttribute");
  switch (attr) {
    case 75: *v = 9; break;   // compute capability major
    case 76: *v = 0; break;   // minor
    case 16: *v = 132; break; // multiprocessors
    case 10: *v = 32; break;  // warp size
    case 97: *v = 232448; break;
    default: *v = 0;
  }
  return dev == 0 ? 0 : 101;
}
CUresult cuDeviceGetName(char* name, int len, int dev) { FAIL("cuDeviceGetName"); snprintf(name, (size_t)len, "Fake GPU"); return 0; }
CUresult cuDeviceTotalMem_v2(size_t* b, int dev) { FAIL("cuDeviceTotalMem_v2"); *b = (size_t)80 << 30; return 0; }
CUresult cuDevicePrimaryCtxRetain(void** ctx, int dev) { FAIL("cuDevicePrimaryCtxRetain"); *ctx = &ctx_token; return 0; }
CUresult cuCtxSetCurrent(void* ctx) { FAIL("cuCtxSetCurrent"); return ctx == &ctx_token ? 0 : 201; }
CUresult cuStreamCreate(void** s, unsigned flags) { FAIL("cuStreamCreate"); *s = &stream_token; return 0; }
CUresult cuStreamSynchronize(void* s) { FAIL("cuStreamSynchronize"); return s == &stream_token ? 0 : 400; }

CUresult cuModuleLoadData(void** m, const void* image) {
  FAIL("cuModuleLoadData");
  if (strncmp((const char*)image, "//", 2) != 0) return 218; // PTX from NVRTC starts with a comment
  *m = parse_ptx((const char*)image);
  return 0;
}
CUresult cuModuleGetFunction(void** f, void* m, const char* name) {
  FAIL("cuModuleGetFunction");
  Mod* mod = m;
  for (int i = 0; mod && i < mod->nfns; i++)
    if (!strcmp(mod->fns[i].name, name)) return *f = &mod->fns[i], 0;
  return 500;
}

CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz, unsigned shared, void* stream, void** params, void** extra) {
  FAIL("cuLaunchKernel");
  const Fn* fn = f;
  if (!fn || fn->magic != FN_MAGIC || stream != &stream_token) return 400;
  if ((fn->nparams && !params) || extra || !gx || !gy || !gz || !bx || !by || !bz || (uint64_t)bx * by * bz > 1024) return 1;
  Launch* l = &launch_log[launches % LOG_LAUNCHES];
  *l = (Launch){ fn, { gx, gy, gz, bx, by, bz, shared }, fn->nparams, nwords };
  for (int i = 0; i < fn->nparams; i++) {
    uint64_t v = *(const uint64_t*)params[i];
    if (live_find(v) < 0) return 1;
    words[(nwords + (uint64_t)i) % LOG_WORDS] = v;
  }
  nwords += (uint64_t)fn->nparams;
  launches++;
  return 0;
}

CUresult cuMemAlloc_v2(uint64_t* p, size_t n) {
  FAIL("cuMemAlloc_v2");
  void* m = malloc(n ? n : 1);
  if (!m) return 2;
  if (!live_add((uint64_t)(uintptr_t)m)) return free(m), 2;
  allocs++;
  *p = (uint64_t)(uintptr_t)m;
  return 0;
}
CUresult cuMemFree_v2(uint64_t p) {
  FAIL("cuMemFree_v2");
  int i = live_find(p);
  if (i < 0) return 1;
  live[i] = 1;
  nlive--;
  free((void*)(uintptr_t)p);
  return 0;
}
CUresult cuMemGetInfo_v2(size_t* f, size_t* t) { FAIL("cuMemGetInfo_v2"); *f = (size_t)70 << 30; *t = (size_t)80 << 30; return 0; }
CUresult cuMemcpyHtoDAsync_v2(uint64_t d, const void* s, size_t n, void* st) { FAIL("cuMemcpyHtoDAsync_v2"); memcpy((void*)(uintptr_t)d, s, n); return 0; }
CUresult cuMemcpyDtoHAsync_v2(void* d, uint64_t s, size_t n, void* st) { FAIL("cuMemcpyDtoHAsync_v2"); memcpy(d, (void*)(uintptr_t)s, n); return 0; }
CUresult cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, void* st) { FAIL("cuMemcpyDtoDAsync_v2"); memmove((void*)(uintptr_t)d, (void*)(uintptr_t)s, n); return 0; }
CUresult cuMemsetD8Async(uint64_t d, unsigned char v, size_t n, void* st) { FAIL("cuMemsetD8Async"); memset((void*)(uintptr_t)d, v, n); return 0; }
CUresult cuEventCreate(void** e, unsigned flags) { FAIL("cuEventCreate"); *e = &event_token; return 0; }
CUresult cuEventRecord(void* e, void* s) { FAIL("cuEventRecord"); return 0; }
CUresult cuEventSynchronize(void* e) { FAIL("cuEventSynchronize"); return 0; }
CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) { FAIL("cuEventElapsedTime_v2"); *ms = 1.5f; return 0; }
CUresult cuEventDestroy_v2(void* e) { FAIL("cuEventDestroy_v2"); return 0; }

static const struct { int code; const char *name, *text; } ERRORS[] = {
  { 1, "CUDA_ERROR_INVALID_VALUE", "invalid argument" },
  { 2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory" },
  { 100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected" },
  { 101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal" },
  { 201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context" },
  { 218, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed" },
  { 400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle" },
  { 500, "CUDA_ERROR_NOT_FOUND", "named symbol not found" },
  { 700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered" },
  { 701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES", "too many resources requested for launch" },
};
// as the driver: an unknown code is CUDA_ERROR_INVALID_VALUE with a null string
static CUresult error_field(CUresult r, const char** s, int text) {
  for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++)
    if (ERRORS[i].code == r) return *s = text ? ERRORS[i].text : ERRORS[i].name, 0;
  *s = NULL;
  return 1;
}
CUresult cuGetErrorName(CUresult r, const char** s) { return error_field(r, s, 0); }
CUresult cuGetErrorString(CUresult r, const char** s) { return error_field(r, s, 1); }

// ---- for tests and benchmarks: what happened
int fakeLaunches(void) { return launches; }
int fakeAllocs(void) { return allocs; }
int fakeLive(void) { return nlive; }
/** Launch i (0-based, one of the last LOG_LAUNCHES): writes grid[3], block[3], shared, n, then the n parameter values; returns 8 + n, or -1. */
int fakeLaunch(int i, uint64_t* out, int cap) {
  if (i < 0 || i >= launches || launches - i > LOG_LAUNCHES) return -1;
  const Launch* l = &launch_log[i % LOG_LAUNCHES];
  if (nwords - l->start > LOG_WORDS || cap < 8 + l->n) return -1;
  for (int k = 0; k < 7; k++) out[k] = l->dims[k];
  out[7] = (uint64_t)l->n;
  for (int k = 0; k < l->n; k++) out[8 + k] = words[(l->start + (uint64_t)k) % LOG_WORDS];
  return 8 + l->n;
}
/** The entry name of launch i's function, or null. */
const char* fakeLaunchName(int i) {
  if (i < 0 || i >= launches || launches - i > LOG_LAUNCHES) return NULL;
  return launch_log[i % LOG_LAUNCHES].fn->name;
}
