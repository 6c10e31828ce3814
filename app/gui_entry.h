// The two Qt front ends the lead's main.cpp calls on rank 0 (only when built with WAN_BUILD_APP).
// Both take the (not yet started) backend; EngineSession starts it on its engine thread, and shuts it down
// (backend->shutdown(), which releases the other ranks) before returning, on every path.
#pragma once

#include "cli/options.h"
#include "session/engine_backend.h"

#include <QByteArray>

#include <functional>
#include <memory>

namespace wan::app {

class EngineLink;

/// A shared engine (--connect): the window's backend and its link to the engine.
struct SharedEngineParts {
    std::unique_ptr<EngineBackend> backend;
    std::unique_ptr<EngineLink> link;
};
/// Makes them once the application and the window's settings exist, for the window's client id (kept in its
/// settings: Settings::remoteClientId).
using SharedEngineFactory = std::function<SharedEngineParts(const QByteArray& clientId)>;

/// Engine → Memory…'s saved choice for a window started as one process with no memory option on its command line
/// (the desktop entry): `options.engine` gets it, so that the engine loads as the user last chose. Under mpirun
/// (`world_size` > 1) every rank must load alike, so only the command line counts there (a restart from the
/// window carries the options). Returns whether anything changed.
bool applySavedMemoryOptions(wan::app::AppOptions& options, int world_size);

/// The desktop window: QApplication + MainWindow + EngineSession over `backend`, or over the parts that
/// `connect` makes when it is given (then `backend` is not used). Returns the application's exit code.
int runGui(int argc, char** argv, const wan::app::AppOptions& options,
            std::unique_ptr<wan::app::EngineBackend> backend, const SharedEngineFactory& connect = {});

/// `--batch FILE` or `--prompt TEXT` without a window: QCoreApplication + EngineSession + BatchRunner.
/// Returns 0 when every job succeeded, 1 when one failed or was cancelled, 2 for a bad batch file or
/// request, 3 when the engine failed to start, 130 after Ctrl+C (the running job cancelled, the rest skipped).
int runBatch(int argc, char** argv, const wan::app::AppOptions& options,
              std::unique_ptr<wan::app::EngineBackend> backend);

}  // namespace wan::app
