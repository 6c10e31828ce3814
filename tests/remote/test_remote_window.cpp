// The window with its engine on the other side of `--connect` (here loopback): a `wanstudio --listen` child
// process on the demo checkpoint, and the unchanged MainWindow + EngineSession over the remote backend,
// offscreen. Generate, then the fetched video is on local disk, listed, and previewed; the status bar says
// where the engine runs.
#include "remote_test_client.h"

#include "cli/options.h"
#include "models/history_model.h"
#include "models/job_list_model.h"
#include "remote/remote_backend.h"
#include "session/engine_session.h"
#include "session/metatypes.h"
#include "settings/settings.h"
#include "ui/main_window.h"
#include "ui/parameters_panel.h"
#include "ui/preview_widget.h"
#include "video/video.h"

#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

using namespace wan;
using namespace wan::app;

class TestRemoteWindow : public QObject {
    Q_OBJECT
private slots:
    void windowGeneratesThroughTheRemoteEngine();

private:
    QTemporaryDir dir_;
};

void TestRemoteWindow::windowGeneratesThroughTheRemoteEngine() {
    QVERIFY(dir_.isValid());
    EngineProcess server;
    QString error;
    QVERIFY2(server.start({}, {QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--device"),
                               QStringLiteral("cpu"), QStringLiteral("--output-dir"), dir_.filePath(QStringLiteral("server"))},
                          &error),
             qPrintable(error));

    AppOptions options;
    const QString out = dir_.filePath(QStringLiteral("local"));
    options.engine.output_dir = out.toStdString();
    options.connectAddress = QStringLiteral("127.0.0.1:%1").arg(server.port()).toStdString();
    registerMetaTypes();
    Settings settings(dir_.filePath(QStringLiteral("settings.ini")));
    EngineSession session(makeRemoteBackend(parseRemoteEndpoint(options.connectAddress)));
    MainWindow window(&session, &settings, options);
    window.setConfirmOnClose(false);
    window.show();
    session.start();
    QTRY_VERIFY_WITH_TIMEOUT(window.generateButton()->isEnabled(), 180000);
    QVERIFY2(window.modelLabel()->text().contains(QString::fromStdString(options.connectAddress)),
             qPrintable(window.modelLabel()->text()));

    ParametersPanel* p = window.parametersPanel();
    p->promptEdit()->clear();
    QTest::keyClicks(p->promptEdit(), QStringLiteral("a fox running through fresh snow"));
    const int size = p->sizeCombo()->findData(QStringLiteral("128*128"));
    QVERIFY2(size >= 0, "the demo checkpoint offers 128*128 (sizes come from the server's /api/info)");
    p->sizeCombo()->setCurrentIndex(size);
    p->framesSpin()->setValue(5);
    p->stepsSpin()->setValue(3);

    QSignalSpy progress(&session, &EngineSession::progress);
    QSignalSpy finished(&session, &EngineSession::finished);
    QSignalSpy failed(&session, &EngineSession::failed);
    QSignalSpy previewLoaded(&window, &MainWindow::previewLoaded);
    QSignalSpy previewFailed(&window, &MainWindow::previewFailed);
    QTest::mouseClick(window.generateButton(), Qt::LeftButton);
    QVERIFY(QTest::qWaitFor([&] { return finished.count() + failed.count() > 0; }, 300000));
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.at(0).at(1).toString()));
    QVERIFY(progress.count() > 0);
    const auto result = finished.at(0).at(1).value<GenerationResult>();
    QVERIFY2(result.status == JobStatus::Ok, result.message.c_str());
    QVERIFY(result.seed_used >= 0);
    for (const std::string& path : {result.video_path, result.poster_path, result.json_path}) {
        const QFileInfo f(QString::fromStdString(path));
        QVERIFY2(f.isFile() && f.size() > 0, path.c_str());
        QCOMPARE(f.absolutePath(), out);  // fetched into the window's own output folder
    }
    const video::VideoInfo info = video::probe_video(result.video_path);
    QCOMPARE(info.frames, int64_t(5));
    QCOMPARE(info.width, 128);
    QCOMPARE(window.jobModel()->rowCount(), 1);
    QTRY_COMPARE(window.historyModel()->rowCount(), 1);
    QTRY_VERIFY_WITH_TIMEOUT(previewLoaded.count() + previewFailed.count() > 0, 30000);
    if (previewLoaded.isEmpty()) QVERIFY(window.previewWidget()->isShowingPoster());  // no H.264 decoder offscreen
    session.shutdown();
    session.waitForStopped();
    QCOMPARE(server.stop(), 0);
}

QTEST_MAIN(TestRemoteWindow)
#include "test_remote_window.moc"
