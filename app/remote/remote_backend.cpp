#include "remote/remote_backend.h"

#include "core/cancel.h"

#include "remote/backoff.h"
#include "remote/job_json.h"
#include "remote/preview_wire.h"

#include <QDir>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QFile>
#include <QSaveFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QThread>
#include <QTimer>
#include <QUrl>
#include <QUuid>
#include <QWebSocket>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

namespace wan::app {

namespace {

constexpr int kRequestTimeoutMs = 30000;
constexpr int kPollIntervalMs = 250;
constexpr int kReachForMs = 15000;        // start(): how long an engine that does not answer is retried
constexpr int kReconnectForMs = 30 * 60 * 1000;  // a job outlives a lost connection this long before it fails
constexpr int kExtendTimeoutMs = 30 * 60 * 1000;  // the server extends after its running job, which may be long
constexpr int kEventsRetryMs = 1000;              // a closed /api/events socket is reopened after this
constexpr int kRetryFirstMs = 250, kRetryCapMs = 4000;  // Backoff while the engine does not answer

struct Reply {
    int status = 0;  ///< 0: no answer (connection refused, timed out, ...)
    QByteArray body;
    QString networkError;
    QJsonObject json() const { return QJsonDocument::fromJson(body).object(); }
    QString describe() const {
        if (status == 0) return networkError;
        const QString e = json().value(QStringLiteral("error")).toString();
        return QStringLiteral("HTTP %1%2").arg(status).arg(e.isEmpty() ? QString() : QStringLiteral(": ") + e);
    }
};

/// Waits `ms`, or less once `cancel` is set (a closing window does not wait out a back-off).
void sleepUnless(int ms, const std::atomic<bool>& cancel) {
    for (int slept = 0; slept < ms && !cancel; slept += 50) QThread::msleep(50);
}

class RemoteEngineBackend final : public EngineBackend {
public:
    explicit RemoteEngineBackend(RemoteEndpoint endpoint) : endpoint_(std::move(endpoint)) {}
    ~RemoteEngineBackend() override { stopNetwork(); }

    EngineInfo start(const LoadControl& load) override {
        startNetwork();
        QElapsedTimer timer;
        timer.start();
        for (;;) {  // the server may still be loading its model
            // Cancel stops this window's waiting only: the server's load is its own (other clients use it).
            if (load.cancel && load.cancel->load()) throw Cancelled("stopped waiting for the engine at " +
                                                                    endpoint_.label().toStdString() + " to load");
            const Reply r = call("GET", QStringLiteral("/api/info"));
            const QString state = r.json().value(QStringLiteral("engine_state")).toString();
            if (r.status == 200 && state == QLatin1String("ready")) return infoFrom(r);
            reportServerLoad(r.json().value(QStringLiteral("load")).toObject(), load);
            WAN_CHECK(r.status != 401, "%s refused the API token (--api-token or WANSTUDIO_API_TOKEN)",
                      qPrintable(endpoint_.label()));
            WAN_CHECK(state != QLatin1String("failed"), "the engine at %s failed to start: %s",
                      qPrintable(endpoint_.label()), qPrintable(r.json().value(QStringLiteral("error")).toString()));
            WAN_CHECK(r.status == 200 || timer.elapsed() < kReachForMs, "cannot reach the engine at %s: %s",
                      qPrintable(endpoint_.label()), qPrintable(r.describe()));
            QThread::msleep(500);
        }
    }

