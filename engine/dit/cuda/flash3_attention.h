// Private to engine/dit: the FlashAttention-3 kernels WanStudio builds (Hopper, head dim 128, non-causal
// forward; bf16, and e4m3 for Note [FP8 attention] in dit/attention_fp8.cpp), behind a plain-pointer interface so that no CUTLASS or FlashAttention header reaches
// the rest of the engine. See Note [FlashAttention-3] in dit/layers.cpp.
#pragma once

#include <cstdint>

namespace wan::dit::cuda {

/// One attention call on [batch, seq, heads, 128] tensors (bf16, or e4m3 for flash3_e4m3_forward) given by
/// pointer and element strides (the head dim itself contiguous). out (bf16) is written with its own strides;
/// lse ([batch, heads, seq_q] f32, contiguous) receives the log-sum-exp of each query row, which the kernel
/// always stores.
struct Flash3Problem {
    const void* q = nullptr;
    const void* k = nullptr;
    const void* v = nullptr;
    void* out = nullptr;
    float* lse = nullptr;
    int64_t q_batch_stride = 0, q_row_stride = 0, q_head_stride = 0;
    int64_t k_batch_stride = 0, k_row_stride = 0, k_head_stride = 0;
    int64_t v_batch_stride = 0, v_row_stride = 0, v_head_stride = 0;
    int64_t out_batch_stride = 0, out_row_stride = 0, out_head_stride = 0;
    int batch = 0, seq_q = 0, seq_k = 0, heads = 0;
    float softmax_scale = 0.f;
    /// e4m3 only: [batch, heads] f32, contiguous: real q = code · q_descale[b][h] (likewise k, v).
    const float* q_descale = nullptr;
    const float* k_descale = nullptr;
    const float* v_descale = nullptr;
    int num_sms = 0;  ///< multiprocessors the persistent grid may use
    void* stream = nullptr;  ///< cudaStream_t
};

/// The head dim the built kernel handles.
constexpr int kFlash3HeadDim = 128;

/// Launches the kernel on problem.stream. The caller has checked the layout (flash3 needs every pointer
/// 16-byte aligned and every stride a multiple of 8 elements: its tiles move by TMA).
void flash3_bf16_forward(const Flash3Problem& problem);

/// The same on float8_e4m3fn q, k, v with their per-(batch, head) descales; out stays bf16. Needs every
/// pointer 16-byte aligned and every stride a multiple of 16 elements (16 bytes, for TMA).
void flash3_e4m3_forward(const Flash3Problem& problem);

}  // namespace wan::dit::cuda
