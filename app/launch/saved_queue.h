// The window's waiting jobs on disk, so that none is lost when the window closes, the engine dies or the
// window relaunches itself (Engine → GPUs…, File → Connect to engine…). One JSON file beside the settings:
//   {"version": 1, "reason": "closed" | "relaunch", "saved_at": ISO-8601, "jobs": [GenerationRequest JSON…]}
// "relaunch" means the new window restores the jobs without asking; "closed" means it offers them.
#pragma once

#include "core/core.h"

#include <QString>

#include <vector>

namespace wan::app {

struct SavedQueue {
    enum class Reason { Closed = 1, Relaunch = 2 };
    Reason reason = Reason::Closed;
    std::vector<GenerationRequest> jobs;
};

/// `queue.json` in the folder of the application's default QSettings file (beside the settings).
QString defaultSavedQueuePath();

/// Writes atomically (QSaveFile). An empty queue removes the file. False with `*error` on failure.
bool writeSavedQueue(const QString& path, const SavedQueue& queue, QString* error = nullptr);
/// Reads the file; an absent file is an empty queue. Jobs that do not parse are skipped with `*warning` set;
/// a file that is not the expected JSON gives an empty queue and `*warning`.
SavedQueue readSavedQueue(const QString& path, QString* warning = nullptr);

}  // namespace wan::app
