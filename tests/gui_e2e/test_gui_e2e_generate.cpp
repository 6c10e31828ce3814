// The window on the REAL engine (demo checkpoint, CPU, a world of one MPI process), driven like a user,
// offscreen: type a prompt, pick a small size, Generate, wait for the video and its preview; then "Enhance
// prompt" with the local Qwen method on the tiny model in tests/data/qwen (random weights: the extension is
// gibberish, but it goes through the real tokenizer, model and sampler), edit it, and generate with it.
// Built like `wanstudio`: wan_app_core + the MPI backend (engine_backend_mpi.cpp) + wan_server.
#include "cli/options.h"
#include "dist/dist.h"
#include "models/history_model.h"
#include "models/job_list_model.h"
#include "session/engine_backend.h"
#include "session/engine_session.h"
#include "session/metatypes.h"
#include "settings/settings.h"
#include "ui/load_panel.h"
#include "ui/main_window.h"
#include "ui/parameters_panel.h"
#include "ui/preview_widget.h"
#include "video/video.h"
#include "window_fixture.h"

#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

#include <cstdio>
#include <memory>

using namespace wan;
using namespace wan::app;

namespace {
constexpr int kStartTimeoutMs = 120000;  // loading the demo checkpoint (seconds; generous for a busy machine)
constexpr int kJobTimeoutMs = 240000;    // one 128×128, 5-frame, 3-step job on CPU takes seconds

QJsonObject readJson(const QString& path) {
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) return {};
    return QJsonDocument::fromJson(f.readAll()).object();
}
}  // namespace

class TestGuiE2eGenerate : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void generatesRealVideo();
    void enhancesPromptThenGenerates();
    void cancelsARealLoadAndTheWindowStays();
    void cleanupTestCase();

private:
    /// Types a prompt and sets a small job (128*128, 5 frames, 3 steps) like a user would.
    void typeSmallJob(const QString& prompt);
    /// Clicks Generate and waits for the job to end; returns its result (status checked by the caller).
    GenerationResult clickGenerateAndWait();

    wan::app::test::WindowFixture f_;  ///< its folder holds the settings file and the outputs
    QString out_;
};

void TestGuiE2eGenerate::initTestCase() {
    QVERIFY(f_.dir.isValid());
    out_ = QDir(f_.dir.path()).filePath(QStringLiteral("outputs"));
    AppOptions& options = f_.options;
    options.engine.device = "cpu";
    options.engine.output_dir = out_.toStdString();
    options.engine.prompt_extend_method = "local_qwen";
    options.engine.prompt_extend_model = WAN_SOURCE_DIR "/tests/data/qwen";
    options.promptExtendTargetLang = "en";
    options.request.extend_target_lang = "en";
    // The same pieces as runGui (gui_entry.cpp), with an ini file of our own instead of the user's settings.
    registerMetaTypes();
    f_.open(makeEngineBackend(options),
            std::make_unique<Settings>(QDir(f_.dir.path()).filePath(QStringLiteral("settings.ini"))));
    QVERIFY(f_.waitReady(kStartTimeoutMs));
    QCOMPARE(f_.window->engineStateLabel()->text(), QStringLiteral("Ready"));
    QVERIFY2(f_.window->modelLabel()->text().contains(QStringLiteral("demo")), qPrintable(f_.window->modelLabel()->text()));
    QCOMPARE(f_.window->outputFolder(), out_);
}

void TestGuiE2eGenerate::typeSmallJob(const QString& prompt) {
    ParametersPanel* p = f_.window->parametersPanel();
    p->promptEdit()->clear();
    QTest::keyClicks(p->promptEdit(), prompt);
    const int size = p->sizeCombo()->findData(QStringLiteral("128*128"));
    QVERIFY2(size >= 0, "the demo checkpoint offers 128*128");
    p->sizeCombo()->setCurrentIndex(size);
    p->framesSpin()->setValue(5);
    p->stepsSpin()->setValue(3);
}

GenerationResult TestGuiE2eGenerate::clickGenerateAndWait() {
    QSignalSpy finished(f_.session.get(), &EngineSession::finished);
    QSignalSpy failed(f_.session.get(), &EngineSession::failed);
    QTest::mouseClick(f_.window->generateButton(), Qt::LeftButton);
    if (!QTest::qWaitFor([&] { return finished.count() + failed.count() > 0; }, kJobTimeoutMs)) {
        qWarning("the job did not end within %d s", kJobTimeoutMs / 1000);
        return {};
    }
    if (failed.count()) {
        qWarning("the job failed: %s", qPrintable(failed.at(0).at(1).toString()));
        return {};
    }
    if (finished.isEmpty()) return {};
    return finished.at(0).at(1).value<GenerationResult>();
}

