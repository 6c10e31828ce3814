// MainWindow driven like a user (QTest::keyClicks, mouse clicks, Ctrl+Return) over the fake backend.
#include "temporary_settings_test.h"
#include "window_fixture.h"

#include "launch/saved_queue.h"
#include "models/history_model.h"
#include "models/job_list_model.h"
#include "settings/defaults.h"
#include "settings/settings.h"
#include "ui/history_panel.h"
#include "ui/job_queue_widget.h"
#include "ui/main_window.h"
#include "ui/parameters_panel.h"
#include "ui/preview_widget.h"

#include <QComboBox>
#include <QFileInfo>
#include <QLabel>
#include <QListView>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTest>

#include <limits>

using namespace wan;
using namespace wan::app;
using namespace wan::app::test;

namespace {
/// The window over the fake engine, writing to the fixture's folder; deleting history asks nothing.
struct Fixture : WindowFixture {
    explicit Fixture(FakeBackendConfig c = fastFake(), bool startNow = true) : config(std::move(c)) {
        open(std::make_unique<FakeEngineBackend>(config), nullptr, startNow);
        window->historyPanel()->setConfirmDeletes(false);
    }
    ParametersPanel* params() const { return window->parametersPanel(); }

    FakeBackendConfig config;  ///< the backend's copy shares `probe` with it
};
}  // namespace

class TestAppMainWindow : public TemporarySettingsTest {
    Q_OBJECT
private slots:
    void init();
    void showsLoadingThenReady();
    void generatesFromTypedPrompt();
    void generatesWithCtrlReturn();
    void refusesEmptyPrompt();
    void showsJobError();
    void cancelsQueuedAndRunningJobs();
    void enhancesPrompt();
    void showsExtensionFailure();
    void keepsHistoryWhenEngineFailsToStart();
    void reusesAndDeletesHistory();
    void closingDuringJobShutsEngineDown();
    void restoresLastParameters();
    void previewPlaysRealVideo();
    void seedFieldTakesAnySeed();
};

void TestAppMainWindow::init() {
    QSettings().clear();
    QFile::remove(defaultSavedQueuePath());  // a queue left by an earlier test would be offered again
}

void TestAppMainWindow::showsLoadingThenReady() {
    FakeBackendConfig config = fastFake();
    config.startDelayMs = 300;
    Fixture f(config);
    QVERIFY(!f.window->generateButton()->isEnabled());
    QCOMPARE(f.window->engineStateLabel()->text(), QStringLiteral("Loading model…"));
    QVERIFY(f.waitReady());
    QCOMPARE(f.window->engineStateLabel()->text(), QStringLiteral("Ready"));
    QCOMPARE(f.window->layoutLabel()->text(), QStringLiteral("World 2 · Ulysses 2 × Ring 1 · FSDP DiT"));
    QVERIFY(f.window->modelLabel()->text().contains(QStringLiteral("demo (fake)")));
    QCOMPARE(f.window->memoryLabel()->text(), QStringLiteral("GPU memory: r0 1.5/80 GB · r1 1.3/80 GB"));
    // the size list is the model's, with its defaults selected
    QComboBox* sizes = f.params()->sizeCombo();
    QCOMPARE(sizes->count(), 3);
    QCOMPARE(sizes->currentText(), QStringLiteral("64*64"));
    QCOMPARE(f.params()->framesSpin()->value(), 9);
    QCOMPARE(f.params()->stepsSpin()->value(), 4);
    QCOMPARE(f.params()->negativePromptEdit()->toPlainText(), QString::fromUtf8(kDefaultNegativePrompt));
    QCOMPARE(f.window->outputFolder(), f.dir.path());
}

