// The job queue as a list model: one row per submitted job, fed by EngineSession's signals.
// Queued jobs that are cancelled are removed; the running one stays with state Cancelled.
// With a shared engine (--connect) the jobs its session does not follow are rows too (other clients', and this
// window's from an earlier run), fed by an EngineLink: they are keyed by otherJobKey(their server id, the
// engine's run), which is negative, so they never meet the session's ids (which are > 0). There the session's
// own jobs stay Queued until the engine reports them started (they may wait behind other clients' jobs).
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
        ServerIdRole,    ///< qlonglong: the shared engine's id for a job the session does not follow (0 for its own)
        EarlierRunRole,  ///< bool: this window's job from an earlier run (or another window on its settings)
    };

    struct Job {
        qint64 id = 0;
        GenerationRequest request;
        JobState state = JobState::Queued;
        ProgressInfo progress;
        GenerationResult result;
        QString message;
        qint64 serverId = 0;  ///< a job the session does not follow: the engine's id for it; 0 for the session's
        bool mine = false;    ///< such a job that this window submitted in an earlier run (OtherJob::mine)
    };

    /// The row id of a job the session does not follow (another client's, or an earlier run's): `engineRun`
    /// counts the engine's restarts (OtherJob::engineRun), after which its ids start again.
    static qint64 otherJobKey(qint64 serverId, int engineRun = 0) {
        return -((static_cast<qint64>(engineRun) << 40) + serverId);
    }
    static bool isOtherJobKey(qint64 id) { return id < 0; }

    explicit JobListModel(QObject* parent = nullptr);

    /// Follows the session's jobStarted / progress / finished / failed signals.
    void attach(EngineSession* session);
    /// Follows a shared engine's other jobs (otherJobsListed, otherJobChanged); from then on the session's
    /// jobs wait as Queued until their progress leaves Stage::Queued.
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
    /// "#3", "another client's #12" or "your #12 (other session)" (the shared engine's number for it).
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
    /// A job the session does not follow: added while it is unfinished or when it is new to the link (ended
    /// while the link was down: listed like the jobs seen ending), updated while it is listed.
    void onOtherJob(const wan::app::OtherJob& job);
    /// The engine's complete list (on every (re)connection): each row updated; the unfinished ones it no
    /// longer holds (a restarted engine) removed; finished ones the link knew of but the window does not list
    /// (they ended before it connected: the history has them; or were cleared) stay out.
    void onOtherJobsListed(const QList<wan::app::OtherJob>& jobs);

private:
    void changed(int row);
    /// Applies `update` to the job with this id and reports the row changed; nothing for an unknown id
    /// (e.g. a queued job removed when it was cancelled).
    void updateJob(qint64 id, const std::function<void(Job&)>& update);
    QString stateText(const Job& job) const;

    std::vector<Job> jobs_;
    bool sharedEngine_ = false;  // attach(EngineLink*): the session's jobs may wait behind other clients'
};

}  // namespace wan::app
