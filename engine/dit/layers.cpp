// Attention, RoPE tables and sequence splitting: the pieces of the DiT that sequence parallelism touches.
// Ref: wan21-reference.md §4.5 (attention), §4.6 (RoPE), §8.3 (USP chunks).
#include "dit/dit.h"
#include "dit/internal.h"

#include "core/core.h"

#include <ATen/ATen.h>

#if WAN_HAVE_FLASH3
#include "dit/cuda/flash3_attention.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

namespace wan::dit {

// ---- attention ----------------------------------------------------------------------------------------

// Note [Attention backend]
// Self-attention is ~70% of a DiT forward at 480p/720p. On the H100 the cuDNN fused attention ran the 14B
// 720p shape (75,600 tokens, head dim 128, bf16) markedly faster than the flash backend PyTorch's SDPA picks
// by default (measured in docs/PERFORMANCE.md), so on CUDA with bf16/f16 and head dim ≤ 128 we call it
// directly and fall back to SDPA's own choice if cuDNN refuses (old cuDNN, odd shapes). Builds configured
// with FlashAttention-3 try that first (Note [FlashAttention-3]). WAN_ATTENTION=fa3|cudnn|flash|sdpa forces
// a backend for measurements (ModelOptions::attention).
//
// Note [FlashAttention-3]
// FlashAttention-3 is the Hopper attention kernel written for this problem: warp-specialised, with the
// softmax of one tile overlapping the tensor-core GEMMs of the next, and K/V tiles multicast to pairs of
// CTAs. It is also what upstream Wan2.1 runs when the flash_attn_3 package is installed. We build only its
// head-dim-128, non-causal forward (engine/dit/cuda/flash3_*; bf16, and e4m3 for Note [FP8 attention] in
// attention_fp8.cpp), from flash-attention's own sources (CMake: WAN_FLASH_ATTN3_DIR, WAN_CUTLASS_DIR), and
// call it where it fits: a Hopper GPU, bf16 q/k/v, head dim 128, 16-byte aligned rows (its tiles move by TMA).
// Everything else goes to cuDNN as before.

namespace {

#if WAN_HAVE_FLASH3
/// The kernel's view of q, k, v ([B, S, H, d], bf16 or e4m3) and of out (bf16, q's shape) and lse ([B, H, Sq]
/// f32), on the current stream of q's device.
cuda::Flash3Problem flash3_problem(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, at::Tensor& out,
                                   at::Tensor& lse) {
    cuda::Flash3Problem p;
    p.q = q.data_ptr();
    p.k = k.data_ptr();
    p.v = v.data_ptr();
    p.out = out.data_ptr();
    p.lse = lse.data_ptr<float>();
    p.q_batch_stride = q.stride(0), p.q_row_stride = q.stride(1), p.q_head_stride = q.stride(2);
    p.k_batch_stride = k.stride(0), p.k_row_stride = k.stride(1), p.k_head_stride = k.stride(2);
    p.v_batch_stride = v.stride(0), p.v_row_stride = v.stride(1), p.v_head_stride = v.stride(2);
    p.out_batch_stride = out.stride(0), p.out_row_stride = out.stride(1), p.out_head_stride = out.stride(2);
    p.batch = static_cast<int>(q.size(0));
    p.seq_q = static_cast<int>(q.size(1));
    p.seq_k = static_cast<int>(k.size(1));
    p.heads = static_cast<int>(q.size(2));
    p.softmax_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))));
    p.num_sms = at::cuda::getDeviceProperties(q.get_device())->multiProcessorCount;
    p.stream = at::cuda::getCurrentCUDAStream(q.get_device()).stream();
    return p;
}

/// FlashAttention-3 on q, k, v that flash_attention3_misfit accepted: {O, lse}.
std::pair<at::Tensor, at::Tensor> flash3_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    const c10::cuda::CUDAGuard device_guard(q.device());  // the kernel reads the current device's properties
    at::Tensor out = at::empty(q.sizes(), q.options());
    at::Tensor lse = at::empty({q.size(0), q.size(2), q.size(1)}, q.options().dtype(at::kFloat));
    cuda::flash3_bf16_forward(flash3_problem(q, k, v, out, lse));
    return {out, lse};
}

