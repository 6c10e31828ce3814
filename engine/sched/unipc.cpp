// Flow-matching UniPC multistep (UniP predictor + UniC corrector, B(h) = expm1(-h)).
// Ref: wan21-reference.md §6.3; upstream wan/utils/fm_solvers_unipc.py (multistep_uni_p_bh_update,
// multistep_uni_c_bh_update, step).
//
// Note [Scalar arithmetic]
// Upstream keeps the sigmas on the CPU as float32 and forms every coefficient with 0-dim CPU float32 tensors
// (log, expm1, products) before one tensor op uses it: `sigma_t / sigma_s0 * x` is (sigma_t/sigma_s0) * x.
// We do the same with C++ floats (std::log/std::expm1 on float = logf/expm1f; the module is built without
// fast-math and without FMA contraction) and hand each coefficient to ATen as a Scalar. A Scalar becomes a
// wrapped CPU number, so `tensor / Scalar` behaves as upstream's division by a 0-dim CPU tensor on every
// device: a true division on the CPU, a multiplication by the f32 reciprocal on CUDA (§6.3, Appendix A.14).
#include "core/core.h"
#include "sched/solvers.h"

#include <algorithm>
#include <cmath>

namespace wan::sched {

FlowScalars flow_scalars(float sigma) {
    FlowScalars s;
    s.sigma = sigma;
    s.alpha = 1.0f - sigma;
    const float log_alpha = std::log(s.alpha);
    const float log_sigma = std::log(sigma);
    s.lambda = log_alpha - log_sigma;
    return s;
}

namespace {

at::Scalar f32(float v) { return at::Scalar(static_cast<double>(v)); }

// Rounds a float to bf16 (round to nearest even), as the autocast cast of a 0-dim f32 tensor does.
float round_bf16(float v) { return static_cast<float>(c10::BFloat16(v)); }

// The coefficients shared by UniP and UniC for one interval s0 -> t (§6.3).
struct Interval {
    FlowScalars t, s0;
    float h, hh, h_phi_1, b_h;
};

Interval make_interval(float sigma_t, float sigma_s0) {
    Interval iv;
    iv.t = flow_scalars(sigma_t);
    iv.s0 = flow_scalars(sigma_s0);
    iv.h = iv.t.lambda - iv.s0.lambda;
    iv.hh = -iv.h;                   // predict_x0
    iv.h_phi_1 = std::expm1(iv.hh);  // h*phi_1(h) = e^hh - 1
    iv.b_h = std::expm1(iv.hh);      // bh2
    return iv;
}

// base = (sigma_t/sigma_s0)*x - (alpha_t*h_phi_1)*m0, both coefficients formed first (Note [Scalar arithmetic]).
at::Tensor interval_base(const Interval& iv, const at::Tensor& x, const at::Tensor& m0) {
    const float ratio = iv.t.sigma / iv.s0.sigma;
    const float coef = iv.t.alpha * iv.h_phi_1;
    return x * f32(ratio) - m0 * f32(coef);  // [1, 16, T, H', W']
}

}  // namespace

UniPCSolver::UniPCSolver(Schedule schedule, SolverOptions opts)
    : FlowSolver(SolverKind::UniPC, std::move(schedule.timesteps), std::move(schedule.sigmas)), opts_(opts) {}

void UniPCSolver::reset() {
    FlowSolver::reset();
    m_prev_ = at::Tensor();
    m_last_ = at::Tensor();
    last_sample_ = at::Tensor();
    lower_order_nums_ = 0;
    this_order_ = 0;
}

at::Tensor UniPCSolver::step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) {
    check_step_args(model_output, step_index, sample);
    const int i = static_cast<int>(step_index);
    const int steps = num_steps();

    // x0 prediction: m = x - sigma_i * v (convert_model_output, flow_prediction + predict_x0).
    at::Tensor m = sample - model_output * f32(sigmas_[static_cast<size_t>(i)]);  // [1, 16, T, H', W']

    at::Tensor x = sample;
    if (i > 0 && last_sample_.defined()) {
        // UniC with the order the previous predictor used; it replaces the predicted sample.
        x = corrector(m, i, this_order_);
    }
    m_prev_ = m_last_;
    m_last_ = m;

    // lower_order_final: order 1 at the last step; warm-up: order 1 at step 0.
    int order = std::min(2, steps - i);
    order = std::min(order, lower_order_nums_ + 1);
    this_order_ = order;
    last_sample_ = x;

    at::Tensor next = predictor(x, i, order);
    lower_order_nums_ = std::min(lower_order_nums_ + 1, 2);
    ++next_index_;
    return next;
}