void TestAppMainWindow::generatesFromTypedPrompt() {
    FakeBackendConfig config = fastFake(40);
    config.sampleVideo = WAN_APP_TEST_DATA "/tiny.mp4";   // a real MP4, so the preview can play it
    Fixture f(config);
    QVERIFY(f.waitReady());
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral("a corgi surfing a wave"));
    f.params()->stepsSpin()->setValue(8);
    QSignalSpy submitted(f.window.get(), &MainWindow::jobSubmitted);
    QSignalSpy finished(f.session.get(), &EngineSession::finished);
    QSignalSpy previewDone(f.window.get(), &MainWindow::previewLoaded);
    QSignalSpy previewFailed(f.window.get(), &MainWindow::previewFailed);
    QTest::mouseClick(f.window->generateButton(), Qt::LeftButton);
    QCOMPARE(submitted.count(), 1);
    QCOMPARE(f.window->jobModel()->rowCount(), 1);
    QCOMPARE(f.window->jobModel()->jobAt(0).request.prompt, std::string("a corgi surfing a wave"));
    // progress reaches the model and the progress bar's text
    QProgressBar* bar = f.window->jobQueue()->progressBar();
    QTRY_VERIFY_WITH_TIMEOUT(bar->format().contains(QStringLiteral("Denoising")), 5000);
    QVERIFY2(bar->format().contains(QStringLiteral("elapsed")) && bar->format().contains(QStringLiteral("ETA")),
             qPrintable(bar->format()));
    QTRY_VERIFY(bar->value() > 0);
    QVERIFY(finished.wait(5000));
    const auto result = finished.at(0).at(1).value<GenerationResult>();
    QCOMPARE(result.status, JobStatus::Ok);
    QCOMPARE(QFileInfo(QString::fromStdString(result.video_path)).absolutePath(), f.dir.path());
    // preview: poster first, then the video loads (previewPlaysRealVideo covers a backend without decoder)
    QCOMPARE(f.window->tabs()->currentWidget(), static_cast<QWidget*>(f.window->previewWidget()));
    QCOMPARE(f.window->previewWidget()->currentVideo(), QString::fromStdString(result.video_path));
    QTRY_VERIFY_WITH_TIMEOUT(previewDone.count() + previewFailed.count() > 0, 10000);
    if (previewFailed.count()) {
        QVERIFY(f.window->previewWidget()->isShowingPoster());
        qWarning() << "the preview could not play the sample video:" << previewFailed.at(0).at(1).toString();
    }
    // history and the seed used
    QTRY_COMPARE(f.window->historyModel()->rowCount(), 1);
    QCOMPARE(f.params()->lastSeed(), result.seed_used);
    QVERIFY(f.params()->useSeedButton()->isEnabled());
    QTest::mouseClick(f.params()->useSeedButton(), Qt::LeftButton);
    QCOMPARE(qint64(f.params()->seedSpin()->value()), result.seed_used);
    QCOMPARE(bar->format(), QStringLiteral("Idle"));
}

void TestAppMainWindow::generatesWithCtrlReturn() {
    Fixture f;
    QVERIFY(f.waitReady());
    f.window->activateWindow();
    QVERIFY(QTest::qWaitForWindowActive(f.window.get()));  // the Ctrl+Return shortcut needs the active window
    f.params()->promptEdit()->setFocus();
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral("night city"));
    QSignalSpy submitted(f.window.get(), &MainWindow::jobSubmitted);
    QTest::keyClick(f.params()->promptEdit(), Qt::Key_Return, Qt::ControlModifier);
    QCOMPARE(submitted.count(), 1);
    QCOMPARE(f.params()->promptEdit()->toPlainText(), QStringLiteral("night city"));  // no newline typed
}

void TestAppMainWindow::refusesEmptyPrompt() {
    Fixture f;
    QVERIFY(f.waitReady());
    QSignalSpy submitted(f.window.get(), &MainWindow::jobSubmitted);
    QTest::mouseClick(f.window->generateButton(), Qt::LeftButton);
    QCOMPARE(submitted.count(), 0);
    auto* error = f.window->findChild<QLabel*>(QStringLiteral("formErrorLabel"));
    QVERIFY(error && error->isVisible());
    QVERIFY(error->text().contains(QStringLiteral("prompt")));
}

void TestAppMainWindow::showsJobError() {
    Fixture f;
    QVERIFY(f.waitReady());
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral("this will FAIL"));
    QSignalSpy failed(f.session.get(), &EngineSession::failed);
    QTest::mouseClick(f.window->generateButton(), Qt::LeftButton);
    QVERIFY(failed.wait(5000));
    QLabel* error = f.window->jobQueue()->errorLabel();
    QTRY_VERIFY(error->isVisible());
    QVERIFY2(error->text().contains(QStringLiteral("failed: simulated failure")), qPrintable(error->text()));
    QCOMPARE(f.window->jobModel()->jobAt(0).state, JobListModel::JobState::Failed);
    QVERIFY(f.window->jobModel()->index(0).data(Qt::DisplayRole).toString().contains(QStringLiteral("Failed")));
    QVERIFY(f.window->generateButton()->isEnabled());
}

