// The DiT's head (upstream Head: modulated LayerNorm and Linear, f32) and unpatchify.
// Ref: wan21-reference.md §4.4 e–f, §8.3 (gathering the SP chunks).
#include "dit/forward.h"
#include "dit/internal.h"
#include "dit/kernels.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <vector>

namespace wan::dit::detail {

at::Tensor head(ResidualStream& s, const at::Tensor& e, BlockKernels& kernels, const ForwardContext& f) {
    const at::Tensor hm = f.root.head_modulation + e.unsqueeze(1);  // [B, 2, D] f32
    const at::Tensor head_in = kernels.head_input(s, hm.narrow(1, 1, 1), hm.narrow(1, 0, 1), f);  // [B, s, D] f32
    at::Tensor out = linear(head_in, f.root.head_weight, f.root.head_bias);  // [B, s, P] f32
    f.clock.mark("head");
    if (f.hook) f.hook("head", out);
    if (f.sp.world() > 1) {
        out = f.sp.gather_sequence(out);
        WAN_CHECK(out.dim() == 3 && out.size(1) == f.chunk.padded_len,
                  "DiT forward: gather_sequence returned %s, expected [B, %lld, P]",
                  shape_string(out.sizes()).c_str(), static_cast<long long>(f.chunk.padded_len));
    }
    // Upstream's unpatchify einsum runs under autocast(bf16) and rounds the output to bf16 (§4.4 f).
    if (f.mixed && f.round_output_bf16) out = out.to(at::kBFloat16).to(at::kFloat);
    return out;
}

std::vector<at::Tensor> unpatchify(const at::Tensor& out, const ForwardContext& f) {
    const int64_t pt = f.config.patch_size[0], ph = f.config.patch_size[1], pw = f.config.patch_size[2];
    const int64_t C = f.config.out_dim;
    std::vector<at::Tensor> result;
    for (int64_t b = 0; b < f.B; ++b) {
        const Grid& g = f.grids[b];
        at::Tensor u = out[b].narrow(0, 0, f.tokens[b]).view({g.f, g.h, g.w, pt, ph, pw, C});
        u = u.permute({6, 0, 3, 1, 4, 2, 5}).reshape({C, g.f * pt, g.h * ph, g.w * pw});  // [C, F, H, W]
        result.push_back(u.to(at::kFloat).contiguous());
    }
    return result;
}

}  // namespace wan::dit::detail
