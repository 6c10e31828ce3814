// What a window knows of an engine it shares with other clients (`--connect`): whether the link to it is up,
// and the jobs that other clients queued there. The window's own jobs still go through EngineSession and its
// backend; this is the rest of the shared queue, shown beside them. app/remote implements it (RemoteLink);
// the window depends only on this interface, so it builds without the network modules.
#pragma once

#include "session/metatypes.h"

#include <QList>
#include <QObject>
#include <QString>

namespace wan::app {

/// A job on the shared engine that this window's session does not follow: another client's, or one this
/// window submitted in an earlier run (`mine`). Listed in the window's queue beside the session's own.
struct OtherJob {
    qint64 serverId = 0;   ///< the engine's id for it
    /// Counts the engine's restarts seen by the link (ids start again with a restarted engine): with serverId,
    /// what tells two jobs apart.
    int engineRun = 0;
    /// Submitted by this window (its client id, kept in its settings) in an earlier run or another window open
    /// on the same settings: its own, though this session does not follow it.
    bool mine = false;
    /// The link had not heard of it before: submitted since the window connected, or while the link was down.
    /// Listed even when it has already ended; a job that ended before the window first connected is not
    /// (the history has it).
    bool isNew = false;
    QString prompt;
    QString state;         ///< the API's words: queued | running | done | failed | cancelled
    ProgressInfo progress;
    QString error;         ///< why it failed or was cancelled
    double seconds = 0;    ///< run time, once done
};

class EngineLink : public QObject {
    Q_OBJECT
public:
    using QObject::QObject;

    /// "HOST:PORT", where the engine runs.
    virtual QString where() const = 0;
    virtual bool isUp() const = 0;
    /// Asks the engine to cancel a job the session does not follow. Any client that holds the API token may
    /// cancel any job (the token is the only credential the API knows; the engine records who asked, and the
    /// window asks before cancelling another client's job; README "Remote GPU server"). The outcome arrives as
    /// an otherJobChanged().
    virtual void cancelOtherJob(qint64 serverId) = 0;
    /// The folder the window lists as its history: the engine's finished videos are copied into it on every
    /// (re)connection, when another client's job is done, and when the folder changes (the window's own jobs
    /// are fetched there by the backend). Empty: nothing is copied.
    virtual void setHistoryFolder(const QString& folder) = 0;

signals:
    /// The link is up (again): an otherJobsListed() follows.
    void linkUp();
    /// The link went down, or an attempt to bring it up failed; the next attempt is in `retryInMs`.
    void linkDown(const QString& reason, int retryInMs);
    /// On every (re)connection: every job the engine holds that the session does not follow, in queue order
    /// (finished ones included: the engine keeps the latest; OtherJob::isNew says which the window has not
    /// heard of).
    void otherJobsListed(const QList<wan::app::OtherJob>& jobs);
    /// Such a job was submitted or changed state or progress.
    void otherJobChanged(const wan::app::OtherJob& job);
    /// Finished videos of the engine were copied into the history folder.
    void historyCopied(int count);
};

}  // namespace wan::app

Q_DECLARE_METATYPE(wan::app::OtherJob)
