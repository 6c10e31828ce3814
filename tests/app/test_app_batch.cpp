// --batch: file parsing (plain lines, JSON lines, errors naming the line) and BatchRunner exit codes.
#include "app_test_support.h"
#include "core/batch_file.h"
#include "batch/batch_runner.h"

#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include <cstdio>

using namespace wan;
using namespace wan::app;
using namespace wan::app::test;

namespace {
/// Runs `body` and returns the wan::Error message it throws ("" when it does not throw).
template <typename F>
QString errorOf(F&& body) {
    try {
        body();
    } catch (const Error& e) {
        return QString::fromStdString(e.what());
    }
    return {};
}

/// A FILE* in memory-ish: a temporary file read back as text.
struct CapturedStream {
    FILE* file = std::tmpfile();
    ~CapturedStream() { std::fclose(file); }
    QString text() {
        std::fflush(file);
        std::rewind(file);
        QByteArray bytes;
        char buf[4096];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, file)) > 0) bytes.append(buf, static_cast<qsizetype>(n));
        return QString::fromUtf8(bytes);
    }
};

/// A BatchRunner over a fake session, with its progress and result streams captured.
struct BatchRun {
    std::unique_ptr<EngineSession> session;
    BatchRunner runner;
    CapturedStream progress, results;
    QSignalSpy done;
    BatchRun(const FakeBackendConfig& config, std::vector<GenerationRequest> jobs, bool terminal = false)
        : session(makeSession(config)), runner(session.get(), std::move(jobs)), done(&runner, &BatchRunner::done) {
        runner.setProgressStream(progress.file, terminal);
        runner.setResultStream(results.file);
    }
    void start() {
        session->start();
        runner.start();
    }
};
}  // namespace

class TestAppBatch : public QObject {
    Q_OBJECT
private slots:
    void parsesPlainLines();
    void parsesJsonLines();
    void reportsBadJsonWithLineNumber();
    void reportsUnknownKeyAndBadValues();
    void reportsUnreadableAndEmptyFiles();
    void exitsZeroWhenAllJobsSucceed();
    void exitsNonZeroWhenOneJobFails();
    void exitsWhenEngineFailsToStart();
    void drawsTerminalBarWithCarriageReturns();
    void interruptCancelsRunningJobAndSkipsTheRest();
    void interruptRequestedIsCheckedBeforeEachJob();
};

void TestAppBatch::parsesPlainLines() {
    GenerationRequest defaults;
    defaults.sample_steps = 7;
    defaults.output_dir = "outs";
    const auto jobs = parse_batch_text("a cat surfing\n\n# a comment\n  two dogs dancing  \r\nlast line without newline",
                                     defaults);
    QCOMPARE(jobs.size(), size_t(3));
    QCOMPARE(jobs[0].prompt, std::string("a cat surfing"));
    QCOMPARE(jobs[1].prompt, std::string("two dogs dancing"));
    QCOMPARE(jobs[2].prompt, std::string("last line without newline"));
    for (const auto& j : jobs) {
        QCOMPARE(j.sample_steps, 7);
        QCOMPARE(j.output_dir, std::string("outs"));
    }
}

void TestAppBatch::parsesJsonLines() {
    GenerationRequest defaults;
    defaults.width = 832;
    defaults.height = 480;
    defaults.sample_steps = 50;
    defaults.output_dir = "outs";
    const std::string text =
        "{\"prompt\": \"a fox\", \"size\": \"480*832\", \"sample_steps\": 10, \"base_seed\": 42}\n"
        "plain prompt\n"
        "{\"prompt\": \"an owl\", \"sample_solver\": \"dpm++\", \"sample_guide_scale\": 6.0, \"frame_num\": 17,"
        " \"negative_prompt\": \"dark\", \"output_dir\": \"elsewhere\"}\n";
    const auto jobs = parse_batch_text(text, defaults);
    QCOMPARE(jobs.size(), size_t(3));
    QCOMPARE(jobs[0].prompt, std::string("a fox"));
    QCOMPARE(jobs[0].width, 480);
    QCOMPARE(jobs[0].height, 832);
    QCOMPARE(jobs[0].sample_steps, 10);
    QCOMPARE(jobs[0].seed, int64_t(42));
    QCOMPARE(jobs[0].output_dir, std::string("outs"));
    QCOMPARE(jobs[1].prompt, std::string("plain prompt"));
    QCOMPARE(jobs[1].width, 832);
    QCOMPARE(jobs[2].solver, std::string("dpm++"));
    QCOMPARE(jobs[2].guide_scale, 6.0);
    QCOMPARE(jobs[2].frame_num, 17);
    QCOMPARE(jobs[2].negative_prompt, std::string("dark"));
    QCOMPARE(jobs[2].output_dir, std::string("elsewhere"));
    QCOMPARE(jobs[2].sample_steps, 50);  // from the defaults
}

