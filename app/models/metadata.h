// The JSON written beside each video: the GenerationRequest fields (GenerationRequest::to_json) plus the
// result fields (GenerationResult::to_json) in one flat object. Read by the history, written by fakes/tests.
#pragma once

#include "core/core.h"

#include <QByteArray>
#include <QString>

namespace wan::app {

struct GenerationMetadata {
    GenerationRequest request;
    GenerationResult result;
    bool hasResult = false;  ///< the JSON carried a "status" field
};

/// One JSON object: request keys, then result keys (the result's job_id wins; both are the same id).
QByteArray metadataJson(const GenerationRequest& request, const GenerationResult& result);
/// Parses what metadataJson() writes (or the engine's equivalent). Throws wan::Error naming the file
/// (`what`) when the JSON is malformed or has no "prompt".
GenerationMetadata parseMetadata(const QByteArray& json, const QString& what);

}  // namespace wan::app
