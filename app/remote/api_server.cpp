#include "remote/api_server.h"

#include "core/batch_file.h"
#include "remote/preview_wire.h"
#include "session/engine_session.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHttpServerRequest>
#include <QHttpServerResponder>
#include <QDateTime>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPointer>
#include <QUrlQuery>
#include <QTcpServer>
#include <QTcpSocket>
#include <QUrl>
#include <QUuid>
#include <QTimer>
#include <QWebSocket>

#include <sys/socket.h>

#include <algorithm>

namespace wan::app {

/// A reply the server owes once the engine answers (POST /api/extend); the socket may be gone by then.
struct PendingReply {
    QPointer<QTcpSocket> socket;
    std::unique_ptr<QHttpServerResponder> responder;
};

namespace {

using Status = QHttpServerResponder::StatusCode;
constexpr qint64 kMaxHeaderBytes = 32 * 1024;
constexpr int kThumbnailMaxSide = 256;  // px, the longer side
constexpr int kThumbnailMinSide = 128;  // a preview frame (1/8 of the video) is enlarged to this

// Note [Request deadline]: from a connection's start, and again after each response, a complete request must
// arrive within ApiConfig::requestTimeoutMs. A client that opens a connection and sends nothing, or trickles
// a request byte by byte, gets 408 (or, having sent nothing, a silent close) and stops holding a connection.
// ApiServer::handleRequest stops the clock when the request is whole (the answer may take long, e.g. prompt
// extension); a WebSocket upgrade leaves it stopped for good.
constexpr const char* kDeadlineTimer = "wanRequestDeadline";
constexpr const char* kUpgraded = "wanUpgraded";
constexpr const char* kPartial = "wanPartialRequest";

void noteRequestArrived(QTcpSocket* socket, bool upgrade) {
    if (auto* timer = socket->findChild<QTimer*>(QLatin1String(kDeadlineTimer), Qt::FindDirectChildrenOnly))
        timer->stop();
    socket->setProperty(kPartial, false);
    if (upgrade) socket->setProperty(kUpgraded, true);
}

/// Refuses a request whose declared body is over the cap before a byte of it is read: Content-Length over
/// the cap, or chunked encoding (whose size is unknown). The socket's read buffer is capped as well, so a
/// request whose headers arrive in pieces cannot grow past it either. Our handler is connected before
/// QAbstractHttpServer's (which connects when it takes the pending connection), so it sees each request first.
/// Also keeps each connection's request deadline (Note [Request deadline]).
class GuardedTcpServer : public QTcpServer {
public:
    GuardedTcpServer(qint64 maxBodyBytes, int requestTimeoutMs, QObject* parent)
        : QTcpServer(parent), maxBody_(maxBodyBytes), timeoutMs_(requestTimeoutMs) {}

protected:
    void incomingConnection(qintptr descriptor) override {
        auto* socket = new QTcpSocket(this);
        if (!socket->setSocketDescriptor(descriptor)) {
            delete socket;
            return;
        }
        socket->setReadBufferSize(maxBody_ + kMaxHeaderBytes);
        auto* deadline = new QTimer(socket);
        deadline->setObjectName(QLatin1String(kDeadlineTimer));
        deadline->setSingleShot(true);
        deadline->setInterval(timeoutMs_);
        connect(deadline, &QTimer::timeout, socket, [this, socket] { onDeadline(socket); });
        connect(socket, &QTcpSocket::readyRead, socket, [this, socket] {
            socket->setProperty(kPartial, true);
            checkDeclaredBody(socket);
        });
        connect(socket, &QTcpSocket::bytesWritten, deadline, [socket, deadline] {
            if (!socket->property(kUpgraded).toBool() && !socket->property(kRefused).toBool()) deadline->start();
        });
        deadline->start();
        addPendingConnection(socket);
    }

private:
    void checkDeclaredBody(QTcpSocket* socket) {
        if (socket->property(kRefused).toBool()) {
            socket->readAll();  // drained, so that closing sends no reset that could swallow our reply
            return;
        }
        if (socket->isTransactionStarted() || socket->state() != QAbstractSocket::ConnectedState) return;
        const QByteArray head = socket->peek(kMaxHeaderBytes);
        const qsizetype end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        bool tooLarge = false;
        for (const QByteArray& line : head.left(end).split('\n')) {
            const qsizetype colon = line.indexOf(':');
            if (colon < 0) continue;
            const QByteArray key = line.left(colon).trimmed().toLower();
            const QByteArray value = line.mid(colon + 1).trimmed().toLower();
            if (key == "content-length") tooLarge |= value.toLongLong() > maxBody_ || value.startsWith('-');
            if (key == "transfer-encoding" && value.contains("chunked")) tooLarge = true;
        }
        if (tooLarge)
            refuse(socket, "413 Payload Too Large",
                   QStringLiteral("request body too large: at most %1 bytes, with a Content-Length").arg(maxBody_));
    }

