#include "remote/job_json.h"

#include <QJsonValue>

namespace wan::app {

Stage stageFromName(const QString& name) {
    for (Stage s : {Stage::Queued, Stage::Text, Stage::Denoise, Stage::Decode, Stage::Encode, Stage::Done})
        if (name == QLatin1String(stage_name(s))) return s;
    return Stage::Queued;
}

ProgressInfo progressFromJob(const QJsonObject& job, double elapsedS) {
    ProgressInfo p;
    p.stage = stageFromName(job.value(QStringLiteral("stage")).toString());
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