at::Tensor UniPCSolver::predictor(const at::Tensor& x, int i, int order) const {
    // UniP from sigma_i (s0) to sigma_{i+1} (t); m0 = M[last] = m_i.
    const Interval iv = make_interval(sigmas_[static_cast<size_t>(i) + 1], sigmas_[static_cast<size_t>(i)]);
    const at::Tensor& m0 = m_last_;
    at::Tensor x_t = interval_base(iv, x, m0);
    if (order == 2) {
        const FlowScalars s1 = flow_scalars(sigmas_[static_cast<size_t>(i) - 1]);
        const float r1 = (s1.lambda - iv.s0.lambda) / iv.h;
        at::Tensor d1 = (m_prev_ - m0) / f32(r1);  // [1, 16, T, H', W']
        const float coef = iv.t.alpha * iv.b_h;
        // rho_p = 0.5 for order 2; einsum("k,bkc...->bc...", [0.5], D1s) with one term is 0.5*D1 exactly.
        if (opts_.bf16_einsum) {
            // autocast: pred_res = bf16(0.5*bf16(D1)); (alpha_t*B_h)*pred_res stays bf16 (a 0-dim f32 factor
            // does not promote a bf16 tensor), computed in f32 and rounded; f32 - bf16 promotes to f32.
            at::Tensor pred_res = (d1.to(at::kBFloat16).to(at::kFloat) * 0.5).to(at::kBFloat16);
            at::Tensor update = (pred_res.to(at::kFloat) * f32(coef)).to(at::kBFloat16);
            x_t = x_t - update.to(at::kFloat);
        } else {
            at::Tensor pred_res = d1 * 0.5;
            x_t = x_t - pred_res * f32(coef);
        }
    }
    return x_t.to(x.scalar_type());
}

at::Tensor UniPCSolver::corrector(const at::Tensor& m_new, int i, int order) const {
    // UniC over the previous interval sigma_{i-1} (s0) -> sigma_i (t), restarting from the sample the
    // previous predictor started from; m0 = m_{i-1} (still M[last] here: the history shifts afterwards).
    WAN_CHECK(order == 1 || order == 2, "UniPC corrector order %d at step %d (expected 1 or 2)", order, i);
    const Interval iv = make_interval(sigmas_[static_cast<size_t>(i)], sigmas_[static_cast<size_t>(i) - 1]);
    const at::Tensor& m0 = m_last_;
    const at::Tensor& x = last_sample_;

    float r1 = 0.0f;
    if (order == 2) {
        const FlowScalars s1 = flow_scalars(sigmas_[static_cast<size_t>(i) - 2]);
        r1 = (s1.lambda - iv.s0.lambda) / iv.h;
    }

    // b_k = h_phi_k * k! / B_h with h_phi_1 = expm1(hh), h_phi_{k+1} = h_phi_k / hh - 1/(k+1)!, all f32.
    float b[2] = {0.0f, 0.0f};
    float h_phi_k = iv.h_phi_1 / iv.hh - 1.0f;
    int factorial = 1;
    for (int k = 1; k <= order; ++k) {
        b[k - 1] = h_phi_k * static_cast<float>(factorial) / iv.b_h;
        factorial *= k + 1;
        h_phi_k = h_phi_k / iv.hh - static_cast<float>(1.0 / factorial);
    }

    float rho[2] = {0.5f, 0.0f};
    int n_rho = 1;
    if (order == 2) {
        // linalg.solve(R, b) with R = [[1, 1], [r1, 1]] (rows r^0, r^1 of rks = [r1, 1]).
        const float R[2][2] = {{1.0f, 1.0f}, {r1, 1.0f}};
        solve_2x2_lu(R, b, rho);
        n_rho = 2;
    }
    const float rho_last = rho[n_rho - 1];

    at::Tensor x_t = interval_base(iv, x, m0);  // [1, 16, T, H', W']
    at::Tensor d1_t = m_new - m0;
    at::Tensor inner = d1_t * f32(rho_last);
    if (order == 2) {
        at::Tensor d1 = (m_prev_ - m0) / f32(r1);
        at::Tensor corr;
        if (opts_.bf16_einsum) {
            // autocast: corr = bf16(bf16(rho0) * bf16(D1)); bf16 + f32 promotes to f32.
            corr = (d1.to(at::kBFloat16).to(at::kFloat) * f32(round_bf16(rho[0]))).to(at::kBFloat16);
            inner = corr.to(at::kFloat) + inner;
        } else {
            corr = d1 * f32(rho[0]);
            inner = corr + inner;
        }
    }
    const float coef = iv.t.alpha * iv.b_h;
    x_t = x_t - inner * f32(coef);
    return x_t.to(x.scalar_type());
}

}  // namespace wan::sched
