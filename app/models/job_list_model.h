// The job queue as a list model: one row per submitted job, fed by EngineSession's signals.
// Queued jobs that are cancelled are removed; the running one stays with state Cancelled.
#pragma once

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
    };

    struct Job {
        qint64 id = 0;
        GenerationRequest request;
        JobState state = JobState::Queued;
        ProgressInfo progress;
        GenerationResult result;
        QString message;
    };

    explicit JobListModel(QObject* parent = nullptr);

    /// Follows the session's jobStarted / progress / finished / failed signals.
    void attach(EngineSession* session);

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
    /// The requests of the jobs not finished yet (queued or running), in queue order: what the saved queue
    /// keeps (app/launch/saved_queue.h). A running job is kept too: it is lost if the engine dies.
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

private:
    void changed(int row);
    /// Applies `update` to the job with this id and reports the row changed; nothing for an unknown id
    /// (e.g. a queued job removed when it was cancelled).
    void updateJob(qint64 id, const std::function<void(Job&)>& update);
    QString stateText(const Job& job) const;

    std::vector<Job> jobs_;
};

}  // namespace wan::app
