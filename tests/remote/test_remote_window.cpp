// The window with its engine on the other side of `--connect` (here loopback): a `wanstudio --listen` child
// process on the demo checkpoint, and the unchanged MainWindow + EngineSession over the remote backend,
// offscreen. Generate, then the fetched video is on local disk, listed, and previewed (the live preview of
// every step too); the status bar says where the engine runs. The server's history is listed on connection and
// again after the server restarts, each video once.
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
    void reconnectionListsTheServersHistoryOnce();

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
    // The live preview over the wire, seen by the window as a local one: once per step, the demo's latent size.
    int previews = 0, lastPreviewStep = 0;
    bool shownLive = false;
    connect(&session, &EngineSession::progress, &window, [&](qint64, const ProgressInfo& info) {
        if (!info.preview) return;
        ++previews;
        QVERIFY(info.preview->step > lastPreviewStep);
        lastPreviewStep = info.preview->step;
        QCOMPARE(info.preview->frames, 2);  // 5 frames → 2 latent frames
        QCOMPARE(info.preview->width, 16);  // 128 / 8
        shownLive |= window.previewWidget()->isShowingLive();
    });
    QSignalSpy previewLoaded(&window, &MainWindow::previewLoaded);
    QSignalSpy previewFailed(&window, &MainWindow::previewFailed);
    QTest::mouseClick(window.generateButton(), Qt::LeftButton);
    QVERIFY(QTest::qWaitFor([&] { return finished.count() + failed.count() > 0; }, 300000));
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.at(0).at(1).toString()));
    QVERIFY(progress.count() > 0);
    QVERIFY2(previews >= 1 && previews <= 3, qPrintable(QString::number(previews)));
    QVERIFY(shownLive);
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

namespace {
/// POSTs a small job to `server` as another client would, and waits until it is done.
bool runJobOn(EngineProcess& server, const QByteArray& prompt) {
    QNetworkAccessManager nam;
    const HttpReply posted = httpRequest(nam, "POST", server.url(QStringLiteral("/api/jobs")),
        R"({"prompt": ")" + prompt + R"(", "size": "128*128", "frame_num": 5, "sample_steps": 2})");
    if (posted.status != 202) return false;
    const QString job = server.url(QStringLiteral("/api/jobs/%1").arg(posted.json().value(QStringLiteral("id")).toInteger()));
    return QTest::qWaitFor([&] {
        return httpRequest(nam, "GET", job).json().value(QStringLiteral("state")).toString() == QLatin1String("done");
    }, 300000);
}

QStringList historyPrompts(const HistoryModel& model) {
    QStringList prompts;
    for (int row = 0; row < model.rowCount(); ++row) prompts << model.index(row).data(HistoryModel::PromptRole).toString();
    prompts.sort();
    return prompts;
}
}  // namespace

void TestRemoteWindow::reconnectionListsTheServersHistoryOnce() {
    const QString serverDir = dir_.filePath(QStringLiteral("history-server"));
    const QStringList serverArgs{QStringLiteral("--device"), QStringLiteral("cpu"), QStringLiteral("--output-dir"), serverDir};
    auto server = std::make_unique<EngineProcess>();
    QString error;
    QVERIFY2(server->start({}, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0")} + serverArgs, &error),
             qPrintable(error));
    QVERIFY(server->waitReady(180000));
    QVERIFY(runJobOn(*server, "made before the window connected"));
    const QString address = QStringLiteral("127.0.0.1:%1").arg(server->port());

    AppOptions options;
    const QString out = dir_.filePath(QStringLiteral("history-local"));
    options.engine.output_dir = out.toStdString();
    RemoteEndpoint endpoint = parseRemoteEndpoint(address.toStdString());
    endpoint.historyFolder = out;
    registerMetaTypes();
    Settings settings(dir_.filePath(QStringLiteral("history-settings.ini")));
    EngineSession session(makeRemoteBackend(endpoint));
    MainWindow window(&session, &settings, options);
    window.setConfirmOnClose(false);
    session.start();
    QTRY_VERIFY_WITH_TIMEOUT(window.generateButton()->isEnabled(), 180000);
    QTRY_COMPARE_WITH_TIMEOUT(window.historyModel()->rowCount(), 1, 30000);  // listed on connection

    // The server goes away and comes back on the same address; a job finishes there meanwhile.
    server->kill();
    server = std::make_unique<EngineProcess>();
    QVERIFY2(server->start({}, QStringList{QStringLiteral("--listen"), address} + serverArgs, &error), qPrintable(error));
    QVERIFY(server->waitReady(180000));
    QVERIFY(runJobOn(*server, "made while the window was away"));
    server->kill();  // once more, with nothing new: the reconnection lists the same two
    server = std::make_unique<EngineProcess>();
    QVERIFY2(server->start({}, QStringList{QStringLiteral("--listen"), address} + serverArgs, &error), qPrintable(error));
    QVERIFY(server->waitReady(180000));
    QTRY_COMPARE_WITH_TIMEOUT(window.historyModel()->rowCount(), 2, 30000);
    QTest::qWait(3000);
    QCOMPARE(historyPrompts(*window.historyModel()),
             (QStringList{QStringLiteral("made before the window connected"), QStringLiteral("made while the window was away")}));
    for (int row = 0; row < 2; ++row) {  // whole copies of the server's files
        const QFileInfo local(window.historyModel()->entryAt(row).videoPath);
        QCOMPARE(local.absolutePath(), out);
        QCOMPARE(local.size(), QFileInfo(QDir(serverDir).filePath(local.fileName())).size());
    }

    // The window's own job after the reconnection: fetched by its job and listed once, beside the two.
    ParametersPanel* p = window.parametersPanel();
    p->promptEdit()->clear();
    QTest::keyClicks(p->promptEdit(), QStringLiteral("made by the window"));
    p->sizeCombo()->setCurrentIndex(p->sizeCombo()->findData(QStringLiteral("128*128")));
    p->framesSpin()->setValue(5);
    p->stepsSpin()->setValue(2);
    QSignalSpy finished(&session, &EngineSession::finished);
    QTest::mouseClick(window.generateButton(), Qt::LeftButton);
    QVERIFY(QTest::qWaitFor([&] { return finished.count() > 0; }, 300000));
    QTRY_COMPARE_WITH_TIMEOUT(window.historyModel()->rowCount(), 3, 30000);
    QTest::qWait(2000);
    QCOMPARE(window.historyModel()->rowCount(), 3);
    session.shutdown();
    session.waitForStopped();
    QCOMPARE(server->stop(), 0);
}

QTEST_MAIN(TestRemoteWindow)
#include "test_remote_window.moc"
