// The live preview in the window: preview frames from the engine become images with the right pixels, play
// as a loop, follow each new step, give way to the finished video, and can be switched off.
#include "app_test_support.h"
#include "ui/live_preview_view.h"
#include "ui/preview_widget.h"

#include <QSignalSpy>
#include <QtTest>

using wan::app::LivePreviewView;
using wan::app::PreviewWidget;

namespace {

// `frames` frames of 2×3 pixels; pixel (y, x) of frame f has colour (f, 10·y + x, 200).
wan::PreviewFrames makeFrames(int frames, int step) {
    wan::PreviewFrames p;
    p.frames = frames;
    p.height = 2;
    p.width = 3;
    p.step = step;
    for (int f = 0; f < frames; ++f)
        for (int y = 0; y < 2; ++y)
            for (int x = 0; x < 3; ++x) {
                p.rgb.push_back(static_cast<uint8_t>(f));
                p.rgb.push_back(static_cast<uint8_t>(10 * y + x));
                p.rgb.push_back(200);
            }
    return p;
}

}  // namespace

class TestLivePreview : public QObject {
    Q_OBJECT
private slots:
    void frameImageKeepsPixels() {
        const auto frames = makeFrames(3, 1);
        const QImage img = LivePreviewView::frameImage(frames, 2);
        QCOMPARE(img.size(), QSize(3, 2));
        QCOMPARE(img.pixelColor(2, 1), QColor(2, 12, 200));
        QCOMPARE(img.pixelColor(0, 0), QColor(2, 0, 200));
        QVERIFY(LivePreviewView::frameImage(frames, 3).isNull());
    }

    void loopsThroughTheFrames() {
        LivePreviewView view;
        view.setFramesPerSecond(100);
        view.setFrames(makeFrames(4, 1), 10);
        QCOMPARE(view.frameCount(), 4);
        QSignalSpy shown(&view, &LivePreviewView::frameShown);
        QTRY_VERIFY(shown.count() >= 5);  // went round the loop at least once
        QVERIFY(view.currentFrame() >= 0 && view.currentFrame() < 4);
    }

    void newStepReplacesFrames() {
        LivePreviewView view;
        view.setFrames(makeFrames(4, 1), 10);
        view.setFrames(makeFrames(4, 2), 10);
        QCOMPARE(view.step(), 2);
        QCOMPARE(view.frameCount(), 4);
        view.setFrames(makeFrames(1, 3), 10);  // one frame: a still, no timer
        QCOMPARE(view.currentFrame(), 0);
        QCOMPARE(view.currentImage().pixelColor(1, 0), QColor(0, 1, 200));
    }

    void previewWidgetShowsLiveThenVideo() {
        PreviewWidget w;
        w.resize(320, 200);
        w.show();
        w.showLiveFrames(makeFrames(3, 5), 8);
        QVERIFY(w.isShowingLive());
        QVERIFY(w.captionText().contains(QStringLiteral("step 5 of 8")));
        QCOMPARE(w.liveView()->step(), 5);
        w.showVideo(QStringLiteral("/nonexistent/video.mp4"), QString());
        QVERIFY(!w.isShowingLive());
        QCOMPARE(w.liveView()->frameCount(), 0);
    }

    void endLiveAndOffSwitch() {
        PreviewWidget w;
        w.showLiveFrames(makeFrames(2, 1), 4);
        w.endLive();  // the job failed or was cancelled
        QVERIFY(!w.isShowingLive());
        w.setLiveEnabled(false);
        w.showLiveFrames(makeFrames(2, 2), 4);
        QVERIFY(!w.isShowingLive());
        w.setLiveEnabled(true);
        w.showLiveFrames(makeFrames(2, 3), 4);
        QVERIFY(w.isShowingLive());
    }
};

QTEST_MAIN(TestLivePreview)
#include "test_app_live_preview.moc"
