// Scheduler unit tests: argument checks, the worked numbers of wan21-reference.md §6.2/§6.4, the duplicate
// first timestep of §6.5, the 2x2 LU solve, the final-step identity and the bf16 einsum option.
#include "error_of.h"
#include "core/core.h"
#include "sched/sched.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace {

using wan::sched::make_solver;
using wan::sched::SolverKind;

using wan::test::error_of;

// Each listed sigma equals the reference's float32 value to the bit.
void expect_sigmas(const std::vector<float>& sigmas, std::initializer_list<std::pair<size_t, float>> want) {
    for (const auto& [i, value] : want) {
        ASSERT_LT(i, sigmas.size());
        EXPECT_EQ(sigmas[i], value) << "sigma " << i;
    }
}

// The first head.size() and last tail.size() timesteps equal the reference's.
void expect_timestep_ends(const std::vector<double>& t, const std::vector<double>& head,
                          const std::vector<double>& tail) {
    ASSERT_GE(t.size(), head.size() + tail.size());
    EXPECT_EQ(std::vector<double>(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(head.size())), head);
    EXPECT_EQ(std::vector<double>(t.end() - static_cast<std::ptrdiff_t>(tail.size()), t.end()), tail);
}

TEST(Sched, SolverFromString) {
    EXPECT_EQ(wan::sched::solver_from_string("unipc"), SolverKind::UniPC);
    EXPECT_EQ(wan::sched::solver_from_string("dpm++"), SolverKind::DPMpp);
    EXPECT_STREQ(wan::sched::solver_name(SolverKind::UniPC), "unipc");
    EXPECT_STREQ(wan::sched::solver_name(SolverKind::DPMpp), "dpm++");
    EXPECT_EQ(wan::sched::solver_from_string("euler"), SolverKind::Euler);
    EXPECT_STREQ(wan::sched::solver_name(SolverKind::Euler), "euler");
    const std::string msg = error_of([] { wan::sched::solver_from_string("heun"); });
    EXPECT_NE(msg.find("'heun'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'unipc', 'dpm++' or 'euler'"), std::string::npos) << msg;
    EXPECT_NE(error_of([] { wan::sched::solver_from_string(""); }).find("unknown sample solver"), std::string::npos);
}

TEST(Sched, BadArguments) {
    for (SolverKind k : {SolverKind::UniPC, SolverKind::DPMpp}) {
        EXPECT_NE(error_of([&] { make_solver(k, 0, 5.0); }).find("steps must be >= 1 (got 0)"), std::string::npos);
        EXPECT_NE(error_of([&] { make_solver(k, -3, 5.0); }).find("(got -3)"), std::string::npos);
        EXPECT_NE(error_of([&] { make_solver(k, 10, 0.0); }).find("shift must be a finite number > 0"),
                  std::string::npos);
        EXPECT_NE(error_of([&] { make_solver(k, 10, -1.0); }).find("shift"), std::string::npos);
        EXPECT_NE(error_of([&] { make_solver(k, 10, std::nan("")); }).find("shift"), std::string::npos);
        EXPECT_NE(error_of([&] { make_solver(k, 10, INFINITY); }).find("shift"), std::string::npos);
        EXPECT_NE(error_of([&] { make_solver(static_cast<SolverKind>(0), 10, 5.0); }).find("invalid SolverKind"),
                  std::string::npos);
    }
}

TEST(Sched, StepOrderAndShapesChecked) {
    auto s = make_solver(SolverKind::UniPC, 4, 5.0);
    at::Tensor x = at::randn({1, 16, 2, 3, 4});
    EXPECT_NE(error_of([&] { s->step(x, 1, x); }).find("expected step index 0, got 1"), std::string::npos);
    EXPECT_NE(error_of([&] { s->step(x, 4, x); }).find("out of range"), std::string::npos);
    EXPECT_NE(error_of([&] { s->step(x.slice(2, 0, 1), 0, x); }).find("model_output shape"), std::string::npos);
    x = s->step(x, 0, x);
    EXPECT_EQ(s->next_step_index(), 1);
    EXPECT_NE(error_of([&] { s->step(x, 0, x); }).find("call reset()"), std::string::npos);
    s->reset();
    EXPECT_EQ(s->next_step_index(), 0);
}

