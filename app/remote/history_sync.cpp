#include "remote/history_sync.h"

#include "remote/api_server.h"  // isPlainFileName

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QSaveFile>
#include <QUrl>

namespace wan::app {

namespace {
constexpr int kTransferTimeoutMs = 60000;
}  // namespace

HistorySync::HistorySync(QNetworkAccessManager* nam, QString baseUrl, QByteArray token, int limit, QObject* parent)
    : QObject(parent), nam_(nam), baseUrl_(std::move(baseUrl)), token_(std::move(token)), limit_(limit) {}

QNetworkReply* HistorySync::get(const QString& path) {
    QNetworkRequest request(QUrl(baseUrl_ + path));
    if (!token_.isEmpty()) request.setRawHeader("Authorization", "Bearer " + token_);
    request.setTransferTimeout(kTransferTimeoutMs);
    return nam_->get(request);
}

void HistorySync::run() {
    if (folder_.isEmpty()) return;
    if (running_) {
        again_ = true;
        return;
    }
    running_ = true;
    copied_ = 0;
    pending_.clear();
    videoOf_.clear();
    runFolder_ = folder_;
    QNetworkReply* reply = get(QStringLiteral("/api/history?limit=%1").arg(limit_));
    connect(reply, &QNetworkReply::finished, this, [this, reply] { onList(reply); });
}

void HistorySync::onList(QNetworkReply* reply) {
    reply->deleteLater();
    const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    if (status != 200) {
        end(QStringLiteral("GET /api/history: %1").arg(status ? QStringLiteral("HTTP %1").arg(status)
                                                              : reply->errorString()));
        return;
    }
    const QJsonArray list = QJsonDocument::fromJson(reply->readAll()).object().value(QStringLiteral("history")).toArray();
    const QDir dir(runFolder_);
    for (qsizetype i = list.size() - 1; i >= 0; --i) {  // oldest first, so the newest is listed last
        const QJsonObject e = list.at(i).toObject();
        const QString video = e.value(QStringLiteral("video")).toString();
        const QString json = e.value(QStringLiteral("metadata")).toString();
        const QString poster = e.value(QStringLiteral("poster")).toString();
        if (!isPlainFileName(video) || !isPlainFileName(json)) continue;
        if (QFileInfo::exists(dir.filePath(json))) continue;  // here already (fetched by its job, or before)
        if (!QFileInfo::exists(dir.filePath(video))) pending_ << video;
        if (isPlainFileName(poster) && !QFileInfo::exists(dir.filePath(poster))) pending_ << poster;
        pending_ << json;  // last: the history lists a record once its JSON is here
        videoOf_.insert(json, video);
    }
    QDir().mkpath(runFolder_);
    fetchNext();
}

void HistorySync::fetchNext() {
    if (pending_.isEmpty()) {
        end({});
        return;
    }
    const QString name = pending_.takeFirst();
    if (videoOf_.contains(name) && !QFileInfo::exists(QDir(runFolder_).filePath(videoOf_.value(name)))) {
        fetchNext();  // its video could not be fetched: no record without a video (the next run tries again)
        return;
    }
    QNetworkReply* reply = get(QStringLiteral("/api/files/") + QString::fromUtf8(QUrl::toPercentEncoding(name)));
    connect(reply, &QNetworkReply::finished, this, [this, reply, name] { onFile(reply, name); });
}

void HistorySync::onFile(QNetworkReply* reply, const QString& name) {
    reply->deleteLater();
    if (reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt() == 200) {
        QSaveFile out(QDir(runFolder_).filePath(name));  // written aside, renamed when whole
        if (out.open(QIODevice::WriteOnly) && out.write(reply->readAll()) >= 0 && out.commit() &&
            name.endsWith(QLatin1String(".json")))
            ++copied_;
    }
    fetchNext();
}

void HistorySync::end(const QString& error) {
    running_ = false;
    emit finished(copied_, error);
    if (again_) {
        again_ = false;
        run();
    }
}

}  // namespace wan::app
