// The step-distill Euler solver: LightX2V's schedule (Note [Step-distill schedule] in sched.h), the evenly
// spaced step lists, argument checks and the step arithmetic. Its golden parity (the distill sampler with a
// merged LoRA on the tiny checkpoint) is tests/lora/test_lora_distill_golden.cpp.
#include "core/core.h"
#include "core/presets.h"
#include "sched/sched.h"

#include "error_of.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using wan::test::error_of;
using wan::sched::SolverKind;

wan::sched::SolverOptions with_steps(std::vector<int> steps) {
    wan::sched::SolverOptions o;
    o.denoising_steps = std::move(steps);
    return o;
}

TEST(Euler, LightX2VFourStepSchedule) {
    // README §5: shift 5, steps 1000,750,500,250 -> t = 1000, 937.5, 833.33, 625.
    auto s = wan::sched::make_solver(SolverKind::Euler, 50, 5.0, with_steps({1000, 750, 500, 250}));
    ASSERT_EQ(s->num_steps(), 4);  // the list wins over `steps`
    const auto& t = s->timesteps();
    EXPECT_EQ(t[0], 1000.0);
    EXPECT_EQ(t[1], 937.5);
    EXPECT_NEAR(t[2], 2500.0 / 3.0, 1e-3);
    EXPECT_NE(t[2], std::floor(t[2]));  // not an integer: timesteps stay float
    EXPECT_NEAR(t[3], 625.0, 1e-4);
    const auto& sg = s->sigmas();
    ASSERT_EQ(sg.size(), 5u);
    EXPECT_EQ(sg[0], 1.0f);
    EXPECT_EQ(sg[1], 0.9375f);
    EXPECT_EQ(sg[4], 0.0f);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(t[static_cast<size_t>(i)], static_cast<double>(sg[static_cast<size_t>(i)] * 1000.0f));
}

TEST(Euler, EvenlySpacedStepLists) {
    EXPECT_EQ(wan::sched::euler_step_list(4), (std::vector<int>{1000, 750, 500, 250}));
    EXPECT_EQ(wan::sched::euler_step_list(3), (std::vector<int>{1000, 667, 334}));
    EXPECT_EQ(wan::sched::euler_step_list(1), (std::vector<int>{1000}));
    const auto all = wan::sched::euler_step_list(1000);
    ASSERT_EQ(all.size(), 1000u);
    EXPECT_EQ(all.front(), 1000);
    EXPECT_EQ(all.back(), 1);
    // Without a list, make_solver(Euler, n) uses euler_step_list(n): the same schedule as the explicit list.
    auto a = wan::sched::make_solver(SolverKind::Euler, 4, 5.0);
    auto b = wan::sched::make_solver(SolverKind::Euler, 0, 5.0, with_steps({1000, 750, 500, 250}));
    EXPECT_EQ(a->timesteps(), b->timesteps());
    EXPECT_EQ(a->sigmas(), b->sigmas());
    // Shift 1 leaves the linspace grid: index 500 is sigma 0.5 exactly.
    auto c = wan::sched::make_solver(SolverKind::Euler, 2, 1.0);
    EXPECT_EQ(c->sigmas()[1], 0.5f);
    EXPECT_EQ(c->timesteps()[1], 500.0);
}

TEST(Euler, BadArguments) {
    auto make = [](std::vector<int> steps, double shift = 5.0) {
        return wan::sched::make_solver(SolverKind::Euler, 4, shift, with_steps(std::move(steps)));
    };
    EXPECT_NE(error_of([&] { make({1000, 1001}); }).find("--denoising-steps: step 1001 is outside [1, 1000]"),
              std::string::npos);
    EXPECT_NE(error_of([&] { make({0}); }).find("step 0 is outside"), std::string::npos);
    EXPECT_NE(error_of([&] { make({750, 1000}); }).find("strictly decreasing (1000 follows 750)"), std::string::npos);
    EXPECT_NE(error_of([&] { make({500, 500}); }).find("strictly decreasing"), std::string::npos);
    EXPECT_NE(error_of([&] { make({1000}, 0.0); }).find("shift must be a finite number > 0"), std::string::npos);
    EXPECT_NE(error_of([] { wan::sched::make_solver(SolverKind::Euler, 0, 5.0); }).find("euler sampling steps must be in [1, 1000] (got 0)"),
              std::string::npos);
    EXPECT_NE(error_of([] { wan::sched::make_solver(SolverKind::Euler, 1001, 5.0); }).find("(got 1001)"), std::string::npos);
    EXPECT_NE(error_of([] { wan::sched::make_solver(SolverKind::UniPC, 4, 5.0, with_steps({1000})); })
                  .find("apply to the 'euler' solver only, not to 'unipc'"),
              std::string::npos);
}

