// `--connect`: the window's view of the shared engine besides its own jobs (session/engine_link.h): the link's
// state, the other clients' jobs, the server's history in the window's folder. Lives on the GUI thread and is
// asynchronous throughout: an /api/events WebSocket (the "jobs" list on every connection, then each job's
// changes), kept alive with pings and reopened with back-off; DELETE for a cancel; HistorySync for the videos.
#pragma once

#include "remote/backoff.h"
#include "remote/remote_backend.h"
#include "session/engine_link.h"

#include <QElapsedTimer>
#include <QJsonObject>
#include <QPointer>
#include <QTimer>

#include <memory>

QT_BEGIN_NAMESPACE
class QNetworkAccessManager;
class QWebSocket;
QT_END_NAMESPACE

namespace wan::app {

class HistorySync;

class RemoteLink final : public EngineLink {
    Q_OBJECT
public:
    /// `endpoint`: the backend's (the same client id, so that its jobs are told from the others').
    explicit RemoteLink(RemoteEndpoint endpoint, QObject* parent = nullptr);
    ~RemoteLink() override;

    /// Starts connecting; from then on the link is kept up (reopened with back-off) until destroyed.
    void open();
    QString where() const override { return endpoint_.label(); }
    bool isUp() const override { return up_; }
    void cancelOtherJob(qint64 serverId) override;
    void setHistoryFolder(const QString& folder) override;

    /// A job JSON of the API as an OtherJob (a queued one without its place in the queue: that changes without
    /// a message for it).
    static OtherJob otherJobFrom(const QJsonObject& job);

private:
    void connectEvents();
    void onMessage(const QString& text);
    void onClosed(const QString& reason);
    void checkAlive();
    /// Closes the current socket without its signals reaching us, then onClosed(reason).
    void drop(const QString& reason);
    /// The job as the window lists it; false for this run's own (its session follows them). Notes its id as
    /// heard of.
    bool toListed(const QJsonObject& job, OtherJob* listed);
    /// A "jobs" message: the engine's list on a (re)connection.
    void onJobsListed(const QJsonObject& message);

    RemoteEndpoint endpoint_;
    QNetworkAccessManager* nam_;
    HistorySync* history_;
    QPointer<QWebSocket> ws_;
    QTimer retry_;      // the next attempt after a failed one or a drop
    QTimer ping_;       // liveness: a link that stops answering pings is closed (a drop without a FIN)
    QTimer attempt_;    // an attempt to connect that gets no answer at all is given up
    QElapsedTimer lastHeard_;
    Backoff backoff_;
    bool up_ = false;
    bool opened_ = false;
    // Which jobs the window has heard of: those of engine `instance_` up to `heardUpTo_` (ids grow with each
    // job). On the first connection that is every job the engine holds (the ended ones are history); after a
    // restart of the engine (another instance) none, and `engineRun_` counts one more.
    QString instance_;
    bool listedOnce_ = false;
    qint64 heardUpTo_ = 0;
    int engineRun_ = 0;
};

/// The window's link for `--connect` (gui_entry runs it): a RemoteLink on `endpoint`, opened.
std::unique_ptr<EngineLink> makeRemoteLink(const RemoteEndpoint& endpoint);

}  // namespace wan::app
