#include "remote/job_json.h"

#include <QJsonValue>

#include <algorithm>

namespace wan::app {

Stage stageFromName(const QString& name) {
    for (Stage s : {Stage::Queued, Stage::Text, Stage::Denoise, Stage::Decode, Stage::Encode, Stage::Done})
        if (name == QLatin1String(stage_name(s))) return s;
    return Stage::Queued;
}

ProgressInfo progressFromJob(const QJsonObject& job, double elapsedS) {
    ProgressInfo p;
    const QString state = job.value(QStringLiteral("state")).toString();
    if (state == QLatin1String("queued")) {
        p.stage = Stage::Queued;
        p.step = std::max(0, job.value(QStringLiteral("queue_position")).toInt());
        return p;
    }
    p.stage = stageFromName(job.value(QStringLiteral("stage")).toString());
    if (p.stage == Stage::Queued && state == QLatin1String("running")) p.stage = Stage::Text;
    p.step = job.value(QStringLiteral("step")).toInt();
    p.total = job.value(QStringLiteral("steps")).toInt();
    p.elapsed_s = elapsedS >= 0 ? elapsedS : job.value(QStringLiteral("elapsed_s")).toDouble();
    const QJsonValue left = job.value(QStringLiteral("eta_s"));
    p.eta_s = left.isDouble() ? p.elapsed_s + left.toDouble() : -1;
    return p;
}

bool isFinalState(const QString& state) {
    return state == QLatin1String("done") || state == QLatin1String("failed") || state == QLatin1String("cancelled");
}

}  // namespace wan::app
