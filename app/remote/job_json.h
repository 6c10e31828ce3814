// The API's job JSON (remote/job_table.h writes it) read back on the client side: by the --connect backend
// for its own job and by RemoteLink for the other clients' jobs.
#pragma once

#include "core/core.h"

#include <QJsonObject>
#include <QString>

namespace wan::app {

/// The Stage a job JSON's "stage" names (core's stage_name); Queued for a name it does not know.
Stage stageFromName(const QString& name);

/// Progress from a job JSON, with ProgressInfo's meaning of eta_s (the estimate for the whole job). `elapsedS`
/// is this side's clock; < 0 takes the engine's ("elapsed_s"). A queued job is Stage::Queued with its
/// "queue_position" as the step (models/progress_format.h) and no ETA; a running one that has not reported a
/// stage yet is Stage::Text (it has started).
ProgressInfo progressFromJob(const QJsonObject& job, double elapsedS = -1);

/// True for the final states: done, failed, cancelled.
bool isFinalState(const QString& state);

}  // namespace wan::app