    void onDeadline(QTcpSocket* socket) {
        if (socket->property(kUpgraded).toBool() || socket->property(kRefused).toBool()) return;
        if (!socket->property(kPartial).toBool()) {  // an idle keep-alive connection: nothing to answer
            socket->disconnectFromHost();
            return;
        }
        refuse(socket, "408 Request Timeout",
               QStringLiteral("request timed out: no complete request (headers and the whole body) within %1 s")
                   .arg(timeoutMs_ / 1000.0));
    }

    /// Answers `status` with {"error": message}, then the HTTP server no longer sees this connection: we close
    /// our side for writing and drop whatever the client still sends until it closes (10 s at most).
    void refuse(QTcpSocket* socket, const char* status, const QString& message) {
        QObject::disconnect(socket, &QTcpSocket::readyRead, parent(), nullptr);
        socket->setProperty(kRefused, true);
        const QByteArray body = QJsonDocument(QJsonObject{{QStringLiteral("error"), message}})
            .toJson(QJsonDocument::Compact);
        socket->write("HTTP/1.1 " + QByteArray(status) + "\r\nContent-Type: application/json\r\n"
                      "Connection: close\r\nContent-Length: " + QByteArray::number(body.size()) + "\r\n\r\n" + body);
        socket->flush();
        ::shutdown(static_cast<int>(socket->socketDescriptor()), SHUT_WR);
        socket->readAll();
        QTimer::singleShot(10000, socket, [socket] { socket->abort(); });
    }

    static constexpr const char* kRefused = "wanRefusedBody";
    qint64 maxBody_;
    int timeoutMs_;
};

QJsonObject errorJson(const QString& message) { return QJsonObject{{QStringLiteral("error"), message}}; }

/// The path's segments, each percent-decoded on its own (so "%2F" inside a name stays inside that name).
QStringList pathSegments(const QUrl& url) {
    QStringList parts = QString::fromUtf8(url.path(QUrl::FullyEncoded).toUtf8()).split(u'/', Qt::SkipEmptyParts);
    for (QString& p : parts) p = QUrl::fromPercentEncoding(p.toUtf8());
    return parts;
}

bool isWebSocketUpgrade(const QHttpServerRequest& request) {
    return request.value("upgrade").compare("websocket", Qt::CaseInsensitive) == 0;
}

const char* mimeFor(const QString& name) {
    if (name.endsWith(QLatin1String(".mp4"))) return "video/mp4";
    if (name.endsWith(QLatin1String(".webm"))) return "video/webm";
    if (name.endsWith(QLatin1String(".png"))) return "image/png";
    if (name.endsWith(QLatin1String(".jpg"))) return "image/jpeg";
    if (name.endsWith(QLatin1String(".json"))) return "application/json";
    return "application/octet-stream";
}

}  // namespace

ListenAddress parseListenAddress(const std::string& text) {
    const QString t = QString::fromStdString(text).trimmed();
    QString host, portText = t;
    if (t.startsWith(u'[')) {  // [v6]:port
        const qsizetype close = t.indexOf(QLatin1String("]:"));
        WAN_CHECK(close > 0, "--listen '%s': expected [ADDR:]PORT such as 7860 or 127.0.0.1:7860", text.c_str());
        host = t.mid(1, close - 1);
        portText = t.mid(close + 2);
    } else if (const qsizetype colon = t.lastIndexOf(u':'); colon >= 0) {
        host = t.left(colon);
        portText = t.mid(colon + 1);
    }
    bool ok = false;
    const uint port = portText.toUInt(&ok);
    WAN_CHECK(ok && port <= 65535, "--listen '%s': expected [ADDR:]PORT such as 7860 or 127.0.0.1:7860 "
              "(PORT 0-65535)", text.c_str());
    ListenAddress a;
    a.port = static_cast<quint16>(port);
    if (host.isEmpty() || host == QLatin1String("localhost")) return a;
    WAN_CHECK(a.address.setAddress(host), "--listen '%s': '%s' is not an IP address (use e.g. 127.0.0.1, 0.0.0.0 "
              "or ::1)", text.c_str(), host.toStdString().c_str());
    return a;
}

bool isPlainFileName(const QString& name) {
    return !name.isEmpty() && name != QLatin1String(".") && name != QLatin1String("..") &&
           !name.contains(u'/') && !name.contains(u'\\') && !name.contains(QChar(0));
}

bool isClientId(const QByteArray& id) {
    if (id.isEmpty() || id.size() > 64) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
    });
}

