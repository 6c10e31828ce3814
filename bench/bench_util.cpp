#include "bench_util.h"

#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>

namespace wan::bench {

void sync(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) at::cuda::getCurrentCUDAStream(device.index()).synchronize();
#else
    (void)device;
#endif
}

void reset_peak(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        (void)at::empty({1}, at::TensorOptions().device(device));  // the allocator exists only after a first use
        c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
    }
#else
    (void)device;
#endif
}

double peak_gb(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        (void)at::empty({1}, at::TensorOptions().device(device));
        auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
        return static_cast<double>(stats.allocated_bytes[0].peak) / 1e9;
    }
#else
    (void)device;
#endif
    return 0;
}

std::string device_name(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) return at::cuda::getDeviceProperties(device.index())->name;
#endif
    (void)device;
    return "cpu";
}

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
    }
    t.mean_s = runs ? total / runs : 0;
    return t;
}

}  // namespace wan::bench
