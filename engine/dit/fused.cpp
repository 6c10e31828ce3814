#include "dit/fused.h"
#include "dit/internal.h"

#include "core/core.h"

#include <ATen/ATen.h>
#if WAN_HAVE_FUSED_KERNELS
#include "dit/cuda/fused_kernels.h"

#include <ATen/cuda/CUDAContext.h>
#endif

#include <cstdint>
#include <string>

namespace wan::dit::fused {

bool available(c10::Device device) {
#if WAN_HAVE_FUSED_KERNELS
    return device.is_cuda();
#else
    (void)device;
    return false;
#endif
}

#if WAN_HAVE_FUSED_KERNELS
at::Tensor rmsnorm_rope(const at::Tensor& x_in, const at::Tensor& w, const RopeTables* rope, int64_t heads, double eps) {
    // Rows may be strided (a narrow of [B, S, 3D]) as long as each row is contiguous and rows are evenly spaced.
    const bool rows_ok = x_in.dim() == 3 && x_in.stride(2) == 1 && x_in.stride(0) == x_in.size(1) * x_in.stride(1);
    const at::Tensor x = rows_ok ? x_in : x_in.contiguous();
    const long row_stride = static_cast<long>(x.stride(1));
    WAN_CHECK(x.scalar_type() == at::kBFloat16 && w.scalar_type() == at::kFloat && x.dim() == 3,
              "fused rmsnorm_rope: expected bf16 [B, S, D] and an f32 weight");
    const int64_t B = x.size(0), S = x.size(1), D = x.size(2), d = D / heads;
    at::Tensor out = at::empty({B, S, heads, d}, x.options());
    at::Tensor cos_t, sin_t;
    if (rope) {
        cos_t = rope->cos.contiguous();
        sin_t = rope->sin.contiguous();
        WAN_CHECK(cos_t.scalar_type() == at::kFloat && cos_t.numel() == B * S * d, "fused rmsnorm_rope: rope tables must be f32 [B, S, 1, d]");
    }
    const at::Tensor wc = w.contiguous();
    cuda::rmsnorm_rope(x.data_ptr(), row_stride, wc.data_ptr<float>(), rope ? cos_t.data_ptr<float>() : nullptr,
                       rope ? sin_t.data_ptr<float>() : nullptr, out.data_ptr(), static_cast<long>(B * S),
                       static_cast<int>(D), static_cast<int>(d), static_cast<float>(eps),
                       at::cuda::getCurrentCUDAStream(x.device().index()));
    return out;
}

namespace {
bool aligned(const at::Tensor& t, uintptr_t n) {
    return !t.defined() || (reinterpret_cast<uintptr_t>(t.data_ptr()) % n) == 0;
}

// The operands of one row-norm launch, checked and laid out as the kernel reads them.
struct RowNormArgs {
    int64_t B = 0, S = 0, D = 0;
    at::Tensor y, g, p0, p1;  // y and g undefined when there is no residual update / no gate
    bool vectorisable = false;  // width and alignment fit the register-row kernel
};

RowNormArgs row_norm_args(const at::Tensor& x, const at::Tensor& y_in, const at::Tensor& gate, const at::Tensor& p0_in,
                          const at::Tensor& p1_in, bool affine) {
    WAN_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() == 3,
              "fused layernorm: x must be contiguous f32 [B, S, D]");
    RowNormArgs r;
    r.B = x.size(0), r.S = x.size(1), r.D = x.size(2);
    r.y = y_in.defined() ? y_in.to(at::kBFloat16).contiguous() : at::Tensor();
    WAN_CHECK(!r.y.defined() || r.y.sizes() == x.sizes(), "fused layernorm: the residual update must match x");
    r.g = r.y.defined() && gate.defined() ? gate.reshape({r.B, r.D}).contiguous() : at::Tensor();
    r.p0 = affine ? p0_in.contiguous() : p0_in.reshape({r.B, r.D}).contiguous();
    r.p1 = affine ? p1_in.contiguous() : p1_in.reshape({r.B, r.D}).contiguous();
    WAN_CHECK(r.p0.scalar_type() == at::kFloat && r.p1.scalar_type() == at::kFloat &&
                  (!r.g.defined() || r.g.scalar_type() == at::kFloat),
              "fused layernorm: gate and norm parameters must be f32");
    r.vectorisable = cuda::residual_norm_supported(static_cast<int>(r.D)) && aligned(x, 16) && aligned(r.y, 8) &&
                     aligned(r.g, 16) && aligned(r.p0, 16) && aligned(r.p1, 16);
    return r;
}

void launch_row_norm(at::Tensor& x, const RowNormArgs& r, bool affine, cuda::RowNormOut kind, void* out,
                     float* row_scale, double eps) {
    cuda::residual_layernorm(x.data_ptr<float>(), r.y.defined() ? r.y.data_ptr() : nullptr,
                             r.g.defined() ? r.g.data_ptr<float>() : nullptr, r.p0.data_ptr<float>(),
                             r.p1.data_ptr<float>(), affine, kind, out, row_scale, static_cast<long>(r.B * r.S),
                             static_cast<int>(r.D), static_cast<long>(r.S), static_cast<float>(eps),
                             at::cuda::getCurrentCUDAStream(x.device().index()));
}

// x += y (· gate) when y is defined, then the LayerNorm of the new x, modulated or affine: one pass
// (Note [Row kernels in registers]). Odd widths or misaligned views take ATen ops with the same arithmetic.
at::Tensor residual_layernorm(at::Tensor& x, const at::Tensor& y_in, const at::Tensor& gate, const at::Tensor& p0_in,
                              const at::Tensor& p1_in, bool affine, cuda::RowNormOut out_kind, double eps) {
    const RowNormArgs r = row_norm_args(x, y_in, gate, p0_in, p1_in, affine);
    const bool f32_out = out_kind == cuda::RowNormOut::F32;
    at::Tensor out = at::empty({r.B, r.S, r.D}, x.options().dtype(f32_out ? at::kFloat : at::kBFloat16));
    if (!r.vectorisable || !aligned(out, 16)) {
        if (r.g.defined()) x.add_(r.y.to(at::kFloat) * r.g.view({r.B, 1, r.D}));
        else if (r.y.defined()) x.add_(r.y);
        at::Tensor n = affine ? at::layer_norm(x, {r.D}, r.p0, r.p1, eps) : at::layer_norm(x, {r.D}, {}, {}, eps);
        if (out_kind == cuda::RowNormOut::BF16RoundedNorm) n = n.to(at::kBFloat16).to(at::kFloat);
        if (!affine) n = n * (1 + r.p0.view({r.B, 1, r.D})) + r.p1.view({r.B, 1, r.D});
        return n.to(out.scalar_type());
    }
    launch_row_norm(x, r, affine, out_kind, out.data_ptr(), nullptr, eps);
    return out;
}
}  // namespace

