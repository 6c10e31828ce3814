// Sequence-parallel attention: Ulysses all-to-all × Ring attention with the online log-sum-exp merge.
// Ref: wan21-reference.md §8.3 (i)–(iii), §4.5 (softmax scale, key restriction to the valid tokens).
#include "dist/dist.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <cmath>

namespace wan::dist {
namespace {

/// at::_scaled_dot_product_flash_attention returns the log-sum-exp too; only on CUDA with LibTorch ≥ 2.1
/// (its `scale` argument), for bf16/f16 and head dims the kernel supports. Untested on this machine.
bool try_flash_block(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale, at::Tensor& o,
                     at::Tensor& lse) {
#if defined(WAN_HAVE_CUDA) && WAN_HAVE_CUDA && WAN_TORCH_VERSION >= 201
    const auto dt = q.scalar_type();
    if (!q.is_cuda() || (dt != at::kBFloat16 && dt != at::kHalf) || q.size(3) % 8 != 0 || q.size(3) > 256) return false;
    auto out = at::_scaled_dot_product_flash_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                       0.0, false, false, scale);
    o = std::get<0>(out).transpose(1, 2).to(at::kFloat);  // [B, Lq, H, D]
    lse = std::get<1>(out).narrow(2, 0, q.size(1)).to(at::kFloat);  // [B, H, Lq] (defensive: never padded)
    return true;
#else
    (void)q, (void)k, (void)v, (void)scale, (void)o, (void)lse;
    return false;
#endif
}

}  // namespace

std::pair<at::Tensor, at::Tensor> attention_with_lse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                     int64_t valid_keys, double scale, int64_t score_budget) {
    WAN_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: q, k, v must be [B, L, H, D]");
    const int64_t B = q.size(0), Lq = q.size(1), H = q.size(2), D = q.size(3);
    const int64_t Lk = k.size(1);
    WAN_CHECK(k.size(0) == B && k.size(2) == H && k.size(3) == D && v.sizes() == k.sizes(),
              "attention: k %s / v %s do not match q %s", c10::str(k.sizes()).c_str(), c10::str(v.sizes()).c_str(),
              c10::str(q.sizes()).c_str());
    const int64_t nk = valid_keys < 0 ? Lk : std::min(valid_keys, Lk);
    auto f32 = q.options().dtype(at::kFloat);
    if (nk == 0)  // no key at all: contributes nothing (lse −inf); the merge skips such blocks
        return {at::zeros({B, Lq, H, D}, f32), at::full({B, H, Lq}, -INFINITY, f32)};
    at::Tensor ks = k.narrow(1, 0, nk);  // padded keys are a suffix: dropping them == masking them
    at::Tensor vs = v.narrow(1, 0, nk);
    if (scale <= 0) scale = 1.0 / std::sqrt(static_cast<double>(D));

    at::Tensor o, lse;
    if (try_flash_block(q, ks, vs, scale, o, lse)) return {o, lse};

    // Exact math path in f32; queries chunked so that at most score_budget scores exist at once.
    at::Tensor qf = q.to(at::kFloat).transpose(1, 2);                  // [B, H, Lq, D]
    at::Tensor kt = ks.to(at::kFloat).permute({0, 2, 3, 1}).contiguous();  // [B, H, D, nk]
    at::Tensor vf = vs.to(at::kFloat).transpose(1, 2).contiguous();    // [B, H, nk, D]
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(Lq, score_budget / std::max<int64_t>(1, B * H * nk)));
    std::vector<at::Tensor> outs, lses;
    for (int64_t start = 0; start < Lq; start += chunk) {
        const int64_t n = std::min(chunk, Lq - start);
        at::Tensor s = at::matmul(qf.narrow(2, start, n), kt).mul_(scale);  // [B, H, n, nk]
        at::Tensor l = at::logsumexp(s, -1);                                // [B, H, n]
        s.sub_(l.unsqueeze(-1)).exp_();
        outs.push_back(at::matmul(s, vf));                                  // [B, H, n, D]
        lses.push_back(l);
    }
    o = (outs.size() == 1 ? outs[0] : at::cat(outs, 2)).transpose(1, 2).contiguous();  // [B, Lq, H, D]
    lse = lses.size() == 1 ? lses[0] : at::cat(lses, 2);                               // [B, H, Lq]
    return {o, lse};
}