#if WAN_TORCH_VERSION >= 201
/// FlashAttention-3's FP8 forward on bf16 q, k, v that flash_attention3_fp8_misfit accepted (Note [FP8 attention]).
at::Tensor flash3_fp8_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool subtract_k_mean) {
    const c10::cuda::CUDAGuard device_guard(q.device());
    const Fp8Heads q8 = detail::quantize_attention_heads_fp8(q, false),
                   k8 = detail::quantize_attention_heads_fp8(k, subtract_k_mean),
                   v8 = detail::quantize_attention_heads_fp8(v, false);
    at::Tensor out = at::empty(q.sizes(), q.options());  // bf16, contiguous
    at::Tensor lse = at::empty({q.size(0), q.size(2), q.size(1)}, q.options().dtype(at::kFloat));
    cuda::Flash3Problem p = flash3_problem(q8.codes, k8.codes, v8.codes, out, lse);
    p.q_descale = q8.scale.data_ptr<float>();
    p.k_descale = k8.scale.data_ptr<float>();
    p.v_descale = v8.scale.data_ptr<float>();
    cuda::flash3_e4m3_forward(p);
    return out;
}
#endif
#endif

/// Note [FP8 attention]'s kernel where it can run; else an undefined tensor, after saying once why (the caller
/// goes on in bf16).
at::Tensor try_fp8_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, AttentionFp8 mode,
                             AttentionBackend backend) {
    const bool fa3_allowed = backend == AttentionBackend::Auto || backend == AttentionBackend::FlashAttention3;
    const std::string why = fa3_allowed ? flash_attention3_fp8_misfit(q, k, v)
                                        : "WAN_ATTENTION asks for another kernel than FlashAttention-3";
#if WAN_HAVE_FLASH3 && WAN_TORCH_VERSION >= 201
    if (why.empty()) return flash3_fp8_attention(q, k, v, mode == AttentionFp8::KMean);
#else
    (void)mode;
#endif
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) WAN_LOG_WARN("FP8 attention cannot run here (%s); attention stays bf16", why.c_str());
    return {};
}

#if WAN_TORCH_VERSION < 200
// Exact softmax(Q·Kᵀ·scale)·V in f32, chunked over queries so that the score matrix stays ≤ 64 Mi floats.
at::Tensor math_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    const at::ScalarType out_dtype = q.scalar_type();
    const at::Tensor qh = q.to(at::kFloat).transpose(1, 2);  // [B, H, Sq, d]
    const at::Tensor kt = k.to(at::kFloat).permute({0, 2, 3, 1}); // [B, H, d, Sk]
    const at::Tensor vh = v.to(at::kFloat).transpose(1, 2);  // [B, H, Sk, d]
    const int64_t B = q.size(0), Sq = q.size(1), H = q.size(2), d = q.size(3), Sk = k.size(1);
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const int64_t budget = int64_t(1) << 26;
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(Sq, budget / std::max<int64_t>(1, B * H * Sk)));
    std::vector<at::Tensor> outs;
    for (int64_t s0 = 0; s0 < Sq; s0 += chunk) {
        const int64_t n = std::min(chunk, Sq - s0);
        at::Tensor scores = at::matmul(qh.narrow(2, s0, n), kt).mul_(scale);  // [B, H, n, Sk]
        at::Tensor p = at::softmax(scores, -1);
        outs.push_back(at::matmul(p, vh));                                 // [B, H, n, d]
    }
    at::Tensor o = outs.size() == 1 ? outs[0] : at::cat(outs, 2);
    return o.transpose(1, 2).to(out_dtype);  // [B, Sq, H, d]
}
#endif

}  // namespace

#if WAN_HAVE_FLASH3
namespace {
// What both FlashAttention-3 kernels need of bf16 q, k, v, their memory layout aside: empty when it fits.
std::string flash3_shape_misfit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    if (!q.is_cuda() || !k.is_cuda() || !v.is_cuda()) return "q, k and v must be CUDA tensors";
    if (q.get_device() != k.get_device() || q.get_device() != v.get_device()) return "q, k and v are on different GPUs";
    const auto* props = at::cuda::getDeviceProperties(q.get_device());
    if (props->major != 9) return "the kernel is built for Hopper (compute capability 9.0), not " + std::to_string(props->major) + "." + std::to_string(props->minor);
    if (q.scalar_type() != at::kBFloat16 || k.scalar_type() != at::kBFloat16 || v.scalar_type() != at::kBFloat16)
        return "q, k and v must be bf16";
    if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return "q, k and v must be [B, S, H, d]";
    if (q.size(3) != cuda::kFlash3HeadDim) return "head dim " + std::to_string(q.size(3)) + " (the built kernel has 128)";
    const int64_t int_max = std::numeric_limits<int>::max();
    if (q.size(1) > int_max || k.size(1) > int_max || q.size(0) * q.size(2) > int_max) return "sequence too long";
    return {};
}
}  // namespace
#endif