    GenerationResult run(const GenerationRequest& request, const std::function<void(const ProgressInfo&)>& progress,
                         const std::atomic<bool>& cancel) override {
        GenerationResult result;
        result.job_id = request.job_id;
        result.status = JobStatus::Failed;
        progress(ProgressInfo{});  // Stage::Queued: waiting for the engine, which has not started it
        const Reply posted = post(request, cancel);
        if (posted.status != 202) {
            if (cancel) result.status = JobStatus::Cancelled;
            result.message = cancel ? std::string("cancelled before the engine took it")
                                    : QStringLiteral("the engine at %1 refused the job: %2")
                                          .arg(endpoint_.label(), posted.describe()).toStdString();
            return result;
        }
        const qint64 id = posted.json().value(QStringLiteral("id")).toInteger();
        followed_ = id;
        const QJsonObject job = followJob(id, QString::fromStdString(request.prompt), progress, cancel);
        followed_ = 0;
        forgetPreview(id);
        const QString state = job.value(QStringLiteral("state")).toString();
        result.message = job.value(QStringLiteral("error")).toString().toStdString();
        result.prompt_used = request.prompt;
        if (state == QLatin1String("cancelled")) result.status = JobStatus::Cancelled;
        if (state == QLatin1String("cancelled") && !cancel) result.message = cancelledElsewhere(job);
        if (state != QLatin1String("done")) {
            if (result.message.empty()) result.message = "lost the job on the engine at " + endpoint_.label().toStdString();
            return result;
        }
        result.status = JobStatus::Ok;
        result.seed_used = job.value(QStringLiteral("seed")).toInteger(-1);
        result.seconds = job.value(QStringLiteral("seconds")).toDouble();
        const QJsonObject outputs = job.value(QStringLiteral("outputs")).toObject();
        result.video_path = fetch(outputs.value(QStringLiteral("video")).toString(), request.output_dir);
        result.poster_path = fetch(outputs.value(QStringLiteral("poster")).toString(), request.output_dir);
        result.json_path = fetch(outputs.value(QStringLiteral("metadata")).toString(), request.output_dir);
        if (result.video_path.empty()) {
            result.status = JobStatus::Failed;
            result.message = "the video could not be fetched from " + endpoint_.label().toStdString();
        }
        return result;
    }

    std::string extendPrompt(const std::string& prompt, const std::string& targetLang, int64_t seed) override {
        const QJsonObject body{{QStringLiteral("prompt"), QString::fromStdString(prompt)},
                               {QStringLiteral("target_lang"), QString::fromStdString(targetLang.empty() ? "zh" : targetLang)},
                               {QStringLiteral("seed"), static_cast<qint64>(seed)}};
        const Reply r = call("POST", QStringLiteral("/api/extend"), QJsonDocument(body).toJson(QJsonDocument::Compact),
                             kExtendTimeoutMs);
        const QString extended = r.json().value(QStringLiteral("prompt")).toString();
        if (r.status == 200 && !extended.isEmpty()) return extended.toStdString();
        const QString error = r.json().value(QStringLiteral("error")).toString();
        WAN_THROW("the engine at %s: %s", qPrintable(endpoint_.label()),
                  qPrintable(error.isEmpty() ? r.describe() : error));
    }

    EngineInfo info() override {
        const Reply r = call("GET", QStringLiteral("/api/info"));
        WAN_CHECK(r.status == 200, "engine at %s: %s", qPrintable(endpoint_.label()), qPrintable(r.describe()));
        return infoFrom(r);
    }

    void shutdown() override { stopNetwork(); }  // the server keeps serving its other clients

private:
    /// Why this window's job ended cancelled when the window did not ask: another client cancelled it.
    std::string cancelledElsewhere(const QJsonObject& job) const {
        const QString by = job.value(QStringLiteral("cancelled_by")).toString();
        QString who = QStringLiteral("another client");
        if (endpoint_.isMine(by)) who = QStringLiteral("another session of this window");  // this run did not ask
        else if (!by.isEmpty()) who = QStringLiteral("another client (%1)").arg(by);
        return QStringLiteral("%1 cancelled it on the engine at %2").arg(who, endpoint_.label()).toStdString();
    }

    /// The server's /api/info "load" (while it loads its model) as this window's load progress.
    static void reportServerLoad(const QJsonObject& json, const LoadControl& load) {
        if (json.isEmpty() || !load.progress) return;
        LoadProgress p;
        p.component = json.value(QStringLiteral("component")).toString().toStdString();
        p.file = json.value(QStringLiteral("file")).toString().toStdString();
        p.bytes_done = static_cast<uint64_t>(std::max<qint64>(0, json.value(QStringLiteral("bytes_done")).toInteger()));
        p.bytes_total = static_cast<uint64_t>(std::max<qint64>(0, json.value(QStringLiteral("bytes_total")).toInteger()));
        p.elapsed_s = json.value(QStringLiteral("elapsed_s")).toDouble();
        if (p.bytes_total > 0) load.progress(p);
    }