TEST(Euler, ParseStepList) {
    EXPECT_EQ(wan::parse_step_list("1000,750,500,250"), (std::vector<int>{1000, 750, 500, 250}));
    EXPECT_EQ(wan::parse_step_list(" 1000 , 500 "), (std::vector<int>{1000, 500}));
    const std::string msg = error_of([] { wan::parse_step_list("1000,,500"); });
    EXPECT_NE(msg.find("--denoising-steps: '1000,,500' is not a comma-separated list of integers"), std::string::npos) << msg;
    EXPECT_NE(error_of([] { wan::parse_step_list("1000,7.5", "denoising_steps"); }).find("denoising_steps: ") ,
              std::string::npos);
    EXPECT_NE(error_of([] { wan::parse_step_list(""); }).find("bad element ''"), std::string::npos);
}

TEST(Euler, StepArithmetic) {
    // x <- x - sigma_i v, then x <- x + sigma_{i+1} v (two f32 roundings), none after the last step.
    auto s = wan::sched::make_solver(SolverKind::Euler, 3, 5.0);
    at::manual_seed(1);
    at::Tensor x = at::randn({16, 2, 4, 4});
    for (int i = 0; i < 3; ++i) {
        const at::Tensor v = at::randn({16, 2, 4, 4});
        at::Tensor expected = x - v * static_cast<double>(s->sigmas()[static_cast<size_t>(i)]);
        if (i < 2) expected = expected + v * static_cast<double>(s->sigmas()[static_cast<size_t>(i) + 1]);
        const at::Tensor got = s->step(v, i, x);
        EXPECT_TRUE(at::equal(got, expected)) << "step " << i;
        x = got;
    }
    EXPECT_NE(error_of([&] { s->step(x, 0, x); }).find("call reset()"), std::string::npos);
    s->reset();
    EXPECT_EQ(s->next_step_index(), 0);
    // A bf16 velocity is promoted to f32.
    EXPECT_EQ(s->step(x.to(at::kBFloat16), 0, x).scalar_type(), at::kFloat);
}

TEST(Presets, TableAndLookup) {
    const auto& p = wan::find_sampling_preset("lightx2v-4step");
    EXPECT_EQ(p.solver, "euler");
    EXPECT_EQ(p.denoising_steps, (std::vector<int>{1000, 750, 500, 250}));
    EXPECT_EQ(p.sample_shift, 5.0);
    EXPECT_EQ(p.guide_scale, 1.0);
    EXPECT_EQ(wan::sched::solver_from_string(p.solver), SolverKind::Euler);
    auto s = wan::sched::make_solver(SolverKind::Euler, p.sample_steps, p.sample_shift, with_steps(p.denoising_steps));
    EXPECT_EQ(s->timesteps()[1], 937.5);
    const auto& d = wan::find_sampling_preset("default");
    EXPECT_EQ(d.solver, "unipc");
    EXPECT_EQ(d.sample_steps, 0);
    EXPECT_LT(d.sample_shift, 0);
    EXPECT_LT(d.guide_scale, 0);
    EXPECT_EQ(wan::sampling_presets().front().name, "default");
    for (const auto& q : wan::sampling_presets()) EXPECT_NO_THROW(wan::sched::solver_from_string(q.solver)) << q.name;
    const std::string msg = error_of([] { wan::find_sampling_preset("turbo"); });
    EXPECT_NE(msg.find("--preset 'turbo': unknown preset (known: 'default', 'lightx2v-4step')"), std::string::npos) << msg;
}

}  // namespace
