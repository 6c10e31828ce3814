#include "remote/job_table.h"

#include "models/progress_format.h"

#include <QFileInfo>
#include <QJsonValue>

#include <algorithm>

namespace wan::app {

namespace {
QString fileName(const std::string& path) {
    return path.empty() ? QString() : QFileInfo(QString::fromStdString(path)).fileName();
}
}  // namespace

void JobTable::add(int64_t id, const std::string& prompt, const QString& client, const QString& key) {
    RemoteJob job;
    job.id = id;
    job.prompt = QString::fromStdString(prompt);
    job.client = client;
    job.key = key;
    jobs_.push_back(std::move(job));
}

RemoteJob* JobTable::findMutable(int64_t id) {
    auto it = std::find_if(jobs_.begin(), jobs_.end(), [id](const RemoteJob& j) { return j.id == id; });
    return it == jobs_.end() ? nullptr : &*it;
}

const RemoteJob* JobTable::find(int64_t id) const {
    return const_cast<JobTable*>(this)->findMutable(id);
}

const RemoteJob* JobTable::findSubmitted(const QString& client, const QString& key) const {
    if (client.isEmpty() || key.isEmpty()) return nullptr;
    auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const RemoteJob& j) { return j.client == client && j.key == key; });
    return it == jobs_.end() ? nullptr : &*it;
}

const RemoteJob* JobTable::markRunning(int64_t id) {
    RemoteJob* job = findMutable(id);
    if (job && !isFinal(*job)) job->state = QStringLiteral("running");
    return job;
}

const RemoteJob* JobTable::update(int64_t id, const ProgressInfo& info) {
    RemoteJob* job = findMutable(id);
    if (!job || isFinal(*job)) return job;
    job->state = QStringLiteral("running");
    job->stage = info.stage;
    if (info.stage == Stage::Denoise) {  // step/steps count denoising steps; the other stages are short
        job->step = info.step;
        job->steps = info.total;
    }
    job->progress = overallFraction(info);
    job->etaSeconds = remainingSeconds(info);
    job->elapsedSeconds = info.elapsed_s;
    return job;
}

const RemoteJob* JobTable::finish(int64_t id, const GenerationResult& result) {
    forgetOldFinished(kMaxFinished - 1);
    RemoteJob* job = findMutable(id);
    if (!job) return nullptr;
    const bool ok = result.status == JobStatus::Ok;
    job->state = ok ? QStringLiteral("done") : QStringLiteral("cancelled");
    if (ok) {
        job->stage = Stage::Done;
        job->progress = 1.0;
        job->step = job->steps;
    }
    job->etaSeconds = ok ? 0 : -1;
    job->seed = ok ? result.seed_used : -1;
    job->seconds = result.seconds;
    job->error = ok ? QString() : QString::fromStdString(result.message);
    job->video = fileName(result.video_path);
    job->poster = fileName(result.poster_path);
    job->metadata = fileName(result.json_path);
    return job;
}

const RemoteJob* JobTable::fail(int64_t id, const QString& message) {
    forgetOldFinished(kMaxFinished - 1);
    RemoteJob* job = findMutable(id);
    if (!job) return nullptr;
    job->state = QStringLiteral("failed");
    job->error = message;
    job->etaSeconds = -1;
    return job;
}

const RemoteJob* JobTable::cancelQueued(int64_t id) {
    RemoteJob* job = findMutable(id);
    if (!job || job->state != QLatin1String("queued")) return job;
    forgetOldFinished(kMaxFinished - 1);
    job = findMutable(id);  // forgetting finished jobs moved the others
    job->state = QStringLiteral("cancelled");
    job->error = QStringLiteral("cancelled before it started");
    return job;
}

void JobTable::noteCancelRequest(int64_t id, const QString& client) {
    RemoteJob* job = findMutable(id);
    if (!job || isFinal(*job) || job->cancelRequested) return;
    job->cancelRequested = true;
    job->cancelledBy = client;
}

int JobTable::queuePosition(int64_t id) const {
    int position = 1;
    for (const RemoteJob& job : jobs_) {
        if (job.id == id) return job.state == QLatin1String("queued") ? position : 0;
        if (job.state == QLatin1String("queued")) ++position;
    }
    return 0;
}

QJsonObject JobTable::describe(const RemoteJob& job) const {
    QJsonObject json = toJson(job);
    if (const int position = queuePosition(job.id); position > 0) json.insert(QStringLiteral("queue_position"), position);
    return json;
}

bool JobTable::notePreview(int64_t id, int step, const QImage& middleFrame) {
    RemoteJob* job = findMutable(id);
    if (!job || isFinal(*job) || step <= job->previewStep) return false;
    job->previewStep = step;
    job->previewFrame = middleFrame;
    return true;
}

bool JobTable::isFinal(const RemoteJob& job) {
    return job.state == QLatin1String("done") || job.state == QLatin1String("failed") ||
           job.state == QLatin1String("cancelled");
}

void JobTable::forgetOldFinished(size_t keep) {
    size_t finished = static_cast<size_t>(std::count_if(jobs_.begin(), jobs_.end(), isFinal));
    for (auto it = jobs_.begin(); finished > keep && it != jobs_.end();) {
        if (isFinal(*it)) {
            it = jobs_.erase(it);
            --finished;
        } else {
            ++it;
        }
    }
}

QJsonObject JobTable::toJson(const RemoteJob& job) {
    auto orNull = [](const QString& s) { return s.isEmpty() ? QJsonValue() : QJsonValue(s); };
    QJsonObject outputs{{QStringLiteral("video"), orNull(job.video)},
                        {QStringLiteral("poster"), orNull(job.poster)},
                        {QStringLiteral("metadata"), orNull(job.metadata)}};
    return QJsonObject{{QStringLiteral("id"), static_cast<qint64>(job.id)},
                       {QStringLiteral("state"), job.state},
                       {QStringLiteral("prompt"), job.prompt},
                       {QStringLiteral("client"), orNull(job.client)},
                       {QStringLiteral("stage"), QString::fromUtf8(stage_name(job.stage))},
                       {QStringLiteral("step"), job.step},
                       {QStringLiteral("steps"), job.steps},
                       {QStringLiteral("progress"), job.progress},
                       {QStringLiteral("eta_s"), job.etaSeconds < 0 ? QJsonValue() : QJsonValue(job.etaSeconds)},
                       {QStringLiteral("elapsed_s"), job.elapsedSeconds},
                       {QStringLiteral("error"), orNull(job.error)},
                       {QStringLiteral("cancelled_by"), job.state == QLatin1String("cancelled") && job.cancelRequested
                                                            ? orNull(job.cancelledBy) : QJsonValue()},
                       {QStringLiteral("seed"), job.seed < 0 ? QJsonValue() : QJsonValue(static_cast<qint64>(job.seed))},
                       {QStringLiteral("seconds"), job.seconds},
                       {QStringLiteral("outputs"), outputs}};
}

}  // namespace wan::app