    EngineInfo infoFrom(const Reply& r) const {
        EngineInfo info = EngineInfo::from_json(r.body.toStdString());
        info.device += " on " + endpoint_.label().toStdString();  // the status bar says where the engine runs
        return info;
    }

    /// POST /api/jobs, retried with back-off while the engine does not answer (the link is down: the job waits
    /// for it, as it would in a local queue) until it answers, `cancel` is set or kReconnectForMs pass. The job
    /// key makes a repeated POST of the same job (its answer was lost) return the first one's id.
    Reply post(const GenerationRequest& request, const std::atomic<bool>& cancel) {
        const QByteArray key = QByteArray::number(static_cast<qint64>(request.job_id));  // unique in this run
        Backoff backoff(kRetryFirstMs, kRetryCapMs);
        QElapsedTimer lost;
        for (;;) {
            const Reply r = call("POST", QStringLiteral("/api/jobs"), remoteJobBody(request), kRequestTimeoutMs, key);
            if (r.status != 0 || cancel) return r;
            if (!lost.isValid()) {
                lost.start();
                log_message(LogLevel::Warn, "cannot reach the engine at %s (%s); the job waits for it",
                            qPrintable(endpoint_.label()), qPrintable(r.describe()));
            }
            if (lost.elapsed() > kReconnectForMs) return r;
            sleepUnless(backoff.next(), cancel);
        }
    }

    /// Polls the job until it ends; reports progress, forwards a cancel once, rides out lost connections.
    /// A job that comes back with another prompt is another job (the server restarted and reused the id).
    QJsonObject followJob(qint64 id, const QString& prompt, const std::function<void(const ProgressInfo&)>& progress,
                          const std::atomic<bool>& cancel) {
        const QString path = QStringLiteral("/api/jobs/%1").arg(id);
        QElapsedTimer elapsed, lost;
        elapsed.start();
        Backoff backoff(kRetryFirstMs, kRetryCapMs);
        bool cancelSent = false;
        int previewStep = 0;
        QJsonObject job;
        for (;;) {
            if (cancel && !cancelSent) cancelSent = call("DELETE", path).status == 202;
            const Reply r = call("GET", path);
            if (r.status == 200) {
                if (lost.isValid()) log_message(LogLevel::Info, "reconnected to the engine at %s", qPrintable(endpoint_.label()));
                lost.invalidate();
                backoff.reset();
                if (r.json().value(QStringLiteral("prompt")).toString() != prompt) return job;
                job = r.json();
                const QString state = job.value(QStringLiteral("state")).toString();
                if (state != QLatin1String("queued") && state != QLatin1String("running")) return job;
                // The job's clock starts when the engine starts it, not while it waits behind other jobs.
                if (state == QLatin1String("queued")) elapsed.restart();
                progress(progressFromJob(job, elapsed.elapsed() / 1000.0));
                // Until the next poll, a live preview from /api/events goes to the window as soon as it comes.
                if (auto preview = waitForPreview(id, previewStep, kPollIntervalMs)) {
                    previewStep = preview->step;
                    ProgressInfo p = progressFromJob(job, elapsed.elapsed() / 1000.0);
                    p.preview = std::move(preview);
                    progress(p);
                }
            } else if (r.status == 0 || r.status >= 500) {
                if (!lost.isValid()) {
                    lost.start();
                    log_message(LogLevel::Warn, "lost the connection to the engine at %s (%s); retrying",
                                qPrintable(endpoint_.label()), qPrintable(r.describe()));
                }
                if (lost.elapsed() > kReconnectForMs) return job;
                if (cancel) {  // no one to tell while the link is down: stop waiting (the window may be closing)
                    job.insert(QStringLiteral("state"), QStringLiteral("cancelled"));
                    job.insert(QStringLiteral("error"), QStringLiteral("cancelled while the engine at %1 was unreachable "
                                                                       "(the job may still run there)").arg(endpoint_.label()));
                    return job;
                }
                sleepUnless(backoff.next(), cancel);
            } else {
                return job;  // 404: the server restarted and forgot the job
            }
        }
    }

