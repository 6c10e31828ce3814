#include "launch/saved_queue.h"

#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSaveFile>
#include <QSettings>

namespace wan::app {

QString defaultSavedQueuePath() {
    return QFileInfo(QSettings().fileName()).absoluteDir().filePath(QStringLiteral("queue.json"));
}

bool writeSavedQueue(const QString& path, const SavedQueue& queue, QString* error) {
    if (queue.jobs.empty()) {
        if (!QFile::exists(path) || QFile::remove(path)) return true;
        if (error) *error = QObject::tr("cannot remove %1").arg(path);
        return false;
    }
    QJsonArray jobs;
    for (const GenerationRequest& r : queue.jobs)
        jobs.append(QJsonDocument::fromJson(QByteArray::fromStdString(r.to_json())).object());
    QJsonObject root{{QStringLiteral("version"), 1},
                     {QStringLiteral("reason"), queue.reason == SavedQueue::Reason::Relaunch ? "relaunch" : "closed"},
                     {QStringLiteral("saved_at"), QDateTime::currentDateTimeUtc().toString(Qt::ISODate)},
                     {QStringLiteral("jobs"), jobs}};
    QDir().mkpath(QFileInfo(path).absolutePath());
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(QJsonDocument(root).toJson()) < 0 || !file.commit()) {
        if (error) *error = QObject::tr("cannot write %1: %2").arg(path, file.errorString());
        return false;
    }
    return true;
}

SavedQueue readSavedQueue(const QString& path, QString* warning) {
    SavedQueue out;
    QFile file(path);
    if (!file.exists()) return out;
    if (!file.open(QIODevice::ReadOnly)) {
        if (warning) *warning = QObject::tr("cannot read %1: %2").arg(path, file.errorString());
        return out;
    }
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(file.read(16 << 20), &parseError);
    if (!doc.isObject() || !doc.object().value(QStringLiteral("jobs")).isArray()) {
        if (warning)
            *warning = QObject::tr("%1: not a saved queue (expected a JSON object with \"jobs\"): %2")
                           .arg(path, parseError.errorString());
        return out;
    }
    const QJsonObject root = doc.object();
    if (root.value(QStringLiteral("reason")).toString() == QLatin1String("relaunch"))
        out.reason = SavedQueue::Reason::Relaunch;
    int skipped = 0;
    for (const QJsonValue& v : root.value(QStringLiteral("jobs")).toArray()) {
        try {
            const QByteArray json = QJsonDocument(v.toObject()).toJson(QJsonDocument::Compact);
            GenerationRequest r = GenerationRequest::from_json(json.toStdString());
            WAN_CHECK(!r.prompt.empty(), "no prompt");
            out.jobs.push_back(std::move(r));
        } catch (const std::exception&) {
            ++skipped;
        }
    }
    if (skipped > 0 && warning) *warning = QObject::tr("%1: %n job(s) could not be read", nullptr, skipped).arg(path);
    return out;
}

}  // namespace wan::app
