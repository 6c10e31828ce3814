// `--connect`: the server's history in the window. On every (re)connection the connected backend asks the
// server for its finished videos (GET /api/history) and copies the ones missing here into the window's output
// folder, which the window's history watches: jobs that finished while the window was away (or on a restarted
// server) appear, and a file already here is never fetched again, so nothing is listed twice.
// Lives on the backend's network thread; asynchronous (no nested event loop).
#pragma once

#include <QByteArray>
#include <QHash>
#include <QObject>
#include <QString>
#include <QStringList>

QT_BEGIN_NAMESPACE
class QNetworkAccessManager;
class QNetworkReply;
QT_END_NAMESPACE

namespace wan::app {

class HistorySync : public QObject {
    Q_OBJECT
public:
    /// `baseUrl`: "http://HOST:PORT"; `limit`: how many of the server's newest videos are considered.
    HistorySync(QNetworkAccessManager* nam, QString baseUrl, QByteArray token, int limit, QObject* parent = nullptr);

    /// The folder copies go to (thread-safe to call through a queued invocation only). Empty: no copying.
    void setFolder(const QString& folder) { folder_ = folder; }
    /// Lists and copies once; a call while a run is under way makes one more run after it.
    void run();

signals:
    /// A run ended: `copied` videos are new here; `error` is empty unless the list could not be read.
    void finished(int copied, const QString& error);

private:
    void onList(QNetworkReply* reply);
    void fetchNext();
    void onFile(QNetworkReply* reply, const QString& name);
    void end(const QString& error);
    QNetworkReply* get(const QString& path);

    QNetworkAccessManager* nam_;
    QString baseUrl_;
    QByteArray token_;
    int limit_;
    QString folder_;
    QString runFolder_;     // folder_ when the run began
    bool running_ = false;
    bool again_ = false;
    QStringList pending_;   // file names still to fetch, each record's JSON after its video and poster
    QHash<QString, QString> videoOf_;  // record JSON → its video (the JSON is only copied beside its video)
    int copied_ = 0;
};

}  // namespace wan::app