    /// The live preview of job `id` newer than `afterStep`, waiting up to `timeoutMs` for one; null if none.
    std::shared_ptr<const PreviewFrames> waitForPreview(qint64 id, int afterStep, int timeoutMs) {
        std::unique_lock<std::mutex> lock(previewMutex_);
        auto newer = [&] {
            const auto it = previews_.find(id);
            return it != previews_.end() && it->second->step > afterStep;
        };
        if (!previewArrived_.wait_for(lock, std::chrono::milliseconds(timeoutMs), newer)) return nullptr;
        auto preview = previews_[id];
        return preview;
    }

    void forgetPreview(qint64 id) {
        std::lock_guard<std::mutex> lock(previewMutex_);
        previews_.erase(id);
    }

    // On the network thread: /api/events?preview=1, kept open (reopened after a drop) for the live previews.
    void openEvents() {
        auto* ws = new QWebSocket(QString(), QWebSocketProtocol::VersionLatest, context_);
        QObject::connect(ws, &QWebSocket::textMessageReceived, ws, [this](const QString& text) { onEvent(text); });
        // Unconnected once: after a drop, or when the server could not be reached (then no disconnected()).
        QObject::connect(ws, &QWebSocket::stateChanged, ws, [this, ws](QAbstractSocket::SocketState state) {
            if (state != QAbstractSocket::UnconnectedState) return;
            QObject::disconnect(ws, nullptr, nullptr, nullptr);
            ws->deleteLater();
            QTimer::singleShot(kEventsRetryMs, context_, [this] { openEvents(); });
        });
        QNetworkRequest request(QUrl(QStringLiteral("ws://%1/api/events?preview=1").arg(endpoint_.label())));
        if (!endpoint_.token.isEmpty()) request.setRawHeader("Authorization", "Bearer " + endpoint_.token);
        ws->open(request);
    }

    void onEvent(const QString& text) {
        const QJsonObject message = QJsonDocument::fromJson(text.toUtf8()).object();
        if (message.value(QStringLiteral("type")).toString() != QLatin1String("preview")) return;
        const qint64 id = message.value(QStringLiteral("job")).toInteger();
        if (id != followed_) return;  // another client's job (every preview client gets every job's)
        auto frames = std::make_shared<PreviewFrames>();
        QString error;
        if (!previewFromMessage(message, frames.get(), &error)) {
            log_message(LogLevel::Warn, "engine at %s: %s", qPrintable(endpoint_.label()), qPrintable(error));
            return;
        }
        {
            std::lock_guard<std::mutex> lock(previewMutex_);
            previews_[id] = std::move(frames);
        }
        previewArrived_.notify_all();
    }

    /// Downloads an output file into `dir`; returns its local path, or "" when there is none.
    std::string fetch(const QString& name, const std::string& dir) {
        if (name.isEmpty() || name.contains(u'/') || name.contains(u'\\') || name.startsWith(u'.')) return {};
        const Reply r = call("GET", QStringLiteral("/api/files/") + QString::fromUtf8(QUrl::toPercentEncoding(name)));
        if (r.status != 200) return {};
        const QString folder = QString::fromStdString(dir.empty() ? std::string("outputs") : dir);
        QDir().mkpath(folder);
        QSaveFile out(QDir(folder).filePath(name));  // whole or not at all (the history watches this folder)
        if (!out.open(QIODevice::WriteOnly) || out.write(r.body) != r.body.size() || !out.commit()) return {};
        return out.fileName().toStdString();
    }

    // Note [No nested event loop on the engine thread]: waiting for a reply with a QEventLoop on the engine
    // thread would run the session's queued calls (shutdown, the next job) inside run(). The network lives
    // on a thread of its own instead, and the engine thread blocks on it as it would on MPI.
    void startNetwork() {
        network_ = std::make_unique<QThread>();
        network_->setObjectName(QStringLiteral("wan-remote-http"));
        context_ = new QObject;
        nam_ = new QNetworkAccessManager(context_);
        context_->moveToThread(network_.get());
        network_->start();
        QMetaObject::invokeMethod(context_, [this] { openEvents(); });
    }

    void stopNetwork() {
        if (!network_) return;
        QObject* context = context_;
        QMetaObject::invokeMethod(context, [context] {
            for (QWebSocket* ws : context->findChildren<QWebSocket*>()) QObject::disconnect(ws, nullptr, nullptr, nullptr);
            delete context;
        }, Qt::BlockingQueuedConnection);
        context_ = nullptr;
        nam_ = nullptr;
        network_->quit();
        network_->wait();
        network_.reset();
    }