void TestGuiE2eGenerate::generatesRealVideo() {
    typeSmallJob(QStringLiteral("a fox running through fresh snow"));
    QSignalSpy previewLoaded(f_.window.get(), &MainWindow::previewLoaded);
    QSignalSpy previewFailed(f_.window.get(), &MainWindow::previewFailed);
    // The live preview: one set of frames per denoising step reaches the window, sized like the latent
    // (128×128 → 16×16 latent pixels, 5 frames → 2 latent frames), and the window showed it.
    std::vector<int> previewSteps;
    bool liveShown = false, framesSized = true;
    const auto conn = connect(f_.session.get(), &EngineSession::progress, this, [&](qint64, const ProgressInfo& p) {
        if (!p.preview) return;
        previewSteps.push_back(p.preview->step);
        framesSized = framesSized && p.preview->frames == 2 && p.preview->height == 16 && p.preview->width == 16;
        liveShown = liveShown || f_.window->previewWidget()->isShowingLive();
    });
    const GenerationResult r = clickGenerateAndWait();
    disconnect(conn);
    QVERIFY2(r.status == JobStatus::Ok, r.message.c_str());
    QCOMPARE(previewSteps, (std::vector<int>{1, 2, 3}));
    QVERIFY(framesSized);
    QVERIFY(liveShown);
    QCOMPARE(r.prompt_used, std::string("a fox running through fresh snow"));
    QVERIFY(r.seed_used >= 0);
    const QString video = QString::fromStdString(r.video_path);
    const QString poster = QString::fromStdString(r.poster_path);
    const QString json = QString::fromStdString(r.json_path);
    for (const QString& path : {video, poster, json}) {
        QVERIFY2(QFileInfo(path).isFile() && QFileInfo(path).size() > 0, qPrintable(path));
        QCOMPARE(QFileInfo(path).absolutePath(), out_);
    }
    const video::VideoInfo info = video::probe_video(r.video_path);
    QCOMPARE(info.frames, int64_t(5));
    QCOMPARE(info.width, 128);
    QCOMPARE(info.height, 128);
    QCOMPARE(readJson(json).value(QStringLiteral("prompt")).toString(), QStringLiteral("a fox running through fresh snow"));

    // The finished job in the queue, the history row, and the preview (the video, or at least its poster).
    QCOMPARE(f_.window->jobModel()->rowCount(), 1);
    QTRY_COMPARE(f_.window->historyModel()->rowCount(), 1);
    QCOMPARE(f_.window->previewWidget()->currentVideo(), QFileInfo(video).absoluteFilePath());
    QTRY_VERIFY_WITH_TIMEOUT(previewLoaded.count() + previewFailed.count() > 0, 30000);
    if (previewLoaded.count()) {
        QCOMPARE(previewLoaded.at(0).at(0).toString(), QFileInfo(video).absoluteFilePath());
        QVERIFY(f_.window->previewWidget()->isVideoLoaded());
    } else {
        // An offscreen Qt Multimedia backend without an H.264 decoder: the poster frame stays on screen.
        qWarning("preview could not play the video (%s); the poster is shown",
                 qPrintable(previewFailed.at(0).at(1).toString()));
        QVERIFY(f_.window->previewWidget()->isShowingPoster());
    }
}