void TestAppBatch::reportsBadJsonWithLineNumber() {
    const QString message = errorOf([] {
        parse_batch_text("fine prompt\n# comment\n{\"prompt\": \"broken\", }\n", GenerationRequest{}, "--batch jobs.txt");
    });
    QVERIFY2(message.contains(QStringLiteral("--batch jobs.txt, line 3")), qPrintable(message));
    QVERIFY2(message.contains(QStringLiteral("not valid JSON")), qPrintable(message));
    const QString notObject = errorOf([] { parse_batch_text("{\"prompt\": [1,2]}", GenerationRequest{}); });
    QVERIFY2(notObject.contains(QStringLiteral("line 1")), qPrintable(notObject));
    QVERIFY2(notObject.contains(QStringLiteral("prompt")), qPrintable(notObject));
}

void TestAppBatch::reportsUnknownKeyAndBadValues() {
    const QString unknown = errorOf([] { parse_batch_text("ok\n{\"prompt\": \"x\", \"sample_step\": 3}", GenerationRequest{}); });
    QVERIFY2(unknown.contains(QStringLiteral("line 2")) && unknown.contains(QStringLiteral("sample_step")), qPrintable(unknown));
    const QString frames = errorOf([] { parse_batch_text("{\"prompt\": \"x\", \"frame_num\": 10}", GenerationRequest{}); });
    QVERIFY2(frames.contains(QStringLiteral("line 1")) && frames.contains(QStringLiteral("4n+1")), qPrintable(frames));
    const QString size = errorOf([] { parse_batch_text("\n{\"prompt\": \"x\", \"size\": \"big\"}", GenerationRequest{}); });
    QVERIFY2(size.contains(QStringLiteral("line 2")) && size.contains(QStringLiteral("W*H")), qPrintable(size));
    const QString empty = errorOf([] { parse_batch_text("{\"size\": \"832*480\"}", GenerationRequest{}); });
    QVERIFY2(empty.contains(QStringLiteral("line 1")) && empty.contains(QStringLiteral("prompt is empty")), qPrintable(empty));
}

void TestAppBatch::reportsUnreadableAndEmptyFiles() {
    const QString missing = errorOf([] { read_batch_file("/nonexistent/jobs.txt", GenerationRequest{}); });
    QVERIFY2(missing.contains(QStringLiteral("/nonexistent/jobs.txt")), qPrintable(missing));
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("empty.txt"));
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("# only a comment\n\n");
    f.close();
    const QString empty = errorOf([&] { read_batch_file(path.toStdString(), GenerationRequest{}); });
    QVERIFY2(empty.contains(QStringLiteral("no prompts")), qPrintable(empty));
}

void TestAppBatch::exitsZeroWhenAllJobsSucceed() {
    QTemporaryDir out;
    BatchRun run(fastFake(), {requestFor("one", out.path()), requestFor("two", out.path()), requestFor("three", out.path())});
    run.start();
    QVERIFY(run.done.wait(10000));
    QCOMPARE(run.done.at(0).at(0).toInt(), 0);
    QCOMPARE(run.runner.exitCode(), 0);
    QCOMPARE(run.runner.okCount(), 3);
    const QStringList paths = run.results.text().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    QCOMPARE(paths.size(), 3);
    for (const QString& p : paths) QVERIFY2(QFileInfo::exists(p) && p.endsWith(QStringLiteral(".mp4")), qPrintable(p));
    const QString log = run.progress.text();
    QVERIFY2(log.contains(QStringLiteral("[job 1/3]")) && log.contains(QStringLiteral("[job 3/3]")), qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("Denoising")), qPrintable(log));
    QVERIFY2(!log.contains(QLatin1Char('\r')), "no carriage returns without a terminal");
}

