// The target-specific CUDA primitives as inline PTX: f16 conversions, tf32 rounding, ldmatrix and mma.sync.
// NVRTC 11.x has no built-in cuda_fp16.h/cuda_bf16.h, so these are written out here; kernels call only these
// names, so another implementation (a CPU emulation for tests) can stand in.

export const PTX_PRIMITIVES = String.raw`__device__ __forceinline__ float tw_h2f(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ unsigned short tw_f2h(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ unsigned tw_tf32(float f) { unsigned r; asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(f)); return r; }
__device__ __forceinline__ unsigned tw_smem(const void* p) { unsigned r; asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p)); return r; }
// four 8x8 b16 matrices; lanes 8q..8q+7 give the row addresses of matrix q (.trans: transposed on load)
__device__ __forceinline__ void tw_ldsm_x4(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(tw_smem(p)));
}
__device__ __forceinline__ void tw_ldsm_x4_t(unsigned* r, const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];" : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(tw_smem(p)));
}
// D = A·B + D for one warp: m16n8k16 (f16, bf16) or m16n8k8 (tf32), f32 accumulators
#define TW_MMA(NAME, SHAPE, T) \
__device__ __forceinline__ void NAME(float* c, const unsigned* a, const unsigned* b) { \
  asm volatile("mma.sync.aligned." SHAPE ".row.col.f32." T "." T ".f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};" \
    : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1])); }
TW_MMA(tw_mma_f16, "m16n8k16", "f16")
TW_MMA(tw_mma_bf16, "m16n8k16", "bf16")
TW_MMA(tw_mma_tf32, "m16n8k8", "tf32")
`;
