// WanStudio flow-matching solvers: UniPC (upstream default) and DPM-Solver++ multistep, with the upstream
// shifted sigma schedules, and the deterministic Euler step of the step-distilled models (LightX2V's rule).
// Pure tensor maths: no model, no communication, no autograd.
//
// Ref: wan21-reference.md §6 (upstream wan/utils/fm_solvers_unipc.py, wan/utils/fm_solvers.py).
//
// Example (the pipeline's denoising loop, §7.2 step 6):
//   auto solver = wan::sched::make_solver(wan::sched::SolverKind::UniPC, /*steps=*/50, /*shift=*/5.0,
//                                         {/*bf16_einsum=*/latent.is_cuda()});
//   for (int i = 0; i < solver->num_steps(); ++i) {
//       const double t = solver->timesteps()[i];            // the DiT is conditioned on this value
//       at::Tensor v = ...;                                  // CFG velocity, f32 [1, 16, T, H', W']
//       latent = solver->step(v, i, latent);                 // f32 [1, 16, T, H', W']
//   }
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace wan::sched {

/// The two upstream solvers (`--sample_solver unipc | dpm++`) and the step-distill Euler step
/// (`--sample-solver euler`). Zero is deliberately not a value.
enum class SolverKind { UniPC = 1, DPMpp = 2, Euler = 3 };

/// "unipc" -> UniPC, "dpm++" -> DPMpp (the upstream option spellings; case-sensitive as upstream),
/// "euler" -> Euler. Throws wan::Error naming the accepted values otherwise.
SolverKind solver_from_string(const std::string& name);
/// "unipc" / "dpm++" / "euler" (round-trips with solver_from_string).
const char* solver_name(SolverKind kind);

struct SolverOptions {
    /// Round UniPC's two einsum results to bf16 as upstream's pipeline does: it calls `step()` inside
    /// `autocast(bf16)` on CUDA, so `pred_res = bf16(0.5*bf16(D1))` and `corr = bf16(bf16(rho0)*bf16(D1))`
    /// (§6.3 PARITY (a), Appendix A.2). Default false = plain f32, which is what the CPU golden data hold.
    /// The pipeline sets it on CUDA. DPM++ has no einsum and ignores it.
    bool bf16_einsum = false;
    /// Euler only: LightX2V's explicit step list (`--denoising-steps 1000,750,500,250`), integers in
    /// [1, 1000], strictly decreasing (see euler_schedule). When non-empty it defines the steps and
    /// make_solver's `steps` is ignored; empty: `steps` evenly spaced steps (euler_step_list). Another solver
    /// with a non-empty list throws (the list means nothing to them).
    std::vector<int> denoising_steps;
};

/// A multistep flow-matching solver. Convention (§6): x_sigma = (1 - sigma) x0 + sigma eps, the model
/// predicts v ~ eps - x0, so x0 = x - sigma v.
///
/// Steps are addressed by index, not by timestep lookup: upstream initialises its index by searching the
/// given timestep and takes the SECOND match when it occurs twice, which happens for UniPC with many steps
/// (e.g. shift 5 and steps >= 251: 999 appears twice), so upstream then starts at index 1 and fails with an
/// assertion at the last step (§6.5). We do not reproduce that bug: index 0 is always the first step.
/// `duplicate_first_timestep()` tells when upstream would have diverged.
class FlowSolver {
public:
    virtual ~FlowSolver() = default;
    FlowSolver(const FlowSolver&) = delete;
    FlowSolver& operator=(const FlowSolver&) = delete;

    SolverKind kind() const { return kind_; }
    /// The timesteps the DiT is conditioned on, length num_steps(). UniPC / DPM++: upstream's int64
    /// truncation of 1000*sigma computed in float64 (whole numbers, exact in double). Euler: 1000*sigma in
    /// f32 as LightX2V computes it (937.5, 833.333..., not integers). Pass them to the DiT as they are
    /// (a float64 scalar tensor); never round them to integers.
    virtual const std::vector<double>& timesteps() const { return timesteps_; }
    /// The f32 sigmas the solver uses, length num_steps() + 1, last = 0.
    virtual const std::vector<float>& sigmas() const { return sigmas_; }
    int num_steps() const { return static_cast<int>(timesteps_.size()); }
    /// The index the next step() call must pass (0 after construction or reset()).
    int next_step_index() const { return next_index_; }
    /// True when timesteps()[0] == timesteps()[1] (see the class comment).
    bool duplicate_first_timestep() const { return timesteps_.size() > 1 && timesteps_[0] == timesteps_[1]; }

    /// One solver step: `model_output` is the velocity at `sample` (same shape, f32, any device; a bf16
    /// model output is accepted and promoted as upstream's arithmetic does). Returns the f32 sample for
    /// sigma[step_index + 1]. Steps must be taken in order 0, 1, ..., num_steps()-1 (the multistep state
    /// depends on it); anything else throws. `sample` must be the tensor the previous step returned.
    virtual at::Tensor step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) = 0;

    /// Forget the multistep history so that a new trajectory can start at index 0.
    virtual void reset();

protected:
    FlowSolver(SolverKind kind, std::vector<double> timesteps, std::vector<float> sigmas);
    /// Checks the index, shapes and dtypes; throws wan::Error with what was expected.
    void check_step_args(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) const;

    SolverKind kind_;
    std::vector<double> timesteps_;
    std::vector<float> sigmas_;
    int next_index_ = 0;
};

