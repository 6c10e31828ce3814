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
#include "remote/remote_link.h"
#endif
#if WAN_HAVE_EXTEND
#include "extend/extend.h"
#endif

#if WAN_HAVE_QT
#include <QtGlobal>
#endif

#include <cstdio>
#include <iostream>

namespace {

// `--version`: what this binary was built with and what it finds at run time (one line per component).
void printVersion() {
    for (const std::string& line : wan::server::build_facts()) std::cout << line << "\n";
#if WAN_HAVE_QT
    std::cout << "  GUI: Qt " << qVersion() << "\n";
#else
    std::cout << "  GUI: not built (headless only)\n";
#endif
}

int extendOnly(const wan::app::AppOptions& o) {
#if WAN_HAVE_EXTEND
    const std::string method = o.engine.prompt_extend_method.empty() ? "local_qwen" : o.engine.prompt_extend_method;
    try {
        auto ext = wan::extend::make_prompt_extender(method, o.engine.prompt_extend_model, {});
        auto r = ext->extend(o.extendText, o.promptExtendTargetLang, o.request.seed);
        const std::string text = r.ok ? wan::extend::clean_model_text(r.prompt) : std::string();  // as the engine
        if (!r.ok || text.empty()) {
            std::cout << o.extendText << "\n";
            std::fprintf(stderr, "wanstudio: prompt extension failed: %s\n",
                         r.ok ? "the model returned no text" : r.message.c_str());
            return 1;
        }
        std::cout << text << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cout << o.extendText << "\n";
        std::fprintf(stderr, "wanstudio: prompt extension failed: %s\n", e.what());
        return 1;
    }
#else
    std::cout << o.extendText << "\n";
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
        options = wan::app::parseOptions(argc, argv);
        if (options.mode == wan::app::RunMode::Gui || options.mode == wan::app::RunMode::Headless ||
            options.mode == wan::app::RunMode::Check || options.mode == wan::app::RunMode::Listen)
            wan::app::validateLayout(options, mpi->world_size());
        WAN_CHECK(options.connectAddress.empty() || mpi->world_size() == 1,
                  "--connect uses the engine of another machine: run it as one process, without mpirun");
    } catch (const wan::Error& e) {
        // Every rank reaches the same verdict, prints it with its rank, and exits: no rank waits for another.
        std::fprintf(stderr, "wanstudio [rank %d]: %s\n", rank, e.what());
        return 2;
    }
    try {
        switch (options.mode) {
            case wan::app::RunMode::Help:
                if (rank == 0) std::cout << wan::app::helpText();
                return 0;
            case wan::app::RunMode::Version:
                if (rank == 0) printVersion();
                return 0;
            case wan::app::RunMode::Inspect:
                if (rank == 0) wan::app::inspectCheckpoint(options.inspectDir, std::cout);
                return 0;
            case wan::app::RunMode::ExtendPrompt:
                return rank == 0 ? extendOnly(options) : 0;
            case wan::app::RunMode::Check:
                return wan::server::run_setup_check(options.engine, std::cout);
            case wan::app::RunMode::Gui:
            case wan::app::RunMode::Headless:
            case wan::app::RunMode::Listen:
                break;
        }
        if (rank != 0) {
            // Note [Engine start] in engine/server/server.h: builds its share of the engine if rank 0's front end
            // starts one, follows rank 0 until Shutdown.
            wan::server::EngineWorker(options.engine).run();
            return 0;
        }
#if WAN_HAVE_QT
        if (options.mode == wan::app::RunMode::Gui) wan::app::applySavedMemoryOptions(options, mpi->world_size());
        wan::app::SharedEngineFactory connectWindow;  // --connect: the window's backend and view of the shared engine
#endif
#if WAN_HAVE_REMOTE
        std::unique_ptr<wan::app::EngineBackend> backend;
        if (options.connectAddress.empty()) {
            backend = wan::app::makeEngineBackend(options);
        } else {  // app/remote
            const wan::app::RemoteEndpoint endpoint = wan::app::connectEndpoint(options);
            backend = wan::app::makeRemoteBackend(endpoint);  // --batch, --prompt: a client id of their own
            connectWindow = [endpoint](const QByteArray& clientId) {  // the window: the one its settings keep
                wan::app::RemoteEndpoint e = endpoint;
                e.clientId = clientId;
                return wan::app::SharedEngineParts{wan::app::makeRemoteBackend(e), wan::app::makeRemoteLink(e)};
            };
        }
#else
        WAN_CHECK(options.connectAddress.empty(), "--connect is not available in this build (no Qt6 HttpServer)");
        auto backend = wan::app::makeEngineBackend(options);
#endif
        if (options.mode == wan::app::RunMode::Listen) {  // app/remote: the HTTP API instead of a window
#if WAN_HAVE_REMOTE
            return wan::app::runListen(argc, argv, options, std::move(backend));
#else
            std::fprintf(stderr, "wanstudio: --listen is not available in this build (it needs Qt6 HttpServer and "
                                 "WebSockets: qt6-httpserver-dev, qt6-websockets-dev)\n");
            backend->shutdown();
            return 2;
#endif
        }
#if WAN_HAVE_QT
        if (options.mode == wan::app::RunMode::Gui)
            return wan::app::runGui(argc, argv, options, std::move(backend), connectWindow);
        return wan::app::runBatch(argc, argv, options, std::move(backend));
#else
        if (options.mode == wan::app::RunMode::Gui) {
            std::fprintf(stderr, "wanstudio: this build has no GUI (built with WAN_BUILD_APP=OFF); use --prompt or --batch\n");
            backend->shutdown();
            return 2;
        }
        return wan::app::runHeadless(options, std::move(backend));
#endif
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wanstudio [rank %d]: %s\n", rank, e.what());
        return 1;
    }
}
