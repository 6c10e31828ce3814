// The video forming while it samples: the engine's per-step preview (one small RGB image per latent frame,
// see engine/preview) played as a looping animation, scaled to the view, with the step it shows. Every new
// step replaces the frames without restarting the loop, so motion stays visible while the picture sharpens.
#pragma once

#include "core/preview_frames.h"

#include <QImage>
#include <QVector>
#include <QWidget>

class QTimer;

namespace wan::app {

class LivePreviewView : public QWidget {
    Q_OBJECT
public:
    explicit LivePreviewView(QWidget* parent = nullptr);

    /// One frame of a preview as an image (RGB888, deep copy). `index` in [0, frames.frames).
    static QImage frameImage(const wan::PreviewFrames& frames, int index);

    /// Takes the frames of a new step; keeps the animation's position (modulo the new frame count).
    void setFrames(const wan::PreviewFrames& frames, int totalSteps = 0);
    void clear();

    int frameCount() const { return static_cast<int>(images_.size()); }
    int currentFrame() const { return current_; }
    int step() const { return step_; }
    QImage currentImage() const;
    /// Frames per second of the loop (latent frames stand for 4 video frames each; 8 fps reads as motion).
    void setFramesPerSecond(int fps);

signals:
    void frameShown(int index);

protected:
    void paintEvent(QPaintEvent* event) override;

private:
    void advance();

    QVector<QImage> images_;
    QTimer* timer_ = nullptr;
    int current_ = 0;
    int step_ = 0;
    int totalSteps_ = 0;
};

}  // namespace wan::app