TEST(Sched, UniPCWorkedNumbers) {
    // §6.2, steps 50, shift 5.
    auto s = make_solver(SolverKind::UniPC, 50, 5.0);
    const std::vector<double> expected = {999, 995, 991, 987, 982, 978, 973, 968, 963, 957, 952, 946, 940,
                                           934, 927, 920, 913, 906, 898, 890, 882, 873, 863, 854, 843, 833,
                                           821, 809, 796, 783, 768, 753, 737, 720, 701, 681, 660, 636, 611,
                                           584, 555, 522, 487, 448, 405, 356, 302, 241, 172, 92};
    EXPECT_EQ(s->timesteps(), expected);
    const auto& sg = s->sigmas();
    ASSERT_EQ(sg.size(), 51u);
    expect_sigmas(sg, {{0, 0.9997998476028442f}, {1, 0.9957323670387268f}, {2, 0.9915304780006409f},
                       {3, 0.987187385559082f}, {4, 0.9826958179473877f}, {47, 0.24174034595489502f},
                       {48, 0.17226514220237732f}, {49, 0.09250685572624207f}, {50, 0.0f}});

    expect_timestep_ends(make_solver(SolverKind::UniPC, 50, 8.0)->timesteps(), {999, 997, 994, 991, 989},
                         {337, 249, 140});
    expect_timestep_ends(make_solver(SolverKind::UniPC, 40, 5.0)->timesteps(), {999, 994, 989, 983, 978},
                         {288, 208, 113});
}

TEST(Sched, DPMppWorkedNumbers) {
    // §6.4, steps 50, shift 5.
    auto s = make_solver(SolverKind::DPMpp, 50, 5.0);
    expect_timestep_ends(s->timesteps(), {1000, 995, 991, 987, 982}, {241, 172, 92});
    expect_sigmas(s->sigmas(), {{0, 1.0f}, {1, 0.9959349632263184f}, {2, 0.9917355179786682f},
                                {3, 0.9873949289321899f}, {4, 0.9829059839248657f}, {47, 0.24193547666072845f},
                                {48, 0.17241379618644714f}, {49, 0.09259258955717087f}, {50, 0.0f}});
    EXPECT_FALSE(make_solver(SolverKind::DPMpp, 1000, 5.0)->duplicate_first_timestep());
}

TEST(Sched, DuplicateFirstTimestep) {
    // §6.5: the first UniPC step count at which 999 repeats, per shift.
    const std::pair<double, int> thresholds[] = {{5.0, 251}, {8.0, 144}, {10.0, 113}, {12.0, 92}, {16.0, 68},
                                                 {3.0, 501}};
    for (const auto& [shift, first] : thresholds) {
        EXPECT_FALSE(make_solver(SolverKind::UniPC, first - 1, shift)->duplicate_first_timestep()) << shift;
        auto s = make_solver(SolverKind::UniPC, first, shift);
        EXPECT_TRUE(s->duplicate_first_timestep()) << shift;
        // We still step by index from 0 and reach the end (upstream would assert at the last step).
        at::Tensor x = at::randn({1, 4, 1, 2, 2});
        for (int i = 0; i < s->num_steps(); ++i) x = s->step(at::tanh(x), i, x);
        EXPECT_TRUE(x.isfinite().all().item<bool>()) << shift;
    }
}

TEST(Sched, FinalStepReturnsX0Prediction) {
    // sigma_last = 0: the last update is first order and equals m = x - sigma*v exactly (§6.3, §6.4).
    for (SolverKind k : {SolverKind::UniPC, SolverKind::DPMpp}) {
        for (int steps : {1, 2, 7}) {
            auto s = make_solver(k, steps, 3.0);
            at::Tensor x = at::randn({1, 16, 2, 3, 4});
            for (int i = 0; i < steps; ++i) {
                at::Tensor v = at::tanh(x) * 0.5;
                at::Tensor next = s->step(v, i, x);
                if (i == steps - 1 && k == SolverKind::DPMpp) {
                    at::Tensor m = x - v * static_cast<double>(s->sigmas()[static_cast<size_t>(i)]);
                    EXPECT_TRUE(at::equal(next, m)) << "steps " << steps;
                }
                x = next;
            }
            EXPECT_TRUE(x.isfinite().all().item<bool>());
        }
    }
}