std::string flash_attention3_fp8_misfit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if WAN_HAVE_FLASH3 && WAN_TORCH_VERSION >= 201
    return flash3_shape_misfit(q, k, v);
#else
    (void)q, (void)k, (void)v;
    return "this build has no FlashAttention-3 FP8 kernel (a CUDA build with FlashAttention-3 and LibTorch >= 2.1)";
#endif
}

std::string flash_attention3_misfit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#if WAN_HAVE_FLASH3
    if (std::string why = flash3_shape_misfit(q, k, v); !why.empty()) return why;
    for (const at::Tensor* t : {&q, &k, &v}) {
        if (t->stride(3) != 1) return "the head dim must be contiguous";
        if (reinterpret_cast<uintptr_t>(t->data_ptr()) % 16 != 0) return "data not 16-byte aligned";
        for (int d = 0; d < 3; ++d)
            if (t->size(d) > 1 && t->stride(d) % 8 != 0) return "strides must be multiples of 8 elements";
    }
    return {};
#else
    (void)q, (void)k, (void)v;
    return "this build has no FlashAttention-3 (configure a CUDA build with WAN_FLASH_ATTN3_DIR and WAN_CUTLASS_DIR)";
#endif
}

std::optional<AttentionBackend> parse_attention_backend(const std::string& name) {
    if (name == "auto") return AttentionBackend::Auto;
    if (name == "fa3") return AttentionBackend::FlashAttention3;
    if (name == "cudnn") return AttentionBackend::CuDNN;
    if (name == "flash") return AttentionBackend::Flash;
    if (name == "sdpa") return AttentionBackend::Sdpa;
    return std::nullopt;
}

std::string attention_kernel_name(c10::Device device, AttentionBackend backend) {
    switch (backend) {
        case AttentionBackend::FlashAttention3: return "fa3";
        case AttentionBackend::CuDNN: return "cudnn";
        case AttentionBackend::Flash: return "flash";
        case AttentionBackend::Sdpa: return "sdpa";
        case AttentionBackend::Auto: break;
    }
    if (!device.is_cuda()) return "cpu";
    const at::Tensor probe = at::zeros({1, 128, 1, 128}, at::TensorOptions().device(device).dtype(at::kBFloat16));
    return flash_attention3_misfit(probe, probe, probe).empty() ? "fa3" : "cudnn";
}

std::pair<at::Tensor, at::Tensor> flash_attention3_with_lse(const at::Tensor& q, const at::Tensor& k,
                                                            const at::Tensor& v) {
#if WAN_HAVE_FLASH3
    if (flash_attention3_misfit(q, k, v).empty() && k.sizes() == v.sizes() && q.size(0) == k.size(0) &&
        q.size(2) == k.size(2))
        return flash3_attention(q, k, v);
#else
    (void)q, (void)k, (void)v;
#endif
    return {};
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t k_len,
                     AttentionBackend backend, AttentionFp8 fp8) {
    WAN_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
              "attention: q, k, v must be [B, S, H, d], got %s, %s, %s dims", std::to_string(q.dim()).c_str(),
              std::to_string(k.dim()).c_str(), std::to_string(v.dim()).c_str());
    WAN_CHECK(k.sizes() == v.sizes() && q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3),
              "attention: q/k/v shapes do not agree (batch, heads, head dim)");
    at::Tensor kk = k, vv = v;
    if (k_len >= 0 && k_len < k.size(1)) {
        WAN_CHECK(k_len > 0, "attention: key length must be positive");
        kk = k.narrow(1, 0, k_len);  // keys past k_len are padding (§4.5: k_lens = N)
        vv = v.narrow(1, 0, k_len);
    }
    if (fp8 != AttentionFp8::Off)
        if (at::Tensor o = try_fp8_attention(q, kk, vv, fp8, backend); o.defined()) return o;
    if (backend == AttentionBackend::FlashAttention3) {
        const std::string why = flash_attention3_misfit(q, kk, vv);
        WAN_CHECK(why.empty(), "attention: FlashAttention-3 cannot run this call: %s", why.c_str());
    }
