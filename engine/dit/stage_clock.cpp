#include "dit/stage_clock.h"

#if WAN_HAVE_FUSED_KERNELS
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime.h>
#endif

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace wan::dit {

#if WAN_HAVE_FUSED_KERNELS
struct StageClock::Impl {
    cudaStream_t stream = nullptr;
    std::vector<cudaEvent_t> events;  // events[0] = start; events[i] closes stages[i - 1]
    std::vector<const char*> stages;
};

StageClock::StageClock(c10::Device device, bool enabled) {
    if (!enabled || !device.is_cuda()) return;
    impl_ = std::make_unique<Impl>();
    impl_->stream = at::cuda::getCurrentCUDAStream(device.index());
    cudaEvent_t start;
    cudaEventCreate(&start);
    cudaEventRecord(start, impl_->stream);
    impl_->events.push_back(start);
}

void StageClock::record(const char* stage) {
    cudaEvent_t ev;
    cudaEventCreate(&ev);
    cudaEventRecord(ev, impl_->stream);
    impl_->events.push_back(ev);
    impl_->stages.push_back(stage);
}

StageClock::~StageClock() {
    if (!impl_) return;
    cudaEventSynchronize(impl_->events.back());
    std::vector<std::pair<const char*, double>> sums;  // first-seen order
    double total = 0;
    for (size_t i = 0; i < impl_->stages.size(); ++i) {
        float ms = 0;
        cudaEventElapsedTime(&ms, impl_->events[i], impl_->events[i + 1]);
        total += ms;
        auto it = sums.begin();
        while (it != sums.end() && std::strcmp(it->first, impl_->stages[i]) != 0) ++it;
        if (it == sums.end()) sums.emplace_back(impl_->stages[i], ms);
        else it->second += ms;
    }
    std::string line = "[dit stages] total " + std::to_string(total) + " ms:";
    for (const auto& [name, ms] : sums) line += " " + std::string(name) + "=" + std::to_string(ms);
    std::fprintf(stderr, "%s\n", line.c_str());
    for (cudaEvent_t ev : impl_->events) cudaEventDestroy(ev);
}
#else
struct StageClock::Impl {};
StageClock::StageClock(c10::Device, bool) {}
StageClock::~StageClock() = default;
void StageClock::record(const char*) {}
#endif

}  // namespace wan::dit
