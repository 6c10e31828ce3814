// The block's kernels: the op-by-op ATen path, the fused CUDA kernels and the fused kernels with FP8 GEMMs
// (kernels.h). Each method is the same arithmetic as the others, with the dtype flow of upstream (§4.4, §4.8).
#include "dit/kernels.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <utility>

namespace wan::dit::detail {

void ResidualStream::flush() {
    if (!pending_y.defined()) return;
    fused::gated_residual_(x, pending_y, pending_gate);
    pending_y = pending_gate = at::Tensor();
}

GemmInput GemmInput::row_range(int64_t begin, int64_t count) const {
    GemmInput r;
    if (fp8.q.defined()) {  // [M, K] codes, [M, 1] scales
        r.fp8.q = fp8.q.narrow(0, begin, count);
        r.fp8.scale = fp8.scale.narrow(0, begin, count);
    } else {
        r.rows = rows.reshape({-1, rows.size(-1)}).narrow(0, begin, count);
    }
    return r;
}

// ---- GEMMs ------------------------------------------------------------------------------------------------

// Note [FP8 linears]: with ModelOptions::fp8 the big block GEMMs run on Hopper's FP8 tensor cores:
// weights quantised once per output channel (scale = amax/448), activations per token at each call,
// bf16 output with the bias added by cuBLASLt. Derived tensors are cached only for resident weights.

at::Tensor Linears::values(const at::Tensor& w, const at::Tensor& ws) const {
    return ws.defined() ? dequantize_fp8(w, ws, cd_) : w;
}

at::Tensor Linears::gemm(const at::Tensor& in, const at::Tensor& wt, const at::Tensor& ws, const at::Tensor& b) {
#if WAN_TORCH_VERSION >= 205
    if (fp8_ && !fp8_broken()) {
        std::vector<int64_t> lead = in.sizes().vec();
        lead.pop_back();
        if (fused_quantise_ && in.size(-1) % 8 == 0)  // one pass: amax, scale, cast
            return gemm_fp8(fused::quantize_rows_fp8(in, /*gelu=*/false), wt, ws, b, lead);
        const at::Tensor x2 = in.reshape({-1, in.size(-1)});
        fused::Fp8Rows a;
        a.scale = x2.abs().amax(1, true).to(at::kFloat).clamp_min(1e-12) / 448.0;  // [M, 1]
        a.q = (x2 / a.scale).to(at::kFloat8_e4m3fn);
        return gemm_fp8(a, wt, ws, b, lead);
    }
#endif
    return linear(in, values(wt, ws), b);
}

at::Tensor Linears::gemm(const GemmInput& in, const at::Tensor& w, const at::Tensor& ws, const at::Tensor& b,
                         const std::vector<int64_t>& lead) {
    return in.fp8.q.defined() ? gemm_fp8(in.fp8, w, ws, b, lead) : gemm(in.rows, w, ws, b);
}

#if WAN_TORCH_VERSION >= 205
// Held fp8 codes are used as they are (a view; their scales are per row already); bf16 weights are quantised
// once and cached (resident blocks only: choose_kernels).
DerivedWeights::Fp8Weight Linears::fp8_weight(const at::Tensor& wt, const at::Tensor& ws) {
    if (ws.defined()) return {wt.view(at::kFloat8_e4m3fn), ws.view({1, -1})};
    std::lock_guard<std::mutex> lock(derived_.mu);
    auto it = derived_.fp8.find(wt.data_ptr());
    if (it == derived_.fp8.end()) {
        at::Tensor wf = wt.to(at::kFloat);
        at::Tensor sc = wf.abs().amax(1, true).clamp_min(1e-12) / 448.0;  // [N, 1]
        it = derived_.fp8.emplace(wt.data_ptr(), DerivedWeights::Fp8Weight{(wf / sc).to(at::kFloat8_e4m3fn),
                                                                            sc.t().contiguous()}).first;
    }
    return it->second;
}
#endif

// On rows already quantised (a.q [M, K] e4m3, a.scale [M, 1]): bf16 [lead..., N]. Falls back to the
// dequantised bf16 GEMM (and FP8 off from then on) where cuBLASLt refuses.
at::Tensor Linears::gemm_fp8(const fused::Fp8Rows& a, const at::Tensor& wt, const at::Tensor& ws, const at::Tensor& b,
                             std::vector<int64_t> shape) {
    shape.push_back(wt.size(0));
#if WAN_TORCH_VERSION >= 205
    if (!fp8_broken()) {
        try {
            const DerivedWeights::Fp8Weight fw = fp8_weight(wt, ws);
            const at::Tensor y = at::_scaled_mm(a.q, fw.w8.t(), a.scale, fw.scale, b.to(at::kBFloat16), c10::nullopt,
                                                at::kBFloat16, /*use_fast_accum=*/true);
            return y.view(shape);
        } catch (const std::exception& e) {
            derived_.fp8_broken = true;
            WAN_LOG_WARN("FP8 linears are not available here (%s); using bf16", std::string(e.what()).substr(0, 200).c_str());
        }
    }
#endif
    return linear((a.q.to(at::kFloat) * a.scale).to(cd_), values(wt, ws), b).view(shape);
}

// A view where q, k, v are consecutive thirds of one buffer (Note [Packed QKV weights] in params.cpp), else
// their concatenation, cached for resident blocks.
at::Tensor Linears::packed_qkv(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
    if (!q.defined()) return {};
    const int64_t bytes = static_cast<int64_t>(q.nbytes());
    const auto* base = static_cast<const char*>(q.data_ptr());
    if (q.is_contiguous() && k.is_contiguous() && v.is_contiguous() && k.sizes() == q.sizes() &&
        v.sizes() == q.sizes() && k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type() &&
        q.storage().is_alias_of(k.storage()) && q.storage().is_alias_of(v.storage()) &&
        static_cast<const char*>(k.data_ptr()) == base + bytes &&
        static_cast<const char*>(v.data_ptr()) == base + 2 * bytes) {
        std::vector<int64_t> sizes = q.sizes().vec();
        sizes[0] *= 3;
        return q.as_strided(sizes, q.strides());
    }
    if (!resident_) return at::cat({q, k, v}, 0);
    std::lock_guard<std::mutex> lock(derived_.mu);
    auto it = derived_.packed.find(q.data_ptr());
    if (it == derived_.packed.end()) it = derived_.packed.emplace(q.data_ptr(), at::cat({q, k, v}, 0)).first;
    return it->second;
}

namespace {

std::vector<int64_t> lead_of(const ForwardContext& f) { return {f.B, f.s_local}; }

/// x += u, in place once x is f32 (the same sums as x + u, without a second copy of the stream); the bf16
/// stream of block 0 (mixed precision) becomes a new f32 tensor, as upstream's promotion does.
void add_residual(ResidualStream& s, const at::Tensor& u) {
    if (s.x.scalar_type() == at::kFloat) s.x.add_(u);
    else s.x = s.x + u;
}

// ---- the op-by-op path ----------------------------------------------------------------------------------

/// ATen ops in upstream's order (the CPU path, and CUDA without the fused kernels). GEMMs that upstream
/// runs under autocast go through linear(); the ones FP8 may take go through Linears::gemm.
class PlainKernels final : public BlockKernels {
public:
    explicit PlainKernels(Linears linears) : BlockKernels(std::move(linears), /*fused=*/false) {}

