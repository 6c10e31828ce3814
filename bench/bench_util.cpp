#include "bench_util.h"

#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>

namespace wan::bench {

#if WAN_HAVE_CUDA

namespace {
// LibTorch creates a device's caching allocator on its first allocation; the statistics calls need it.
void touch_allocator(c10::Device device) { (void)at::empty({1}, at::TensorOptions().device(device)); }
}  // namespace

void sync(c10::Device device) {
    if (device.is_cuda()) at::cuda::getCurrentCUDAStream(device.index()).synchronize();
}

void reset_peak(c10::Device device) {
    if (!device.is_cuda()) return;
    touch_allocator(device);
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
}

double peak_gb(c10::Device device) {
    if (!device.is_cuda()) return 0;
    touch_allocator(device);
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak) / 1e9;
}

std::string device_name(c10::Device device) {
    return device.is_cuda() ? at::cuda::getDeviceProperties(device.index())->name : "cpu";
}

#else  // a CPU-only build: every device is the CPU, with nothing to wait for and no allocator statistics

void sync(c10::Device) {}
void reset_peak(c10::Device) {}
double peak_gb(c10::Device) { return 0; }
std::string device_name(c10::Device) { return "cpu"; }

#endif

Timing time_it(c10::Device device, int warmup, int runs, const std::function<void()>& fn) {
    for (int i = 0; i < warmup; ++i) fn();
    sync(device);
    Timing t;
    t.runs = runs;
    t.min_s = 1e30;
    double total = 0;
    for (int i = 0; i < runs; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        fn();
        sync(device);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        total += s;
        t.min_s = std::min(t.min_s, s);
        if (i == 0) t.first_s = s;
    }
    t.mean_s = runs ? total / runs : 0;
    return t;
}

namespace {
namespace prof = torch::profiler::impl;
prof::ProfilerConfig trace_config() { return prof::ProfilerConfig(prof::ProfilerState::KINETO); }
std::set<prof::ActivityType> trace_activities() {
    std::set<prof::ActivityType> what{prof::ActivityType::CPU};
    if (at::hasCUDA()) what.insert(prof::ActivityType::CUDA);
    return what;
}
}  // namespace

TraceSession::TraceSession() {
    torch::autograd::profiler::prepareProfiler(trace_config(), trace_activities());
    torch::autograd::profiler::enableProfiler(trace_config(), trace_activities());
    active_ = true;
}

TraceSession::~TraceSession() {
    if (active_) (void)torch::autograd::profiler::disableProfiler();
}

void TraceSession::save(const std::string& path) {
    if (!active_) return;
    active_ = false;
    torch::autograd::profiler::disableProfiler()->save(path);
}

}  // namespace wan::bench
