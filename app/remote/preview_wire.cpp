#include "remote/preview_wire.h"

#include <QBuffer>

#include <algorithm>
#include <cstring>

namespace wan::app {

namespace {
QString key(const char* name) { return QString::fromLatin1(name); }
}  // namespace

QJsonObject previewMessage(int64_t jobId, const PreviewFrames& frames) {
    // One RGB888 image, frames stacked vertically: PNG keeps every pixel, and compresses the small flat frames well.
    QImage strip(frames.width, frames.height * frames.frames, QImage::Format_RGB888);
    const size_t rowBytes = static_cast<size_t>(frames.width) * 3;
    for (int y = 0; y < strip.height(); ++y)
        std::memcpy(strip.scanLine(y), frames.rgb.data() + static_cast<size_t>(y) * rowBytes, rowBytes);
    QByteArray png;
    QBuffer buffer(&png);
    buffer.open(QIODevice::WriteOnly);
    strip.save(&buffer, "PNG");
    return QJsonObject{{key("type"), key("preview")},
                       {key("job"), static_cast<qint64>(jobId)},
                       {key("step"), frames.step},
                       {key("frames"), frames.frames},
                       {key("height"), frames.height},
                       {key("width"), frames.width},
                       {key("png"), QString::fromLatin1(png.toBase64())}};
}

bool previewFromMessage(const QJsonObject& message, PreviewFrames* frames, QString* error) {
    PreviewFrames f;
    f.step = message.value(key("step")).toInt();
    f.frames = message.value(key("frames")).toInt();
    f.height = message.value(key("height")).toInt();
    f.width = message.value(key("width")).toInt();
    if (f.frames <= 0 || f.height <= 0 || f.width <= 0 || f.frames > 1024 || f.height > 4096 || f.width > 4096) {
        *error = QStringLiteral("preview message: expected positive \"frames\", \"height\" and \"width\"");
        return false;
    }
    const QByteArray png = QByteArray::fromBase64(message.value(key("png")).toString().toLatin1());
    const QImage image = QImage::fromData(png, "PNG").convertToFormat(QImage::Format_RGB888);
    if (image.width() != f.width || image.height() != f.height * f.frames) {
        *error = QStringLiteral("preview message: the image is %1×%2, expected %3×%4 (%5 frames of %3×%6)")
                     .arg(image.width()).arg(image.height()).arg(f.width).arg(f.height * f.frames).arg(f.frames)
                     .arg(f.height);
        return false;
    }
    const size_t rowBytes = static_cast<size_t>(f.width) * 3;
    f.rgb.resize(rowBytes * static_cast<size_t>(image.height()));
    for (int y = 0; y < image.height(); ++y)
        std::memcpy(f.rgb.data() + static_cast<size_t>(y) * rowBytes, image.constScanLine(y), rowBytes);
    *frames = std::move(f);
    return true;
}

QImage previewMiddleFrame(const PreviewFrames& frames) {
    if (frames.empty()) return {};
    const QImage view(frames.frame(frames.frames / 2), frames.width, frames.height, frames.width * 3,
                      QImage::Format_RGB888);
    return view.copy();  // deep: the frames may go away
}

QByteArray thumbnailJpeg(const QImage& image, int maxSide, int minSide) {
    QImage scaled = image;
    const int longer = std::max(image.width(), image.height());
    if (longer > maxSide || (minSide > 0 && longer < minSide)) {
        const int side = longer > maxSide ? maxSide : minSide;
        scaled = image.scaled(side, side, Qt::KeepAspectRatio, Qt::SmoothTransformation);
    }
    QByteArray jpeg;
    QBuffer buffer(&jpeg);
    buffer.open(QIODevice::WriteOnly);
    scaled.convertToFormat(QImage::Format_RGB888).save(&buffer, "JPEG", 85);
    return jpeg;
}

}  // namespace wan::app