bool constantTimeEquals(const QByteArray& given, const QByteArray& expected) {
    unsigned diff = given.size() == expected.size() ? 0u : 1u;
    for (qsizetype i = 0; i < expected.size(); ++i) {
        const char g = i < given.size() ? given[i] : 0;
        diff |= static_cast<unsigned char>(g ^ expected[i]);
    }
    return diff == 0;
}

bool parseJobRequest(const QByteArray& body, const ApiConfig& config, GenerationRequest* request, QString* error) {
    QJsonParseError parseError{};
    const QJsonDocument doc = QJsonDocument::fromJson(body, &parseError);
    if (parseError.error != QJsonParseError::NoError || !doc.isObject()) {
        *error = QStringLiteral("the body is not valid JSON (%1 at offset %2); expected a --batch JSON line such as "
                                "{\"prompt\": \"...\", \"size\": \"832*480\"}")
                     .arg(parseError.error != QJsonParseError::NoError ? parseError.errorString()
                                                                       : QStringLiteral("not an object"))
                     .arg(parseError.offset);
        return false;
    }
    QJsonObject obj = doc.object();
    if (obj.contains(QStringLiteral("output_dir"))) {
        *error = QStringLiteral("\"output_dir\" is the server's (--output-dir); leave it out");
        return false;
    }
    for (const QString key : {QStringLiteral("save_latents"), QStringLiteral("init_noise")}) {
        if (!obj.contains(key)) continue;
        const QString name = obj.value(key).toString();
        if (!isPlainFileName(name)) {
            *error = QStringLiteral("\"%1\": expected a plain file name (it is read or written in the server's output "
                                    "folder), got \"%2\"").arg(key, name);
            return false;
        }
        obj.insert(key, QDir(config.outputDir).filePath(name));
    }
    GenerationRequest defaults = config.defaults;
    defaults.output_dir = config.outputDir.toStdString();
    try {
        // One compact line: the same parser, keys and messages as a --batch file's JSON line.
        const std::string line = QJsonDocument(obj).toJson(QJsonDocument::Compact).toStdString();
        std::vector<GenerationRequest> jobs = parse_batch_text(line, defaults, "request");
        WAN_CHECK(jobs.size() == 1, "request: expected one job");
        *request = jobs.front();
        request->output_dir = defaults.output_dir;
        return true;
    } catch (const std::exception& e) {
        *error = QString::fromUtf8(e.what()).replace(QLatin1String("request, line 1: "), QLatin1String("request: "));
        return false;
    }
}

