// The finished video, playing in a loop (QMediaPlayer + QVideoWidget). The PNG poster is shown while the
// video loads, and stays when it cannot be played.
#pragma once

#include "core/preview_frames.h"

#include <QPixmap>
#include <QString>
#include <QWidget>

class QLabel;
class QMediaPlayer;
class QStackedLayout;
class QVideoWidget;

namespace wan::app {
class LivePreviewView;
}

namespace wan::app {

class PreviewWidget : public QWidget {
    Q_OBJECT
public:
    explicit PreviewWidget(QWidget* parent = nullptr);
    ~PreviewWidget() override;

    QString currentVideo() const { return video_; }
    /// True once the current video has loaded (previewLoaded was emitted for it).
    bool isVideoLoaded() const { return loaded_; }
    /// True while the poster (not the video) is on screen.
    bool isShowingPoster() const;
    /// True while the live preview of a running job is on screen.
    bool isShowingLive() const;
    LivePreviewView* liveView() const { return live_; }
    QString captionText() const;

public slots:
    /// Shows the poster at once, then loads and loops the video.
    void showVideo(const QString& videoPath, const QString& posterPath);
    void clear();
    /// Shows the video forming: the latest step's preview frames, looping (replaces the finished video until
    /// the next showVideo()). Ignored while live previews are switched off.
    void showLiveFrames(const wan::PreviewFrames& frames, int totalSteps);
    /// Leaves the live preview (the job ended without a video: failed or cancelled).
    void endLive();
    void setLiveEnabled(bool enabled);

signals:
    void loaded(const QString& videoPath);
    void failed(const QString& videoPath, const QString& error);

protected:
    void resizeEvent(QResizeEvent* event) override;

private:
    void showPoster();
    void onMediaStatus(int status);
    void onError(const QString& message);

    QStackedLayout* stack_ = nullptr;
    QLabel* poster_ = nullptr;
    QVideoWidget* videoWidget_ = nullptr;
    QMediaPlayer* player_ = nullptr;
    QLabel* caption_ = nullptr;
    LivePreviewView* live_ = nullptr;
    bool liveEnabled_ = true;
    QPixmap posterPixmap_;
    QString video_;
    bool loaded_ = false;
    bool reported_ = false;
};

}  // namespace wan::app
