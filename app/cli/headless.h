// The Qt-free headless runner, used by builds without the GUI (the GPU machine). With Qt, --batch runs
// through EngineSession under QCoreApplication instead (app/batch). Same behaviour and exit codes.
#pragma once

#include "cli/options.h"
#include "session/engine_backend.h"

#include <memory>

namespace wan::app {

/// Reads `options.batchFile` (format: core/batch_file.h; the command line's request is every job's
/// default) or takes the command line's single request, then starts the backend, runs every job with a
/// terminal progress bar on stderr, prints each output path on stdout and shuts the backend down.
/// Exit codes as runBatch: 0 ok, 1 a job failed/cancelled, 2 bad input, 3 engine failed to start.
int runHeadless(const AppOptions& options, std::unique_ptr<EngineBackend> backend);

}  // namespace wan::app