at::Tensor usp_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Communicator& ulysses,
                         Communicator& ring, const UspOptions& options) {
    WAN_CHECK(q.dim() == 4 && q.sizes() == k.sizes() && q.sizes() == v.sizes(),
              "usp_attention: q %s, k %s, v %s must all be [B, s_local, H, D]", c10::str(q.sizes()).c_str(),
              c10::str(k.sizes()).c_str(), c10::str(v.sizes()).c_str());
    const int64_t s = q.size(1), H = q.size(2), D = q.size(3);
    const int U = ulysses.size();
    const int R = ring.size();
    WAN_CHECK(H % U == 0, "usp_attention: %lld heads are not divisible by the Ulysses size %d",
              static_cast<long long>(H), U);
    const int64_t L = s * U;       // tokens of one Ulysses group = one ring block
    const int64_t S = L * R;       // global sequence
    int64_t valid = S;
    if (options.valid_len >= 0 && !options.attend_padded_keys) {
        WAN_CHECK(options.valid_len >= 1 && options.valid_len <= S,
                  "usp_attention: valid_len %lld outside [1, %lld] (global sequence of %lld tokens)",
                  static_cast<long long>(options.valid_len), static_cast<long long>(S), static_cast<long long>(S));
        valid = options.valid_len;
    }
    const double scale = options.scale > 0 ? options.scale : 1.0 / std::sqrt(static_cast<double>(D));

    // (i) Ulysses: [B, s, H, D] → [B, U·s, H/U, D]; q, k, v in one exchange.
    at::Tensor ql, kv;
    if (R == 1 && options.local_attention && options.scale <= 0) {
        // No ring: one attention over the whole sequence, no log-sum-exp needed (UspOptions::local_attention).
        at::Tensor out;
        if (U > 1) {
            const at::Tensor qkv = ulysses.all_to_all(at::stack({q, k, v}, 0), 3, 2);  // [3, B, L, H/U, D]
            out = ulysses.all_to_all(options.local_attention(qkv[0], qkv[1], qkv[2], valid).contiguous(), 1, 2);
        } else {
            out = options.local_attention(q, k, v, valid);
        }
        WAN_CHECK(out.sizes() == q.sizes(), "usp_attention: local attention returned %s for q %s",
                  c10::str(out.sizes()).c_str(), c10::str(q.sizes()).c_str());
        return out.to(q.scalar_type());
    }
    if (U > 1) {
        at::Tensor qkv = ulysses.all_to_all(at::stack({q, k, v}, 0), 3, 2);  // [3, B, L, H/U, D]
        ql = qkv[0];
        kv = qkv.narrow(0, 1, 2).contiguous();                               // [2, B, L, H/U, D]
    } else {
        ql = q;
        kv = at::stack({k, v}, 0).contiguous();                              // [2, B, L, H, D]
    }

    // (ii) Ring: R rounds; at round t this rank holds the K/V block of ring member (m − t) mod R, which
    // covers global tokens [b·L, (b+1)·L). The next block is in flight while the current one is computed.
    const int m = ring.rank();
    at::Tensor o, lse;  // f32 [B, L, h, D], [B, h, L]
    bool have = false;
    for (int t = 0; t < R; ++t) {
        const int b = ((m - t) % R + R) % R;
        at::Tensor next;
        std::unique_ptr<PendingExchange> pending;
        if (t + 1 < R) {
            next = at::empty_like(kv);
            pending = ring.start_shift(kv, next, 1);
        }
        const int64_t nvalid = std::max<int64_t>(0, std::min<int64_t>(L, valid - b * L));
        if (nvalid > 0) {
            std::pair<at::Tensor, at::Tensor> block;
            if (options.block_attention && options.scale <= 0)
                block = options.block_attention(ql, kv[0].narrow(1, 0, nvalid), kv[1].narrow(1, 0, nvalid));
            if (!block.first.defined())
                block = attention_with_lse(ql, kv[0], kv[1], nvalid, scale, options.score_budget);
            const at::Tensor oj = block.first.to(at::kFloat), lj = block.second.to(at::kFloat);
            if (!have) {
                o = oj;
                lse = lj;
                have = true;
            } else {
                // Online merge in f32: ℓ ← ℓ − logsigmoid(ℓ − ℓ_j) = log(e^ℓ + e^ℓ_j);
                // O ← O − sigmoid(ℓ_j − ℓ)·(O − O_j).
                at::Tensor w = at::sigmoid(lj - lse).transpose(1, 2).unsqueeze(-1);  // [B, L, h, 1]
                o = o - w * (o - oj);
                lse = lse - at::log_sigmoid(lse - lj);
            }
        }
        if (pending) {
            pending->wait();
            kv = next;
        }
    }
    WAN_CHECK(have, "usp_attention: no valid key in the whole sequence");
    at::Tensor out = o.to(q.scalar_type());  // [B, L, h, D]

    // (iii) Reverse all-to-all: [B, U·s, H/U, D] → [B, s, H, D].
    if (U > 1) out = ulysses.all_to_all(out, 1, 2);
    return out;
}

}  // namespace wan::dist
