// Step caching (TeaCache-style, Note [Step caching] in engine/dit/step_cache.cpp) on the tiny checkpoint: off is
// bit-identical, a large threshold skips every step it may, results stay close, the conditional and
// unconditional caches do not interfere, and a simulated sequence-parallel world decides like one rank.
#include "golden.h"

#include "core/core.h"
#include "dit/dit.h"
#include "fake_sequence_parallel.h"
#include "tiny_dit.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>

namespace {

using wan::dit::StepCache;
using wan::dit::StepCacheOptions;
using wan::dit::WanModel;

using wan::test::tiny_model;

// A small CFG denoising job: Euler steps of the flow-matching ODE over shifted sigmas (enough to make the
// inputs of consecutive steps related as in a real job, without depending on engine/sched).
struct Job {
    at::Tensor noise, ctx, ctx_null;
    int64_t seq_len = 0;
    std::vector<double> sigmas;  // steps + 1 values, 1 → 0
};

Job make_job(const wan::io::WanConfig& c, int steps, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    Job j;
    const int64_t F = 2, H = 8, W = 8;
    j.noise = at::randn({c.in_dim, F, H, W}, gen);
    j.ctx = at::randn({7, c.text_dim}, gen);
    j.ctx_null = at::randn({5, c.text_dim}, gen);
    j.seq_len = F * (H / c.patch_size[1]) * (W / c.patch_size[2]);
    const double shift = 5.0;
    for (int i = 0; i <= steps; ++i) {
        const double s = 1.0 - static_cast<double>(i) / steps;
        j.sigmas.push_back(shift * s / (1 + (shift - 1) * s));
    }
    return j;
}

struct JobResult {
    at::Tensor latent;
    std::vector<at::Tensor> inputs;          // x given to the DiT at each step
    std::vector<at::Tensor> v_cond, v_uncond;  // per step
    std::vector<bool> computed_cond;         // per step: did the cond call run the blocks
};

JobResult run_job(const WanModel& m, const Job& j, StepCache* cond, StepCache* uncond, double guide = 5.0) {
    const int steps = static_cast<int>(j.sigmas.size()) - 1;
    if (cond) cond->begin(steps);
    if (uncond) uncond->begin(steps);
    wan::dit::CrossAttentionCache cc, cu;
    JobResult r;
    at::Tensor z = j.noise.clone();
    for (int i = 0; i < steps; ++i) {
        const at::Tensor t = at::full({1}, 1000.0 * j.sigmas[i], at::kDouble);
        r.inputs.push_back(z);
        const int before = cond ? cond->steps_computed() : 0;
        at::Tensor vc = m.forward(z, t, j.ctx, j.seq_len, &cc, cond);
        at::Tensor vu = m.forward(z, t, j.ctx_null, j.seq_len, &cu, uncond);
        r.computed_cond.push_back(cond ? cond->steps_computed() > before : true);
        r.v_cond.push_back(vc);
        r.v_uncond.push_back(vu);
        z = z + (vu + (vc - vu) * guide) * (j.sigmas[i + 1] - j.sigmas[i]);
    }
    r.latent = z;
    return r;
}

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
    return (a - b).norm().item<double>() / b.norm().item<double>();
}

StepCacheOptions with_threshold(double th) {
    StepCacheOptions o;
    o.threshold = th;
    return o;
}

TEST(DitStepCache, ThresholdZeroIsBitIdentical) {
    const WanModel& m = tiny_model();
    const Job j = make_job(m.config(), 6, 1);
    const JobResult ref = run_job(m, j, nullptr, nullptr);
    StepCache cond(with_threshold(0)), uncond(with_threshold(0));
    const JobResult got = run_job(m, j, &cond, &uncond);
    EXPECT_TRUE(got.latent.equal(ref.latent));
    EXPECT_EQ(cond.steps_computed(), 6);
    EXPECT_EQ(uncond.steps_computed(), 6);
    EXPECT_EQ(cond.steps_skipped(), 0);
}