at::Tensor layernorm_modulate(const at::Tensor& x_in, const at::Tensor& scale, const at::Tensor& shift, double eps,
                              bool round_norm_bf16) {
    at::Tensor x = x_in.contiguous();
    return residual_layernorm(x, at::Tensor(), at::Tensor(), scale, shift, /*affine=*/false,
                              round_norm_bf16 ? cuda::RowNormOut::BF16RoundedNorm : cuda::RowNormOut::BF16, eps);
}

at::Tensor layernorm_affine(const at::Tensor& x_in, const at::Tensor& w, const at::Tensor& b, double eps) {
    WAN_CHECK(x_in.dim() == 3, "fused layernorm_affine: expected [B, S, D]");
    at::Tensor x = x_in.contiguous();
    return residual_layernorm(x, at::Tensor(), at::Tensor(), w, b, /*affine=*/true, cuda::RowNormOut::BF16, eps);
}

at::Tensor add_layernorm_modulate_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& scale,
                                   const at::Tensor& shift, double eps) {
    return residual_layernorm(x, y, gate, scale, shift, /*affine=*/false, cuda::RowNormOut::BF16, eps);
}

at::Tensor add_layernorm_affine_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& w,
                                 const at::Tensor& b, double eps) {
    return residual_layernorm(x, y, gate, w, b, /*affine=*/true, cuda::RowNormOut::BF16, eps);
}

at::Tensor add_layernorm_modulate_f32_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate,
                                       const at::Tensor& scale, const at::Tensor& shift, double eps) {
    return residual_layernorm(x, y, gate, scale, shift, /*affine=*/false, cuda::RowNormOut::F32, eps);
}

#if WAN_TORCH_VERSION >= 201
Fp8Rows layernorm_fp8_(at::Tensor& x, const at::Tensor& y, const at::Tensor& gate, const at::Tensor& p0,
                       const at::Tensor& p1, bool affine, bool round_norm_bf16, double eps) {
    const RowNormArgs r = row_norm_args(x, y, gate, p0, p1, affine);
    WAN_CHECK(r.vectorisable, "fused layernorm_fp8_: unsupported width %lld or misaligned inputs",
              static_cast<long long>(r.D));
    Fp8Rows q;
    q.q = at::empty({r.B * r.S, r.D}, x.options().dtype(at::kFloat8_e4m3fn));
    q.scale = at::empty({r.B * r.S, 1}, x.options());
    launch_row_norm(x, r, affine, round_norm_bf16 ? cuda::RowNormOut::FP8RoundedNorm : cuda::RowNormOut::FP8,
                    q.q.data_ptr(), q.scale.data_ptr<float>(), eps);
    return q;
}

Fp8Rows quantize_rows_fp8(const at::Tensor& a_in, bool gelu) {
    const int64_t K = a_in.size(-1);
    const at::Tensor a = a_in.to(at::kBFloat16).reshape({-1, K}).contiguous();
    WAN_CHECK(cuda::quantize_rows_supported(static_cast<int>(K)) && aligned(a, 16),
              "fused quantize_rows_fp8: rows of %lld (need a multiple of 8, at most 32768)",
              static_cast<long long>(K));
    Fp8Rows r;
    r.q = at::empty({a.size(0), K}, a.options().dtype(at::kFloat8_e4m3fn));
    r.scale = at::empty({a.size(0), 1}, a.options().dtype(at::kFloat));
    cuda::quantize_rows_fp8(a.data_ptr(), r.q.data_ptr(), r.scale.data_ptr<float>(), static_cast<long>(a.size(0)),
                            static_cast<int>(K), gelu, at::cuda::getCurrentCUDAStream(a.device().index()));
    return r;
}
#else
Fp8Rows layernorm_fp8_(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, bool,
                       bool, double) {
    WAN_THROW("FP8 activations need LibTorch >= 2.1");
}
Fp8Rows quantize_rows_fp8(const at::Tensor&, bool) { WAN_THROW("FP8 activations need LibTorch >= 2.1"); }
#endif

