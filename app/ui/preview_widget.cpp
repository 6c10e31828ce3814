#include "ui/preview_widget.h"

#include "ui/live_preview_view.h"

#include <QFileInfo>
#include <QLabel>
#include <QMediaPlayer>
#include <QStackedLayout>
#include <QUrl>
#include <QVBoxLayout>
#include <QVideoWidget>

namespace wan::app {

PreviewWidget::PreviewWidget(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* area = new QWidget(this);
    stack_ = new QStackedLayout(area);
    poster_ = new QLabel(area);
    poster_->setObjectName(QStringLiteral("previewPoster"));
    poster_->setAlignment(Qt::AlignCenter);
    poster_->setMinimumSize(160, 90);
    poster_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Ignored);
    poster_->setText(tr("The finished video plays here."));
    videoWidget_ = new QVideoWidget(area);
    videoWidget_->setObjectName(QStringLiteral("previewVideo"));
    videoWidget_->setAspectRatioMode(Qt::KeepAspectRatio);
    stack_->addWidget(poster_);
    stack_->addWidget(videoWidget_);
    live_ = new LivePreviewView(area);
    stack_->addWidget(live_);
    area->setStyleSheet(QStringLiteral("background: #101218; color: #9aa3b5;"));
    layout->addWidget(area, 1);
    caption_ = new QLabel(this);
    caption_->setObjectName(QStringLiteral("previewCaption"));
    caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    caption_->setWordWrap(true);
    layout->addWidget(caption_);

    player_ = new QMediaPlayer(this);
    player_->setVideoOutput(videoWidget_);
    player_->setLoops(QMediaPlayer::Infinite);
    connect(player_, &QMediaPlayer::mediaStatusChanged, this,
            [this](QMediaPlayer::MediaStatus s) { onMediaStatus(static_cast<int>(s)); });
    connect(player_, &QMediaPlayer::errorOccurred, this,
            [this](QMediaPlayer::Error, const QString& message) { onError(message); });
}

PreviewWidget::~PreviewWidget() {
    player_->stop();
}

bool PreviewWidget::isShowingPoster() const { return stack_->currentWidget() == poster_; }

bool PreviewWidget::isShowingLive() const { return stack_->currentWidget() == live_; }

void PreviewWidget::showLiveFrames(const wan::PreviewFrames& frames, int totalSteps) {
    if (!liveEnabled_ || frames.empty()) return;
    if (!isShowingLive()) {
        player_->stop();
        video_.clear();
        loaded_ = false;
        stack_->setCurrentWidget(live_);
    }
    live_->setFrames(frames, totalSteps);
    caption_->setText(tr("Sampling: step %1 of %2 (a rough preview; the video is decoded at the end)")
                          .arg(frames.step)
                          .arg(totalSteps));
}

void PreviewWidget::endLive() {
    if (isShowingLive()) clear();
}

void PreviewWidget::setLiveEnabled(bool enabled) {
    liveEnabled_ = enabled;
    if (!enabled) endLive();
}

QString PreviewWidget::captionText() const { return caption_->text(); }

void PreviewWidget::showVideo(const QString& videoPath, const QString& posterPath) {
    player_->stop();
    live_->clear();
    video_ = QFileInfo(videoPath).absoluteFilePath();
    loaded_ = false;
    reported_ = false;
    posterPixmap_ = posterPath.isEmpty() ? QPixmap() : QPixmap(posterPath);
    showPoster();
    caption_->setText(tr("Loading %1…").arg(QFileInfo(videoPath).fileName()));
    player_->setSource(QUrl::fromLocalFile(video_));
}

void PreviewWidget::clear() {
    player_->stop();
    live_->clear();
    player_->setSource(QUrl());
    video_.clear();
    loaded_ = false;
    posterPixmap_ = QPixmap();
    showPoster();
    poster_->setText(tr("The finished video plays here."));
    caption_->clear();
}

void PreviewWidget::showPoster() {
    stack_->setCurrentWidget(poster_);
    if (posterPixmap_.isNull()) {
        poster_->setPixmap(QPixmap());
        return;
    }
    poster_->setPixmap(posterPixmap_.scaled(poster_->size(), Qt::KeepAspectRatio, Qt::SmoothTransformation));
}

void PreviewWidget::resizeEvent(QResizeEvent* event) {
    QWidget::resizeEvent(event);
    if (isShowingPoster() && !posterPixmap_.isNull()) showPoster();
}

void PreviewWidget::onMediaStatus(int status) {
    const auto s = static_cast<QMediaPlayer::MediaStatus>(status);
    if (video_.isEmpty()) return;
    if ((s == QMediaPlayer::LoadedMedia || s == QMediaPlayer::BufferedMedia) && !loaded_) {
        loaded_ = true;
        stack_->setCurrentWidget(videoWidget_);
        caption_->setText(QFileInfo(video_).fileName());
        player_->play();
        emit loaded(video_);
    } else if (s == QMediaPlayer::InvalidMedia) {
        onError(player_->errorString().isEmpty() ? tr("the video cannot be played") : player_->errorString());
    }
}

void PreviewWidget::onError(const QString& message) {
    if (video_.isEmpty() || reported_) return;
    reported_ = true;
    loaded_ = false;
    showPoster();
    caption_->setText(tr("Cannot play %1: %2").arg(QFileInfo(video_).fileName(), message));
    emit failed(video_, message);
}

}  // namespace wan::app
