#include "vae/stage_clock.h"

#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime.h>
#endif

#include "core/core.h"

#include <algorithm>
#include <cstdio>

namespace wan::vae {

void StageTimes::add(const std::string& stage, double ms, int64_t calls) {
    auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.stage == stage; });
    if (it == entries.end()) it = entries.insert(entries.end(), Entry{stage, 0, 0});
    it->ms += ms;
    it->calls += calls;
}

double StageTimes::total_ms() const {
    double total = 0;
    for (const Entry& e : entries) total += e.ms;
    return total;
}

std::string StageTimes::table() const {
    std::vector<Entry> rows = entries;
    std::sort(rows.begin(), rows.end(), [](const Entry& a, const Entry& b) { return a.ms > b.ms; });
    const double per = decodes > 0 ? 1.0 / static_cast<double>(decodes) : 1.0;
    const double total = std::max(total_ms(), 1e-9);
    std::string out;
    char line[160];
    std::snprintf(line, sizeof line, "%-28s %12s %7s %9s\n", "stage", "ms/decode", "share", "calls");
    out += line;
    for (const Entry& e : rows) {
        std::snprintf(line, sizeof line, "%-28s %12.2f %6.1f%% %9lld\n", e.stage.c_str(), e.ms * per,
                      100.0 * e.ms / total, static_cast<long long>(static_cast<double>(e.calls) * per));
        out += line;
    }
    std::snprintf(line, sizeof line, "%-28s %12.2f %6.1f%%   (%lld decodes)\n", "total", total * per, 100.0,
                  static_cast<long long>(decodes));
    out += line;
    // The same summed over the levels: a stage's name without its level.
    StageTimes kinds;
    for (const Entry& e : entries) kinds.add(e.stage.substr(0, e.stage.rfind(' ')), e.ms, e.calls);
    std::sort(kinds.entries.begin(), kinds.entries.end(), [](const Entry& a, const Entry& b) { return a.ms > b.ms; });
    out += "by kind:";
    for (const Entry& e : kinds.entries) {
        std::snprintf(line, sizeof line, " %s %.1f (%.0f%%);", e.stage.c_str(), e.ms * per, 100.0 * e.ms / total);
        out += line;
    }
    out += "\n";
    return out;
}

}  // namespace wan::vae

namespace wan::vae::detail {

std::string stage_name(Stage stage, int level) {
    static const char* const kNames[] = {"conv 3x3x3", "conv 1x3x3 (upsample)", "conv 3x1x1 (time)",
                                         "conv 1x1x1 (shortcut)", "causal input (cat/fold)", "cache save",
                                         "rms norm", "silu", "norm+silu fused", "residual add", "attention block",
                                         "upsample copy", "output copy"};
    static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Stage::Count), "a name per stage");
    static const char* const kLevelNames[kLevels] = {"1/8", "1/4", "1/2", "1/1"};
    const int l = std::min(std::max(level, 0), kLevels - 1);
    return std::string(kNames[static_cast<int>(stage)]) + " " + kLevelNames[l];
}

#if WAN_HAVE_CUDA
struct StageClock::Events {
    cudaStream_t stream = nullptr;
    std::vector<cudaEvent_t> events;  // events[0] = start; events[i] closes marks_[i - 1]

    void record() {
        cudaEvent_t ev = nullptr;
        cudaEventCreate(&ev);
        cudaEventRecord(ev, stream);
        events.push_back(ev);
    }
    ~Events() {
        for (cudaEvent_t ev : events) cudaEventDestroy(ev);
    }
};
#else
struct StageClock::Events {};
#endif

StageClock::StageClock(c10::Device device, StageTimes* sink) : sink_(sink), active_(sink != nullptr) {
    if (!active_) return;
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        events_ = std::make_unique<Events>();
        events_->stream = at::cuda::getCurrentCUDAStream(device.index());
        events_->record();
        return;
    }
#endif
    WAN_CHECK(!device.is_cuda(), "VAE stage clock: this build has no CUDA");
    wall_.push_back(std::chrono::steady_clock::now());
}

StageClock::~StageClock() {
    try {
        finish();
    } catch (...) {  // a destructor must not throw; the times of a failed decode are not worth reporting
    }
}

void StageClock::record(Stage stage, int level) {
    marks_.emplace_back(stage, level);
#if WAN_HAVE_CUDA
    if (events_) {
        events_->record();
        return;
    }
#endif
    wall_.push_back(std::chrono::steady_clock::now());
}

void StageClock::finish() {
    if (!active_) return;
    active_ = false;
    std::vector<double> ms(marks_.size(), 0.0);
#if WAN_HAVE_CUDA
    if (events_) {
        cudaEventSynchronize(events_->events.back());
        for (size_t i = 0; i < marks_.size(); ++i) {
            float m = 0;
            cudaEventElapsedTime(&m, events_->events[i], events_->events[i + 1]);
            ms[i] = m;
        }
    }
#endif
    if (!events_) {
        for (size_t i = 0; i < marks_.size(); ++i) {
            ms[i] = std::chrono::duration<double, std::milli>(wall_[i + 1] - wall_[i]).count();
        }
    }
    // Sum per (stage, level) first: a decode makes thousands of marks over a few dozen stages.
    std::array<std::array<double, kLevels>, static_cast<size_t>(Stage::Count)> sum{};
    std::array<std::array<int64_t, kLevels>, static_cast<size_t>(Stage::Count)> calls{};
    std::vector<std::pair<int, int>> order;  // first-seen (stage, level)
    for (size_t i = 0; i < marks_.size(); ++i) {
        const int s = static_cast<int>(marks_[i].first), l = std::min(std::max(marks_[i].second, 0), kLevels - 1);
        if (calls[s][l] == 0) order.emplace_back(s, l);
        sum[s][l] += ms[i];
        ++calls[s][l];
    }
    for (const auto& [s, l] : order) sink_->add(stage_name(static_cast<Stage>(s), l), sum[s][l], calls[s][l]);
}

}  // namespace wan::vae::detail