void ApiServer::reply(const QHttpServerRequest& request, QTcpSocket* socket, const QJsonObject& json, Status status) {
    if (socket->state() != QAbstractSocket::ConnectedState) return;  // refused by GuardedTcpServer already
    QHttpServerResponder responder = makeResponder(request, socket);
    responder.write(QJsonDocument(json), status);
}

void ApiServer::replyError(const QHttpServerRequest& request, QTcpSocket* socket, const QString& message, Status status) {
    reply(request, socket, errorJson(message), status);
}

ApiServer::ApiServer(EngineSession* session, ApiConfig config, QObject* parent)
    : QAbstractHttpServer(parent), session_(session), config_(std::move(config)),
      instance_(QUuid::createUuid().toString(QUuid::WithoutBraces)) {
    connect(this, &QAbstractHttpServer::newWebSocketConnection, this, &ApiServer::acceptWebSockets);
    connectSession();
}

ApiServer::~ApiServer() = default;

bool ApiServer::start(QString* error) {
    QDir().mkpath(config_.outputDir);
    auto* tcp = new GuardedTcpServer(config_.maxBodyBytes, config_.requestTimeoutMs, this);
    if (!tcp->listen(config_.listen.address, config_.listen.port)) {
        *error = QStringLiteral("%1:%2: %3").arg(config_.listen.address.toString()).arg(config_.listen.port)
                     .arg(tcp->errorString());
        delete tcp;
        return false;
    }
    port_ = tcp->serverPort();
    bind(tcp);
    return true;
}

void ApiServer::connectSession() {
    connect(session_, &EngineSession::jobStarted, this, [this](qint64 id) { broadcast("state", jobs_.markRunning(id)); });
    connect(session_, &EngineSession::progress, this, [this](qint64 id, const wan::ProgressInfo& info) {
        broadcast("progress", jobs_.update(id, info));
        if (info.preview && !info.preview->empty()) broadcastPreview(id, *info.preview);
    });
    connect(session_, &EngineSession::finished, this, [this](qint64 id, const wan::GenerationResult& result) {
        broadcast("state", jobs_.finish(id, result));
    });
    connect(session_, &EngineSession::failed, this, [this](qint64 id, const QString& message) {
        broadcast("state", jobs_.fail(id, message));
    });
    // Extension answers carry the prompt they were asked for; the session answers them in order.
    auto answerExtend = [this](const QString& original, const QJsonObject& json, Status status) {
        const auto it = pendingExtends_.find(original);
        if (it == pendingExtends_.end()) return;  // asked by the window of a local session, not over HTTP
        const std::unique_ptr<PendingReply> pending = std::move(it->second);
        pendingExtends_.erase(it);
        if (pending->socket && pending->socket->state() == QAbstractSocket::ConnectedState)
            pending->responder->write(QJsonDocument(json), status);
    };
    connect(session_, &EngineSession::promptExtended, this,
            [answerExtend](const QString& original, const QString& extended) {
        answerExtend(original, QJsonObject{{QStringLiteral("prompt"), extended}, {QStringLiteral("original"), original}},
                     Status::Ok);
    });
    connect(session_, &EngineSession::extendFailed, this, [answerExtend](const QString& original, const QString& reason) {
        answerExtend(original, errorJson(QStringLiteral("prompt extension failed on the server: %1").arg(reason)),
                     Status::BadGateway);
    });
}

bool ApiServer::authorized(const QHttpServerRequest& request) const {
    if (config_.token.isEmpty()) return true;
    const QByteArray header = request.value("authorization");
    const QByteArray prefix = "Bearer ";
    if (!header.startsWith(prefix)) return false;
    return constantTimeEquals(header.mid(prefix.size()).trimmed(), config_.token);
}

