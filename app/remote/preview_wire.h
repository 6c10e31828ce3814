// The live preview and thumbnails as they cross the wire between `--listen` and `--connect`.
// A preview (engine/preview: one small RGB image per latent frame) travels as one lossless PNG with the frames
// stacked top to bottom, base64 in a /api/events message, so the connected window animates exactly the
// pixels a local window would. Thumbnails are small JPEGs of one frame.
#pragma once

#include "core/preview_frames.h"

#include <QByteArray>
#include <QImage>
#include <QJsonObject>
#include <QString>

#include <cstdint>

namespace wan::app {

/// {"type": "preview", "job": id, "step", "frames", "height", "width", "png": base64 of the stacked frames}.
QJsonObject previewMessage(int64_t jobId, const PreviewFrames& frames);

/// The frames of a previewMessage(); false (and `error` set) when a field is missing or the image does not
/// match the sizes it declares.
bool previewFromMessage(const QJsonObject& message, PreviewFrames* frames, QString* error);

/// The middle latent frame as an image (the one that says most about the whole clip). Null for an empty one.
QImage previewMiddleFrame(const PreviewFrames& frames);

/// `image` as JPEG bytes, shrunk to fit `maxSide` × `maxSide`, or enlarged to `minSide` on its longer side
/// when smaller (a preview frame is 1/8 of the video).
QByteArray thumbnailJpeg(const QImage& image, int maxSide, int minSide = 0);

}  // namespace wan::app
