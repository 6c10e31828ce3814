// `wanstudio --version`: what this engine was built with and what it finds at run time.
#include "server/server.h"

#include "dist/dist.h"
#if WAN_HAVE_FFMPEG
#include "video/video.h"
#endif

#include <ATen/Context.h>
#include <torch/version.h>
#if WAN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#if WAN_HAVE_NCCL
// nccl.h's include directory is private to wan_dist; libnccl itself reaches our link line through it.
// ncclResult_t is a C enum (int-sized); the result is not needed here.
extern "C" int ncclGetVersion(int* version);
#endif

namespace wan::server {

namespace {

std::string torch_line() {
    std::string line = std::string("  LibTorch ") + TORCH_VERSION;
#if WAN_HAVE_CUDA
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);  // 0 when no driver is installed
    line += strfmt(" with CUDA %d.%d (runtime %d.%d, driver supports %d.%d; %d GPU(s) visible)", CUDART_VERSION / 1000,
                   CUDART_VERSION % 1000 / 10, rt / 1000, rt % 1000 / 10, drv / 1000, drv % 1000 / 10,
                   at::hasCUDA() ? static_cast<int>(at::getNumGPUs()) : 0);
#else
    line += " (CPU only, no CUDA)";
#endif
    return line;
}

std::string nccl_line() {
#if WAN_HAVE_NCCL
    int nccl = 0;
    ncclGetVersion(&nccl);  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch, older major*1000 + ...
    const int major = nccl >= 10000 ? nccl / 10000 : nccl / 1000;
    const int minor = nccl >= 10000 ? nccl / 100 % 100 : nccl / 100 % 10;
    return strfmt("  NCCL %d.%d.%d (GPU collectives)", major, minor, nccl % 100);
#else
    return "  NCCL: not built (collectives over MPI)";
#endif
}

}  // namespace

std::vector<std::string> build_facts() {
    std::vector<std::string> lines;
    lines.push_back(std::string("wanstudio ") + version_string());
    lines.push_back(torch_line());
    lines.push_back(nccl_line());
    lines.push_back("  MPI: " + dist::mpi_library_version());
#if WAN_HAVE_FFMPEG
    lines.push_back("  " + video::ffmpeg_version_info());
#else
    lines.push_back("  FFmpeg: not built (no video files; --save-latents still works)");
#endif
    return lines;
}

}  // namespace wan::server
