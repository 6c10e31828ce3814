// Sigma schedules, the solver factory and the shared step checks.
// Ref: wan21-reference.md §6.1, §6.2, §6.4, §6.5.
#include "sched/sched.h"

#include "core/core.h"
#include "sched/solvers.h"

#include <ATen/ATen.h>

#include <cfloat>
#include <cmath>

namespace wan::sched {

namespace {

constexpr int kNumTrainTimesteps = 1000;

// numpy.linspace(start, stop, num) for num >= 2: y_i = i*step + start with step = (stop - start)/(num - 1),
// the last element set to stop. Every operation rounds to float64 separately (no FMA: the module is built
// with -ffp-contract=off), exactly as numpy's separate ufunc passes do.
std::vector<double> np_linspace(double start, double stop, int num) {
    std::vector<double> y(static_cast<size_t>(num));
    const double step = (stop - start) / static_cast<double>(num - 1);
    for (int i = 0; i < num; ++i) {
        const double scaled = static_cast<double>(i) * step;
        y[static_cast<size_t>(i)] = scaled + start;
    }
    y.back() = stop;
    return y;
}

void check_args(int steps, double shift) {
    WAN_CHECK(steps >= 1, "sampling steps must be >= 1 (got %d)", steps);
    // shift = 0 makes every sigma 0 and log(0) undefined upstream (§6.5); negative shifts give sigmas
    // outside [0, 1].
    WAN_CHECK(std::isfinite(shift) && shift > 0.0, "sample shift must be a finite number > 0 (got %g)", shift);
}

// Upstream shift: (shift*sigma) / (1 + (shift - 1)*sigma) in float64, then timesteps = int64(1000*sigma)
// (truncation toward zero) and sigmas = f32([sigma..., 0]) (final_sigmas_type "zero").
Schedule finish_schedule(const std::vector<double>& sigma_unshifted, double shift) {
    Schedule s;
    s.timesteps.reserve(sigma_unshifted.size());
    s.sigmas.reserve(sigma_unshifted.size() + 1);
    for (double sigma : sigma_unshifted) {
        const double num = shift * sigma;
        const double den = 1.0 + (shift - 1.0) * sigma;
        const double shifted = num / den;
        s.timesteps.push_back(static_cast<double>(static_cast<int64_t>(shifted * static_cast<double>(kNumTrainTimesteps))));
        s.sigmas.push_back(static_cast<float>(shifted));
    }
    s.sigmas.push_back(0.0f);
    return s;
}

}  // namespace

SolverKind solver_from_string(const std::string& name) {
    if (name == "unipc") return SolverKind::UniPC;
    if (name == "dpm++") return SolverKind::DPMpp;
    if (name == "euler") return SolverKind::Euler;
    WAN_THROW("unknown sample solver '%s': expected 'unipc', 'dpm++' or 'euler'", name.c_str());
}

const char* solver_name(SolverKind kind) {
    switch (kind) {
        case SolverKind::UniPC: return "unipc";
        case SolverKind::DPMpp: return "dpm++";
        case SolverKind::Euler: return "euler";
    }
    WAN_THROW("invalid SolverKind value %d", static_cast<int>(kind));
}

Schedule unipc_schedule(int steps, double shift) {
    check_args(steps, shift);
    // §6.1: the constructor's training sigmas are f32(1 - reversed(linspace(1, 1/1000, 1000))); sigma_max is
    // their first element as a Python float, f32(0.999) = 0.9990000128746033; sigma_min = 0.
    const std::vector<double> alphas = np_linspace(1.0, 1.0 / kNumTrainTimesteps, kNumTrainTimesteps);
    const double sigma_max = static_cast<double>(static_cast<float>(1.0 - alphas.back()));
    const double sigma_min = static_cast<double>(static_cast<float>(1.0 - alphas.front()));
    // §6.2: linspace(sigma_max, sigma_min, steps + 1)[:-1], then the shift passed to set_timesteps.
    std::vector<double> sigma = np_linspace(sigma_max, sigma_min, steps + 1);
    sigma.pop_back();
    return finish_schedule(sigma, shift);
}

Schedule dpmpp_schedule(int steps, double shift) {
    check_args(steps, shift);
    // §6.4: get_sampling_sigmas = linspace(1, 0, steps + 1)[:steps] shifted; set_timesteps(sigmas=...) then
    // applies the constructor's shift 1, which is an exact identity in float64 (1*s / (1 + 0*s)).
    std::vector<double> sigma = np_linspace(1.0, 0.0, steps + 1);
    sigma.pop_back();
    return finish_schedule(sigma, shift);
}

void solve_2x2_lu(const float a[2][2], const float y[2], float x[2]) {
    // Note [2x2 solve]
    // torch.linalg.solve(A, B) with a contiguous A factors A^T (getrf) and solves with the adjoint
    // (getrs, trans = 'T'); this saves a copy into column-major order. We replay the reference LAPACK
    // sequence for n = 2 on T = A^T: sgetrf2 picks the first row of largest |T[i][0]| as pivot and scales the
    // column below it by the f32 reciprocal of the pivot (|pivot| >= FLT_MIN, else a division), the Schur
    // complement is d + (-u01)*l (sgemm, alpha = -1); sgetrs then solves U^T z = y (strsm, divisions), then
    // L^T w = z (unit), then undoes the row swap. Against Debian's libtorch + reference LAPACK this is
    // bit-identical (tests/sched: Solve2x2MatchesLinalgSolve); MKL, OpenBLAS or cuSOLVER may differ in the last
    // bit, which is far below the scheduler tolerance.
    const float t[2][2] = {{a[0][0], a[1][0]}, {a[0][1], a[1][1]}};  // T = A^T
    int p = 0, q = 1;
    if (std::fabs(t[1][0]) > std::fabs(t[0][0])) std::swap(p, q);
    const float u00 = t[p][0], u01 = t[p][1];
    float l10 = t[q][0];
    if (u00 != 0.0f) {
        if (std::fabs(u00) >= FLT_MIN) {
            const float inv = 1.0f / u00;
            l10 = l10 * inv;
        } else {
            l10 = l10 / u00;
        }
    }
    const float u11 = t[q][1] + (-u01) * l10;
    // A = T^T = (P^T L U)^T = U^T L^T P: forward with U^T, back with L^T, then the permutation.
    const float z0 = y[0] / u00;
    const float z1 = (y[1] - u01 * z0) / u11;
    const float w1 = z1;
    const float w0 = z0 - l10 * w1;
    x[p] = w0;
    x[q] = w1;
}

FlowSolver::FlowSolver(SolverKind kind, std::vector<double> timesteps, std::vector<float> sigmas)
    : kind_(kind), timesteps_(std::move(timesteps)), sigmas_(std::move(sigmas)) {}

void FlowSolver::reset() { next_index_ = 0; }

void FlowSolver::check_step_args(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) const {
    WAN_CHECK(step_index >= 0 && step_index < num_steps(), "%s step index %lld is out of range [0, %d)",
              solver_name(kind_), static_cast<long long>(step_index), num_steps());
    WAN_CHECK(step_index == next_index_,
              "%s steps must be taken in order: expected step index %d, got %lld (call reset() to restart)",
              solver_name(kind_), next_index_, static_cast<long long>(step_index));
    WAN_CHECK(model_output.defined() && sample.defined(), "%s step %lld: undefined model_output or sample tensor",
              solver_name(kind_), static_cast<long long>(step_index));
    WAN_CHECK(model_output.sizes() == sample.sizes(), "%s step %lld: model_output shape %s != sample shape %s",
              solver_name(kind_), static_cast<long long>(step_index), c10::str(model_output.sizes()).c_str(),
              c10::str(sample.sizes()).c_str());
    WAN_CHECK(model_output.device() == sample.device(), "%s step %lld: model_output on %s but sample on %s",
              solver_name(kind_), static_cast<long long>(step_index), model_output.device().str().c_str(),
              sample.device().str().c_str());
    WAN_CHECK(at::isFloatingType(model_output.scalar_type()) && at::isFloatingType(sample.scalar_type()),
              "%s step %lld: model_output and sample must be floating point (got %s and %s)", solver_name(kind_),
              static_cast<long long>(step_index), c10::toString(model_output.scalar_type()),
              c10::toString(sample.scalar_type()));
}

std::unique_ptr<FlowSolver> make_solver(SolverKind kind, int steps, double shift, SolverOptions opts) {
    WAN_CHECK(kind == SolverKind::Euler || opts.denoising_steps.empty(),
              "denoising steps (--denoising-steps) apply to the 'euler' solver only, not to '%s'",
              kind == SolverKind::UniPC || kind == SolverKind::DPMpp ? solver_name(kind) : "?");
    switch (kind) {
        case SolverKind::UniPC: {
            Schedule s = unipc_schedule(steps, shift);
            auto solver = std::make_unique<UniPCSolver>(std::move(s), opts);
            if (solver->duplicate_first_timestep()) {
                // See the FlowSolver class comment: upstream would start at index 1 and fail at the end.
                WAN_LOG_WARN("UniPC with %d steps and shift %g repeats the first timestep %g; upstream would "
                             "skip step 0 and fail at the last step, WanStudio steps by index from 0",
                             steps, shift, solver->timesteps()[0]);
            }
            return solver;
        }
        case SolverKind::DPMpp: return std::make_unique<DPMppSolver>(dpmpp_schedule(steps, shift));
        case SolverKind::Euler: {
            const std::vector<int> list = opts.denoising_steps.empty() ? euler_step_list(steps) : opts.denoising_steps;
            return std::make_unique<EulerSolver>(euler_schedule(list, shift));
        }
    }
    WAN_THROW("invalid SolverKind value %d", static_cast<int>(kind));
}

}  // namespace wan::sched