bool ApiServer::handleRequest(const QHttpServerRequest& request, QTcpSocket* socket) {
    noteRequestArrived(socket, isWebSocketUpgrade(request));  // Note [Request deadline]
    const QStringList path = pathSegments(request.url());
    if (isWebSocketUpgrade(request))  // accepted by QAbstractHttpServer when true; else missingHandler answers
        return authorized(request) && path == QStringList{QStringLiteral("api"), QStringLiteral("events")};
    if (!authorized(request)) {
        replyError(request, socket, QStringLiteral("missing or wrong API token (send Authorization: Bearer TOKEN)"),
                   Status::Unauthorized);
        return true;
    }
    if (path.size() < 2 || path[0] != QLatin1String("api")) return false;
    const auto method = request.method();
    const QString& what = path[1];
    if (what == QLatin1String("info") && path.size() == 2 && method == QHttpServerRequest::Method::Get) {
        handleInfo(request, socket);
    } else if (what == QLatin1String("jobs") && path.size() == 2 && method == QHttpServerRequest::Method::Post) {
        handleSubmit(request, socket);
    } else if (what == QLatin1String("jobs") && path.size() == 2 && method == QHttpServerRequest::Method::Get) {
        handleListJobs(request, socket);
    } else if (what == QLatin1String("jobs") && path.size() == 3 &&
               (method == QHttpServerRequest::Method::Get || method == QHttpServerRequest::Method::Delete)) {
        handleJob(request, socket, path[2]);
    } else if (what == QLatin1String("jobs") && path.size() == 4 && path[3] == QLatin1String("thumbnail") &&
               method == QHttpServerRequest::Method::Get) {
        handleThumbnail(request, socket, path[2]);
    } else if (what == QLatin1String("history") && path.size() == 2 && method == QHttpServerRequest::Method::Get) {
        handleHistory(request, socket);
    } else if (what == QLatin1String("extend") && path.size() == 2 && method == QHttpServerRequest::Method::Post) {
        handleExtend(request, socket);
    } else if (what == QLatin1String("files") && path.size() == 3 && method == QHttpServerRequest::Method::Get) {
        handleFile(request, socket, path[2]);
    } else {
        return false;
    }
    return true;
}

void ApiServer::missingHandler(const QHttpServerRequest& request, QTcpSocket* socket) {
    if (!authorized(request)) {
        replyError(request, socket, QStringLiteral("missing or wrong API token (send Authorization: Bearer TOKEN)"),
                   Status::Unauthorized);
        return;
    }
    replyError(request, socket, QStringLiteral("no such resource: %1").arg(request.url().path()), Status::NotFound);
}

void ApiServer::handleInfo(const QHttpServerRequest& request, QTcpSocket* socket) {
    QJsonObject info = QJsonDocument::fromJson(QByteArray::fromStdString(session_->engineInfo().to_json())).object();
    const char* state = "loading";
    if (session_->state() == EngineSession::State::Ready) state = "ready";
    else if (session_->state() == EngineSession::State::StartFailed) state = "failed";
    info.insert(QStringLiteral("engine_state"), QString::fromLatin1(state));
    if (session_->state() == EngineSession::State::StartFailed)
        info.insert(QStringLiteral("error"), session_->startError());
    if (session_->state() == EngineSession::State::Starting && session_->lastLoadProgress().bytes_total > 0) {
        // How far the model load is, so that a --connect window shows the server's load as its own.
        const LoadProgress& p = session_->lastLoadProgress();
        info.insert(QStringLiteral("load"), QJsonObject{{QStringLiteral("component"), QString::fromStdString(p.component)},
                                                        {QStringLiteral("file"), QString::fromStdString(p.file)},
                                                        {QStringLiteral("bytes_done"), static_cast<qint64>(p.bytes_done)},
                                                        {QStringLiteral("bytes_total"), static_cast<qint64>(p.bytes_total)},
                                                        {QStringLiteral("elapsed_s"), p.elapsed_s}});
    }
    info.insert(QStringLiteral("version"), QString::fromUtf8(wan::version_string()));
    info.insert(QStringLiteral("instance"), instance_);
    info.insert(QStringLiteral("pending_jobs"), session_->pendingJobs());
    info.insert(QStringLiteral("prompt_extend"), config_.promptExtendMethod.isEmpty()
                                                     ? QJsonValue() : QJsonValue(config_.promptExtendMethod));
    reply(request, socket, info, Status::Ok);
}

