// Test helpers for the remote engine: a `wanstudio --listen` child process (optionally under mpirun) and a
// blocking HTTP client over QNetworkAccessManager or a raw socket (for requests Qt's client would normalise).
#pragma once

#include <QByteArray>
#include <QJsonObject>
#include <QList>
#include <QPair>
#include <QNetworkAccessManager>
#include <QProcess>
#include <QString>
#include <QStringList>

#include <memory>

struct HttpReply {
    int status = 0;  ///< 0 when no answer came
    QByteArray body;
    QJsonObject json() const;
    QString error() const { return json().value(QStringLiteral("error")).toString(); }
};

/// Blocking request with QNetworkAccessManager; `token` adds "Authorization: Bearer token"; `headers` are sent
/// as they are.
HttpReply httpRequest(QNetworkAccessManager& nam, const QByteArray& verb, const QString& url,
                      const QByteArray& body = {}, const QByteArray& token = {},
                      const QList<QPair<QByteArray, QByteArray>>& headers = {});
/// Sends `raw` bytes as they are on a new connection and reads one response.
HttpReply rawRequest(quint16 port, const QByteArray& raw);

class EngineProcess {
public:
    ~EngineProcess();
    /// Starts `[launcher...] wanstudio args...` and waits for its "listening on" line. Returns false (and
    /// sets `error`) when it exits or stays silent for a minute.
    bool start(const QStringList& launcher, const QStringList& args, QString* error,
               const QStringList& extraEnv = {});
    /// Polls GET /api/info until engine_state is "ready" (false on "failed" or after the timeout).
    bool waitReady(int timeoutMs, const QByteArray& token = {});
    /// SIGTERM to the head rank (the pid its "listening on" line names), then waits for the launcher; returns the exit code (-1 when it had to be killed).
    int stop();
    /// SIGKILL (a crash or a lost machine, as the clients see it).
    void kill();
    quint16 port() const { return port_; }
    QString url(const QString& path) const;
    QString output() const;  ///< stdout + stderr so far (for failure messages)

private:
    std::unique_ptr<QProcess> process_;
    QNetworkAccessManager nam_;
    quint16 port_ = 0;
    qint64 headPid_ = 0;
    mutable QByteArray out_;
};
