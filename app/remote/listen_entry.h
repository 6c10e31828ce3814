// `wanstudio --listen [ADDR:]PORT` on rank 0: QCoreApplication + EngineSession + ApiServer, until SIGINT or
// SIGTERM. Like runBatch it takes the not yet started backend and shuts it down on every path (which
// releases the other ranks under mpirun).
#pragma once

#include "cli/options.h"
#include "remote/remote_backend.h"
#include "session/engine_backend.h"

#include <memory>

namespace wan::app {

/// Returns 0 after SIGINT/SIGTERM, 2 for a bad --listen address, a missing token on a non-loopback address or
/// a port that cannot be bound.
int runListen(int argc, char** argv, const AppOptions& options, std::unique_ptr<EngineBackend> backend);

/// `--connect HOST:PORT` with --api-token or WANSTUDIO_API_TOKEN: where the remote engine is, for its backend
/// (makeRemoteBackend) and the window's link (makeRemoteLink), which share its client id. Throws wan::Error for
/// a malformed address.
RemoteEndpoint connectEndpoint(const AppOptions& options);

}  // namespace wan::app