    void begin_block(ResidualStream& s) override { s.flush(); }

    GemmInput norm1(ResidualStream& s, const Modulation& m, const ForwardContext& f) override {
        at::Tensor n1 = layer_norm(s.x, f.D, f.eps);
        if (s.x.scalar_type() != at::kFloat) n1 = n1.to(s.x.scalar_type()).to(at::kFloat);  // block 0 (mixed)
        // [B, s, D] f32, cast once for the three GEMMs (autocast casts it per Linear: same values).
        return {(n1 * (1 + m.scale_msa()) + m.shift_msa()).to(f.cd), {}};
    }

    Qkv self_qkv(const GemmInput& a, const AttentionWeights& sa, const ForwardContext& f) override {
        // q/k after RMS norm (f32) → RoPE → f32 → attention dtype, as upstream's rope_apply(...).float() (§4.5).
        auto rope_qk = [&](const at::Tensor& n) {  // n: [B, s, D] f32
            return apply_rope(n.view({f.B, f.s_local, f.H, f.d}), f.rope).to(at::kFloat).to(f.cd);
        };
        Qkv r;
        r.q = rope_qk(rms_norm(linear(a.rows, sa.q_weight, sa.q_bias), sa.norm_q_weight, f.eps));  // [B,s,H,d]
        r.k = rope_qk(rms_norm(linear(a.rows, sa.k_weight, sa.k_bias), sa.norm_k_weight, f.eps));
        r.v = linear(a.rows, sa.v_weight, sa.v_bias).view({f.B, f.s_local, f.H, f.d});
        return r;
    }

