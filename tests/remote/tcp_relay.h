// A TCP relay for tests: a network drop without a server restart. It listens on 127.0.0.1 (any free port) and
// forwards each connection to 127.0.0.1:target. cut() closes every connection through it and refuses new ones
// (accepted and closed at once, so that a client fails fast instead of waiting); stall() keeps every connection
// open but passes no byte either way, new ones included (a link gone silent without a FIN: a laptop asleep, a
// cable pulled); restore() forwards again, what was held included.
// Runs on a thread of its own, so it keeps forwarding while the test thread blocks, and every call into it
// returns within a bounded time (no call can hang a test).
#pragma once

#include <QThread>
#include <QtGlobal>

class RelayWorker;

class TcpRelay {
public:
    explicit TcpRelay(quint16 target);
    ~TcpRelay();
    TcpRelay(const TcpRelay&) = delete;
    TcpRelay& operator=(const TcpRelay&) = delete;

    /// The port clients connect to; 0 when it could not listen.
    quint16 port() const { return port_; }
    void cut();
    void stall();
    void restore();
    /// Connections that cut() closed, in all.
    int connectionsCut() const;

private:
    QThread thread_;
    RelayWorker* worker_ = nullptr;  // lives on thread_
    quint16 port_ = 0;
};
