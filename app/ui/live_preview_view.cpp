#include "ui/live_preview_view.h"

#include <QPainter>
#include <QTimer>

namespace wan::app {

LivePreviewView::LivePreviewView(QWidget* parent) : QWidget(parent) {
    setObjectName(QStringLiteral("livePreview"));
    setMinimumSize(160, 90);
    setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Ignored);
    timer_ = new QTimer(this);
    connect(timer_, &QTimer::timeout, this, &LivePreviewView::advance);
    setFramesPerSecond(8);
}

QImage LivePreviewView::frameImage(const wan::PreviewFrames& frames, int index) {
    if (frames.empty() || index < 0 || index >= frames.frames) return {};
    const QImage view(frames.frame(index), frames.width, frames.height, frames.width * 3, QImage::Format_RGB888);
    return view.copy();  // the view borrows the engine's buffer; the copy owns its pixels
}

void LivePreviewView::setFrames(const wan::PreviewFrames& frames, int totalSteps) {
    QVector<QImage> images;
    images.reserve(frames.frames);
    for (int i = 0; i < frames.frames; ++i) images.push_back(frameImage(frames, i));
    images_ = std::move(images);
    step_ = frames.step;
    totalSteps_ = totalSteps;
    current_ = images_.isEmpty() ? 0 : current_ % static_cast<int>(images_.size());
    if (images_.size() > 1 && !timer_->isActive()) timer_->start();
    if (images_.size() <= 1) timer_->stop();
    update();
}

void LivePreviewView::clear() {
    timer_->stop();
    images_.clear();
    current_ = step_ = totalSteps_ = 0;
    update();
}

QImage LivePreviewView::currentImage() const {
    return images_.isEmpty() ? QImage() : images_.at(current_);
}

void LivePreviewView::setFramesPerSecond(int fps) {
    timer_->setInterval(1000 / std::max(1, fps));
}

void LivePreviewView::advance() {
    if (images_.isEmpty()) return;
    current_ = (current_ + 1) % static_cast<int>(images_.size());
    update();
    emit frameShown(current_);
}

void LivePreviewView::paintEvent(QPaintEvent*) {
    QPainter p(this);
    p.fillRect(rect(), QColor(0x10, 0x12, 0x18));
    if (images_.isEmpty()) return;
    const QImage& img = images_.at(current_);
    // Scale the 1/8-resolution frame up to the view, keeping its aspect; smooth, since a preview is blurry anyway.
    QSize target = img.size().scaled(size(), Qt::KeepAspectRatio);
    const QRect box(QPoint((width() - target.width()) / 2, (height() - target.height()) / 2), target);
    p.setRenderHint(QPainter::SmoothPixmapTransform);
    p.drawImage(box, img);
    const QString label = totalSteps_ > 0 ? tr("Preview · step %1 of %2").arg(step_).arg(totalSteps_)
                                          : tr("Preview · step %1").arg(step_);
    p.setPen(QColor(0xe0, 0xe4, 0xec));
    p.drawText(rect().adjusted(8, 6, -8, -6), Qt::AlignLeft | Qt::AlignTop, label);
}

}  // namespace wan::app
