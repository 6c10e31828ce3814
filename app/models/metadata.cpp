#include "models/metadata.h"

#include <QJsonDocument>
#include <QJsonObject>

namespace wan::app {

QByteArray metadataJson(const GenerationRequest& request, const GenerationResult& result) {
    QJsonObject merged = QJsonDocument::fromJson(QByteArray::fromStdString(request.to_json())).object();
    const QJsonObject res = QJsonDocument::fromJson(QByteArray::fromStdString(result.to_json())).object();
    for (auto it = res.begin(); it != res.end(); ++it) merged.insert(it.key(), it.value());
    return QJsonDocument(merged).toJson(QJsonDocument::Indented);
}

GenerationMetadata parseMetadata(const QByteArray& json, const QString& what) {
    QJsonParseError error{};
    QJsonDocument doc = QJsonDocument::fromJson(json, &error);
    const std::string name = what.toStdString();
    WAN_CHECK(error.error == QJsonParseError::NoError, "%s: not valid JSON (%s at offset %d)", name.c_str(),
              error.errorString().toStdString().c_str(), error.offset);
    WAN_CHECK(doc.isObject(), "%s: expected a JSON object", name.c_str());
    WAN_CHECK(doc.object().contains(QStringLiteral("prompt")), "%s: no \"prompt\" field (not a generation record)",
              name.c_str());
    const std::string text = json.toStdString();
    GenerationMetadata meta;
    try {
        meta.request = GenerationRequest::from_json(text);
        meta.result = GenerationResult::from_json(text);
    } catch (const Error& e) {
        WAN_THROW("%s: %s", name.c_str(), e.what());
    }
    meta.hasResult = doc.object().contains(QStringLiteral("status"));
    if (!meta.hasResult) meta.result.status = JobStatus::Ok;  // a record without status describes a finished video
    return meta;
}

}  // namespace wan::app