TEST(Sched, Solve2x2MatchesLinalgSolve) {
    // The UniC system [[1, 1], [r1, 1]] rho = b for r1 on both sides of -1 (pivoting and not), plus random
    // systems, compared with LibTorch's solve. With reference LAPACK (Debian) every result is bit-identical;
    // MKL or OpenBLAS may round the last bit differently, so only closeness is asserted and the count printed.
    at::manual_seed(0);
    double worst_rel = 0;
    int exact = 0, total = 0;
    for (int n = 0; n < 400; ++n) {
        float a[2][2], y[2], x[2];
        if (n < 200) {
            const float r1 = -std::exp(static_cast<float>(n - 100) / 25.0f);
            a[0][0] = 1; a[0][1] = 1; a[1][0] = r1; a[1][1] = 1;
        } else {
            at::Tensor r = at::randn({4});
            a[0][0] = r[0].item<float>(); a[0][1] = r[1].item<float>();
            a[1][0] = r[2].item<float>(); a[1][1] = r[3].item<float>();
        }
        at::Tensor yy = at::randn({2});
        y[0] = yy[0].item<float>();
        y[1] = yy[1].item<float>();
        wan::sched::solve_2x2_lu(a, y, x);
        at::Tensor A = at::tensor({a[0][0], a[0][1], a[1][0], a[1][1]}).view({2, 2});
        at::Tensor ref = at::linalg_solve(A, yy);
        for (int j = 0; j < 2; ++j) {
            const float r = ref[j].item<float>();
            ++total;
            if (r == x[j]) ++exact;
            worst_rel = std::max(worst_rel, std::abs(static_cast<double>(x[j]) - r) / (std::abs(r) + 1e-30));
        }
    }
    RecordProperty("exact_fraction", std::to_string(exact) + "/" + std::to_string(total));
    std::printf("solve_2x2_lu vs at::linalg_solve: %d/%d bit-identical, worst relative difference %.3g\n", exact,
                total, worst_rel);
    EXPECT_LT(worst_rel, 1e-4);  // ill-conditioned random systems amplify last-bit differences
}

TEST(Sched, Bf16EinsumOption) {
    // With bf16_einsum the first step (order 1, no einsum) is identical; later steps differ by at most the bf16
    // rounding of the small correction terms.
    at::manual_seed(1);
    auto f = make_solver(SolverKind::UniPC, 10, 5.0);
    auto b = make_solver(SolverKind::UniPC, 10, 5.0, {/*bf16_einsum=*/true});
    at::Tensor xf = at::randn({1, 16, 2, 3, 4}), xb = xf.clone();
    for (int i = 0; i < 10; ++i) {
        at::Tensor nf = f->step(at::tanh(xf) * 0.5, i, xf);
        at::Tensor nb = b->step(at::tanh(xb) * 0.5, i, xb);
        EXPECT_EQ(nb.scalar_type(), at::kFloat);
        if (i == 0) {
            EXPECT_TRUE(at::equal(nf, nb));
        } else {
            const double diff = (nf - nb).abs().max().item<double>();
            EXPECT_LT(diff, 5e-2) << "step " << i;
        }
        xf = nf;
        xb = nb;
    }
    EXPECT_FALSE(at::equal(xf, xb));
    // DPM++ ignores the option.
    auto d0 = make_solver(SolverKind::DPMpp, 5, 5.0);
    auto d1 = make_solver(SolverKind::DPMpp, 5, 5.0, {true});
    at::Tensor x = at::randn({1, 4, 1, 2, 2});
    EXPECT_TRUE(at::equal(d0->step(x, 0, x), d1->step(x, 0, x)));
}

}  // namespace