void TestAppMainWindow::cancelsQueuedAndRunningJobs() {
    Fixture f(fastFake(30));
    QVERIFY(f.waitReady());
    f.params()->stepsSpin()->setValue(200);  // 6 s each unless cancelled
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral("slow"));
    QSignalSpy jobStarted(f.session.get(), &EngineSession::jobStarted);
    QSignalSpy finished(f.session.get(), &EngineSession::finished);
    const qint64 a = f.window->generate();
    const qint64 b = f.window->generate();
    const qint64 c = f.window->generate();
    QVERIFY(a && b && c);
    QVERIFY(jobStarted.wait(5000));
    JobListModel* jobs = f.window->jobModel();
    JobQueueWidget* queue = f.window->jobQueue();
    // cancel the queued job #c: selected in the list, Cancel clicked → it leaves the list
    queue->view()->setCurrentIndex(jobs->index(jobs->rowOf(c)));
    QTest::mouseClick(queue->cancelButton(), Qt::LeftButton);
    QCOMPARE(jobs->rowOf(c), -1);
    QCOMPARE(jobs->rowCount(), 2);
    // cancel the running job #a (nothing selected → the running one)
    queue->view()->setCurrentIndex(QModelIndex());
    queue->view()->clearSelection();
    QTest::mouseClick(queue->cancelButton(), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(jobs->job(a)->state, JobListModel::JobState::Cancelled, 3000);
    // #b starts next; #c never ran
    QTRY_COMPARE_WITH_TIMEOUT(jobStarted.count(), 2, 3000);
    QCOMPARE(jobStarted.at(1).at(0).toLongLong(), b);
    f.session->cancel(b);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, 5000);  // a, b cancelled; c skipped
    QCOMPARE(f.config.probe->runs.load(), 2);
}

void TestAppMainWindow::enhancesPrompt() {
    Fixture f;
    QVERIFY(f.waitReady());
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral("a red kite"));
    f.params()->extendLanguageCombo()->setCurrentIndex(1);  // en
    QSignalSpy extended(f.session.get(), &EngineSession::promptExtended);
    QTest::mouseClick(f.params()->enhanceButton(), Qt::LeftButton);
    QVERIFY(extended.wait(5000));
    QTRY_VERIFY(f.params()->promptEdit()->toPlainText().startsWith(QStringLiteral("a red kite, cinematic")));
    QCOMPARE(f.params()->originalPrompt(), QStringLiteral("a red kite"));
    QVERIFY(f.params()->extendStatusLabel()->text().contains(QStringLiteral("a red kite")));
    // the extended text is editable, and the original goes into the request for the metadata
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral(" At dusk."));
    const GenerationRequest r = f.params()->request();
    QVERIFY(QString::fromStdString(r.prompt).endsWith(QStringLiteral("At dusk.")));
    QCOMPARE(r.original_prompt, std::string("a red kite"));
    QVERIFY(f.params()->enhanceButton()->isEnabled());
}

void TestAppMainWindow::showsExtensionFailure() {
    FakeBackendConfig config = fastFake();
    config.extendConfigured = false;
    Fixture f(config);
    QVERIFY(f.waitReady());
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral("a red kite"));
    QSignalSpy failed(f.session.get(), &EngineSession::extendFailed);
    QTest::mouseClick(f.params()->enhanceButton(), Qt::LeftButton);
    QVERIFY(failed.wait(5000));
    QTRY_VERIFY(f.params()->extendStatusLabel()->text().contains(QStringLiteral("prompt extension is not configured")));
    QCOMPARE(f.params()->promptEdit()->toPlainText(), QStringLiteral("a red kite"));
    QVERIFY(f.params()->originalPrompt().isEmpty());
}