void ApiServer::handleSubmit(const QHttpServerRequest& request, QTcpSocket* socket) {
    if (request.body().size() > config_.maxBodyBytes) {  // GuardedTcpServer refuses these earlier
        replyError(request, socket, QStringLiteral("request body too large"), Status::PayloadTooLarge);
        return;
    }
    if (session_->state() == EngineSession::State::StartFailed) {
        replyError(request, socket, QStringLiteral("the engine failed to start: %1").arg(session_->startError()),
                   Status::ServiceUnavailable);
        return;
    }
    const QByteArray client = request.value("x-wan-client"), key = request.value("x-wan-job-key");
    for (const auto& [name, value] : {std::pair{"X-Wan-Client", client}, std::pair{"X-Wan-Job-Key", key}}) {
        if (value.isEmpty() || isClientId(value)) continue;
        replyError(request, socket, QStringLiteral("%1: expected 1 to 64 letters, digits, '-', '_' or '.'").arg(name),
                   Status::BadRequest);
        return;
    }
    // The same job again (its client lost our answer and asked once more): the first one's id, no second job.
    if (const RemoteJob* earlier = jobs_.findSubmitted(QString::fromLatin1(client), QString::fromLatin1(key))) {
        reply(request, socket, QJsonObject{{QStringLiteral("id"), static_cast<qint64>(earlier->id)}}, Status::Accepted);
        return;
    }
    GenerationRequest job;
    QString error;
    if (!parseJobRequest(request.body(), config_, &job, &error)) {
        replyError(request, socket, error, Status::BadRequest);
        return;
    }
    const qint64 id = session_->submit(job);  // queued behind every earlier job, from any client
    jobs_.add(id, job.prompt, QString::fromLatin1(client), QString::fromLatin1(key));
    broadcast("state", jobs_.find(id));
    reply(request, socket, QJsonObject{{QStringLiteral("id"), id}}, Status::Accepted);
}

// The job that the URL's id names, or null after answering 404 (an id that is not a number names no job).
const RemoteJob* ApiServer::findJobOrReply(const QHttpServerRequest& request, QTcpSocket* socket, const QString& idText) {
    bool ok = false;
    const qint64 id = idText.toLongLong(&ok);
    const RemoteJob* job = ok ? jobs_.find(id) : nullptr;
    if (!job) replyError(request, socket, QStringLiteral("no job %1").arg(idText), Status::NotFound);
    return job;
}

void ApiServer::handleListJobs(const QHttpServerRequest& request, QTcpSocket* socket) {
    QJsonArray list;
    for (const RemoteJob& job : jobs_.jobs()) list.append(jobs_.describe(job));
    reply(request, socket, QJsonObject{{QStringLiteral("jobs"), list}}, Status::Ok);
}

void ApiServer::handleJob(const QHttpServerRequest& request, QTcpSocket* socket, const QString& idText) {
    const RemoteJob* job = findJobOrReply(request, socket, idText);
    if (!job) return;
    const qint64 id = job->id;
    if (request.method() == QHttpServerRequest::Method::Delete) {
        // Any token holder may cancel any job; who asked is recorded so that the submitter can be told.
        const QByteArray client = request.value("x-wan-client");
        jobs_.noteCancelRequest(id, isClientId(client) ? QString::fromLatin1(client) : QString());
        if (!JobTable::isFinal(*job)) session_->cancel(id);  // takes effect at the next step boundary
        if (job->state == QLatin1String("queued")) {  // said at once; the session skips it when its turn comes
            job = jobs_.cancelQueued(id);
            broadcast("state", job);
        }
        reply(request, socket, jobs_.describe(*job), Status::Accepted);
        return;
    }
    reply(request, socket, jobs_.describe(*job), Status::Ok);
}

