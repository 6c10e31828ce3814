// The DiT's embeddings (upstream WanModel.patch_embedding / time_embedding / time_projection /
// text_embedding). Ref: wan21-reference.md §4.4 a–c.
#include "dit/forward.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace wan::dit::detail {

at::Tensor CacheAccess::cached_text(const CrossAttentionCache* cache, const void* owner,
                                    const std::vector<at::Tensor>& contexts) {
    bool ok = cache && cache->owner_ == owner && cache->contexts_.size() == contexts.size() && cache->text_.defined();
    if (ok)
        for (size_t b = 0; b < contexts.size(); ++b) ok = ok && cache->contexts_[b].is_same(contexts[b]);
    return ok ? cache->text_ : at::Tensor();
}

void CacheAccess::refill(CrossAttentionCache& cache, const void* owner, const std::vector<at::Tensor>& contexts,
                         const at::Tensor& text, int64_t layers) {
    cache.clear();
    cache.owner_ = owner;
    cache.contexts_ = contexts;
    cache.text_ = text;
    cache.k_.assign(static_cast<size_t>(layers), at::Tensor());
    cache.v_.assign(static_cast<size_t>(layers), at::Tensor());
}

TimeEmbedding time_embedding(const ForwardContext& f, const at::Tensor& t) {
    const RootWeights& r = f.root;
    at::Tensor tt = t.detach().to(at::kCPU, at::kDouble).reshape({-1});
    if (tt.numel() != f.B) tt = tt.expand({f.B});
    const int64_t half = f.config.freq_dim / 2;
    at::Tensor omega = at::pow(10000.0, at::arange(half, at::TensorOptions().dtype(at::kDouble)).div(
                                            static_cast<double>(half)).neg());
    at::Tensor arg = at::outer(tt, omega);                                                    // [B, half] f64
    at::Tensor sinus = at::cat({at::cos(arg), at::sin(arg)}, 1).to(at::kFloat);  // [B, freq_dim]
    // Uploaded from pinned memory: a pageable upload would wait for the whole queue (every forward would start by
    // draining the GPU's work, keeping the host from queueing ahead).
    if (f.device.is_cuda()) sinus = sinus.pin_memory().to(f.device, /*non_blocking=*/true);
    TimeEmbedding te;
    te.e = linear(at::silu(linear(sinus, r.time_embedding0_weight, r.time_embedding0_bias)), r.time_embedding2_weight,
                  r.time_embedding2_bias);                                                     // [B, D] f32
    te.e0 = linear(at::silu(te.e), r.time_projection1_weight, r.time_projection1_bias);        // [B, 6D] f32
    if (f.hook) {
        f.hook("time_embedding", te.e);
        f.hook("time_projection", te.e0);
    }
    te.e0 = te.e0.view({f.B, 6, f.D});
    return te;
}

at::Tensor text_embedding(const ForwardContext& f, const std::vector<at::Tensor>& contexts, const void* owner) {
    at::Tensor text = CacheAccess::cached_text(f.cache, owner, contexts);  // [B, text_len, D] cd
    if (!text.defined()) {
        const io::WanConfig& c = f.config;
        const auto copts = at::TensorOptions().device(f.device).dtype(f.cd);
        at::Tensor padded = at::zeros({f.B, c.text_len, c.text_dim}, copts);  // [B, text_len, text_dim]
        for (int64_t b = 0; b < f.B; ++b) padded[b].narrow(0, 0, contexts[b].size(0)).copy_(contexts[b]);
        text = linear(at::gelu(linear(padded, f.root.text_embedding0_weight, f.root.text_embedding0_bias), "tanh"),
                      f.root.text_embedding2_weight, f.root.text_embedding2_bias);
        if (f.cache) CacheAccess::refill(*f.cache, owner, contexts, text, c.num_layers);
    }
    if (f.hook) f.hook("text_embedding", text);
    return text;
}

namespace {

// The fused path runs the patch embedding as one GEMM over the unfolded patches (cuDNN's conv3d took ~6 ms
// at 14B 720p for 50 GFLOP): rows in (f, h, w) order, [N, D] cd.
at::Tensor patches_as_gemm(const ForwardContext& f, const at::Tensor& x, const Grid& g, int64_t b) {
    const int64_t pt = f.config.patch_size[0], ph = f.config.patch_size[1], pw = f.config.patch_size[2];
    const at::Tensor lat = x.to(f.device, f.cd);
    const int64_t C = lat.size(0);
    const at::Tensor patches = lat.narrow(1, 0, g.f * pt).narrow(2, 0, g.h * ph).narrow(3, 0, g.w * pw)
                                   .reshape({C, g.f, pt, g.h, ph, g.w, pw})
                                   .permute({1, 3, 5, 0, 2, 4, 6})
                                   .reshape({g.tokens(), C * pt * ph * pw});  // rows in (f, h, w) order
    const at::Tensor pe = at::linear(patches, f.root.patch_embedding_weight.reshape({f.D, -1}),
                                     f.root.patch_embedding_bias);  // [N, D] cd
    if (f.hook) f.hook("patch_embedding." + std::to_string(b), pe.t().reshape({1, f.D, g.f, g.h, g.w}));
    return pe;
}

// Upstream's conv3d with stride = kernel: [N, D] cd in (f, h, w) order. It drops a trailing odd row /
// column, as upstream does.
at::Tensor patches_as_conv(const ForwardContext& f, const at::Tensor& x, int64_t b) {
    const int64_t pt = f.config.patch_size[0], ph = f.config.patch_size[1], pw = f.config.patch_size[2];
    at::Tensor pe = at::conv3d(x.to(f.device, f.cd).unsqueeze(0), f.root.patch_embedding_weight,
                               f.root.patch_embedding_bias, {pt, ph, pw});  // [1, D, F_p, H_p, W_p]
    if (f.hook) f.hook("patch_embedding." + std::to_string(b), pe);
    return pe.flatten(2)[0].transpose(0, 1);
}

}  // namespace

at::Tensor patch_embedding(const ForwardContext& f, const std::vector<at::Tensor>& xs, bool as_gemm) {
    // The fused path keeps the residual stream in f32 from here: the values are the same bf16 values, which is
    // what makes every block's norms fusable (Note [Fused block kernels]).
    const auto copts = at::TensorOptions().device(f.device).dtype(f.cd);
    at::Tensor tok = at::zeros({f.B, f.chunk.padded_len, f.D}, as_gemm ? copts.dtype(at::kFloat) : copts);
    for (int64_t b = 0; b < f.B; ++b) {
        const at::Tensor pe = as_gemm ? patches_as_gemm(f, xs[b], f.grids[b], b) : patches_as_conv(f, xs[b], b);
        tok[b].narrow(0, 0, f.tokens[b]).copy_(pe);
    }
    return f.sp.world() == 1 ? tok : tok.narrow(1, f.chunk.begin, f.s_local).contiguous();
}

}  // namespace wan::dit::detail