void TestAppMainWindow::keepsHistoryWhenEngineFailsToStart() {
    FakeBackendConfig config = fastFake();
    config.startError = "checkpoint /models/wan: config.json not found";
    QTemporaryDir dummy;
    Fixture f(config, false);
    writeSampleOutput(f.dir.path(), QStringLiteral("s1"), QStringLiteral("old video"), 7, QDateTime::currentDateTime());
    f.window->historyModel()->refresh();
    f.session->start();
    QTRY_COMPARE(f.session->state(), EngineSession::State::StartFailed);
    QTRY_VERIFY(f.window->jobQueue()->errorLabel()->text().contains(QStringLiteral("config.json not found")));
    QVERIFY(!f.window->generateButton()->isEnabled());
    QCOMPARE(f.window->historyModel()->rowCount(), 1);
    f.window->historyPanel()->selectRow(0);
    f.window->historyPanel()->playSelected();
    QVERIFY(f.window->previewWidget()->currentVideo().endsWith(QStringLiteral("s1.mp4")));
}

void TestAppMainWindow::reusesAndDeletesHistory() {
    Fixture f;
    // a seed drawn at random by the engine: anywhere in 0 .. 2^63-1
    writeSampleOutput(f.dir.path(), QStringLiteral("s1"), QStringLiteral("a lighthouse at night"),
                      Q_INT64_C(4846932155794350076), QDateTime::currentDateTime());
    f.window->historyModel()->refresh();
    QVERIFY(f.waitReady());
    QCOMPARE(f.window->historyModel()->rowCount(), 1);
    HistoryPanel* panel = f.window->historyPanel();
    panel->selectRow(0);
    QVERIFY(panel->detailsView()->toPlainText().contains(QStringLiteral("a lighthouse at night")));
    QTest::mouseClick(panel->findChild<QPushButton*>(QStringLiteral("reuseButton")), Qt::LeftButton);
    QCOMPARE(f.params()->promptEdit()->toPlainText(), QStringLiteral("a lighthouse at night"));
    QCOMPARE(f.params()->seedSpin()->value(), Q_INT64_C(4846932155794350076));
    QCOMPARE(f.params()->request().seed, int64_t(4846932155794350076));
    QCOMPARE(f.params()->stepsSpin()->value(), 50);
    QCOMPARE(f.params()->guideSpin()->value(), 6.0);
    // 832*480 is not a size of the fake model: the model default is selected instead
    QCOMPARE(f.params()->sizeCombo()->currentText(), QStringLiteral("64*64"));
    QTest::mouseClick(panel->findChild<QPushButton*>(QStringLiteral("deleteButton")), Qt::LeftButton);
    QCOMPARE(f.window->historyModel()->rowCount(), 0);
    QVERIFY(!QFileInfo::exists(QDir(f.dir.path()).filePath(QStringLiteral("s1.mp4"))));
    QVERIFY(!QFileInfo::exists(QDir(f.dir.path()).filePath(QStringLiteral("s1.json"))));
    QVERIFY(!QFileInfo::exists(QDir(f.dir.path()).filePath(QStringLiteral("s1.png"))));
}

void TestAppMainWindow::closingDuringJobShutsEngineDown() {
    Fixture f(fastFake(30));
    QVERIFY(f.waitReady());
    f.params()->stepsSpin()->setValue(500);
    QTest::keyClicks(f.params()->promptEdit(), QStringLiteral("a long one"));
    QSignalSpy jobStarted(f.session.get(), &EngineSession::jobStarted);
    QSignalSpy stopped(f.session.get(), &EngineSession::stopped);
    f.window->generate();
    f.window->generate();
    QVERIFY(jobStarted.wait(5000));
    QVERIFY(!f.window->close());  // not yet: the engine winds down first
    QVERIFY(!f.window->generateButton()->isEnabled());
    QVERIFY(stopped.wait(5000));
    QTRY_VERIFY(!f.window->isVisible());
    QCOMPARE(f.config.probe->shutdowns.load(), 1);
    QCOMPARE(f.config.probe->runs.load(), 1);
    QCOMPARE(f.session->state(), EngineSession::State::Stopped);
    Settings settings;
    QCOMPARE(settings.lastRequest().prompt, std::string("a long one"));
    QVERIFY(!settings.windowGeometry().isEmpty());
}