/// Builds the solver with upstream's schedule for `steps` (>= 1) and `shift` (> 0, finite):
/// UniPC: set_timesteps(steps, shift) (§6.2); DPM++: get_sampling_sigmas(steps, shift) (§6.4);
/// Euler: euler_schedule(opts.denoising_steps, shift), or euler_schedule(euler_step_list(steps), shift) when
/// the list is empty. Throws wan::Error on bad arguments.
std::unique_ptr<FlowSolver> make_solver(SolverKind kind, int steps, double shift, SolverOptions opts = {});

/// The schedules alone (no solver state). `sigmas` has steps + 1 entries.
struct Schedule {
    std::vector<double> timesteps;
    std::vector<float> sigmas;
};
Schedule unipc_schedule(int steps, double shift);
Schedule dpmpp_schedule(int steps, double shift);

/// Note [Step-distill schedule] (LightX2V's rule for the step-distilled Wan models, all in f32 as there):
/// the grid sigma_j = linspace(1, 0, 1001)[j] for j = 0..999 (torch.linspace's f32 arithmetic), shifted
/// sigma_j <- s*sigma_j / (1 + (s-1)*sigma_j), t_j = 1000*sigma_j. A listed step k (an integer in [1, 1000])
/// picks grid index 1000 - k; the list must be strictly decreasing (no index twice, time runs forward).
/// Shift 5 and steps 1000,750,500,250 give t = 1000, 937.5, 833.333, 625. `sigmas` has the picked sigmas
/// and a final 0 (the Euler step after the last one lands on sigma 0). Throws wan::Error naming
/// `--denoising-steps` and the offending value otherwise. (Parsing the option's text: wan::parse_step_list in
/// core/presets.h.)
Schedule euler_schedule(const std::vector<int>& denoising_steps, double shift);
/// `steps` (1..1000) evenly spaced steps on the same grid: step j (j = 0..steps-1) is
/// k_j = 1000 - floor(1000*j / steps) (integer arithmetic), i.e. grid index floor(1000*j / steps).
/// 4 -> 1000, 750, 500, 250; 3 -> 1000, 667, 334; 1000 -> 1000, 999, ..., 1.
std::vector<int> euler_step_list(int steps);

/// Solves the 2x2 system a x = y in f32 the way torch.linalg.solve does on a contiguous matrix: LU of a^T with
/// partial pivoting (LAPACK sgetrf2 order, pivot column scaled by the f32 reciprocal) and the transposed
/// solve (sgetrs 'T', divisions). See Note [2x2 solve] in schedule.cpp. Exposed for the tests.
/// Ref: §6.3 PARITY (b).
void solve_2x2_lu(const float a[2][2], const float y[2], float x[2]);

}  // namespace wan::sched
