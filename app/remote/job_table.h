// The remote engine's view of its jobs: what GET /api/jobs and /api/events report. Fed from EngineSession's
// signals on the server's thread; the session stays the only owner of the queue (ids are the session's).
#pragma once

#include "core/core.h"

#include <QImage>
#include <QJsonObject>
#include <QString>

#include <cstdint>
#include <deque>

namespace wan::app {

struct RemoteJob {
    int64_t id = 0;
    QString state = QStringLiteral("queued");  ///< queued | running | done | failed | cancelled
    QString prompt;
    /// Who submitted it: the X-Wan-Client header of its POST (a --connect window sends one per process), empty
    /// when none. Only a label: any client holding the token may see and cancel any job.
    QString client;
    /// The X-Wan-Client header of the first DELETE that asked to cancel it ("" for a client without one), so
    /// that the submitter can tell it was cancelled by someone else. Reported only once it is cancelled.
    QString cancelledBy;
    bool cancelRequested = false;
    /// The X-Wan-Job-Key header of its POST: the client's own name for the job, so that a POST repeated after
    /// a lost answer is not a second job. Empty when none.
    QString key;
    Stage stage = Stage::Queued;
    int step = 0;
    int steps = 0;
    double progress = 0;  ///< 0..1 over the whole job (models/progress_format.h weights)
    double etaSeconds = -1;    ///< seconds left, < 0 when unknown
    double elapsedSeconds = 0; ///< run time so far (the engine's clock), while it runs
    QString error;
    int64_t seed = -1;    ///< the seed used, once done
    double seconds = 0;   ///< run time, once done
    QString video, poster, metadata;  ///< plain file names in the output folder, empty until done
    int previewStep = 0;  ///< the last denoising step whose live preview was sent (0: none yet)
    QImage previewFrame;  ///< that preview's middle frame (a thumbnail where no poster exists)
};

class JobTable {
public:
    /// Finished jobs kept for GET /api/jobs (the oldest are forgotten first; running/queued ones never).
    static constexpr size_t kMaxFinished = 200;

    void add(int64_t id, const std::string& prompt, const QString& client = {}, const QString& key = {});
    // Each returns the job after the change, or nullptr when the id is unknown.
    const RemoteJob* markRunning(int64_t id);
    const RemoteJob* update(int64_t id, const ProgressInfo& info);
    const RemoteJob* finish(int64_t id, const GenerationResult& result);
    const RemoteJob* fail(int64_t id, const QString& message);
    /// A queued job that was asked to cancel: cancelled at once in the table (the session skips it when its
    /// turn comes). Does nothing to a job that is not queued.
    const RemoteJob* cancelQueued(int64_t id);
    /// Records who asked to cancel a job that is not over yet (the first asker; later ones change nothing).
    void noteCancelRequest(int64_t id, const QString& client);
    /// A queued job's place in the queue: 1 + the queued jobs before it (1: it runs next); 0 for a job that is
    /// not queued or not known. Jobs run in the order they were added.
    int queuePosition(int64_t id) const;
    /// toJson() plus, for a queued job, "queue_position" (what a client shows as its place in the queue).
    QJsonObject describe(const RemoteJob& job) const;
    /// Records the live preview of `step` (its middle frame); returns false when that step's was recorded
    /// already (at most one preview per step goes out), or the job is unknown or over.
    bool notePreview(int64_t id, int step, const QImage& middleFrame);

    const RemoteJob* find(int64_t id) const;
    /// The job `client` submitted under `key`; null when either is empty or there is none.
    const RemoteJob* findSubmitted(const QString& client, const QString& key) const;
    /// Every job known, oldest first.
    const std::deque<RemoteJob>& jobs() const { return jobs_; }

    static QJsonObject toJson(const RemoteJob& job);
    static bool isFinal(const RemoteJob& job);

private:
    RemoteJob* findMutable(int64_t id);
    /// Forgets the oldest finished jobs until at most `keep` remain (called before a job becomes final).
    void forgetOldFinished(size_t keep);

    std::deque<RemoteJob> jobs_;
};

}  // namespace wan::app
