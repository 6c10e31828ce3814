// usp_attention against exact single-process attention on the full sequence (the test-backend-ops idea):
// every rank draws the same q/k/v, keeps its own chunk, and compares its output rows. Ref: §8.3, §4.5.
#include "test_util.h"

#include "core/core.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include "golden.h"

#include <algorithm>
#include <cmath>

using namespace wan::dist;
using wan::dist::test::world;

namespace {

/// Exact attention in f64 of q against the first `valid` keys: [B, S, H, D].
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t valid) {
    at::Tensor qd = q.to(at::kDouble).transpose(1, 2);                          // [B, H, S, D]
    at::Tensor kd = k.to(at::kDouble).narrow(1, 0, valid).transpose(1, 2);       // [B, H, N, D]
    at::Tensor vd = v.to(at::kDouble).narrow(1, 0, valid).transpose(1, 2);
    at::Tensor p = at::softmax(at::matmul(qd, kd.transpose(-1, -2)) / std::sqrt(double(q.size(3))), -1);
    return at::matmul(p, vd).transpose(1, 2);                                    // [B, S, H, D]
}

/// All (U, R) with U·R = P.
std::vector<std::pair<int, int>> factorizations(int P) {
    std::vector<std::pair<int, int>> out;
    for (int u = 1; u <= P; ++u)
        if (P % u == 0) out.emplace_back(u, P / u);
    return out;
}

void check_usp(at::ScalarType dtype, double tol, int64_t score_budget) {
    Communicator& w = world();
    const int P = w.size();
    const int64_t B = 2, s = 5, H = 4, D = 8, S = s * P;
    at::manual_seed(1234);  // same draw on every rank
    at::Tensor q = at::randn({B, S, H, D}).mul(2), k = at::randn({B, S, H, D}).mul(2), v = at::randn({B, S, H, D});
    q = q.to(dtype), k = k.to(dtype), v = v.to(dtype);

    for (auto [U, R] : factorizations(P)) {
        Mesh mesh(w, ParallelLayout{P, U, R}, H);
        const int64_t chunk = mesh.sp().rank();
        at::Tensor ql = q.narrow(1, chunk * s, s), kl = k.narrow(1, chunk * s, s), vl = v.narrow(1, chunk * s, s);
        // valid_len: no padding; padding inside the last chunk; padding spanning more than one chunk (so
        // whole ring blocks hold no valid key when R > 1).
        for (int64_t valid : {S, S - 3, std::max<int64_t>(1, S - s - 2)}) {
            UspOptions opt;
            opt.valid_len = valid;
            opt.score_budget = score_budget;
            at::Tensor out = usp_attention(ql, kl, vl, mesh.ulysses(), mesh.ring(), opt);
            ASSERT_EQ(out.sizes(), ql.sizes());
            EXPECT_EQ(out.scalar_type(), dtype);
            at::Tensor expect = reference_attention(q, k, v, valid).narrow(1, chunk * s, s);
            EXPECT_TRUE(wan::test::all_close(out, expect, {tol, 0},
                                             "U" + std::to_string(U) + " R" + std::to_string(R) + " valid " +
                                                 std::to_string(valid) + " " + c10::toString(dtype)));
        }
        // Upstream USP behaviour: padded keys attended (§8.3 PARITY) = attention over all S keys.
        UspOptions up;
        up.valid_len = S - 3;
        up.attend_padded_keys = true;
        at::Tensor out = usp_attention(ql, kl, vl, mesh.ulysses(), mesh.ring(), up);
        EXPECT_TRUE(wan::test::all_close(out, reference_attention(q, k, v, S).narrow(1, chunk * s, s), {tol, 0},
                                         "attend_padded_keys U" + std::to_string(U) + " R" + std::to_string(R)));
    }
}

}  // namespace

TEST(UspAttention, MatchesSingleProcessF32) { check_usp(at::kFloat, 1e-5, int64_t(1) << 26); }

TEST(UspAttention, MatchesWithQueryChunking) { check_usp(at::kFloat, 1e-5, 64); }

TEST(UspAttention, Bf16InputsReturnBf16) { check_usp(at::kBFloat16, 2e-2, int64_t(1) << 26); }

namespace {

// The hook tests' setup: one q/k/v draw of S = 4·P tokens (B 1, H 4, D 8), then for each layout U × R = P
// with H % U == 0, this rank's chunk of it.
struct HookCase {
    static constexpr int64_t s = 4, H = 4, D = 8;
    int64_t S = 0;
    at::Tensor q, k, v;
};

template <typename Fn>  // fn(const HookCase&, Mesh&, int U, int R, ql, kl, vl, chunk)
void for_each_layout(uint64_t seed, Fn fn) {
    Communicator& w = world();
    const int P = w.size();
    HookCase c;
    c.S = HookCase::s * P;
    at::manual_seed(seed);
    c.q = at::randn({1, c.S, HookCase::H, HookCase::D});
    c.k = at::randn({1, c.S, HookCase::H, HookCase::D});
    c.v = at::randn({1, c.S, HookCase::H, HookCase::D});
    for (auto [U, R] : factorizations(P)) {
        if (HookCase::H % U != 0) continue;
        Mesh mesh(w, ParallelLayout{P, U, R}, HookCase::H);
        const int64_t chunk = mesh.sp().rank(), s = HookCase::s;
        fn(c, mesh, U, R, c.q.narrow(1, chunk * s, s), c.k.narrow(1, chunk * s, s), c.v.narrow(1, chunk * s, s), chunk);
    }
}

}  // namespace

