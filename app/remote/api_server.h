// `wanstudio --listen`: the engine's HTTP + WebSocket API, served on rank 0 next to EngineSession (the same
// session the window and --batch use). Built on QtHttpServer's QAbstractHttpServer with our own routing:
//   GET /api/info · POST/GET /api/jobs · GET/DELETE /api/jobs/N · GET /api/jobs/N/thumbnail · POST /api/extend
//   GET /api/history · GET /api/files/NAME · GET /api/events (WS; `?preview=1` adds the live preview of every denoising step)
// Security: an optional bearer token (compared in constant time), request bodies capped before they are read,
// file access limited to plain names of regular files in the output folder, nothing reaches a shell.
// A client disconnecting never cancels its jobs: jobs belong to the server's one queue, not to connections.
#pragma once

#include "core/core.h"
#include "remote/job_table.h"

#include <QAbstractHttpServer>
#include <QHostAddress>
#include <QHttpServerResponder>
#include <QList>
#include <QString>

#include <map>
#include <memory>
#include <string>

QT_BEGIN_NAMESPACE
class QWebSocket;
QT_END_NAMESPACE

namespace wan::app {

class EngineSession;
struct PendingReply;

struct ListenAddress {
    QHostAddress address = QHostAddress(QHostAddress::LocalHost);
    quint16 port = 7860;  ///< upstream's default Gradio port; 0 = any free port (tests)
    bool isLoopback() const { return address.isLoopback(); }
};

/// Parses `--listen [ADDR:]PORT` ("7860", "0.0.0.0:7860", "localhost:7860", "[::1]:7860"). Throws wan::Error
/// naming the option and what was expected.
ListenAddress parseListenAddress(const std::string& text);

/// True when `name` may name a file of the output folder: not empty, no '/' or '\', not "." or "..", no NUL.
bool isPlainFileName(const QString& name);

/// True when `id` may label a client (the X-Wan-Client header): 1 to 64 ASCII letters, digits, '-', '_', '.'.
bool isClientId(const QByteArray& id);

/// Equal strings, in a time that depends only on `expected`'s length (for tokens).
bool constantTimeEquals(const QByteArray& given, const QByteArray& expected);

struct ApiConfig {
    ListenAddress listen;
    QByteArray token;               ///< empty = no Authorization required (loopback only)
    QString outputDir;              ///< where jobs write; the only folder /api/files serves
    GenerationRequest defaults;     ///< the command line's job options, under every POSTed job
    qint64 maxBodyBytes = 64 * 1024;
    /// A complete request must arrive within this long of the connection or the previous response (else 408).
    int requestTimeoutMs = 30000;
    QString promptExtendMethod;     ///< the server's --prompt-extend-method; empty: POST /api/extend → 501
};

/// Turns a POSTed body (a --batch JSON line, possibly spread over lines) into a job, or sets `error` to the
/// message the CLI would print. Output paths stay in `outputDir`: "output_dir" is refused, "save_latents" and
/// "init_noise" must be plain file names, resolved in that folder.
bool parseJobRequest(const QByteArray& body, const ApiConfig& config, GenerationRequest* request, QString* error);

class ApiServer : public QAbstractHttpServer {
    Q_OBJECT
public:
    ApiServer(EngineSession* session, ApiConfig config, QObject* parent = nullptr);
    ~ApiServer() override;

    /// Starts listening; on failure returns false and sets `error` ("127.0.0.1:7860: address in use").
    bool start(QString* error);
    quint16 port() const { return port_; }
    const JobTable& jobs() const { return jobs_; }

protected:
    bool handleRequest(const QHttpServerRequest& request, QTcpSocket* socket) override;
    void missingHandler(const QHttpServerRequest& request, QTcpSocket* socket) override;

private:
    static void reply(const QHttpServerRequest& request, QTcpSocket* socket, const QJsonObject& json,
                      QHttpServerResponder::StatusCode status);
    static void replyError(const QHttpServerRequest& request, QTcpSocket* socket, const QString& message,
                           QHttpServerResponder::StatusCode status);
    bool authorized(const QHttpServerRequest& request) const;
    void handleInfo(const QHttpServerRequest& request, QTcpSocket* socket);
    void handleSubmit(const QHttpServerRequest& request, QTcpSocket* socket);
    void handleListJobs(const QHttpServerRequest& request, QTcpSocket* socket);
    const RemoteJob* findJobOrReply(const QHttpServerRequest& request, QTcpSocket* socket, const QString& idText);
    void handleJob(const QHttpServerRequest& request, QTcpSocket* socket, const QString& idText);
    void handleFile(const QHttpServerRequest& request, QTcpSocket* socket, const QString& name);
    void handleHistory(const QHttpServerRequest& request, QTcpSocket* socket);
    void handleThumbnail(const QHttpServerRequest& request, QTcpSocket* socket, const QString& idText);
    void handleExtend(const QHttpServerRequest& request, QTcpSocket* socket);
    void acceptWebSockets();
    void broadcast(const char* type, const RemoteJob* job);
    /// Sends a step's preview to the clients that asked for previews, once per step; keeps its middle frame.
    void broadcastPreview(qint64 id, const PreviewFrames& frames);
    void connectSession();

    EngineSession* session_;
    ApiConfig config_;
    JobTable jobs_;
    quint16 port_ = 0;
    QString instance_;  ///< drawn at start: a client tells a restarted server (whose job ids start again) from this one
    QList<QWebSocket*> sockets_;  // owned (parented to this)
    QList<QWebSocket*> previewSockets_;  // those of sockets_ that asked for previews
    /// POST /api/extend requests waiting for the engine, by the prompt they sent (answered in order).
    std::multimap<QString, std::unique_ptr<PendingReply>> pendingExtends_;
};

}  // namespace wan::app
