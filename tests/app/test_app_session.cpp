// EngineSession with the fake backend: order, cancellation (queued and running), progress coalescing,
// failures, prompt extension, start failure, shutdown.
#include "app_test_support.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <stdexcept>

using namespace wan;
using namespace wan::app;
using namespace wan::app::test;

namespace {
/// run() throws, which the interface forbids: the session must turn it into a failed job.
class ThrowingBackend : public FakeEngineBackend {
public:
    using FakeEngineBackend::FakeEngineBackend;
    GenerationResult run(const GenerationRequest&, const std::function<void(const ProgressInfo&)>&,
                         const std::atomic<bool>&) override {
        throw std::runtime_error("boom from run()");
    }
};
}  // namespace

class TestAppSession : public QObject {
    Q_OBJECT
private slots:
    void startsAndReportsInfo();
    void runsThreeJobsInOrder();
    void cancelsQueuedJob();
    void cancelsRunningJob();
    void reportsFailureAndContinues();
    void turnsThrowingRunIntoFailure();
    void coalescesProgress();
    void extendsPrompt();
    void reportsExtensionNotConfigured();
    void failsQueuedJobsWhenStartFails();
    void shutdownDuringJobCancelsAndStops();
    void destructorShutsDownBackend();
};

void TestAppSession::startsAndReportsInfo() {
    FakeBackendConfig config = fastFake();
    config.startDelayMs = 100;
    auto session = makeSession(config);
    QSignalSpy started(session.get(), &EngineSession::started);
    QCOMPARE(session->state(), EngineSession::State::Idle);
    session->start();
    QCOMPARE(session->state(), EngineSession::State::Starting);
    QVERIFY(started.wait(5000));
    QCOMPARE(session->state(), EngineSession::State::Ready);
    const auto info = started.at(0).at(0).value<EngineInfo>();
    QCOMPARE(info.world_size, 2);
    QCOMPARE(session->engineInfo().model_variant, std::string("demo (fake)"));
    QSignalSpy infoSpy(session.get(), &EngineSession::infoUpdated);
    session->refreshInfo();
    QVERIFY(infoSpy.wait(5000));
    // While a job runs, requests do not pile up in the engine thread's queue.
    QSignalSpy jobStarted(session.get(), &EngineSession::jobStarted);
    QSignalSpy finished(session.get(), &EngineSession::finished);
    session->submit(requestFor("busy", QString(), 20));
    QVERIFY(jobStarted.wait(5000));
    const int infosBefore = config.probe->infos.load();
    for (int i = 0; i < 5; ++i) session->refreshInfo();
    QVERIFY(finished.wait(5000));
    // Event-based, no fixed sleep: the worker thread handles its calls in order, so once a prompt extension
    // asked for now has answered, every info request queued before it has run. Then exactly two info() calls:
    // one after the job, one for the 5 coalesced requests.
    QSignalSpy extended(session.get(), &EngineSession::promptExtended);
    QSignalSpy extendFailed(session.get(), &EngineSession::extendFailed);
    session->extendPrompt(QStringLiteral("sentinel"), QStringLiteral("en"), 1);
    QTRY_VERIFY_WITH_TIMEOUT(extended.count() + extendFailed.count() == 1, 5000);
    QCOMPARE(config.probe->infos.load() - infosBefore, 2);
    QCOMPARE(config.probe->starts.load(), 1);
}

void TestAppSession::runsThreeJobsInOrder() {
    QTemporaryDir out;
    auto session = makeSession(fastFake());
    QSignalSpy jobStarted(session.get(), &EngineSession::jobStarted);
    QSignalSpy finished(session.get(), &EngineSession::finished);
    // submitted before start(): they wait for the model
    const qint64 a = session->submit(requestFor("first", out.path()));
    const qint64 b = session->submit(requestFor("second", out.path()));
    const qint64 c = session->submit(requestFor("third", out.path()));
    QVERIFY(a > 0 && b > a && c > b);
    QCOMPARE(session->pendingJobs(), 3);
    session->start();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, 10000);
    QCOMPARE(jobStarted.count(), 3);
    QList<qint64> startOrder, finishOrder;
    for (const auto& args : jobStarted) startOrder << args.at(0).toLongLong();
    for (const auto& args : finished) {
        finishOrder << args.at(0).toLongLong();
        const auto result = args.at(1).value<GenerationResult>();
        QCOMPARE(result.status, JobStatus::Ok);
        QVERIFY(QFileInfo::exists(QString::fromStdString(result.video_path)));
        QVERIFY(QFileInfo::exists(QString::fromStdString(result.poster_path)));
        QVERIFY(QFileInfo::exists(QString::fromStdString(result.json_path)));
        QVERIFY(result.seed_used >= 0);
    }
    QCOMPARE(startOrder, (QList<qint64>{a, b, c}));
    QCOMPARE(finishOrder, (QList<qint64>{a, b, c}));
    QCOMPARE(session->pendingJobs(), 0);
    QCOMPARE(finished.at(1).at(1).value<GenerationResult>().prompt_used, std::string("second"));
}