    void add_gated(ResidualStream& s, const at::Tensor& y, const at::Tensor& gate) override {
        add_residual(s, y * gate);  // f32 from here on
    }

    GemmInput norm3(ResidualStream& s, const BlockWeights& w, const ForwardContext& f) override {
        return {at::layer_norm(s.x, {f.D}, w.norm3_weight, w.norm3_bias, f.eps), {}};  // f32
    }

    at::Tensor cross_query(const GemmInput& in, const AttentionWeights& ca, const ForwardContext& f) override {
        return rms_norm(linear(in.rows, ca.q_weight, ca.q_bias), ca.norm_q_weight, f.eps)
            .view({f.B, f.s_local, f.H, f.d})
            .to(f.cd);
    }

    void add_cross_attention(ResidualStream& s, const at::Tensor& o, const AttentionWeights& ca) override {
        add_residual(s, linear(o, ca.o_weight, ca.o_bias));
    }

    GemmInput norm2(ResidualStream& s, const Modulation& m, const ForwardContext& f) override {
        return {layer_norm(s.x, f.D, f.eps) * (1 + m.scale_ffn()) + m.shift_ffn(), {}};
    }

    at::Tensor ffn_layers(const GemmInput& in, const BlockWeights& w, const std::vector<int64_t>& /*lead*/,
                          const ForwardContext& f) override {
        const at::Tensor h = at::gelu(linears_.gemm(in.rows, w.ffn0_weight, w.ffn0_scale, w.ffn0_bias), "tanh");
        f.clock.mark("ffn0_gemm_gelu");
        return linears_.gemm(h, w.ffn2_weight, w.ffn2_scale, w.ffn2_bias);
    }

    at::Tensor head_input(ResidualStream& s, const at::Tensor& scale, const at::Tensor& shift,
                          const ForwardContext& f) override {
        s.flush();
        return layer_norm(s.x, f.D, f.eps) * (1 + scale) + shift;
    }
};

// ---- the fused path -----------------------------------------------------------------------------------

/// The fused CUDA kernels (Note [Fused block kernels]): one GEMM for q, k and v; each residual update is
/// left pending and added by the norm that follows it, in one pass over x.
class FusedKernels : public BlockKernels {
public:
    explicit FusedKernels(Linears linears) : BlockKernels(std::move(linears), /*fused=*/true) {}

    void begin_block(ResidualStream& s) override {
        // The patch embedding makes the stream contiguous f32 and every kernel keeps it so.
        WAN_CHECK(s.x.scalar_type() == at::kFloat && s.x.is_contiguous(),
                  "DiT forward: the fused path needs a contiguous f32 residual stream");
    }

    GemmInput norm1(ResidualStream& s, const Modulation& m, const ForwardContext& f) override {
        GemmInput a;
        a.rows = s.pending_y.defined()
                     ? fused::add_layernorm_modulate_(s.x, s.pending_y, s.pending_gate, m.scale_msa(), m.shift_msa(), f.eps)
                     : fused::layernorm_modulate(s.x, m.scale_msa(), m.shift_msa(), f.eps, s.bf16_values);  // bf16
        s.pending_y = s.pending_gate = at::Tensor();
        return a;
    }

    Qkv self_qkv(const GemmInput& a, const AttentionWeights& sa, const ForwardContext& f) override {
        if (f.lean) return separate_qkv(a, sa, f);
        // One GEMM for q, k and v (better use of the GPU at D = 1536) against their packed weights.
        const at::Tensor wqkv = linears_.packed_qkv(sa.q_weight, sa.k_weight, sa.v_weight);
        const at::Tensor bqkv = linears_.packed_qkv(sa.q_bias, sa.k_bias, sa.v_bias);
        const at::Tensor sqkv = linears_.packed_qkv(sa.q_scale, sa.k_scale, sa.v_scale);
        const at::Tensor qkv = linears_.gemm(a, wqkv, sqkv, bqkv, lead_of(f));  // [B, s, 3D]
        f.clock.mark("qkv_gemm");
        Qkv r;
        r.q = fused::rmsnorm_rope(qkv.narrow(2, 0, f.D), sa.norm_q_weight, &f.rope, f.H, f.eps);  // [B,s,H,d]
        r.k = fused::rmsnorm_rope(qkv.narrow(2, f.D, f.D), sa.norm_k_weight, &f.rope, f.H, f.eps);
        r.v = qkv.narrow(2, 2 * f.D, f.D).view({f.B, f.s_local, f.H, f.d});
        f.clock.mark("qk_norm_rope");
        return r;
    }

