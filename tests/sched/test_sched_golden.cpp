// Parity of both solvers with the official schedulers on every sched_unipc_* / sched_dpmpp_* golden case:
// exact timesteps and sigmas, then every sample of the trajectory within the "sched_*" tolerance.
// Ref: tests/data/golden/README.md (sched cases), wan21-reference.md §6.
#include "golden.h"
#include "sched/sched.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace {

using wan::sched::FlowSolver;
using wan::sched::SolverKind;

struct KindInfo {
    SolverKind kind;
    const char* prefix;
    const char* tolerance_key;
};

const KindInfo kKinds[] = {
    {SolverKind::UniPC, "sched_unipc_", "sched_unipc"},
    {SolverKind::DPMpp, "sched_dpmpp_", "sched_dpmpp"},
};

// Upstream's timesteps are whole numbers (int64 in the golden data); ours are doubles with those values.
at::Tensor timesteps_tensor(const FlowSolver& s) {
    at::Tensor t = at::tensor(at::ArrayRef<double>(s.timesteps()), at::kDouble);
    EXPECT_TRUE(at::equal(t, t.trunc())) << "UniPC/DPM++ timesteps must be whole numbers";
    return t.to(at::kLong);
}
at::Tensor sigmas_tensor(const FlowSolver& s) { return at::tensor(at::ArrayRef<float>(s.sigmas()), at::kFloat); }

// The generator's fake model: 0.5*tanh(x) + 0.1*(float(t)/1000.0), the Python float rounded to f32 when
// it meets the f32 tensor.
at::Tensor fake_model(const at::Tensor& x, double t) {
    const double bias = 0.1 * (t / 1000.0);
    return at::tanh(x) * 0.5 + bias;
}

void check_case(const KindInfo& k, const std::string& name) {
    SCOPED_TRACE(name);
    const wan::test::GoldenCase c = wan::test::load_case(name);
    const int steps = c.meta.at("steps").get<int>();
    const double shift = c.meta.at("shift").get<double>();
    const wan::test::Tolerance tol = wan::test::tolerance(k.tolerance_key);

    auto solver = wan::sched::make_solver(k.kind, steps, shift);
    ASSERT_EQ(solver->num_steps(), steps);
    EXPECT_TRUE(wan::test::all_equal(timesteps_tensor(*solver), c.get("timesteps"), name + " timesteps"));
    EXPECT_TRUE(wan::test::all_equal(sigmas_tensor(*solver), c.get("sigmas"), name + " sigmas"));
    if (c.has("sampling_sigmas_f32")) {
        at::Tensor ours = sigmas_tensor(*solver).slice(0, 0, steps);
        EXPECT_TRUE(wan::test::all_equal(ours, c.get("sampling_sigmas_f32"), name + " sampling_sigmas_f32"));
    }

    const at::Tensor outputs = c.get("model_outputs");  // [steps, 1, 16, T, H, W]
    const at::Tensor samples = c.get("samples");        // [steps + 1, 1, 16, T, H, W]
    ASSERT_EQ(outputs.size(0), steps);
    ASSERT_EQ(samples.size(0), steps + 1);
    EXPECT_TRUE(wan::test::all_close(samples[0], c.get("x_init"), {0, 0}, name + " x_init"));

    // (1) The stored trajectory: feed the official model outputs and the solver's own samples.
    at::Tensor x = samples[0].clone();
    double max_err = 0;
    for (int i = 0; i < steps; ++i) {
        x = solver->step(outputs[i], i, x);
        ASSERT_TRUE(wan::test::all_close(x, samples[i + 1], tol, name + " samples[" + std::to_string(i + 1) + "]"));
        max_err = std::max(max_err, (x - samples[i + 1]).abs().max().item<double>());
    }
    std::printf("%s: timesteps and sigmas exact, max |err| over %d samples %.3g (atol %.3g)\n", name.c_str(), steps,
                max_err, tol.atol);

    // (2) Free-running with the fake model recomputed from our own samples (what the pipeline does).
    solver->reset();
    x = samples[0].clone();
    for (int i = 0; i < steps; ++i) {
        const at::Tensor v = fake_model(x, solver->timesteps()[static_cast<size_t>(i)]);
        EXPECT_TRUE(wan::test::all_close(v, outputs[i], tol, name + " fake model_outputs[" + std::to_string(i) + "]"));
        x = solver->step(v, i, x);
        ASSERT_TRUE(wan::test::all_close(x, samples[i + 1], tol,
                                         name + " free-running samples[" + std::to_string(i + 1) + "]"));
    }
}

TEST(GoldenSched, UniPC) {
    for (const auto& name : wan::test::list_cases(kKinds[0].prefix)) check_case(kKinds[0], name);
}

TEST(GoldenSched, DPMpp) {
    for (const auto& name : wan::test::list_cases(kKinds[1].prefix)) check_case(kKinds[1], name);
}

}  // namespace