void TestGuiE2eGenerate::enhancesPromptThenGenerates() {
#if !WAN_HAVE_EXTEND
    QSKIP("built without prompt extension (engine/extend)");
#endif
    typeSmallJob(QStringLiteral("a cat"));
    ParametersPanel* p = f_.window->parametersPanel();
    p->extendLanguageCombo()->setCurrentIndex(p->extendLanguageCombo()->findData(QStringLiteral("en")));
    QSignalSpy extended(f_.session.get(), &EngineSession::promptExtended);
    QSignalSpy extendFailed(f_.session.get(), &EngineSession::extendFailed);
    QVERIFY(p->enhanceButton()->isEnabled());
    QTest::mouseClick(p->enhanceButton(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(extended.count() + extendFailed.count() > 0, kJobTimeoutMs);
    QVERIFY2(extendFailed.isEmpty(), extendFailed.isEmpty() ? "" : qPrintable(extendFailed.at(0).at(1).toString()));
    const QString enhanced = p->promptEdit()->toPlainText();
    QVERIFY(!enhanced.trimmed().isEmpty());
    QVERIFY(enhanced != QStringLiteral("a cat"));
    QCOMPARE(p->originalPrompt(), QStringLiteral("a cat"));
    QVERIFY(p->extendStatusLabel()->text().contains(QStringLiteral("a cat")));
    QVERIFY(p->enhanceButton()->isEnabled());

    // The extended text is editable like any prompt: add to it, then generate with what the box says.
    QVERIFY(!p->promptEdit()->isReadOnly());
    QTest::keyClicks(p->promptEdit(), QStringLiteral(" At dusk."));
    const std::string typed = p->request().prompt;
    QVERIFY(QString::fromStdString(typed).endsWith(QStringLiteral("At dusk.")));
    const GenerationResult r = clickGenerateAndWait();
    QVERIFY2(r.status == JobStatus::Ok, r.message.c_str());
    QCOMPARE(r.prompt_used, typed);

    // The metadata keeps both: the prompt generated and the user's original text.
    const QJsonObject j = readJson(QString::fromStdString(r.json_path));
    QCOMPARE(j.value(QStringLiteral("original_prompt")).toString(), QStringLiteral("a cat"));
    QCOMPARE(j.value(QStringLiteral("prompt")).toString().toStdString(), typed);
    const video::VideoInfo info = video::probe_video(r.video_path);
    QCOMPARE(info.tags.count("original_prompt"), size_t(1));
    QCOMPARE(info.tags.at("original_prompt"), std::string("a cat"));
    QCOMPARE(info.tags.at("prompt"), typed);
    QTRY_COMPARE(f_.window->historyModel()->rowCount(), 2);
}

void TestGuiE2eGenerate::cleanupTestCase() {
    if (f_.window) {
        f_.window->close();  // shuts the engine down (backend->shutdown()) and closes once it has stopped
        QTRY_VERIFY_WITH_TIMEOUT(f_.session->state() == EngineSession::State::Stopped, 60000);
    }
    f_.close();
}

// The real engine's load (each tensor read slowed by WAN_TEST_LOAD_DELAY_MS): the window's bar moves through the
// components, Cancel stops the load, and the window stays (no model, Open model… offered).
void TestGuiE2eGenerate::cancelsARealLoadAndTheWindowStays() {
    // The first engine goes first: only one engine thread may call MPI at a time (MPI_THREAD_SERIALIZED).
    f_.window->close();
    QTRY_VERIFY_WITH_TIMEOUT(f_.session->state() == EngineSession::State::Stopped, 60000);
    f_.close();
    qputenv("WAN_TEST_LOAD_DELAY_MS", "20");
    f_.open(makeEngineBackend(f_.options),
            std::make_unique<Settings>(QDir(f_.dir.path()).filePath(QStringLiteral("settings.ini"))));
    MainWindow& window = *f_.window;
    QProgressBar* bar = window.loadPanel()->progressBar();
    QTRY_VERIFY_WITH_TIMEOUT(bar->maximum() > 0 && bar->value() > 0, kStartTimeoutMs);
    const int first = bar->value();
    QTRY_VERIFY_WITH_TIMEOUT(bar->value() > first, 30000);
    QVERIFY2(window.engineStateLabel()->text().startsWith(QStringLiteral("Loading the ")),
             qPrintable(window.engineStateLabel()->text()));
    QTest::mouseClick(window.loadPanel()->cancelButton(), Qt::LeftButton);
    QTRY_COMPARE_WITH_TIMEOUT(f_.session->state(), EngineSession::State::StartCancelled, 30000);
    qunsetenv("WAN_TEST_LOAD_DELAY_MS");
    QVERIFY(window.loadPanel()->openModelButton()->isVisible());
    QVERIFY(!window.generateButton()->isEnabled());
    QVERIFY(window.engineStateLabel()->text().contains(QStringLiteral("cancelled")));
    // cleanupTestCase closes this window: the cancelled engine shuts down like a loaded one.
}

int main(int argc, char** argv) {
    // As in wanstudio's main: MPI first (a world of one here), then Qt on the same (main) thread; the engine
    // thread of EngineSession is the only one that calls MPI afterwards (MPI_THREAD_SERIALIZED).
    std::unique_ptr<wan::dist::MpiSession> mpi;
    try {
        mpi = std::make_unique<wan::dist::MpiSession>(&argc, &argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "test_gui_e2e_generate: %s\n", e.what());
        return 1;
    }
    int code = 0;
    {
        QApplication app(argc, argv);
        QApplication::setOrganizationName(QStringLiteral("WanStudioTest"));
        QApplication::setApplicationName(QStringLiteral("WanStudioE2eTest"));
        TestGuiE2eGenerate test;
        code = QTest::qExec(&test, argc, argv);
    }
    return code;
}

#include "test_gui_e2e_generate.moc"
