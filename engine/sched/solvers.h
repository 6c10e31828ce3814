// Private: the two solver implementations behind make_solver().
#pragma once

#include "sched/sched.h"

#include <ATen/ATen.h>

namespace wan::sched {

/// f32 scalar helpers with the semantics of upstream's 0-dim CPU float32 tensors (§6.3: logf/expm1f, every
/// operation rounded to f32 on its own).
struct FlowScalars {
    float alpha;   // 1 - sigma
    float sigma;
    float lambda;  // log(alpha) - log(sigma); -inf at sigma = 1, +inf at sigma = 0
};
FlowScalars flow_scalars(float sigma);

/// Ref: wan21-reference.md §6.3; upstream FlowUniPCMultistepScheduler (solver_order 2, predict_x0, bh2,
/// lower_order_final, corrector on every step).
class UniPCSolver final : public FlowSolver {
public:
    UniPCSolver(Schedule schedule, SolverOptions opts);
    at::Tensor step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) override;
    void reset() override;

private:
    at::Tensor predictor(const at::Tensor& x, int i, int order) const;
    at::Tensor corrector(const at::Tensor& m_new, int i, int order) const;

    SolverOptions opts_;
    at::Tensor m_prev_;       // x0 prediction of step i-2 (after the shift: of step i-1 while predicting)
    at::Tensor m_last_;       // x0 prediction of step i-1 (after the shift: of step i)
    at::Tensor last_sample_;  // the (corrected) sample the previous predictor started from
    int lower_order_nums_ = 0;
    int this_order_ = 0;      // predictor order of the previous step = corrector order of this one
};

/// Ref: wan21-reference.md §6.4; upstream FlowDPMSolverMultistepScheduler (dpmsolver++, midpoint, order 2,
/// lower_order_final, final sigma zero).
class DPMppSolver final : public FlowSolver {
public:
    explicit DPMppSolver(Schedule schedule);
    at::Tensor step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) override;
    void reset() override;

private:
    at::Tensor m_prev_;
    at::Tensor m_last_;
    int lower_order_nums_ = 0;
};

/// Deterministic flow-matching Euler step (LightX2V's step-distill sampler): x <- x - sigma_i*v, then, except
/// after the last step, x <- x + sigma_{i+1}*v, each in f32 as written (two roundings, not one update by
/// (sigma_{i+1} - sigma_i)). Stateless apart from the step index. Ref: Note [Step-distill schedule] in sched.h.
class EulerSolver final : public FlowSolver {
public:
    explicit EulerSolver(Schedule schedule);
    at::Tensor step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) override;
};

}  // namespace wan::sched
