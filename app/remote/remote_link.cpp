#include "remote/remote_link.h"

#include "remote/history_sync.h"
#include "remote/job_json.h"

#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QUrl>
#include <QWebSocket>

#include <algorithm>

namespace wan::app {

namespace {
constexpr int kRetryFirstMs = 500, kRetryCapMs = 10000;  // Backoff between attempts to reopen the link
constexpr int kPingIntervalMs = 5000;
constexpr int kSilentForMs = 15000;   // nothing heard (message or pong) this long: the link is dead
constexpr int kAttemptMs = 10000;     // an attempt to connect (TCP and the WebSocket handshake) that takes longer fails
constexpr int kHistoryLimit = 50;     // the server's newest finished videos considered on each sync
constexpr int kCancelTimeoutMs = 30000;
}  // namespace

RemoteLink::RemoteLink(RemoteEndpoint endpoint, QObject* parent)
    : EngineLink(parent), endpoint_(std::move(endpoint)), nam_(new QNetworkAccessManager(this)),
      history_(new HistorySync(nam_, QStringLiteral("http://%1").arg(endpoint_.label()), endpoint_.token,
                               kHistoryLimit, this)),
      backoff_(kRetryFirstMs, kRetryCapMs) {
    registerMetaTypes();
    qRegisterMetaType<OtherJob>("wan::app::OtherJob");
    retry_.setSingleShot(true);
    connect(&retry_, &QTimer::timeout, this, &RemoteLink::connectEvents);
    ping_.setInterval(kPingIntervalMs);
    connect(&ping_, &QTimer::timeout, this, &RemoteLink::checkAlive);
    attempt_.setSingleShot(true);
    attempt_.setInterval(kAttemptMs);
    connect(&attempt_, &QTimer::timeout, this, [this] { drop(tr("no answer within %1 s").arg(kAttemptMs / 1000)); });
    connect(history_, &HistorySync::finished, this, [this](int copied, const QString& error) {
        if (!error.isEmpty()) {
            log_message(LogLevel::Warn, "history of the engine at %s: %s", qPrintable(where()), qPrintable(error));
        } else if (copied > 0) {
            log_message(LogLevel::Info, "copied %d finished video(s) from the engine at %s", copied, qPrintable(where()));
            emit historyCopied(copied);
        }
    });
}

RemoteLink::~RemoteLink() {
    if (ws_) QObject::disconnect(ws_, nullptr, this, nullptr);  // its last state change must not reach a dying link
}

void RemoteLink::open() {
    if (opened_) return;
    opened_ = true;
    connectEvents();
}

void RemoteLink::connectEvents() {
    if (ws_) {
        QObject::disconnect(ws_, nullptr, this, nullptr);
        ws_->abort();
        ws_->deleteLater();
    }
    auto* ws = new QWebSocket(QString(), QWebSocketProtocol::VersionLatest, this);
    ws_ = ws;
    connect(ws, &QWebSocket::connected, this, [this] {
        attempt_.stop();
        up_ = true;
        backoff_.reset();
        lastHeard_.start();
        ping_.start();
        emit linkUp();  // the server's "jobs" list comes next
        history_->run();
    });
    connect(ws, &QWebSocket::textMessageReceived, this, &RemoteLink::onMessage);
    connect(ws, &QWebSocket::pong, this, [this] { lastHeard_.start(); });
    // Unconnected once: after a drop, or when the server could not be reached (then no disconnected()).
    connect(ws, &QWebSocket::stateChanged, this, [this, ws](QAbstractSocket::SocketState state) {
        if (state != QAbstractSocket::UnconnectedState || ws != ws_) return;
        QObject::disconnect(ws, nullptr, this, nullptr);
        ws->deleteLater();
        const QString error = ws->error() == QAbstractSocket::UnknownSocketError ? QString() : ws->errorString();
        onClosed(error.isEmpty() ? tr("the connection closed") : error);
    });
    QNetworkRequest request(QUrl(QStringLiteral("ws://%1/api/events").arg(where())));
    if (!endpoint_.token.isEmpty()) request.setRawHeader("Authorization", "Bearer " + endpoint_.token);
    attempt_.start();  // a server (or a tunnel) that takes the connection and never answers must not hold us
    ws->open(request);
}

void RemoteLink::onClosed(const QString& reason) {
    ping_.stop();
    attempt_.stop();
    up_ = false;
    const int delay = backoff_.next();
    retry_.start(delay);
    emit linkDown(reason, delay);
}

// A link can die without a word (a cable pulled, a laptop asleep, a NAT that forgot us): no FIN ever comes.
// The server answers pings; one that hears nothing for kSilentForMs drops the link and reopens it.
void RemoteLink::checkAlive() {
    if (!ws_ || !up_) return;
    if (lastHeard_.elapsed() < kSilentForMs) {
        ws_->ping();
        return;
    }
    drop(tr("no answer for %1 s").arg(kSilentForMs / 1000));
}

void RemoteLink::drop(const QString& reason) {
    if (ws_) {
        QWebSocket* ws = ws_;
        ws_ = nullptr;
        QObject::disconnect(ws, nullptr, this, nullptr);
        ws->abort();
        ws->deleteLater();
    }
    onClosed(reason);
}

OtherJob RemoteLink::otherJobFrom(const QJsonObject& job) {
    OtherJob o;
    o.serverId = job.value(QStringLiteral("id")).toInteger();
    o.prompt = job.value(QStringLiteral("prompt")).toString();
    o.state = job.value(QStringLiteral("state")).toString();
    o.progress = progressFromJob(job);
    if (o.progress.stage == Stage::Queued) o.progress.step = 0;
    o.error = job.value(QStringLiteral("error")).toString();
    o.seconds = job.value(QStringLiteral("seconds")).toDouble();
    return o;
}

bool RemoteLink::toListed(const QJsonObject& job, OtherJob* listed) {
    const QString client = job.value(QStringLiteral("client")).toString();
    const qint64 id = job.value(QStringLiteral("id")).toInteger();
    const bool isNew = id > heardUpTo_;
    heardUpTo_ = std::max(heardUpTo_, id);
    if (client == QString::fromLatin1(endpoint_.clientHeader())) return false;  // this run's: its session follows it
    *listed = otherJobFrom(job);
    listed->engineRun = engineRun_;
    listed->mine = endpoint_.isMine(client);
    listed->isNew = isNew;
    return true;
}

void RemoteLink::onJobsListed(const QJsonObject& message) {
    const QJsonArray all = message.value(QStringLiteral("jobs")).toArray();
    const QString instance = message.value(QStringLiteral("instance")).toString();
    if (!listedOnce_ || instance != instance_) {
        heardUpTo_ = 0;
        if (!listedOnce_) {  // what the engine holds now predates this window: its ended jobs are the history's
            for (const QJsonValue& v : all) heardUpTo_ = std::max(heardUpTo_, v.toObject().value(QStringLiteral("id")).toInteger());
        } else {
            ++engineRun_;  // restarted: its ids start again, and everything it holds happened since
        }
        instance_ = instance;
        listedOnce_ = true;
    }
    QList<OtherJob> jobs;
    for (const QJsonValue& v : all) {
        OtherJob listed;
        if (toListed(v.toObject(), &listed)) jobs << listed;
    }
    emit otherJobsListed(jobs);
}

void RemoteLink::onMessage(const QString& text) {
    lastHeard_.start();
    const QJsonObject message = QJsonDocument::fromJson(text.toUtf8()).object();
    const QString type = message.value(QStringLiteral("type")).toString();
    if (type == QLatin1String("jobs")) return onJobsListed(message);  // the first message of every connection
    if (type != QLatin1String("state") && type != QLatin1String("progress")) return;
    OtherJob other;
    if (!toListed(message.value(QStringLiteral("job")).toObject(), &other)) return;
    emit otherJobChanged(other);
    if (other.state == QLatin1String("done")) history_->run();  // its video joins the window's history
}

void RemoteLink::cancelOtherJob(qint64 serverId) {
    QNetworkRequest request(QUrl(QStringLiteral("http://%1/api/jobs/%2").arg(where()).arg(serverId)));
    if (!endpoint_.token.isEmpty()) request.setRawHeader("Authorization", "Bearer " + endpoint_.token);
    request.setRawHeader("X-Wan-Client", endpoint_.clientHeader());  // the engine records who cancelled
    request.setTransferTimeout(kCancelTimeoutMs);
    QNetworkReply* reply = nam_->deleteResource(request);
    connect(reply, &QNetworkReply::finished, this, [this, reply, serverId] {
        reply->deleteLater();
        const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        if (status != 202)
            log_message(LogLevel::Warn, "the engine at %s did not cancel job %lld: %s", qPrintable(where()),
                        static_cast<long long>(serverId),
                        qPrintable(status ? QStringLiteral("HTTP %1").arg(status) : reply->errorString()));
    });
}

void RemoteLink::setHistoryFolder(const QString& folder) {
    // Made now, before the window watches it: a folder that appears later is not watched.
    if (!folder.isEmpty()) QDir().mkpath(folder);
    history_->setFolder(folder);
    if (up_) history_->run();  // a folder chosen now gets the server's videos at once, not at the next reconnection
}

std::unique_ptr<EngineLink> makeRemoteLink(const RemoteEndpoint& endpoint) {
    auto link = std::make_unique<RemoteLink>(endpoint);
    link->open();
    return link;
}

}  // namespace wan::app
