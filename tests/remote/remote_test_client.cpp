#include "remote_test_client.h"

#include <QElapsedTimer>
#include <QJsonDocument>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QRegularExpression>
#include <QTcpSocket>
#include <QTest>

#include <signal.h>
#include <sys/types.h>

QJsonObject HttpReply::json() const { return QJsonDocument::fromJson(body).object(); }

HttpReply httpRequest(QNetworkAccessManager& nam, const QByteArray& verb, const QString& url, const QByteArray& body,
                      const QByteArray& token, const QList<QPair<QByteArray, QByteArray>>& headers) {
    QNetworkRequest request{QUrl(url)};
    if (!body.isEmpty()) request.setHeader(QNetworkRequest::ContentTypeHeader, QByteArrayLiteral("application/json"));
    if (!token.isEmpty()) request.setRawHeader("Authorization", "Bearer " + token);
    for (const auto& [name, value] : headers) request.setRawHeader(name, value);
    QNetworkReply* reply = nam.sendCustomRequest(request, verb, body);
    if (!QTest::qWaitFor([reply] { return reply->isFinished(); }, 60000)) reply->abort();  // no answer: status 0
    HttpReply r;
    r.status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    r.body = reply->readAll();
    reply->deleteLater();
    return r;
}

HttpReply rawRequest(quint16 port, const QByteArray& raw) {
    QTcpSocket socket;
    socket.connectToHost(QStringLiteral("127.0.0.1"), port);
    HttpReply r;
    if (!socket.waitForConnected(10000)) return r;
    socket.write(raw);
    QByteArray data;
    QElapsedTimer timer;
    timer.start();
    qsizetype headerEnd = -1;
    qint64 length = -1;
    while (timer.elapsed() < 30000) {
        if (headerEnd < 0 && (headerEnd = data.indexOf("\r\n\r\n")) >= 0) {
            const auto m = QRegularExpression(QStringLiteral("(?i)content-length:\\s*(\\d+)"))
                               .match(QString::fromLatin1(data.left(headerEnd)));
            length = m.hasMatch() ? m.captured(1).toLongLong() : 0;
        }
        if (headerEnd >= 0 && data.size() >= headerEnd + 4 + length) break;
        if (socket.state() != QAbstractSocket::ConnectedState && socket.bytesAvailable() == 0) break;
        socket.waitForReadyRead(200);
        data += socket.readAll();
    }
    if (headerEnd < 0) return r;
    const QList<QByteArray> statusLine = data.left(data.indexOf("\r\n")).split(' ');
    r.status = statusLine.size() > 1 ? statusLine[1].toInt() : 0;
    r.body = data.mid(headerEnd + 4, length);
    return r;
}

EngineProcess::~EngineProcess() {
    if (process_ && process_->state() != QProcess::NotRunning) stop();
}

bool EngineProcess::start(const QStringList& launcher, const QStringList& args, QString* error,
                          const QStringList& extraEnv) {
    process_ = std::make_unique<QProcess>();
    process_->setProcessChannelMode(QProcess::MergedChannels);
    QStringList env = QProcess::systemEnvironment();
    env << QStringLiteral("OMP_NUM_THREADS=1") << extraEnv;
    process_->setEnvironment(env);
    const QString exe = qEnvironmentVariable("WANSTUDIO");
    QStringList command = launcher;
    command << exe << args;
    const QString program = command.takeFirst();
    process_->start(program, command);
    const QRegularExpression listening(QStringLiteral("listening on http://[^\\s]*:(\\d+) \\(pid (\\d+)"));
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < 60000) {
        process_->waitForReadyRead(200);
        out_ += process_->readAll();
        const auto m = listening.match(QString::fromUtf8(out_));
        if (m.hasMatch()) {
            port_ = static_cast<quint16>(m.captured(1).toUInt());
            headPid_ = m.captured(2).toLongLong();
            return true;
        }
        if (process_->state() == QProcess::NotRunning) break;
    }
    *error = QStringLiteral("no \"listening on\" line from %1 %2:\n%3").arg(program, command.join(u' '), output());
    return false;
}

bool EngineProcess::waitReady(int timeoutMs, const QByteArray& token) {
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < timeoutMs) {
        const HttpReply r = httpRequest(nam_, "GET", url(QStringLiteral("/api/info")), {}, token);
        const QString state = r.json().value(QStringLiteral("engine_state")).toString();
        if (state == QLatin1String("ready")) return true;
        if (state == QLatin1String("failed") || process_->state() == QProcess::NotRunning) return false;
        QTest::qWait(200);
    }
    return false;
}

int EngineProcess::stop() {
    if (!process_) return -1;
    if (headPid_ > 0) ::kill(static_cast<pid_t>(headPid_), SIGTERM);
    else process_->terminate();
    if (!process_->waitForFinished(60000)) {
        process_->kill();
        process_->waitForFinished(10000);
        return -1;
    }
    out_ += process_->readAll();
    return process_->exitStatus() == QProcess::NormalExit ? process_->exitCode() : -1;
}

void EngineProcess::kill() {
    if (!process_) return;
    process_->kill();
    process_->waitForFinished(30000);
}

QString EngineProcess::url(const QString& path) const {
    return QStringLiteral("http://127.0.0.1:%1%2").arg(port_).arg(path);
}

QString EngineProcess::output() const {
    if (process_) out_ += process_->readAll();
    return QString::fromUtf8(out_);
}
