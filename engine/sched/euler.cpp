// The step-distill schedule and the deterministic Euler step (Note [Step-distill schedule] in sched.h).
// Facts from LightX2V's step-distill scheduler; every value is computed in f32 as there.
#include "core/core.h"
#include "sched/solvers.h"

#include <cmath>

namespace wan::sched {

namespace {

constexpr int kGridSize = 1000;  // linspace(1, 0, 1001)[:-1]

// torch.linspace(1, 0, 1001) on the CPU in f32: step = (end - start) / (n - 1) in f32; the first half counts
// up from start (start + step*i), the second half down from end (end - step*(n - 1 - i)), which makes both
// ends exact.
float grid_sigma(int i) {
    const int n = kGridSize + 1;
    const float start = 1.0f, end = 0.0f;
    const float step = (end - start) / static_cast<float>(n - 1);
    if (i < n / 2) return start + step * static_cast<float>(i);
    return end - step * static_cast<float>(n - 1 - i);
}

// s*sigma / (1 + (s-1)*sigma) with the Python float s meeting an f32 tensor: s is rounded to f32 and every
// operation rounds to f32.
float shifted(float sigma, double shift) {
    const float s = static_cast<float>(shift);
    const float s1 = static_cast<float>(shift - 1.0);
    const float num = s * sigma;
    const float den = 1.0f + s1 * sigma;
    return num / den;
}

}  // namespace

std::vector<int> euler_step_list(int steps) {
    WAN_CHECK(steps >= 1 && steps <= kGridSize, "euler sampling steps must be in [1, %d] (got %d)", kGridSize,
              steps);
    std::vector<int> list;
    list.reserve(static_cast<size_t>(steps));
    for (int j = 0; j < steps; ++j) list.push_back(kGridSize - static_cast<int>((int64_t{kGridSize} * j) / steps));
    return list;
}

Schedule euler_schedule(const std::vector<int>& denoising_steps, double shift) {
    WAN_CHECK(!denoising_steps.empty(), "--denoising-steps: the step list is empty");
    WAN_CHECK(std::isfinite(shift) && shift > 0.0, "sample shift must be a finite number > 0 (got %g)", shift);
    Schedule s;
    for (size_t j = 0; j < denoising_steps.size(); ++j) {
        const int k = denoising_steps[j];
        WAN_CHECK(k >= 1 && k <= kGridSize, "--denoising-steps: step %d is outside [1, %d]", k, kGridSize);
        WAN_CHECK(j == 0 || k < denoising_steps[j - 1],
                  "--denoising-steps: steps must be strictly decreasing (%d follows %d)", k, denoising_steps[j - 1]);
        const float sigma = shifted(grid_sigma(kGridSize - k), shift);
        s.sigmas.push_back(sigma);
        s.timesteps.push_back(static_cast<double>(sigma * 1000.0f));
    }
    s.sigmas.push_back(0.0f);
    return s;
}

EulerSolver::EulerSolver(Schedule schedule)
    : FlowSolver(SolverKind::Euler, std::move(schedule.timesteps), std::move(schedule.sigmas)) {}

at::Tensor EulerSolver::step(const at::Tensor& model_output, int64_t step_index, const at::Tensor& sample) {
    check_step_args(model_output, step_index, sample);
    const size_t i = static_cast<size_t>(step_index);
    const at::Tensor v = model_output.to(at::kFloat);
    at::Tensor x = sample.to(at::kFloat) - v * static_cast<double>(sigmas_[i]);
    if (step_index + 1 < num_steps()) x = x + v * static_cast<double>(sigmas_[i + 1]);
    ++next_index_;
    return x;
}

}  // namespace wan::sched