    /// Lean activations: a GEMM each, so that v is a [B, s, D] tensor of its own and each GEMM output of q and k
    /// is gone once normed (the packed [B, s, 3D] output would live as long as v does).
    Qkv separate_qkv(const GemmInput& a, const AttentionWeights& sa, const ForwardContext& f) {
        Qkv r;
        r.q = fused::rmsnorm_rope(linears_.gemm(a, sa.q_weight, sa.q_scale, sa.q_bias, lead_of(f)), sa.norm_q_weight,
                                  &f.rope, f.H, f.eps);
        r.k = fused::rmsnorm_rope(linears_.gemm(a, sa.k_weight, sa.k_scale, sa.k_bias, lead_of(f)), sa.norm_k_weight,
                                  &f.rope, f.H, f.eps);
        r.v = linears_.gemm(a, sa.v_weight, sa.v_scale, sa.v_bias, lead_of(f)).view({f.B, f.s_local, f.H, f.d});
        f.clock.mark("qkv_gemm_norm_rope");
        return r;
    }

    void add_gated(ResidualStream& s, const at::Tensor& y, const at::Tensor& gate) override {
        s.pending_y = y;  // applied by the next norm
        s.pending_gate = gate;
    }

    GemmInput norm3(ResidualStream& s, const BlockWeights& w, const ForwardContext& f) override {
        GemmInput a;
        a.rows = fused::add_layernorm_affine_(s.x, s.pending_y, s.pending_gate, w.norm3_weight, w.norm3_bias, f.eps);  // bf16
        s.pending_y = s.pending_gate = at::Tensor();
        return a;
    }

    at::Tensor cross_query(const GemmInput& in, const AttentionWeights& ca, const ForwardContext& f) override {
        return fused::rmsnorm_rope(linears_.gemm(in, ca.q_weight, ca.q_scale, ca.q_bias, lead_of(f)), ca.norm_q_weight, nullptr,
                                   f.H, f.eps);
    }

    void add_cross_attention(ResidualStream& s, const at::Tensor& o, const AttentionWeights& ca) override {
        s.pending_y = linears_.gemm(o, ca.o_weight, ca.o_scale, ca.o_bias);  // applied with the FFN norm
    }

    GemmInput norm2(ResidualStream& s, const Modulation& m, const ForwardContext& f) override {
        GemmInput a;
        a.rows = fused::add_layernorm_modulate_(s.x, s.pending_y, at::Tensor(), m.scale_ffn(), m.shift_ffn(), f.eps);
        s.pending_y = at::Tensor();
        return a;
    }

    at::Tensor ffn_layers(const GemmInput& in, const BlockWeights& w, const std::vector<int64_t>& /*lead*/,
                          const ForwardContext& f) override {
        // The GELU in the GEMM epilogue (fused.h).
        const at::Tensor h = fused::linear_gelu(in.rows, linears_.values(w.ffn0_weight, w.ffn0_scale), w.ffn0_bias);
        f.clock.mark("ffn0_gemm_gelu");
        return linears_.gemm(h, w.ffn2_weight, w.ffn2_scale, w.ffn2_bias);
    }

    at::Tensor head_input(ResidualStream& s, const at::Tensor& scale, const at::Tensor& shift,
                          const ForwardContext& f) override {
        // The last block's FFN residual and the head's norm in one pass (f32 out: the head is f32 upstream).
        at::Tensor in = fused::add_layernorm_modulate_f32_(s.x, s.pending_y, s.pending_gate, scale, shift, f.eps);
        s.pending_y = s.pending_gate = at::Tensor();
        return in;
    }
};

// ---- the fused path with FP8 GEMMs ------------------------------------------------------------------------

/// The fused kernels with the norms writing FP8 rows for the GEMMs directly (Note [FP8 linears]); the GELU
/// is taken in the quantisation of the FFN's hidden layer. Once FP8 fails (cuBLASLt refuses), the next
/// blocks take the fused bf16 norms with bf16 GEMMs.
class FusedFp8Kernels final : public FusedKernels {
public:
    explicit FusedFp8Kernels(Linears linears) : FusedKernels(std::move(linears)) {}

