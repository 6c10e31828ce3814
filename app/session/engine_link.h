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

/// A job on the shared engine that another client submitted: listed in the window's queue, run by none of
/// this window's sessions.
struct OtherJob {
    qint64 serverId = 0;   ///< the engine's id for it
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
    /// Asks the engine to cancel another client's job. Any client that holds the API token may cancel any job
    /// (the token is the only identity the API knows; README "Remote GPU server"). The outcome arrives as an
    /// otherJobChanged().
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
    /// On every (re)connection: every job the engine holds that another client submitted, in queue order
    /// (finished ones included: the engine keeps the latest).
    void otherJobsListed(const QList<wan::app::OtherJob>& jobs);
    /// Another client's job was submitted or changed state or progress.
    void otherJobChanged(const wan::app::OtherJob& job);
    /// Finished videos of the engine were copied into the history folder.
    void historyCopied(int count);
};

}  // namespace wan::app

Q_DECLARE_METATYPE(wan::app::OtherJob)