TEST(DitStepCache, LargeThresholdSkipsAllButFirstAndLast) {
    const WanModel& m = tiny_model();
    const int steps = 8;
    const Job j = make_job(m.config(), steps, 2);
    StepCache cond(with_threshold(1e9)), uncond(with_threshold(1e9));
    const JobResult got = run_job(m, j, &cond, &uncond);
    EXPECT_EQ(cond.steps_computed(), 2);
    EXPECT_EQ(uncond.steps_computed(), 2);
    EXPECT_EQ(cond.steps_skipped(), steps - 2);
    ASSERT_EQ(got.computed_cond.size(), static_cast<size_t>(steps));
    EXPECT_TRUE(got.computed_cond.front());
    EXPECT_TRUE(got.computed_cond.back());
    EXPECT_TRUE(at::isfinite(got.latent).all().item<bool>());

    // More warm-up steps: those run too.
    StepCacheOptions o = with_threshold(1e9);
    o.warmup_steps = 3;
    StepCache c3(o), u3(o);
    run_job(m, j, &c3, &u3);
    EXPECT_EQ(c3.steps_computed(), 4);
}

TEST(DitStepCache, SkippedStepAddsTheCachedResidual) {
    // Same input twice: the change is 0, the second call skips and must reproduce the first output (the
    // residual was taken from exactly this input).
    const WanModel& m = tiny_model();
    const Job j = make_job(m.config(), 4, 3);
    const at::Tensor t = at::full({1}, 700.0, at::kDouble);
    StepCache sc(with_threshold(0.1));
    sc.begin(0);
    const at::Tensor first = m.forward(j.noise, t, j.ctx, j.seq_len, nullptr, &sc);
    const at::Tensor second = m.forward(j.noise, t, j.ctx, j.seq_len, nullptr, &sc);
    EXPECT_EQ(sc.steps_computed(), 1);
    EXPECT_EQ(sc.steps_seen(), 2);
    EXPECT_DOUBLE_EQ(sc.last_change(), 0.0);
    EXPECT_TRUE(wan::test::all_close(second, first, {1e-5, 1e-5}, "skipped vs computed, same input"));
}

TEST(DitStepCache, ModerateThresholdStaysCloseAndSkips) {
    const WanModel& m = tiny_model();
    const int steps = 8;
    const Job j = make_job(m.config(), steps, 4);
    const JobResult ref = run_job(m, j, nullptr, nullptr);
    const double ref_scale = ref.latent.abs().max().item<double>();
    for (auto ind : {StepCacheOptions::Indicator::ModulatedInput, StepCacheOptions::Indicator::TimeModulation}) {
        for (double th : {0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0}) {
            StepCacheOptions o = with_threshold(th);
            o.indicator = ind;
            StepCache cond(o), uncond(o);
            const JobResult got = run_job(m, j, &cond, &uncond);
            ASSERT_TRUE(at::isfinite(got.latent).all().item<bool>());
            const double err = rel_l2(got.latent, ref.latent);
            std::printf("indicator %s threshold %.2f: computed cond %d/%d uncond %d/%d, final latent rel L2 %.4f "
                        "(max |ref| %.2f)\n",
                        ind == StepCacheOptions::Indicator::ModulatedInput ? "modulated-input" : "time-modulation", th,
                        cond.steps_computed(), steps, uncond.steps_computed(), steps, err, ref_scale);
            EXPECT_LT(err, 1.0) << "threshold " << th;
            EXPECT_GE(cond.steps_computed(), 2);
        }
    }
    // At 0.3 (the e2e test's threshold) the modulated-input indicator skips at least one step.
    StepCache cond(with_threshold(0.3)), uncond(with_threshold(0.3));
    run_job(m, j, &cond, &uncond);
    EXPECT_GT(cond.steps_skipped(), 0);
}

