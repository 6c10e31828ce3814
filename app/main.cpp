// wanstudio: every rank runs this binary (as upstream under torchrun). World rank 0 is the head (GUI or
// headless); ranks 1..N-1 serve requests until shutdown and never touch Qt.
#include "cli/headless.h"
#include "cli/inspect.h"
#include "cli/options.h"
#include "core/core.h"
#include "dist/dist.h"
#include "server/server.h"
#include "session/engine_backend.h"
#if WAN_HAVE_QT
#include "gui_entry.h"
#endif
#if WAN_HAVE_REMOTE
#include "remote/listen_entry.h"
#endif
#if WAN_HAVE_EXTEND
#include "extend/extend.h"
#endif

#if WAN_HAVE_FFMPEG
#include "video/video.h"
#endif

#include <ATen/Context.h>
#include <torch/version.h>
#if WAN_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#if WAN_HAVE_QT
#include <QtGlobal>
#endif

#include <cstdio>
#include <iostream>

#if WAN_HAVE_NCCL
// nccl.h's include directory is private to wan_dist; libnccl itself reaches our link line through it.
// ncclResult_t is a C enum (int-sized); the result is not needed here.
extern "C" int ncclGetVersion(int* version);
#endif

namespace wan::app {
server::ServerConfig server_config(const AppOptions& o);  // engine_backend_mpi.cpp
}

namespace {

// `--version`: what this binary was built with and what it finds at run time (one line per component).
void print_version() {
    std::cout << "wanstudio " << wan::version_string() << "\n";
    std::cout << "  LibTorch " << TORCH_VERSION;
#if WAN_HAVE_CUDA
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);  // 0 when no driver is installed
    std::cout << " with CUDA " << CUDART_VERSION / 1000 << "." << CUDART_VERSION % 1000 / 10 << " (runtime "
              << rt / 1000 << "." << rt % 1000 / 10 << ", driver supports " << drv / 1000 << "." << drv % 1000 / 10
              << "; " << (at::hasCUDA() ? at::getNumGPUs() : 0) << " GPU(s) visible)\n";
#else
    std::cout << " (CPU only, no CUDA)\n";
#endif
#if WAN_HAVE_NCCL
    int nccl = 0;
    ncclGetVersion(&nccl);  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch, older major*1000 + ...
    const int nccl_major = nccl >= 10000 ? nccl / 10000 : nccl / 1000;
    const int nccl_minor = nccl >= 10000 ? nccl / 100 % 100 : nccl / 100 % 10;
    std::cout << "  NCCL " << nccl_major << "." << nccl_minor << "." << nccl % 100 << " (GPU collectives)\n";
#else
    std::cout << "  NCCL: not built (collectives over MPI)\n";
#endif
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0, mpi_major = 0, mpi_minor = 0;
    MPI_Get_library_version(mpi, &len);
    MPI_Get_version(&mpi_major, &mpi_minor);
    std::string m(mpi, static_cast<size_t>(len));
    std::cout << "  MPI: " << m.substr(0, m.find_first_of(",\n")) << " (MPI standard " << mpi_major << "."
              << mpi_minor << ")\n";
#if WAN_HAVE_FFMPEG
    std::cout << "  " << wan::video::ffmpeg_version_info() << "\n";
#else
    std::cout << "  FFmpeg: not built (no video files; --save-latents still works)\n";
#endif
#if WAN_HAVE_QT
    std::cout << "  GUI: Qt " << qVersion() << "\n";
#else
    std::cout << "  GUI: not built (headless only)\n";
#endif
}

int extend_only(const wan::app::AppOptions& o) {
#if WAN_HAVE_EXTEND
    const std::string method = o.prompt_extend_method.empty() ? "local_qwen" : o.prompt_extend_method;
    try {
        auto ext = wan::extend::make_prompt_extender(method, o.prompt_extend_model, {});
        auto r = ext->extend(o.extend_text, o.prompt_extend_target_lang, o.request.seed);
        const std::string text = r.ok ? wan::server::clean_model_text(r.prompt) : std::string();  // as the engine
        if (!r.ok || text.empty()) {
            std::cout << o.extend_text << "\n";
            std::fprintf(stderr, "wanstudio: prompt extension failed: %s\n",
                         r.ok ? "the model returned no text" : r.message.c_str());
            return 1;
        }
        std::cout << text << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cout << o.extend_text << "\n";
        std::fprintf(stderr, "wanstudio: prompt extension failed: %s\n", e.what());
        return 1;
    }
#else
    std::cout << o.extend_text << "\n";
    std::fprintf(stderr, "wanstudio: prompt extension is not available in this build\n");
    return 1;
#endif
}

}  // namespace

