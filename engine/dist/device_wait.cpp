// Waits for GPU work that notice a peer's failure (Note [Watched device waits] in dist.h).
#include "dist/dist.h"

#include "protocol/deadline.h"

#include <ATen/ATen.h>
#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace wan::dist {

void synchronize_watched(c10::Device device, const char* what) {
    if (!device.is_cuda()) return;
#if WAN_HAVE_CUDA
    at::cuda::CUDAEvent done;
    done.record(c10::cuda::getCurrentCUDAStream(device.index()));
    protocol::wait_until([&] { return done.query(); }, what);
#endif
}

at::Tensor to_host_watched(const at::Tensor& t, const char* what) {
    if (!t.is_cuda()) return t;
#if WAN_HAVE_CUDA
    // Pinned, so that the copy is asynchronous and the host does not block in it (as the live preview does).
    at::Tensor host = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true));
    host.copy_(t, /*non_blocking=*/true);
    synchronize_watched(t.device(), what);
    return host;
#else
    return t.to(at::kCPU);
#endif
}

}  // namespace wan::dist