void TestAppSession::cancelsQueuedJob() {
    FakeBackendConfig config = fastFake(20);
    auto session = makeSession(config);
    QSignalSpy jobStarted(session.get(), &EngineSession::jobStarted);
    QSignalSpy finished(session.get(), &EngineSession::finished);
    session->start();
    const qint64 a = session->submit(requestFor("a"));
    const qint64 b = session->submit(requestFor("b"));
    const qint64 c = session->submit(requestFor("c"));
    session->cancel(b);
    session->cancel(b);  // idempotent
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, 10000);
    QList<qint64> started;
    for (const auto& args : jobStarted) started << args.at(0).toLongLong();
    QCOMPARE(started, (QList<qint64>{a, c}));
    for (const auto& args : finished) {
        const auto result = args.at(1).value<GenerationResult>();
        QCOMPARE(result.status, args.at(0).toLongLong() == b ? JobStatus::Cancelled : JobStatus::Ok);
    }
    QCOMPARE(config.probe->runs.load(), 2);
}

void TestAppSession::cancelsRunningJob() {
    QTemporaryDir out;
    FakeBackendConfig config = fastFake(20);
    auto session = makeSession(config);
    QSignalSpy jobStarted(session.get(), &EngineSession::jobStarted);
    QSignalSpy finished(session.get(), &EngineSession::finished);
    session->start();
    const qint64 id = session->submit(requestFor("long", out.path(), 200));  // 4 s if not cancelled
    QSignalSpy progress(session.get(), &EngineSession::progress);
    QVERIFY(jobStarted.wait(5000));
    QCOMPARE(session->runningJob(), id);
    // Measured in denoising steps, not seconds (a loaded machine must not fail it): wait until the job reports
    // a step, cancel, and check that no report comes from far beyond it. Reports are coalesced to 10/s
    // (5 steps of 20 ms), so a prompt stop shows at most a few steps more; a cancel that is ignored until the
    // stage ends shows all 200.
    auto lastDenoiseStep = [&progress] {
        int step = -1;
        for (const auto& args : progress) {
            const auto p = args.at(1).value<ProgressInfo>();
            if (p.stage == Stage::Denoise) step = std::max(step, p.step);
        }
        return step;
    };
    QTRY_VERIFY_WITH_TIMEOUT(lastDenoiseStep() >= 1, 5000);
    const int stepAtCancel = lastDenoiseStep();
    session->cancel(id);
    QVERIFY(finished.wait(5000));
    QVERIFY2(lastDenoiseStep() <= stepAtCancel + 15,
             qPrintable(QStringLiteral("cancel at step %1, reports went on to step %2 of 200")
                            .arg(stepAtCancel)
                            .arg(lastDenoiseStep())));
    const auto result = finished.at(0).at(1).value<GenerationResult>();
    QCOMPARE(result.status, JobStatus::Cancelled);
    QCOMPARE(QDir(out.path()).entryList(QDir::Files).size(), 0);
    QCOMPARE(session->runningJob(), 0);
    // the session keeps working after a cancel
    session->submit(requestFor("after", out.path()));
    QVERIFY(finished.wait(5000));
    QCOMPARE(finished.at(1).at(1).value<GenerationResult>().status, JobStatus::Ok);
}

void TestAppSession::reportsFailureAndContinues() {
    auto session = makeSession(fastFake());
    QSignalSpy failed(session.get(), &EngineSession::failed);
    QSignalSpy finished(session.get(), &EngineSession::finished);
    session->start();
    const qint64 bad = session->submit(requestFor("please FAIL here"));
    session->submit(requestFor("fine"));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 5000);
    QCOMPARE(failed.count(), 1);
    QCOMPARE(failed.at(0).at(0).toLongLong(), bad);
    QVERIFY(failed.at(0).at(1).toString().contains(QStringLiteral("simulated failure")));
}

void TestAppSession::turnsThrowingRunIntoFailure() {
    EngineSession session(std::make_unique<ThrowingBackend>(fastFake()));
    QSignalSpy failed(&session, &EngineSession::failed);
    session.start();
    session.submit(requestFor("x"));
    QVERIFY(failed.wait(5000));
    QCOMPARE(failed.at(0).at(1).toString(), QStringLiteral("boom from run()"));
}

