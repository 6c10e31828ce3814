// FlashAttention-3's parameter block filled for WanStudio's cases and the kernel variant picked the way
// flash-attention's own dispatcher picks it (see flash3_attention.h). The kernels themselves are
// instantiated in flash3_fwd_cluster{1,2}.cu (bf16) and flash3_fwd_e4m3.cu so that the heavy compilations
// run in parallel.
#include "dit/cuda/flash3_attention.h"

#include <cuda_runtime.h>
#include <cutlass/numeric_types.h>

#include "flash.h"  // flash-attention/hopper: Flash_fwd_params

// Defined in flash-attention/hopper/flash_fwd_launch_template.h; explicitly instantiated in the
// flash3_fwd_*.cu files for exactly the arguments used below.
template <int Arch, int kHeadDim, int kHeadDimV, int ClusterM, typename Element, typename ElementOut, bool Is_causal,
          bool Is_local, bool Has_softcap, bool Varlen, bool PagedKVNonTMA, bool AppendKV, bool HasQv, bool PackGQA,
          bool Split, bool V_colmajor>
void run_flash_fwd(Flash_fwd_params& params, cudaStream_t stream);

namespace wan::dit::cuda {

namespace {
using bf16 = cutlass::bfloat16_t;
using e4m3 = cutlass::float_e4m3_t;
constexpr int kBlockM = 128;  // query rows per tile at head dim 128, bf16 and e4m3 alike (flash-attention's tile_size.h)

// Everything but the element type: dense, non-causal, one split, no dropout, every optional feature off.
Flash_fwd_params common_params(const Flash3Problem& p) {
    Flash_fwd_params params{};  // zero: every optional feature (varlen, paged KV, rotary, split, ...) off
    params.q_ptr = const_cast<void*>(p.q);
    params.k_ptr = const_cast<void*>(p.k);
    params.v_ptr = const_cast<void*>(p.v);
    params.o_ptr = p.out;
    params.softmax_lse_ptr = p.lse;
    params.q_batch_stride = p.q_batch_stride;
    params.q_row_stride = p.q_row_stride;
    params.q_head_stride = p.q_head_stride;
    params.k_batch_stride = p.k_batch_stride;
    params.k_row_stride = p.k_row_stride;
    params.k_head_stride = p.k_head_stride;
    params.v_batch_stride = p.v_batch_stride;
    params.v_row_stride = p.v_row_stride;
    params.v_head_stride = p.v_head_stride;
    params.v_dim_stride = 1;  // V row-major like Q and K (for e4m3 the kernel transposes its V tiles itself)
    params.o_batch_stride = p.out_batch_stride;
    params.o_row_stride = p.out_row_stride;
    params.o_head_stride = p.out_head_stride;
    params.b = params.b_k = p.batch;
    params.h = params.h_k = p.heads;
    params.seqlen_q = p.seq_q;
    params.seqlen_k = p.seq_k;
    params.seqlen_q_rounded = (p.seq_q + 127) / 128 * 128;
    params.seqlen_k_rounded = (p.seq_k + 127) / 128 * 128;
    params.d = params.d_rounded = params.dv = params.dv_rounded = kFlash3HeadDim;
    params.scale_softmax = p.softmax_scale;
    params.softcap = 0.f;
    params.p_dropout = 1.f;  // keep probability: no dropout
    params.rp_dropout = 1.f;
    params.window_size_left = params.window_size_right = -1;  // no window: full non-causal attention
    params.num_splits = 1;
    params.arch = 90;
    params.num_sm = p.num_sms;
    return params;
}
}  // namespace

void flash3_bf16_forward(const Flash3Problem& p) {
    Flash_fwd_params params = common_params(p);
    params.is_bf16 = true;
    cudaStream_t stream = static_cast<cudaStream_t>(p.stream);
    // Two CTAs of a cluster share their K/V tile loads (TMA multicast); flash-attention uses the pair only
    // when the query tiles come in an even number, and so do we.
    if (((p.seq_q + kBlockM - 1) / kBlockM) % 2 == 0)
        run_flash_fwd<90, 128, 128, 2, bf16, bf16, false, false, false, false, false, false, false, false, false, false>(params, stream);
    else
        run_flash_fwd<90, 128, 128, 1, bf16, bf16, false, false, false, false, false, false, false, false, false, false>(params, stream);
}

void flash3_e4m3_forward(const Flash3Problem& p) {
    Flash_fwd_params params = common_params(p);
    params.is_e4m3 = true;
    // The kernel reads descale[b * batch_stride + h * head_stride] (h: the K/V head; here every head has its own).
    params.q_descale_ptr = const_cast<float*>(p.q_descale);
    params.k_descale_ptr = const_cast<float*>(p.k_descale);
    params.v_descale_ptr = const_cast<float*>(p.v_descale);
    params.q_descale_batch_stride = params.k_descale_batch_stride = params.v_descale_batch_stride = p.heads;
    params.q_descale_head_stride = params.k_descale_head_stride = params.v_descale_head_stride = 1;
    // flash-attention clusters its e4m3 kernels only at head dim 192, so head dim 128 runs one CTA per cluster
    // whatever the number of query tiles.
    run_flash_fwd<90, 128, 128, 1, e4m3, bf16, false, false, false, false, false, false, false, false, false, false>(
        params, static_cast<cudaStream_t>(p.stream));
}

}  // namespace wan::dit::cuda