TEST(DitStepCache, CondAndUncondCachesAreIndependent) {
    // Replaying one branch's inputs alone, with a fresh cache, gives that branch's outputs bit for bit:
    // the other branch's calls leave no trace in it.
    const WanModel& m = tiny_model();
    const Job j = make_job(m.config(), 8, 5);
    StepCache cond(with_threshold(0.3)), uncond(with_threshold(0.3));
    const JobResult both = run_job(m, j, &cond, &uncond);
    ASSERT_GT(cond.steps_skipped(), 0);
    for (int branch = 0; branch < 2; ++branch) {
        StepCache alone(with_threshold(0.3));
        alone.begin(static_cast<int>(both.inputs.size()));
        wan::dit::CrossAttentionCache cc;
        for (size_t i = 0; i < both.inputs.size(); ++i) {
            const at::Tensor t = at::full({1}, 1000.0 * j.sigmas[i], at::kDouble);
            const at::Tensor v = m.forward(both.inputs[i], t, branch == 0 ? j.ctx : j.ctx_null, j.seq_len, &cc, &alone);
            EXPECT_TRUE(v.equal(branch == 0 ? both.v_cond[i] : both.v_uncond[i])) << "branch " << branch << " step " << i;
        }
        EXPECT_EQ(alone.steps_computed(), branch == 0 ? cond.steps_computed() : uncond.steps_computed());
    }
    // The residuals differ per branch: sharing one cache between the branches would give other outputs.
    StepCache shared(with_threshold(0.3));
    shared.begin(0);
    const at::Tensor t0 = at::full({1}, 1000.0, at::kDouble);
    const at::Tensor vc = m.forward(j.noise, t0, j.ctx, j.seq_len, nullptr, &shared);
    const at::Tensor vu = m.forward(j.noise, t0, j.ctx_null, j.seq_len, nullptr, &shared);  // skipped: cond's residual
    EXPECT_EQ(shared.steps_computed(), 1);
    EXPECT_TRUE(wan::test::all_close(vu, vc, {1e-5, 1e-5}, "a shared cache reuses the other branch"));
    EXPECT_FALSE(both.v_uncond[0].equal(both.v_cond[0]));
}

TEST(DitStepCache, BadOptionsAreRejected) {
    StepCacheOptions o;
    o.threshold = -1;
    EXPECT_THROW(StepCache{o}, wan::Error);
    o = {};
    o.warmup_steps = 0;
    EXPECT_THROW(StepCache{o}, wan::Error);
    o = {};
    o.rescale.clear();
    EXPECT_THROW(StepCache{o}, wan::Error);
}

TEST(DitStepCache, RescalePolynomialIsApplied) {
    const WanModel& m = tiny_model();
    const Job j = make_job(m.config(), 8, 6);
    StepCacheOptions never = with_threshold(0.3);
    never.rescale = {1e9};  // constant: every change counts as huge
    StepCache c1(never), u1(never);
    run_job(m, j, &c1, &u1);
    EXPECT_EQ(c1.steps_computed(), 8);
    StepCacheOptions always = with_threshold(0.3);
    always.rescale = {0.0, 0.0};  // 0·rel + 0
    StepCache c2(always), u2(always);
    run_job(m, j, &c2, &u2);
    EXPECT_EQ(c2.steps_computed(), 2);
}

using wan::test::FakeWorld;

TEST(DitStepCache, SimulatedSequenceParallelDecidesLikeOneRank) {
    const wan::io::WanConfig c = wan::test::tiny_config();
    auto store = wan::test::tiny_store();
    const WanModel& single = tiny_model();
    const int steps = 8;
    Job j = make_job(c, steps, 7);
    j.seq_len += 1;  // not a multiple of 3: padded rows on the last rank must not count
    StepCache sc(with_threshold(0.3)), su(with_threshold(0.3));
    const JobResult ref = run_job(single, j, &sc, &su);
    ASSERT_GT(sc.steps_skipped(), 0);
    for (int world : {2, 3}) {
        FakeWorld ranks(c, store, world);
        std::vector<JobResult> outs(world);
        std::vector<int> computed(world);
        ranks.run([&](int r) {
            StepCache cc(with_threshold(0.3)), cu(with_threshold(0.3));
            outs[r] = run_job(ranks.model(r), j, &cc, &cu);
            computed[r] = cc.steps_computed();
        });
        for (int r = 0; r < world; ++r) {
            EXPECT_EQ(computed[r], sc.steps_computed()) << "world " << world << " rank " << r;
            EXPECT_EQ(outs[r].computed_cond, ref.computed_cond) << "world " << world << " rank " << r;
            EXPECT_GT(ranks.sequence_parallel(r).reduces, 0);
            EXPECT_TRUE(wan::test::all_close(outs[r].latent, ref.latent, wan::test::tolerance("dit"),
                                             "world " + std::to_string(world) + " rank " + std::to_string(r)));
        }
    }
}

}  // namespace