void ApiServer::handleFile(const QHttpServerRequest& request, QTcpSocket* socket, const QString& name) {
    // Only a plain name of a regular file directly in the output folder, after resolving every link.
    const QString folder = QFileInfo(config_.outputDir).canonicalFilePath();
    const QFileInfo file(QDir(config_.outputDir).filePath(name));
    const bool inside = isPlainFileName(name) && !folder.isEmpty() && file.exists() && !file.isSymLink() &&
                        file.isFile() && QFileInfo(file.canonicalFilePath()).absolutePath() == folder;
    auto data = std::make_unique<QFile>(file.absoluteFilePath());
    if (!inside || !data->open(QIODevice::ReadOnly)) {
        replyError(request, socket, QStringLiteral("no file \"%1\" in the output folder").arg(name), Status::NotFound);
        return;
    }
    QHttpServerResponder responder = makeResponder(request, socket);
    responder.write(data.release(), mimeFor(name), Status::Ok);  // the responder owns and closes the file
}

// The finished videos of the output folder, newest first (?limit=N, default 50): what a window lists as its
// history. Read from the folder, not from the job table, so it survives a server restart. A record is a JSON
// sidecar with a video of the same stem beside it (the engine writes STEM.mp4, STEM.png, STEM.json).
void ApiServer::handleHistory(const QHttpServerRequest& request, QTcpSocket* socket) {
    bool ok = false;
    int limit = request.query().queryItemValue(QStringLiteral("limit")).toInt(&ok);
    limit = ok ? std::clamp(limit, 1, 500) : 50;
    const QDir dir(config_.outputDir);
    QJsonArray list;
    for (const QFileInfo& json : dir.entryInfoList({QStringLiteral("*.json")}, QDir::Files | QDir::Readable, QDir::Time)) {
        if (list.size() >= limit) break;
        auto plainFile = [&](const QString& suffix) {
            const QFileInfo f(dir.filePath(json.completeBaseName() + suffix));
            return f.isFile() && !f.isSymLink() ? f.fileName() : QString();
        };
        QString video = plainFile(QStringLiteral(".mp4"));
        if (video.isEmpty()) video = plainFile(QStringLiteral(".webm"));
        if (video.isEmpty() || json.isSymLink()) continue;  // a record without its video is not history
        QFile file(json.absoluteFilePath());
        const QJsonObject record = file.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(file.read(1 << 20)).object()
                                                                  : QJsonObject();
        const QString poster = plainFile(QStringLiteral(".png"));
        list.append(QJsonObject{{QStringLiteral("video"), video},
                                {QStringLiteral("poster"), poster.isEmpty() ? QJsonValue() : QJsonValue(poster)},
                                {QStringLiteral("metadata"), json.fileName()},
                                {QStringLiteral("prompt"), record.value(QStringLiteral("prompt"))},
                                {QStringLiteral("modified"), json.lastModified().toUTC().toString(Qt::ISODate)}});
    }
    reply(request, socket, QJsonObject{{QStringLiteral("history"), list}}, Status::Ok);
}

// A small JPEG of a job: its poster (the first frame, written beside the video in builds with FFmpeg), else the
// middle frame of its last live preview (any build; also while it runs). X-Thumbnail-Source says which.
void ApiServer::handleThumbnail(const QHttpServerRequest& request, QTcpSocket* socket, const QString& idText) {
    const RemoteJob* job = findJobOrReply(request, socket, idText);
    if (!job) return;
    const qint64 id = job->id;
    QImage image;
    QByteArray source;
    if (!job->poster.isEmpty() && isPlainFileName(job->poster)) {
        image.load(QDir(config_.outputDir).filePath(job->poster));
        source = "poster";
    }
    if (image.isNull() && !job->previewFrame.isNull()) {
        image = job->previewFrame;
        source = "preview";
    }
    if (image.isNull()) {
        replyError(request, socket, QStringLiteral("job %1 has no image yet: neither a poster (it is %2) nor a live "
                                                   "preview step").arg(id).arg(job->state), Status::NotFound);
        return;
    }
    const QByteArray jpeg = thumbnailJpeg(image, kThumbnailMaxSide, source == "preview" ? kThumbnailMinSide : 0);
    QHttpServerResponder responder = makeResponder(request, socket);
    responder.write(jpeg, {{"Content-Type", "image/jpeg"}, {"X-Thumbnail-Source", source}}, Status::Ok);
}