    void begin_block(ResidualStream& s) override {
        FusedKernels::begin_block(s);
        rows_ = !linears_.fp8_broken() && WAN_TORCH_VERSION >= 205;
    }

    GemmInput norm1(ResidualStream& s, const Modulation& m, const ForwardContext& f) override {
        if (!rows_) return FusedKernels::norm1(s, m, f);
        GemmInput a;
        a.fp8 = fused::layernorm_fp8_(s.x, s.pending_y, s.pending_gate, m.scale_msa(), m.shift_msa(), /*affine=*/false,
                                      s.bf16_values, f.eps);
        s.pending_y = s.pending_gate = at::Tensor();
        return a;
    }

    GemmInput norm3(ResidualStream& s, const BlockWeights& w, const ForwardContext& f) override {
        if (!rows_) return FusedKernels::norm3(s, w, f);
        GemmInput a;
        a.fp8 = fused::layernorm_fp8_(s.x, s.pending_y, s.pending_gate, w.norm3_weight, w.norm3_bias, /*affine=*/true,
                                      false, f.eps);
        s.pending_y = s.pending_gate = at::Tensor();
        return a;
    }

    GemmInput norm2(ResidualStream& s, const Modulation& m, const ForwardContext& f) override {
        if (!rows_) return FusedKernels::norm2(s, m, f);
        GemmInput a;
        a.fp8 = fused::layernorm_fp8_(s.x, s.pending_y, at::Tensor(), m.scale_ffn(), m.shift_ffn(), /*affine=*/false,
                                      false, f.eps);
        s.pending_y = at::Tensor();
        return a;
    }

    at::Tensor ffn_layers(const GemmInput& in, const BlockWeights& w, const std::vector<int64_t>& lead,
                          const ForwardContext& f) override {
        if (!rows_) {
            at::Tensor h = linears_.gemm(in.rows, w.ffn0_weight, w.ffn0_scale, w.ffn0_bias);
            at::gelu_(h, "tanh");  // its own buffer: in place
            f.clock.mark("ffn0_gemm_gelu");
            return linears_.gemm(h, w.ffn2_weight, w.ffn2_scale, w.ffn2_bias);
        }
        at::Tensor h = linears_.gemm_fp8(in.fp8, w.ffn0_weight, w.ffn0_scale, w.ffn0_bias, lead);  // pre-activation, bf16
        f.clock.mark("ffn0_gemm_gelu");
        fused::Fp8Rows hidden = fused::quantize_rows_fp8(h, /*gelu=*/true);
        h = at::Tensor();  // the bf16 hidden layer goes before the second GEMM allocates its output
        return linears_.gemm_fp8(hidden, w.ffn2_weight, w.ffn2_scale, w.ffn2_bias, lead);
    }

private:
    bool rows_ = false;  ///< this block's norms write FP8 rows
};

}  // namespace

std::unique_ptr<BlockKernels> choose_kernels(const ModelOptions& options, const ForwardContext& f, bool resident,
                                             bool fp8_codes, DerivedWeights& derived) {
    const bool bf16 = f.cd == at::kBFloat16;
    const bool use_fused = options.fused_kernels && fused::available(f.device) && bf16 && !f.device.is_cpu() &&
                           f.d % 2 == 0;
    // Held fp8 codes: straight into the fused FP8 path; any other path gets each block widened (run_blocks), and
    // nothing derived from those temporaries may be cached by address.
    const bool fp8_ok = f.device.is_cuda() && bf16 && !derived.fp8_broken;
    const bool want_fp8 = fp8_ok && (fp8_codes ? use_fused && options.fp8_direct : options.fp8 && resident);
    Linears linears(derived, resident && !fp8_codes, want_fp8, /*fused_quantise=*/use_fused, f.cd);
    if (!use_fused) return std::make_unique<PlainKernels>(std::move(linears));
    if (want_fp8) return std::make_unique<FusedFp8Kernels>(std::move(linears));
    return std::make_unique<FusedKernels>(std::move(linears));
}

}  // namespace wan::dit::detail