#if WAN_TORCH_VERSION >= 200
    // SDPA wants [B, H, S, d]; the transposes are views and match the layout its kernels use internally.
    const at::ScalarType dt = q.scalar_type();
    const at::Tensor qt = q.transpose(1, 2), kt = kk.to(dt).transpose(1, 2), vt = vv.to(dt).transpose(1, 2);
#if WAN_TORCH_VERSION >= 205
    // See Note [Attention backend].
    const AttentionBackend chosen = backend;
#if WAN_HAVE_FLASH3
    if ((chosen == AttentionBackend::Auto || chosen == AttentionBackend::FlashAttention3) && q.is_cuda() &&
        flash_attention3_misfit(q, kk, vv).empty())
        return flash3_attention(q, kk, vv).first;
#endif
    static std::atomic<bool> cudnn_broken{false};
    if (q.is_cuda() && (dt == at::kBFloat16 || dt == at::kHalf) && q.size(3) <= 128 &&
        (chosen == AttentionBackend::Auto || chosen == AttentionBackend::FlashAttention3 ||
         chosen == AttentionBackend::CuDNN) &&
        !cudnn_broken.load()) {
        try {
            auto r = at::_scaled_dot_product_cudnn_attention(qt, kt, vt, c10::nullopt, /*compute_log_sumexp=*/false);
            return std::get<0>(r).transpose(1, 2);  // [B, Sq, H, d]
        } catch (const std::exception& e) {
            cudnn_broken = true;
            WAN_LOG_WARN("cuDNN attention is not available here (%s); using PyTorch's SDPA backend choice",
                         std::string(e.what()).substr(0, 200).c_str());
        }
    }
    if (chosen == AttentionBackend::Flash && q.is_cuda()) {
        auto r = at::_scaled_dot_product_flash_attention(qt, kt, vt);
        return std::get<0>(r).transpose(1, 2);
    }
#endif
    at::Tensor o = at::scaled_dot_product_attention(qt, kt, vt);
    return o.transpose(1, 2);  // [B, Sq, H, d]
#else
    return math_attention(q, kk, vv);
#endif
}

// ---- sequence chunks ----------------------------------------------------------------------------------

SequenceChunk sequence_chunk(int64_t seq_len, int world, int rank) {
    WAN_CHECK(world >= 1 && rank >= 0 && rank < world, "sequence parallel: rank %d is not in a world of %d", rank,
              world);
    WAN_CHECK(seq_len >= 1, "sequence parallel: seq_len must be positive (got %lld)", static_cast<long long>(seq_len));
    SequenceChunk c;
    c.padded_len = (seq_len + world - 1) / world * world;
    c.chunk_len = c.padded_len / world;
    c.begin = static_cast<int64_t>(rank) * c.chunk_len;
    return c;
}

at::Tensor split_sequence(const at::Tensor& x, const SequenceChunk& chunk) {
    WAN_CHECK(x.dim() == 3, "split_sequence: expected [B, S, C], got %lld dims", static_cast<long long>(x.dim()));
    WAN_CHECK(x.size(1) <= chunk.padded_len, "split_sequence: %lld rows do not fit the padded length %lld",
              static_cast<long long>(x.size(1)), static_cast<long long>(chunk.padded_len));
    const int64_t end = chunk.begin + chunk.chunk_len;
    const int64_t real_end = std::min(end, x.size(1));
    if (real_end == end) return x.narrow(1, chunk.begin, chunk.chunk_len).contiguous();
    at::Tensor out = at::zeros({x.size(0), chunk.chunk_len, x.size(2)}, x.options());
    if (real_end > chunk.begin)
        out.narrow(1, 0, real_end - chunk.begin).copy_(x.narrow(1, chunk.begin, real_end - chunk.begin));
    return out;
}

// ---- RoPE ---------------------------------------------------------------------------------------------

namespace {

// Inverse frequencies of one axis with `dim` real dims: 1 / 10000^(2j/dim), j < dim/2, f64. Ref: §4.6.
at::Tensor inv_freq(int64_t dim) {
    at::Tensor j2 = at::arange(0, dim, 2, at::TensorOptions().dtype(at::kDouble));
    return at::pow(10000.0, j2.div(static_cast<double>(dim))).reciprocal();
}

}  // namespace

