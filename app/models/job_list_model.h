// The job queue as a list model: one row per submitted job, fed by EngineSession's signals.
// Queued jobs that are cancelled are removed; the running one stays with state Cancelled.
// With a shared engine (--connect) the other clients' jobs are rows too, fed by an EngineLink: they are keyed
// by otherJobKey(their server id), which is negative, so they never meet the session's ids (which are > 0).
#pragma once

#include "session/engine_link.h"
#include "session/metatypes.h"

#include <QAbstractListModel>
#include <QString>

#include <functional>
#include <vector>

namespace wan::app {

class EngineSession;

class JobListModel : public QAbstractListModel {
    Q_OBJECT
public:
    enum class JobState { Queued = 1, Running = 2, Done = 3, Cancelled = 4, Failed = 5 };
    Q_ENUM(JobState)

    enum Role {
        IdRole = Qt::UserRole + 1,
        PromptRole,      ///< QString
        StateRole,       ///< int (JobState)
        StateTextRole,   ///< "Queued", "Denoising 3/50", "Done", "Failed: …"
        ProgressRole,    ///< double 0..1 over the whole job
        StageRole,       ///< int (wan::Stage)
        StepRole,
        TotalRole,
        ElapsedRole,     ///< double seconds
        EtaRole,         ///< double seconds left, < 0 unknown
        ProgressTextRole,  ///< progressText(): "Denoising 3/50 · 00:04 elapsed · ETA 00:20"
        ResultPathRole,  ///< QString video path when done
        PosterPathRole,
        MessageRole,     ///< failure reason / notes
        SeedUsedRole,    ///< qlonglong
        OtherClientRole, ///< bool: another client's job on the shared engine
        ServerIdRole,    ///< qlonglong: the shared engine's id for another client's job (0 for our own)
    };

    struct Job {
        qint64 id = 0;
        GenerationRequest request;
        JobState state = JobState::Queued;
        ProgressInfo progress;
        GenerationResult result;
        QString message;
        qint64 serverId = 0;  ///< another client's job: the engine's id for it; 0 for this window's own
    };

    /// The row id of another client's job.
    static qint64 otherJobKey(qint64 serverId) { return -serverId; }
    static bool isOtherJobKey(qint64 id) { return id < 0; }

    explicit JobListModel(QObject* parent = nullptr);

    /// Follows the session's jobStarted / progress / finished / failed signals.
    void attach(EngineSession* session);
    /// Follows a shared engine's other jobs (otherJobsListed, otherJobChanged).
    void attach(EngineLink* link);

    void addJob(qint64 id, const GenerationRequest& request);
    /// Removes a row (e.g. a queued job that was cancelled). False when unknown.
    bool removeJob(qint64 id);
    /// Removes every row that is Done, Cancelled or Failed.
    void clearFinished();

    int rowOf(qint64 id) const;  ///< −1 when unknown
    const Job* job(qint64 id) const;
    const Job& jobAt(int row) const { return jobs_.at(static_cast<size_t>(row)); }
    qint64 idAt(int row) const;
    int countInState(JobState state) const;
    /// "#3", or "another client's #12" (the shared engine's number for it).
    QString label(const Job& job) const;
    /// The requests of this window's jobs not finished yet (queued or running), in queue order: what the saved
    /// queue keeps (app/launch/saved_queue.h). A running job is kept too: it is lost if the engine dies.
    /// Other clients' jobs are not this window's to keep.
    std::vector<GenerationRequest> waitingRequests() const;
    /// Their ids, in the same order (to tell whether the waiting set changed).
    std::vector<qint64> waitingIds() const;

    int rowCount(const QModelIndex& parent = QModelIndex()) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;

public slots:
    void onJobStarted(qint64 id);
    void onProgress(qint64 id, const wan::ProgressInfo& info);
    void onFinished(qint64 id, const wan::GenerationResult& result);
    void onFailed(qint64 id, const QString& message);
    /// Another client's job: added while it is unfinished, updated while it is listed.
    void onOtherJob(const wan::app::OtherJob& job);
    /// The engine's complete list (on every (re)connection): each row updated; the unfinished ones it no
    /// longer holds (a restarted engine) removed; finished ones not shown yet are left out (the history has them).
    void onOtherJobsListed(const QList<wan::app::OtherJob>& jobs);

private:
    void changed(int row);
    /// Applies `update` to the job with this id and reports the row changed; nothing for an unknown id
    /// (e.g. a queued job removed when it was cancelled).
    void updateJob(qint64 id, const std::function<void(Job&)>& update);
    QString stateText(const Job& job) const;

    std::vector<Job> jobs_;
};

}  // namespace wan::app