// "Enhance prompt" on the server's extender: {"prompt", "target_lang" (zh|en, default zh), "seed"} → {"prompt",
// "original"}. Answered when the engine thread gets to it (after the running job), so the reply is deferred.
void ApiServer::handleExtend(const QHttpServerRequest& request, QTcpSocket* socket) {
    if (config_.promptExtendMethod.isEmpty()) {
        replyError(request, socket, QStringLiteral("prompt extension is not configured on this server (start it with "
                                                   "--prompt-extend-method dashscope|local_qwen)"),
                   Status::NotImplemented);
        return;
    }
    const QJsonObject body = QJsonDocument::fromJson(request.body()).object();
    const QString prompt = body.value(QStringLiteral("prompt")).toString();
    const QString lang = body.value(QStringLiteral("target_lang")).toString(QStringLiteral("zh"));
    if (prompt.trimmed().isEmpty() || (lang != QLatin1String("zh") && lang != QLatin1String("en"))) {
        replyError(request, socket, QStringLiteral("expected {\"prompt\": \"...\", \"target_lang\": \"zh\" or \"en\", "
                                                   "\"seed\": N} with a prompt that is not empty"), Status::BadRequest);
        return;
    }
    if (!session_->isReady()) {
        replyError(request, socket, QStringLiteral("the engine is not ready (%1)").arg(
                       session_->state() == EngineSession::State::StartFailed ? session_->startError()
                                                                               : QStringLiteral("loading")),
                   Status::ServiceUnavailable);
        return;
    }
    auto pending = std::make_unique<PendingReply>();
    pending->socket = socket;
    pending->responder = std::make_unique<QHttpServerResponder>(makeResponder(request, socket));
    pendingExtends_.emplace(prompt, std::move(pending));
    session_->extendPrompt(prompt, lang, body.value(QStringLiteral("seed")).toInteger(-1));
}

void ApiServer::acceptWebSockets() {
    while (hasPendingWebSocketConnections()) {
        QWebSocket* ws = nextPendingWebSocketConnection().release();
        ws->setParent(this);
        sockets_.append(ws);
        if (QUrlQuery(ws->requestUrl()).queryItemValue(QStringLiteral("preview")) == QLatin1String("1"))
            previewSockets_.append(ws);
        connect(ws, &QWebSocket::disconnected, this, [this, ws] {
            sockets_.removeAll(ws);  // its jobs keep running: they belong to the queue
            previewSockets_.removeAll(ws);
            ws->deleteLater();
        });
        QJsonArray list;
        for (const RemoteJob& job : jobs_.jobs()) list.append(jobs_.describe(job));
        // "instance" tells a client that reconnects whether this is the server it saw before (job ids restart
        // with the server).
        ws->sendTextMessage(QString::fromUtf8(QJsonDocument(QJsonObject{{QStringLiteral("type"), QStringLiteral("jobs")},
            {QStringLiteral("instance"), instance_}, {QStringLiteral("jobs"), list}}).toJson(QJsonDocument::Compact)));
    }
}

void ApiServer::broadcast(const char* type, const RemoteJob* job) {
    if (!job || sockets_.isEmpty()) return;
    const QString text = QString::fromUtf8(QJsonDocument(QJsonObject{{QStringLiteral("type"), QString::fromLatin1(type)},
        {QStringLiteral("job"), jobs_.describe(*job)}}).toJson(QJsonDocument::Compact));
    for (QWebSocket* ws : std::as_const(sockets_)) ws->sendTextMessage(text);
}

void ApiServer::broadcastPreview(qint64 id, const PreviewFrames& frames) {
    if (!jobs_.notePreview(id, frames.step, previewMiddleFrame(frames))) return;
    if (previewSockets_.isEmpty()) return;
    const QString text = QString::fromUtf8(QJsonDocument(previewMessage(id, frames)).toJson(QJsonDocument::Compact));
    for (QWebSocket* ws : std::as_const(previewSockets_)) ws->sendTextMessage(text);
}

}  // namespace wan::app