RopeTables rope_tables(const std::vector<Grid>& grids, int64_t head_dim, int64_t rows, int64_t row_offset,
                       at::ScalarType dtype, c10::Device device) {
    WAN_CHECK(head_dim >= 6 && head_dim % 2 == 0, "rope_tables: head dim %lld must be even and ≥ 6",
              static_cast<long long>(head_dim));
    WAN_CHECK(rows >= 0 && row_offset >= 0, "rope_tables: negative row range");
    const int64_t d6 = head_dim / 6;
    const int64_t dim_f = head_dim - 4 * d6, dim_hw = 2 * d6;  // real dims per axis (44/42/42 for d = 128)
    const at::Tensor inv_f = inv_freq(dim_f), inv_h = inv_freq(dim_hw), inv_w = inv_freq(dim_hw);
    const auto f64 = at::TensorOptions().dtype(at::kDouble);
    const int64_t half = head_dim / 2;
    std::vector<at::Tensor> cos_b, sin_b;
    for (const Grid& g : grids) {
        WAN_CHECK(g.f >= 1 && g.h >= 1 && g.w >= 1 && g.f <= 1024 && g.h <= 1024 && g.w <= 1024,
                  "rope_tables: grid %lldx%lldx%lld outside the 1..1024 range of the rotary tables",
                  static_cast<long long>(g.f), static_cast<long long>(g.h), static_cast<long long>(g.w));
        // Angles θ = position · inverse frequency (f64, as torch.outer in upstream rope_params).
        at::Tensor af = at::outer(at::arange(g.f, f64), inv_f).view({g.f, 1, 1, -1}).expand({g.f, g.h, g.w, -1});
        at::Tensor ah = at::outer(at::arange(g.h, f64), inv_h).view({1, g.h, 1, -1}).expand({g.f, g.h, g.w, -1});
        at::Tensor aw = at::outer(at::arange(g.w, f64), inv_w).view({1, 1, g.w, -1}).expand({g.f, g.h, g.w, -1});
        at::Tensor ang = at::cat({af, ah, aw}, -1).reshape({g.tokens(), half});  // [N, d/2]
        // Rows [row_offset, row_offset + rows): real tokens, then identity rotation for padding rows.
        at::Tensor c = at::ones({rows, half}, f64), s = at::zeros({rows, half}, f64);
        const int64_t real_end = std::min(g.tokens(), row_offset + rows);
        if (real_end > row_offset) {
            at::Tensor a = ang.narrow(0, row_offset, real_end - row_offset);
            c.narrow(0, 0, real_end - row_offset).copy_(at::cos(a));
            s.narrow(0, 0, real_end - row_offset).copy_(at::sin(a));
        }
        // Pair layout: cos duplicated, sin as (−sin, +sin) so that rope(x) = x·cos + swap_pairs(x)·sin.
        cos_b.push_back(at::stack({c, c}, -1).reshape({rows, 1, head_dim}));
        sin_b.push_back(at::stack({s.neg(), s}, -1).reshape({rows, 1, head_dim}));
    }
    RopeTables t;
    t.cos = at::stack(cos_b, 0).to(device, dtype);  // [B, rows, 1, d]
    t.sin = at::stack(sin_b, 0).to(device, dtype);
    return t;
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTables& tables) {
    WAN_CHECK(x.dim() == 4 && x.size(-1) % 2 == 0, "apply_rope: expected [B, S, H, d] with even d");
    WAN_CHECK(tables.cos.size(0) == x.size(0) && tables.cos.size(1) == x.size(1) && tables.cos.size(3) == x.size(3),
              "apply_rope: tables %s do not fit x %s", std::to_string(tables.cos.size(1)).c_str(),
              std::to_string(x.size(1)).c_str());
    const at::Tensor xc = x.to(tables.cos.scalar_type());  // [B, S, H, d]
    const auto sizes = xc.sizes().vec();
    // (a + ib)(c + is) = (a·c − b·s) + i(b·c + a·s): products and sums identical to the complex multiply.
    at::Tensor swapped = xc.reshape({sizes[0], sizes[1], sizes[2], sizes[3] / 2, 2}).flip({-1}).reshape(sizes);
    return xc * tables.cos + swapped * tables.sin;
}

}  // namespace wan::dit
