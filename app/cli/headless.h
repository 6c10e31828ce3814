// The Qt-free headless runner, used by builds without the GUI (the GPU machine). With Qt, --batch runs
// through EngineSession under QCoreApplication instead (app/batch). Same behaviour and exit codes.
#pragma once

#include "cli/options.h"
#include "session/engine_backend.h"

#include <memory>
#include <string>
#include <vector>

namespace wan::app {

/// Jobs of a batch file: one prompt per line, or JSON lines with per-job options (GenerationRequest keys,
/// "size": "W*H"); each inherits the command line's settings. Blank lines and lines starting with # are
/// skipped. Throws wan::Error naming the file and line for malformed input.
std::vector<GenerationRequest> read_batch_requests(const std::string& path, const GenerationRequest& defaults);

/// Starts the backend, runs every job with a terminal progress bar on stderr, prints each output path on
/// stdout, shuts the backend down. Exit codes as run_batch: 0 ok, 1 a job failed/cancelled, 2 bad input,
/// 3 engine failed to start.
int run_headless(const AppOptions& options, std::unique_ptr<EngineBackend> backend);

}  // namespace wan::app