bool heads_fp8_supported(const at::Tensor& x) {
    if (!available(x.device()) || x.scalar_type() != at::kBFloat16 || x.dim() != 4) return false;
    if (x.stride(3) != 1 || x.stride(2) != x.size(3) || !aligned(x, 16)) return false;
    if (x.stride(1) % 8 != 0 || (x.size(0) > 1 && x.stride(0) % 8 != 0)) return false;
    return x.size(1) > 0 && cuda::quantize_heads_supported(static_cast<int>(x.size(2)), static_cast<int>(x.size(3)));
}

Fp8Heads quantize_heads_fp8(const at::Tensor& x, bool subtract_mean) {
    WAN_CHECK(heads_fp8_supported(x), "fused quantize_heads_fp8: x %s is not a bf16 CUDA tensor with contiguous heads",
              detail::shape_string(x.sizes()).c_str());
    const int64_t B = x.size(0), S = x.size(1), H = x.size(2), d = x.size(3);
    Fp8Heads r;
    r.codes = at::empty({B, S, H, d}, x.options().dtype(at::kByte));
    r.scale = at::empty({B, H}, x.options().dtype(at::kFloat));
    const at::Tensor amax_bits = at::zeros({B, H}, x.options().dtype(at::kInt));
    const at::Tensor sums = subtract_mean ? at::zeros({B, H * d}, x.options().dtype(at::kFloat)) : at::Tensor();
    cuda::quantize_heads_fp8(x.data_ptr(), static_cast<long>(x.stride(0)), static_cast<long>(x.stride(1)),
                             static_cast<int>(B), static_cast<long>(S), static_cast<int>(H), static_cast<int>(d),
                             r.codes.data_ptr(), r.scale.data_ptr<float>(), amax_bits.data_ptr<int>(),
                             subtract_mean ? sums.data_ptr<float>() : nullptr,
                             at::cuda::getCurrentCUDAStream(x.device().index()));
    return r;
}

at::Tensor linear_gelu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
#if WAN_TORCH_VERSION >= 200
    const int64_t K = x.size(-1);
    const at::Tensor x2 = x.reshape({-1, K});
    at::Tensor h = at::_addmm_activation(b.to(w.scalar_type()), x2.to(w.scalar_type()), w.t(), 1, 1, /*use_gelu=*/true);
    auto shape = x.sizes().vec();
    shape.back() = w.size(0);
    return h.view(shape);
#else
    at::Tensor h = at::linear(x.to(w.scalar_type()), w, b);
    at::gelu_(h, "tanh");
    return h;
#endif
}

void gated_residual_(at::Tensor& x, const at::Tensor& y_in, const at::Tensor& gate) {
    WAN_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() == 3,
              "fused gated_residual_: x must be contiguous f32 [B, S, D]");
    const at::Tensor y = y_in.to(at::kBFloat16).contiguous();
    const int64_t B = x.size(0), S = x.size(1), D = x.size(2);
    const at::Tensor g = gate.reshape({B, D}).contiguous();
    cuda::gated_residual(x.data_ptr<float>(), y.data_ptr(), g.data_ptr<float>(), static_cast<long>(B * S),
                         static_cast<int>(D), static_cast<long>(S), at::cuda::getCurrentCUDAStream(x.device().index()));
}
#else
at::Tensor rmsnorm_rope(const at::Tensor&, const at::Tensor&, const RopeTables*, int64_t, double) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
at::Tensor layernorm_modulate(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, bool) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
at::Tensor layernorm_affine(const at::Tensor&, const at::Tensor&, const at::Tensor&, double) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
void gated_residual_(at::Tensor&, const at::Tensor&, const at::Tensor&) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
at::Tensor add_layernorm_modulate_(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                   const at::Tensor&, double) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
at::Tensor add_layernorm_affine_(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                 const at::Tensor&, double) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
at::Tensor add_layernorm_modulate_f32_(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       const at::Tensor&, double) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
at::Tensor linear_gelu(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
bool heads_fp8_supported(const at::Tensor&) { return false; }
Fp8Heads quantize_heads_fp8(const at::Tensor&, bool) { WAN_THROW("fused kernels are not built (CUDA only)"); }
Fp8Rows layernorm_fp8_(at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, bool,
                       bool, double) {
    WAN_THROW("fused kernels are not built (CUDA only)");
}
Fp8Rows quantize_rows_fp8(const at::Tensor&, bool) { WAN_THROW("fused kernels are not built (CUDA only)"); }
#endif

}  // namespace wan::dit::fused