void TestAppSession::coalescesProgress() {
    auto session = makeSession(fastFake(2));
    QSignalSpy progress(session.get(), &EngineSession::progress);
    QSignalSpy finished(session.get(), &EngineSession::finished);
    session->start();
    QElapsedTimer timer;
    timer.start();
    session->submit(requestFor("many steps", QString(), 300));  // ≈ 300 callbacks in ≈ 0.7 s
    QVERIFY(finished.wait(10000));
    const double seconds = timer.elapsed() / 1000.0;
    // ≤ 10/s plus the stage changes (text, denoise, decode, encode) and the first report
    const int bound = static_cast<int>(seconds * 10.0) + 6;
    QVERIFY2(progress.count() <= bound, qPrintable(QStringLiteral("%1 progress signals in %2 s").arg(progress.count()).arg(seconds)));
    QVERIFY(progress.count() >= 4);
    bool sawDenoise = false;
    for (const auto& args : progress) sawDenoise |= args.at(1).value<ProgressInfo>().stage == Stage::Denoise;
    QVERIFY(sawDenoise);
}

void TestAppSession::extendsPrompt() {
    auto session = makeSession(fastFake());
    QSignalSpy extended(session.get(), &EngineSession::promptExtended);
    session->start();
    session->extendPrompt(QStringLiteral("a cat"), QStringLiteral("en"), 7);
    QVERIFY(extended.wait(5000));
    QCOMPARE(extended.at(0).at(0).toString(), QStringLiteral("a cat"));
    QVERIFY(extended.at(0).at(1).toString().startsWith(QStringLiteral("a cat, cinematic")));
}

void TestAppSession::reportsExtensionNotConfigured() {
    FakeBackendConfig config = fastFake();
    config.extendConfigured = false;
    auto session = makeSession(config);
    QSignalSpy failed(session.get(), &EngineSession::extendFailed);
    session->start();
    session->extendPrompt(QStringLiteral("a cat"), QStringLiteral("zh"), -1);
    QVERIFY(failed.wait(5000));
    QVERIFY(failed.at(0).at(1).toString().contains(QStringLiteral("prompt extension is not configured")));
}

void TestAppSession::failsQueuedJobsWhenStartFails() {
    FakeBackendConfig config = fastFake();
    config.startError = "checkpoint dir /nowhere: config.json not found";
    auto session = makeSession(config);
    QSignalSpy startFailed(session.get(), &EngineSession::startFailed);
    QSignalSpy failed(session.get(), &EngineSession::failed);
    session->submit(requestFor("x"));
    session->start();
    QVERIFY(startFailed.wait(5000));
    QCOMPARE(session->state(), EngineSession::State::StartFailed);
    QVERIFY(startFailed.at(0).at(0).toString().contains(QStringLiteral("config.json not found")));
    QTRY_COMPARE(failed.count(), 1);
    QVERIFY(failed.at(0).at(1).toString().contains(QStringLiteral("failed to start")));
    QCOMPARE(config.probe->runs.load(), 0);
}

void TestAppSession::shutdownDuringJobCancelsAndStops() {
    FakeBackendConfig config = fastFake(20);
    auto session = makeSession(config);
    QSignalSpy jobStarted(session.get(), &EngineSession::jobStarted);
    QSignalSpy finished(session.get(), &EngineSession::finished);
    QSignalSpy stopped(session.get(), &EngineSession::stopped);
    session->start();
    session->submit(requestFor("long", QString(), 500));
    session->submit(requestFor("queued"));
    QVERIFY(jobStarted.wait(5000));
    session->shutdown();
    QVERIFY(stopped.wait(5000));
    QCOMPARE(session->state(), EngineSession::State::Stopped);
    QCOMPARE(config.probe->shutdowns.load(), 1);
    QCOMPARE(config.probe->destroyed.load(), 1);  // the backend is released on the engine thread
    QTRY_COMPARE(finished.count(), 2);
    for (const auto& args : finished) QCOMPARE(args.at(1).value<GenerationResult>().status, JobStatus::Cancelled);
    QCOMPARE(config.probe->runs.load(), 1);
}

void TestAppSession::destructorShutsDownBackend() {
    FakeBackendConfig config = fastFake(20);
    {
        auto session = makeSession(config);
        QSignalSpy jobStarted(session.get(), &EngineSession::jobStarted);
        session->start();
        session->submit(requestFor("long", QString(), 500));
        QVERIFY(jobStarted.wait(5000));
    }  // ~EngineSession: cancel, shutdown on the engine thread, quit, wait
    QCOMPARE(config.probe->shutdowns.load(), 1);
    QCOMPARE(config.probe->destroyed.load(), 1);
    // never started: shutdown still reaches the backend (it releases the other ranks)
    FakeBackendConfig idle = fastFake();
    { auto session = makeSession(idle); }
    QCOMPARE(idle.probe->shutdowns.load(), 1);
    QCOMPARE(idle.probe->starts.load(), 0);
}

QTEST_GUILESS_MAIN(TestAppSession)
#include "test_app_session.moc"