void TestAppMainWindow::restoresLastParameters() {
    {
        Settings s;
        GenerationRequest r;
        r.prompt = "remembered";
        r.width = 96;
        r.height = 64;
        r.sample_steps = 12;
        r.solver = "dpm++";
        s.setLastRequest(r);
        s.sync();
    }
    Fixture f;
    QCOMPARE(f.params()->promptEdit()->toPlainText(), QStringLiteral("remembered"));
    QVERIFY(f.waitReady());
    QCOMPARE(f.params()->sizeCombo()->currentText(), QStringLiteral("96*64"));
    QCOMPARE(f.params()->stepsSpin()->value(), 12);
    QCOMPARE(f.params()->framesSpin()->value(), 9);  // unset → the model's default
    QCOMPARE(f.params()->solverCombo()->currentData().toString(), QStringLiteral("dpm++"));
}

void TestAppMainWindow::previewPlaysRealVideo() {
    // tests/app/data/tiny.mp4: 16 frames 64×64 MPEG-4 (the fixture README says how it was made)
    const QString video = QStringLiteral(WAN_APP_TEST_DATA "/tiny.mp4");
    QVERIFY(QFileInfo::exists(video));
    PreviewWidget preview;
    preview.resize(320, 240);
    preview.show();
    QSignalSpy loaded(&preview, &PreviewWidget::loaded);
    QSignalSpy failed(&preview, &PreviewWidget::failed);
    preview.showVideo(video, QString());
    QVERIFY(preview.isShowingPoster());  // until the video has loaded
    QTRY_VERIFY_WITH_TIMEOUT(loaded.count() + failed.count() > 0, 10000);
    if (failed.count()) QSKIP(qPrintable(QStringLiteral("no MPEG-4 decoder in this Qt Multimedia backend: %1")
                                             .arg(failed.at(0).at(1).toString())));
    QCOMPARE(loaded.at(0).at(0).toString(), QFileInfo(video).absoluteFilePath());
    QVERIFY(preview.isVideoLoaded());
    QVERIFY(!preview.isShowingPoster());
}

void TestAppMainWindow::seedFieldTakesAnySeed() {
    ParametersPanel panel;
    panel.show();
    SeedSpinBox* seed = panel.seedSpin();
    QCOMPARE(seed->value(), qint64(-1));
    QCOMPARE(seed->text(), seed->randomText());
    QCOMPARE(panel.request().seed, int64_t(-1));
    // the largest seed the engine draws, typed by the user
    seed->setFocus();
    seed->selectAll();
    QTest::keyClicks(seed, QStringLiteral("9223372036854775807"));
    QCOMPARE(seed->value(), SeedSpinBox::kMaximum);
    QTest::keyClick(seed, Qt::Key_Return);
    QCOMPARE(seed->text(), QStringLiteral("9223372036854775807"));
    QCOMPARE(panel.request().seed, std::numeric_limits<int64_t>::max());
    // out of range or not a number: refused, the value stays
    seed->selectAll();
    QTest::keyClicks(seed, QStringLiteral("x"));
    QCOMPARE(seed->value(), SeedSpinBox::kMaximum);
    panel.promptEdit()->setFocus();  // focus out corrects the text back to the value
    QCOMPARE(seed->text(), QStringLiteral("9223372036854775807"));
    // arrows step, and stop at -1 (random)
    seed->setValue(1);
    seed->stepBy(-1);
    QCOMPARE(seed->value(), qint64(0));
    seed->stepBy(-5);
    QCOMPARE(seed->value(), qint64(-1));
    QCOMPARE(seed->text(), seed->randomText());
    // "Reuse" takes the last seed used, however large
    panel.setLastSeed(Q_INT64_C(4846932155794350076));
    QVERIFY(panel.lastSeedLabel()->text().contains(QStringLiteral("4846932155794350076")));
    QVERIFY(panel.useSeedButton()->isEnabled());
    QTest::mouseClick(panel.useSeedButton(), Qt::LeftButton);
    QCOMPARE(seed->value(), Q_INT64_C(4846932155794350076));
    QCOMPARE(panel.request().seed, int64_t(4846932155794350076));
}

QTEST_MAIN(TestAppMainWindow)
#include "test_app_main_window.moc"