    /// `jobKey`, with a POST of a job: X-Wan-Job-Key (the session's id for it).
    Reply call(const QByteArray& verb, const QString& path, const QByteArray& body = {},
               int timeoutMs = kRequestTimeoutMs, const QByteArray& jobKey = {}) {
        Reply r{0, {}, QStringLiteral("not connected (the session has shut down)")};
        if (!network_) return r;
        QMetaObject::invokeMethod(context_, [&] { r = callOnNetworkThread(verb, path, body, timeoutMs, jobKey); },
                                  Qt::BlockingQueuedConnection);
        return r;
    }

    Reply callOnNetworkThread(const QByteArray& verb, const QString& path, const QByteArray& body, int timeoutMs,
                              const QByteArray& jobKey) {
        QNetworkRequest request(QUrl(QStringLiteral("http://%1%2").arg(endpoint_.label(), path)));
        if (!body.isEmpty()) request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
        if (!endpoint_.token.isEmpty()) request.setRawHeader("Authorization", "Bearer " + endpoint_.token);
        if (!endpoint_.clientId.isEmpty()) request.setRawHeader("X-Wan-Client", endpoint_.clientHeader());
        if (!jobKey.isEmpty()) request.setRawHeader("X-Wan-Job-Key", jobKey);
        request.setTransferTimeout(timeoutMs);
        std::unique_ptr<QNetworkReply> reply(nam_->sendCustomRequest(request, verb, body));
        QEventLoop loop;  // only this backend's network objects live on this thread
        QObject::connect(reply.get(), &QNetworkReply::finished, &loop, &QEventLoop::quit);
        if (!reply->isFinished()) loop.exec();
        Reply r;
        r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        r.body = reply->readAll();
        r.networkError = reply->errorString();
        return r;
    }

    RemoteEndpoint endpoint_;
    std::unique_ptr<QThread> network_;
    QObject* context_ = nullptr;             // lives on network_; owns nam_
    QNetworkAccessManager* nam_ = nullptr;
    std::mutex previewMutex_;  // guards previews_ (written on the network thread, read on the engine thread)
    std::condition_variable previewArrived_;
    std::map<qint64, std::shared_ptr<const PreviewFrames>> previews_;  // the latest preview of the followed job
    std::atomic<qint64> followed_{0};        // the server's id of the job run() follows, 0 when none
};

}  // namespace

RemoteEndpoint parseRemoteEndpoint(const std::string& text) {
    const QString t = QString::fromStdString(text).trimmed();
    RemoteEndpoint e;
    const qsizetype colon = t.lastIndexOf(u':');
    e.host = colon < 0 ? t : t.left(colon);
    if (e.host.startsWith(u'[') && e.host.endsWith(u']')) e.host = e.host.mid(1, e.host.size() - 2);
    bool ok = colon < 0;
    if (colon >= 0) {
        const uint port = t.mid(colon + 1).toUInt(&ok);
        ok = ok && port > 0 && port <= 65535;
        e.port = static_cast<quint16>(port);
    }
    WAN_CHECK(ok && !e.host.isEmpty() && !e.host.contains(u'/'),
              "--connect '%s': expected HOST:PORT such as localhost:7860", text.c_str());
    if (e.host.contains(u':')) e.host = QStringLiteral("[%1]").arg(e.host);  // IPv6 in a URL
    e.clientId = QUuid::createUuid().toByteArray(QUuid::WithoutBraces);
    e.runId = QUuid::createUuid().toByteArray(QUuid::Id128).left(8);
    return e;
}

QByteArray remoteJobBody(const GenerationRequest& request) {
    QJsonObject obj = QJsonDocument::fromJson(QByteArray::fromStdString(request.to_json())).object();
    for (const char* key : {"output_dir", "init_noise", "save_latents", "job_id"}) obj.remove(QLatin1String(key));
    return QJsonDocument(obj).toJson(QJsonDocument::Compact);
}

std::unique_ptr<EngineBackend> makeRemoteBackend(const RemoteEndpoint& endpoint) {
    return std::make_unique<RemoteEngineBackend>(endpoint);
}

}  // namespace wan::app
