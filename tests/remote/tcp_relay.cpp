#include "tcp_relay.h"

#include <QDeadlineTimer>
#include <QHostAddress>
#include <QList>
#include <QMetaObject>
#include <QPointer>
#include <QTcpServer>
#include <QTcpSocket>

#include <atomic>

/// The relay's sockets, all on the relay's thread.
class RelayWorker : public QObject {
public:
    explicit RelayWorker(quint16 target) : target_(target) {}

    quint16 listen() {
        server_ = new QTcpServer(this);
        QObject::connect(server_, &QTcpServer::newConnection, this, [this] { accept(); });
        return server_->listen(QHostAddress::LocalHost, 0) ? server_->serverPort() : 0;
    }

    void cut() {
        cut_ = true;
        for (const Pair& p : std::as_const(pairs_)) {
            if (p.client) p.client->abort();
            if (p.server) p.server->abort();
            ++cutCount_;
        }
        pairs_.clear();
    }
    void stall() { stalled_ = true; }
    void restore() {
        cut_ = false;
        stalled_ = false;
        for (const Pair& p : std::as_const(pairs_)) {  // what was held goes through now
            if (!p.client || !p.server) continue;
            if (p.server->state() == QAbstractSocket::UnconnectedState) p.server->connectToHost(QHostAddress::LocalHost, target_);
            else pump(p.client, p.server);
        }
    }
    int cutCount() const { return cutCount_; }

private:
    struct Pair {
        QPointer<QTcpSocket> client, server;
    };

    /// Passes on what each side has sent and the other has not been given yet (nothing while stalled).
    void pump(QTcpSocket* client, QTcpSocket* server) {
        if (stalled_ || server->state() != QAbstractSocket::ConnectedState) return;
        if (client->bytesAvailable() > 0) server->write(client->readAll());
        if (server->bytesAvailable() > 0) client->write(server->readAll());
    }

    void accept() {
        while (QTcpSocket* client = server_->nextPendingConnection()) {
            client->setParent(this);
            if (cut_) {  // refused at once: the client sees the connection close, not a silent wait
                client->abort();
                client->deleteLater();
                continue;
            }
            auto* server = new QTcpSocket(this);
            pairs_.append(Pair{client, server});
            // Bytes that arrive before the server side is connected, or while stalled, wait in the socket's buffer.
            for (QTcpSocket* from : {client, server}) {
                QObject::connect(from, &QTcpSocket::readyRead, this, [this, client, server] { pump(client, server); });
            }
            QObject::connect(server, &QTcpSocket::connected, this, [this, client, server] { pump(client, server); });
            // Either side closing closes the other (after passing on what is left), and both are freed.
            auto close = [c = QPointer<QTcpSocket>(client), s = QPointer<QTcpSocket>(server)] {
                for (QTcpSocket* socket : {c.data(), s.data()})
                    if (socket) QObject::disconnect(socket, nullptr, nullptr, nullptr);  // once, and never again
                if (c && s && s->bytesAvailable() > 0 && c->state() == QAbstractSocket::ConnectedState)
                    c->write(s->readAll());
                for (QTcpSocket* socket : {c.data(), s.data()}) {
                    if (!socket) continue;
                    socket->disconnectFromHost();
                    socket->deleteLater();
                }
            };
            QObject::connect(client, &QTcpSocket::disconnected, this, close);
            QObject::connect(server, &QTcpSocket::disconnected, this, close);
            QObject::connect(server, &QTcpSocket::errorOccurred, this, close);
            if (!stalled_) server->connectToHost(QHostAddress::LocalHost, target_);  // else at restore()
        }
    }

    quint16 target_;
    QTcpServer* server_ = nullptr;
    QList<Pair> pairs_;
    bool cut_ = false;
    bool stalled_ = false;
    int cutCount_ = 0;
};

namespace {
constexpr int kCallTimeoutMs = 10000;

/// Runs `fn` on the worker's thread and waits for it, at most kCallTimeoutMs (then gives up; never hangs).
template <typename Fn>
void onRelayThread(RelayWorker* worker, Fn fn) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    QMetaObject::invokeMethod(worker, [fn, done] {
        fn();
        done->store(true);
    }, Qt::QueuedConnection);
    const QDeadlineTimer deadline(kCallTimeoutMs);
    while (!done->load() && !deadline.hasExpired()) QThread::msleep(5);
}
}  // namespace

TcpRelay::TcpRelay(quint16 target) {
    thread_.setObjectName(QStringLiteral("test-tcp-relay"));
    worker_ = new RelayWorker(target);
    worker_->moveToThread(&thread_);
    thread_.start();
    RelayWorker* w = worker_;
    quint16 port = 0;
    auto result = std::make_shared<std::atomic<int>>(0);
    onRelayThread(w, [w, result] { result->store(w->listen()); });
    port = static_cast<quint16>(result->load());
    port_ = port;
}

TcpRelay::~TcpRelay() {
    RelayWorker* w = worker_;
    onRelayThread(w, [w] { delete w; });  // its sockets go with it, on their thread
    thread_.quit();
    if (!thread_.wait(QDeadlineTimer(kCallTimeoutMs))) qWarning("TcpRelay: the relay thread did not stop");
}

void TcpRelay::cut() {
    RelayWorker* w = worker_;
    onRelayThread(w, [w] { w->cut(); });
}

void TcpRelay::stall() {
    RelayWorker* w = worker_;
    onRelayThread(w, [w] { w->stall(); });
}

void TcpRelay::restore() {
    RelayWorker* w = worker_;
    onRelayThread(w, [w] { w->restore(); });
}

int TcpRelay::connectionsCut() const {
    RelayWorker* w = worker_;
    auto count = std::make_shared<std::atomic<int>>(0);
    onRelayThread(w, [w, count] { count->store(w->cutCount()); });
    return count->load();
}