void TestAppBatch::exitsNonZeroWhenOneJobFails() {
    QTemporaryDir out;
    BatchRun run(fastFake(), {requestFor("one", out.path()), requestFor("FAIL two", out.path()),
                              requestFor("three", out.path())});
    run.start();
    QVERIFY(run.done.wait(10000));
    QCOMPARE(run.runner.exitCode(), int(BatchRunner::kExitJobFailed));
    QCOMPARE(run.runner.okCount(), 2);  // the others still ran
    QCOMPARE(run.runner.failedCount(), 1);
    QCOMPARE(run.results.text().split(QLatin1Char('\n'), Qt::SkipEmptyParts).size(), 2);
    QVERIFY(run.progress.text().contains(QStringLiteral("[job 2/3] failed: simulated failure")));
    QVERIFY2(run.progress.text().endsWith(QStringLiteral("finished: job 1, 3\nfailed: job 2\n")), qPrintable(run.progress.text()));
}

void TestAppBatch::exitsWhenEngineFailsToStart() {
    FakeBackendConfig config = fastFake();
    config.startError = "no checkpoint";
    BatchRun run(config, {requestFor("one")});
    run.start();
    QVERIFY(run.done.wait(5000));
    QCOMPARE(run.runner.exitCode(), int(BatchRunner::kExitEngineFailed));
    QVERIFY(run.progress.text().contains(QStringLiteral("no checkpoint")));
    QVERIFY2(run.progress.text().endsWith(QStringLiteral("finished: none\nnever ran: job 1\n")), qPrintable(run.progress.text()));
}

void TestAppBatch::interruptCancelsRunningJobAndSkipsTheRest() {
    QTemporaryDir out;
    // 4 steps of 200 ms: time to interrupt the first job
    BatchRun run(fastFake(200), {requestFor("one", out.path()), requestFor("two", out.path()),
                                 requestFor("three", out.path())});
    QSignalSpy started(run.session.get(), &EngineSession::jobStarted);
    run.start();
    QVERIFY(started.wait(5000));
    run.runner.interrupt();  // what Ctrl+C does in runBatch
    run.runner.interrupt();  // idempotent
    QVERIFY(run.done.wait(5000));
    QCOMPARE(run.runner.exitCode(), int(BatchRunner::kExitInterrupted));
    QCOMPARE(run.runner.okCount(), 0);
    QCOMPARE(started.count(), 1);  // the queued jobs never started
    QVERIFY(run.results.text().isEmpty());
    const QString log = run.progress.text();
    QVERIFY2(log.contains(QStringLiteral("interrupted: cancelling the running job, 2 queued job(s) skipped")), qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("[job 1/3] cancelled")), qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("0 of 3 jobs ok, interrupted")), qPrintable(log));
    QVERIFY2(log.endsWith(QStringLiteral("finished: none\ncancelled: job 1\nnever ran: job 2, 3\n")), qPrintable(log));
}

void TestAppBatch::interruptRequestedIsCheckedBeforeEachJob() {
    // Ctrl+C that the periodic check has not acted on yet when a job ends (under mpirun a worker's own Ctrl+C
    // can end the job first): the next job must not start.
    QTemporaryDir out;
    BatchRun run(fastFake(), {requestFor("one", out.path()), requestFor("two", out.path()),
                              requestFor("three", out.path())});
    QSignalSpy started(run.session.get(), &EngineSession::jobStarted);
    run.runner.setInterruptRequested([&run] { return run.runner.okCount() >= 1; });
    run.start();
    QVERIFY(run.done.wait(10000));
    QCOMPARE(run.runner.exitCode(), int(BatchRunner::kExitInterrupted));
    QCOMPARE(started.count(), 1);
    const QString log = run.progress.text();
    QVERIFY2(log.contains(QStringLiteral("interrupted: stopping, 2 queued job(s) skipped")), qPrintable(log));
    QVERIFY2(log.endsWith(QStringLiteral("1 of 3 jobs ok, interrupted\nfinished: job 1\nnever ran: job 2, 3\n")),
             qPrintable(log));
}

void TestAppBatch::drawsTerminalBarWithCarriageReturns() {
    BatchRun run(fastFake(20), {requestFor("one", QString(), 8)}, /*terminal=*/true);
    run.start();
    QVERIFY(run.done.wait(10000));
    QCOMPARE(run.runner.exitCode(), 0);
    const QString log = run.progress.text();
    QVERIFY2(log.contains(QStringLiteral("\r\x1b[K[job 1/1] [")), qPrintable(log));
    QVERIFY2(log.contains(QStringLiteral("ETA")), qPrintable(log));
    QVERIFY(log.contains(QStringLiteral("1 of 1 jobs ok")));
    QVERIFY2(!log.contains(QStringLiteral("finished:")), "one job that ran: its own line says it all");
}

QTEST_GUILESS_MAIN(TestAppBatch)
#include "test_app_batch.moc"
