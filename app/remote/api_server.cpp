#include "remote/api_server.h"

#include "core/batch_file.h"
#include "session/engine_session.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QHttpServerRequest>
#include <QHttpServerResponder>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTcpServer>
#include <QTcpSocket>
#include <QUrl>
#include <QTimer>
#include <QWebSocket>

#include <sys/socket.h>

namespace wan::app {

namespace {

using Status = QHttpServerResponder::StatusCode;
constexpr qint64 kMaxHeaderBytes = 32 * 1024;

/// Refuses a request whose declared body is over the cap before a byte of it is read: Content-Length over
/// the cap, or chunked encoding (whose size is unknown). The socket's read buffer is capped as well, so a
/// request whose headers arrive in pieces cannot grow past it either. Our handler is connected before
/// QAbstractHttpServer's (which connects when it takes the pending connection), so it sees each request first.
class GuardedTcpServer : public QTcpServer {
public:
    GuardedTcpServer(qint64 maxBodyBytes, QObject* parent) : QTcpServer(parent), maxBody_(maxBodyBytes) {}

protected:
    void incomingConnection(qintptr descriptor) override {
        auto* socket = new QTcpSocket(this);
        if (!socket->setSocketDescriptor(descriptor)) {
            delete socket;
            return;
        }
        socket->setReadBufferSize(maxBody_ + kMaxHeaderBytes);
        connect(socket, &QTcpSocket::readyRead, socket, [this, socket] { checkDeclaredBody(socket); });
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
        if (tooLarge) refuse(socket);
    }

    /// 413, then the HTTP server no longer sees this connection: we send the reply, close our side for
    /// writing, and drop whatever the client still sends until it closes (10 s at most).
    void refuse(QTcpSocket* socket) {
        QObject::disconnect(socket, &QTcpSocket::readyRead, parent(), nullptr);
        socket->setProperty(kRefused, true);
        const QByteArray body = QJsonDocument(QJsonObject{{QStringLiteral("error"),
            QStringLiteral("request body too large: at most %1 bytes, with a Content-Length").arg(maxBody_)}})
            .toJson(QJsonDocument::Compact);
        socket->write("HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n"
                      "Content-Length: " + QByteArray::number(body.size()) + "\r\n\r\n" + body);
        socket->flush();
        ::shutdown(static_cast<int>(socket->socketDescriptor()), SHUT_WR);
        socket->readAll();
        QTimer::singleShot(10000, socket, [socket] { socket->abort(); });
    }

    static constexpr const char* kRefused = "wanRefusedBody";
    qint64 maxBody_;
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
    : QAbstractHttpServer(parent), session_(session), config_(std::move(config)) {
    connect(this, &QAbstractHttpServer::newWebSocketConnection, this, &ApiServer::acceptWebSockets);
    connectSession();
}

ApiServer::~ApiServer() = default;

bool ApiServer::start(QString* error) {
    QDir().mkpath(config_.outputDir);
    auto* tcp = new GuardedTcpServer(config_.maxBodyBytes, this);
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
    });
    connect(session_, &EngineSession::finished, this, [this](qint64 id, const wan::GenerationResult& result) {
        broadcast("state", jobs_.finish(id, result));
    });
    connect(session_, &EngineSession::failed, this, [this](qint64 id, const QString& message) {
        broadcast("state", jobs_.fail(id, message));
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
    info.insert(QStringLiteral("version"), QString::fromUtf8(wan::version_string()));
    info.insert(QStringLiteral("pending_jobs"), session_->pendingJobs());
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
    GenerationRequest job;
    QString error;
    if (!parseJobRequest(request.body(), config_, &job, &error)) {
        replyError(request, socket, error, Status::BadRequest);
        return;
    }
    const qint64 id = session_->submit(job);  // queued behind every earlier job, from any client
    jobs_.add(id, job.prompt);
    broadcast("state", jobs_.find(id));
    reply(request, socket, QJsonObject{{QStringLiteral("id"), id}}, Status::Accepted);
}

void ApiServer::handleListJobs(const QHttpServerRequest& request, QTcpSocket* socket) {
    QJsonArray list;
    for (const RemoteJob& job : jobs_.jobs()) list.append(JobTable::toJson(job));
    reply(request, socket, QJsonObject{{QStringLiteral("jobs"), list}}, Status::Ok);
}

void ApiServer::handleJob(const QHttpServerRequest& request, QTcpSocket* socket, const QString& idText) {
    bool ok = false;
    const qint64 id = idText.toLongLong(&ok);
    const RemoteJob* job = ok ? jobs_.find(id) : nullptr;
    if (!job) {
        replyError(request, socket, QStringLiteral("no job %1").arg(idText), Status::NotFound);
        return;
    }
    if (request.method() == QHttpServerRequest::Method::Delete) {
        if (!JobTable::isFinal(*job)) session_->cancel(id);  // takes effect at the next step boundary
        reply(request, socket, JobTable::toJson(*job), Status::Accepted);
        return;
    }
    reply(request, socket, JobTable::toJson(*job), Status::Ok);
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

void ApiServer::acceptWebSockets() {
    while (hasPendingWebSocketConnections()) {
        QWebSocket* ws = nextPendingWebSocketConnection().release();
        ws->setParent(this);
        sockets_.append(ws);
        connect(ws, &QWebSocket::disconnected, this, [this, ws] {
            sockets_.removeAll(ws);  // its jobs keep running: they belong to the queue
            ws->deleteLater();
        });
        QJsonArray list;
        for (const RemoteJob& job : jobs_.jobs()) list.append(JobTable::toJson(job));
        ws->sendTextMessage(QString::fromUtf8(QJsonDocument(QJsonObject{{QStringLiteral("type"), QStringLiteral("jobs")},
            {QStringLiteral("jobs"), list}}).toJson(QJsonDocument::Compact)));
    }
}

void ApiServer::broadcast(const char* type, const RemoteJob* job) {
    if (!job || sockets_.isEmpty()) return;
    const QString text = QString::fromUtf8(QJsonDocument(QJsonObject{{QStringLiteral("type"), QString::fromLatin1(type)},
        {QStringLiteral("job"), JobTable::toJson(*job)}}).toJson(QJsonDocument::Compact));
    for (QWebSocket* ws : std::as_const(sockets_)) ws->sendTextMessage(text);
}

}  // namespace wan::app
