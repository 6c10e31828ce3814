// Flow-matching DPM-Solver++ multistep (2nd order, midpoint).
// Ref: wan21-reference.md §6.4; upstream wan/utils/fm_solvers.py (dpm_solver_first_order_update,
// multistep_dpm_solver_second_order_update, step). Scalars as in Note [Scalar arithmetic] (unipc.cpp).
#include "core/core.h"
#include "sched/solvers.h"

#include <algorithm>
#include <cmath>

namespace wan::sched {

namespace {
at::Scalar f32(float v) { return at::Scalar(static_cast<double>(v)); }
}  // namespace

DPMppSolver::DPMppSolver(Schedule schedule)
    : FlowSolver(SolverKind::DPMpp, std::move(schedule.timesteps), std::move(schedule.sigmas)) {}

void DPMppSolver::reset() {
    FlowSolver::reset();
    m_prev_ = at::Tensor();
    m_last_ = at::Tensor();
    lower_order_nums_ = 0;
}

at::Tensor DPMppSolver::step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) {
    check_step_args(model_output, step_index, sample);
    const int i = static_cast<int>(step_index);
    const int steps = num_steps();

    // final_sigmas_type "zero": the last step is always first order. lower_order_second (< 15 steps, i =
    // steps-2) only lowers order 3 to 2, so it changes nothing at solver_order 2.
    const bool first_order = lower_order_nums_ < 1 || i == steps - 1;

    at::Tensor m = sample - model_output * f32(sigmas_[static_cast<size_t>(i)]);  // x0 prediction
    m_prev_ = m_last_;
    m_last_ = m;
    const at::Tensor x = sample.to(at::kFloat);  // upstream upcasts the sample before the update

    const FlowScalars t = flow_scalars(sigmas_[static_cast<size_t>(i) + 1]);
    const FlowScalars s0 = flow_scalars(sigmas_[static_cast<size_t>(i)]);
    // At sigma = 1 (step 0) lambda_s0 = -inf, h = +inf and exp(-h) = 0; at sigma_t = 0 (last step) lambda_t =
    // +inf. IEEE infinities carry these through exactly as upstream (never build with fast-math).
    const float h = t.lambda - s0.lambda;
    const float ratio = t.sigma / s0.sigma;
    const float coef = t.alpha * (std::exp(-h) - 1.0f);

    at::Tensor next;
    if (first_order) {
        next = x * f32(ratio) - m * f32(coef);  // [1, 16, T, H', W']
    } else {
        const FlowScalars s1 = flow_scalars(sigmas_[static_cast<size_t>(i) - 1]);
        const float h0 = s0.lambda - s1.lambda;
        const float r0 = h0 / h;
        // (1.0 / r0) is Python's __rtruediv__ = reciprocal(r0) * 1.0; at step 1 r0 = +inf gives D1 = 0.
        const float inv_r0 = 1.0f / r0;
        at::Tensor d1 = (m_last_ - m_prev_) * f32(inv_r0);
        const float half_coef = 0.5f * coef;
        next = x * f32(ratio) - m_last_ * f32(coef) - d1 * f32(half_coef);
    }
    lower_order_nums_ = std::min(lower_order_nums_ + 1, 2);
    ++next_index_;
    return next.to(m.scalar_type());
}

}  // namespace wan::sched