// UspOptions::local_attention: without a ring it replaces the log-sum-exp path (the pipeline plugs in the
// DiT's attention there); with a ring it is not called. Same results as the reference either way.
TEST(UspAttention, LocalAttentionHookServesLayoutsWithoutARing) {
    for_each_layout(99, [](const HookCase& c, Mesh& mesh, int U, int R, const at::Tensor& ql, const at::Tensor& kl,
                           const at::Tensor& vl, int64_t chunk) {
        const int64_t S = c.S, s = HookCase::s;
        int calls = 0;
        int64_t seen_valid = -1;
        UspOptions opt;
        opt.valid_len = S - 1;
        opt.local_attention = [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& cc, int64_t valid) {
            ++calls;
            seen_valid = valid;
            EXPECT_EQ(a.size(1), S) << "the hook sees the whole sequence";
            EXPECT_EQ(a.size(2), HookCase::H / U) << "and this rank's heads";
            return reference_attention(a, b, cc, valid).to(a.scalar_type());
        };
        const at::Tensor out = usp_attention(ql, kl, vl, mesh.ulysses(), mesh.ring(), opt);
        const std::string what = "U" + std::to_string(U) + " R" + std::to_string(R);
        EXPECT_EQ(calls, R == 1 ? 1 : 0) << what;
        if (R == 1) EXPECT_EQ(seen_valid, S - 1) << what;
        EXPECT_TRUE(wan::test::all_close(out, reference_attention(c.q, c.k, c.v, S - 1).narrow(1, chunk * s, s),
                                         {1e-5, 0}, what));
    });
}

// UspOptions::block_attention: with a ring, every block with valid keys goes to it first (the pipeline plugs
// in FlashAttention-3); undefined results fall back to the built-in path. Same results either way.
TEST(UspAttention, BlockAttentionHookServesEveryRingBlock) {
    for_each_layout(7, [](const HookCase& c, Mesh& mesh, int U, int R, const at::Tensor& ql, const at::Tensor& kl,
                          const at::Tensor& vl, int64_t chunk) {
        const int64_t S = c.S, s = HookCase::s, L = s * U;
        const int64_t valid = std::max<int64_t>(1, S - s - 1);  // the last ring block (if any) holds no valid key
        for (bool decline : {false, true}) {
            int calls = 0;
            UspOptions opt;
            opt.valid_len = valid;
            opt.block_attention = [&](const at::Tensor& a, const at::Tensor& b, const at::Tensor& cc) {
                ++calls;
                if (decline) return std::pair<at::Tensor, at::Tensor>{};
                return attention_with_lse(a, b, cc, -1, 1.0 / std::sqrt(double(HookCase::D)));
            };
            const at::Tensor out = usp_attention(ql, kl, vl, mesh.ulysses(), mesh.ring(), opt);
            int64_t blocks_with_keys = 0;
            for (int64_t b = 0; b < R; ++b) blocks_with_keys += (valid - b * L > 0);
            const std::string what = "U" + std::to_string(U) + " R" + std::to_string(R) + (decline ? " declined" : "");
            EXPECT_EQ(calls, blocks_with_keys) << what;
            EXPECT_TRUE(wan::test::all_close(out, reference_attention(c.q, c.k, c.v, valid).narrow(1, chunk * s, s),
                                             {1e-5, 0}, what));
        }
    });
}

TEST(UspAttention, AttentionWithLseIsExact) {
    at::manual_seed(7);
    at::Tensor q = at::randn({1, 6, 2, 4}), k = at::randn({1, 9, 2, 4}), v = at::randn({1, 9, 2, 4});
    auto [o, lse] = attention_with_lse(q, k, v, 7, 0.0, 5);
    EXPECT_TRUE(wan::test::all_close(o, reference_attention(q, k, v, 7).narrow(1, 0, 6), {1e-6, 0}, "O"));
    at::Tensor s = at::matmul(q.to(at::kDouble).transpose(1, 2),
                              k.to(at::kDouble).narrow(1, 0, 7).transpose(1, 2).transpose(-1, -2)) / 2.0;
    EXPECT_TRUE(wan::test::all_close(lse, at::logsumexp(s, -1), {1e-6, 0}, "lse"));
    auto [o0, l0] = attention_with_lse(q, k, v, 0, 0.0);
    EXPECT_TRUE(at::equal(o0, at::zeros_like(o0)));
    EXPECT_TRUE(at::isinf(l0).all().item<bool>());
}

TEST(UspAttention, RejectsBadShapes) {
    Communicator& w = world();
    Mesh mesh(w, ParallelLayout{w.size(), w.size(), 1}, 4 * w.size());
    at::Tensor q = at::zeros({1, 2, 4 * w.size(), 8});
    EXPECT_THROW(usp_attention(q, q, at::zeros({1, 3, 4 * w.size(), 8}), mesh.ulysses(), mesh.ring()), wan::Error);
    UspOptions opt;
    opt.valid_len = 0;
    EXPECT_THROW(usp_attention(q, q, q, mesh.ulysses(), mesh.ring(), opt), wan::Error);
}