int main(int argc, char** argv) {
    std::unique_ptr<wan::dist::MpiSession> mpi;
    try {
        mpi = std::make_unique<wan::dist::MpiSession>(&argc, &argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wanstudio: %s\n", e.what());
        return 1;
    }
    const int rank = mpi->world_rank();
    wan::set_log_rank(rank);
    wan::app::AppOptions options;
    try {
        options = wan::app::parse_options(argc, argv);
        options.world_size = mpi->world_size();
        options.rank = rank;
        if (options.mode == wan::app::RunMode::Gui || options.mode == wan::app::RunMode::Headless ||
            options.mode == wan::app::RunMode::Check || options.mode == wan::app::RunMode::Listen)
            wan::app::validate_layout(options, mpi->world_size());
        WAN_CHECK(options.connect_address.empty() || mpi->world_size() == 1,
                  "--connect uses the engine of another machine: run it as one process, without mpirun");
    } catch (const wan::Error& e) {
        // Every rank reaches the same verdict, prints it with its rank, and exits: no rank waits for another.
        std::fprintf(stderr, "wanstudio [rank %d]: %s\n", rank, e.what());
        return 2;
    }
    try {
        switch (options.mode) {
            case wan::app::RunMode::Help:
                if (rank == 0) std::cout << wan::app::help_text();
                return 0;
            case wan::app::RunMode::Version:
                if (rank == 0) print_version();
                return 0;
            case wan::app::RunMode::Inspect:
                if (rank == 0) wan::app::inspect_checkpoint(options.inspect_dir, std::cout);
                return 0;
            case wan::app::RunMode::ExtendPrompt:
                return rank == 0 ? extend_only(options) : 0;
            case wan::app::RunMode::Check:
                return wan::server::run_setup_check(MPI_COMM_WORLD, wan::app::server_config(options), std::cout);
            case wan::app::RunMode::Gui:
            case wan::app::RunMode::Headless:
            case wan::app::RunMode::Listen:
                break;
        }
        if (rank != 0) {
            // Note [Engine start]: rank 0 first says whether the engine will be loaded at all (its front end
            // may stop before starting it, e.g. on a bad batch file); then every rank builds its share of the
            // model collectively with rank 0's engine thread, serves requests, and exits on Shutdown.
            int start = 0;
            MPI_Bcast(&start, 1, MPI_INT, 0, MPI_COMM_WORLD);
            if (!start) return 0;
            wan::server::EngineServer server(MPI_COMM_WORLD, wan::app::server_config(options));
            server.serve();
            return 0;
        }
#if WAN_HAVE_REMOTE
        auto backend = options.connect_address.empty() ? wan::app::make_engine_backend(options)
                                                       : wan::app::make_connect_backend(options);  // app/remote
#else
        WAN_CHECK(options.connect_address.empty(), "--connect is not available in this build (no Qt6 HttpServer)");
        auto backend = wan::app::make_engine_backend(options);
#endif
        if (options.mode == wan::app::RunMode::Listen) {  // app/remote: the HTTP API instead of a window
#if WAN_HAVE_REMOTE
            return wan::app::run_listen(argc, argv, options, std::move(backend));
#else
            std::fprintf(stderr, "wanstudio: --listen is not available in this build (it needs Qt6 HttpServer and "
                                 "WebSockets: qt6-httpserver-dev, qt6-websockets-dev)\n");
            backend->shutdown();
            return 2;
#endif
        }
#if WAN_HAVE_QT
        if (options.mode == wan::app::RunMode::Gui) return wan::app::run_gui(argc, argv, options, std::move(backend));
        return wan::app::run_batch(argc, argv, options, std::move(backend));
#else
        if (options.mode == wan::app::RunMode::Gui) {
            std::fprintf(stderr, "wanstudio: this build has no GUI (built with WAN_BUILD_APP=OFF); use --prompt or --batch\n");
            backend->shutdown();
            return 2;
        }
        return wan::app::run_headless(options, std::move(backend));
#endif
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wanstudio [rank %d]: %s\n", rank, e.what());
        return 1;
    }
}
