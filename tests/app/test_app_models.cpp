// JobListModel fed by a session, HistoryModel over a folder of sample outputs (QAbstractItemModelTester on
// both), progress formatting and the metadata JSON.
#include "app_test_support.h"
#include "progress_at.h"
#include "models/history_model.h"
#include "models/job_list_model.h"
#include "models/progress_format.h"

#include <QAbstractItemModelTester>
#include <QFileInfo>
#include <QFont>
#include <QIcon>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

using namespace wan;
using namespace wan::app;
using namespace wan::app::test;

class TestAppModels : public QObject {
    Q_OBJECT
private slots:
    void formatsProgress();
    void metadataRoundTrip();
    void jobModelFollowsSession();
    void jobModelRemovesAndClears();
    void jobModelListsOtherClientsJobs();
    void historyLoadsSampleFolder();
    void historyDeletesAllThreeFiles();
    void historyWatchesFolder();
};

void TestAppModels::formatsProgress() {
    QCOMPARE(formatDuration(0), std::string("00:00"));
    QCOMPARE(formatDuration(65.4), std::string("01:05"));
    QCOMPARE(formatDuration(3725), std::string("1:02:05"));
    QCOMPARE(formatDuration(-1), std::string("--:--"));
    ProgressInfo p = progressAt(Stage::Denoise, 12, 50, 42, 112);
    QCOMPARE(progressText(p), std::string("Denoising 12/50 · 00:42 elapsed · ETA 01:10"));
    QCOMPARE(remainingSeconds(p), 70.0);
    p.eta_s = -1;
    QCOMPARE(progressText(p), std::string("Denoising 12/50 · 00:42 elapsed"));
    // monotonic over the stages
    double last = -1;
    for (Stage s : {Stage::Queued, Stage::Text, Stage::Denoise, Stage::Decode, Stage::Encode, Stage::Done}) {
        for (int step = 0; step <= 4; ++step) {
            const double f = overallFraction(progressAt(s, step, 4));
            QVERIFY(f >= last - 1e-12 && f >= 0 && f <= 1);
            last = f;
        }
    }
    QCOMPARE(last, 1.0);
}

void TestAppModels::metadataRoundTrip() {
    const GenerationRequest r = GenerationRequest::from_json(
        R"({"prompt": "extended prompt", "original_prompt": "short", "size": "480*832"})");
    GenerationResult res;
    res.status = JobStatus::Ok;
    res.seed_used = 1234;
    res.video_path = "/x/a.mp4";
    res.seconds = 3.5;
    const GenerationSidecar m = GenerationSidecar::from_json(make_sidecar(r, res, EngineInfo{}, "test").to_json(), "a.json");
    QCOMPARE(m.request.prompt, r.prompt);
    QCOMPARE(m.request.original_prompt, r.original_prompt);
    QCOMPARE(m.request.width, 480);
    QCOMPARE(m.result.seed_used, int64_t(1234));
    QCOMPARE(m.result.video_path, res.video_path);
    QVERIFY(m.has_result);
    bool threw = false;
    try {
        GenerationSidecar::from_json("{\"not\": \"a record\"}", "other.json");
    } catch (const Error& e) {
        threw = QString::fromStdString(e.what()).contains(QStringLiteral("other.json"));
    }
    QVERIFY(threw);
}

void TestAppModels::jobModelFollowsSession() {
    QTemporaryDir out;
    auto session = makeSession(fastFake(20));
    JobListModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.attach(session.get());
    QStringList stageTexts;
    QList<double> fractions;
    connect(&model, &QAbstractItemModel::dataChanged, this, [&](const QModelIndex& from, const QModelIndex&) {
        stageTexts << from.data(JobListModel::ProgressTextRole).toString();
        fractions << from.data(JobListModel::ProgressRole).toDouble();
    });
    QSignalSpy finished(session.get(), &EngineSession::finished);
    session->start();
    for (const char* prompt : {"a", "b"}) {
        const GenerationRequest r = requestFor(QString::fromLatin1(prompt), out.path(), 6);
        model.addJob(session->submit(r), r);
    }
    QCOMPARE(model.rowCount(), 2);
    QCOMPARE(model.index(1).data(JobListModel::StateRole).toInt(), int(JobListModel::JobState::Queued));
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 10000);
    bool sawDenoise = false;
    for (const QString& t : stageTexts) sawDenoise |= t.startsWith(QStringLiteral("Denoising"));
    QVERIFY2(sawDenoise, qPrintable(stageTexts.join(QLatin1Char('|'))));
    QVERIFY(std::any_of(fractions.begin(), fractions.end(), [](double f) { return f > 0.05 && f < 1.0; }));
    for (int row = 0; row < 2; ++row) {
        const QModelIndex i = model.index(row);
        QCOMPARE(i.data(JobListModel::StateRole).toInt(), int(JobListModel::JobState::Done));
        QCOMPARE(i.data(JobListModel::ProgressRole).toDouble(), 1.0);
        QVERIFY(QFileInfo::exists(i.data(JobListModel::ResultPathRole).toString()));
        QVERIFY(i.data(JobListModel::SeedUsedRole).toLongLong() >= 0);
        QVERIFY(i.data(Qt::DisplayRole).toString().contains(QStringLiteral("Done")));
    }
}

void TestAppModels::jobModelRemovesAndClears() {
    JobListModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    for (int i = 1; i <= 4; ++i) model.addJob(i, requestFor(QStringLiteral("job %1").arg(i)));
    QVERIFY(model.removeJob(2));
    QVERIFY(!model.removeJob(2));
    QCOMPARE(model.rowCount(), 3);
    GenerationResult ok;
    ok.status = JobStatus::Ok;
    model.onJobStarted(1);
    QCOMPARE(model.job(1)->state, JobListModel::JobState::Running);
    model.onFinished(1, ok);
    model.onFailed(3, QStringLiteral("out of memory"));
    QCOMPARE(model.index(model.rowOf(3)).data(JobListModel::StateTextRole).toString(),
             QStringLiteral("Failed: out of memory"));
    model.onFinished(99, ok);  // unknown ids are ignored
    model.clearFinished();
    QCOMPARE(model.rowCount(), 1);
    QCOMPARE(model.idAt(0), qint64(4));
}

namespace {
OtherJob other(qint64 serverId, const char* state, int step = 0) {
    OtherJob o;
    o.serverId = serverId;
    o.prompt = QStringLiteral("job %1 of another client").arg(serverId);
    o.state = QString::fromLatin1(state);
    o.progress = progressAt(step > 0 ? Stage::Denoise : Stage::Queued, step, 10);
    return o;
}
}  // namespace

// A shared engine's other jobs (--connect): rows beside the window's own, keyed apart from them, updated by
// the engine's events and its list on every (re)connection, never kept in the saved queue.
void TestAppModels::jobModelListsOtherClientsJobs() {
    JobListModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.addJob(1, requestFor(QStringLiteral("my own")));
    // Server ids may equal the session's: the rows stay apart.
    model.onOtherJobsListed({other(1, "running", 3), other(2, "queued"), other(7, "done")});
    QCOMPARE(model.rowCount(), 3);  // a job that ended before the window saw it is the history's, not the queue's
    QCOMPARE(model.job(1)->serverId, qint64(0));
    const int row = model.rowOf(JobListModel::otherJobKey(1));
    QVERIFY(row >= 0);
    const QModelIndex i = model.index(row);
    QVERIFY(i.data(JobListModel::OtherClientRole).toBool());
    QCOMPARE(i.data(JobListModel::ServerIdRole).toLongLong(), 1LL);
    QCOMPARE(i.data(JobListModel::StateRole).toInt(), int(JobListModel::JobState::Running));
    QVERIFY2(i.data(Qt::DisplayRole).toString().startsWith(QStringLiteral("another client's #1  job 1 of another client\nDenoising 3/10")),
             qPrintable(i.data(Qt::DisplayRole).toString()));
    QVERIFY(i.data(Qt::FontRole).value<QFont>().italic());  // set apart at a glance
    QVERIFY(!model.index(model.rowOf(1)).data(JobListModel::OtherClientRole).toBool());
    QVERIFY(!model.index(model.rowOf(1)).data(Qt::FontRole).isValid());
    QCOMPARE(model.waitingIds(), std::vector<qint64>{1});  // only the window's own is saved
    // Events: progress, then the end; a new job appears.
    model.onOtherJob(other(1, "running", 8));
    QCOMPARE(model.job(JobListModel::otherJobKey(1))->progress.step, 8);
    model.onOtherJob(other(1, "cancelled"));
    QCOMPARE(model.job(JobListModel::otherJobKey(1))->state, JobListModel::JobState::Cancelled);
    model.onOtherJob(other(9, "queued"));
    QCOMPARE(model.rowCount(), 4);
    // A restarted engine lists what it holds: the unfinished rows it lost go, finished rows stay until cleared.
    model.onOtherJobsListed({other(9, "running", 1)});
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.rowOf(JobListModel::otherJobKey(2)), -1);
    QCOMPARE(model.job(JobListModel::otherJobKey(9))->state, JobListModel::JobState::Running);
    model.clearFinished();
    QCOMPARE(model.rowCount(), 2);
}

void TestAppModels::historyLoadsSampleFolder() {
    QTemporaryDir dir;
    const QDateTime now = QDateTime::currentDateTime();
    writeSampleOutput(dir.path(), QStringLiteral("older"), QStringLiteral("an old fox"), 11, now.addSecs(-300));
    writeSampleOutput(dir.path(), QStringLiteral("newest"), QStringLiteral("a new owl"), 33, now.addSecs(-10));
    writeSampleOutput(dir.path(), QStringLiteral("middle"), QStringLiteral("a cat"), 22, now.addSecs(-100));
    // not generations: a broken JSON, a record without a video, an unrelated JSON
    QFile bad(dir.filePath(QStringLiteral("broken.json")));
    QVERIFY(bad.open(QIODevice::WriteOnly));
    bad.write("{ not json");
    bad.close();
    writeSampleOutput(dir.path(), QStringLiteral("novideo"), QStringLiteral("gone"), 1, now);
    QFile::remove(dir.filePath(QStringLiteral("novideo.mp4")));
    QFile other(dir.filePath(QStringLiteral("config.json")));
    QVERIFY(other.open(QIODevice::WriteOnly));
    other.write("{\"dim\": 1536}");
    other.close();

    HistoryModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy scanned(&model, &HistoryModel::scanned);
    model.setFolder(dir.path());
    QCOMPARE(scanned.count(), 1);
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.scanErrors().size(), 3);
    QCOMPARE(model.index(0).data(HistoryModel::PromptRole).toString(), QStringLiteral("a new owl"));
    QCOMPARE(model.index(1).data(HistoryModel::PromptRole).toString(), QStringLiteral("a cat"));
    QCOMPARE(model.index(2).data(HistoryModel::PromptRole).toString(), QStringLiteral("an old fox"));
    const QModelIndex first = model.index(0);
    QCOMPARE(first.data(HistoryModel::SeedUsedRole).toLongLong(), 33);
    QCOMPARE(first.data(HistoryModel::SizeRole).toString(), QStringLiteral("832*480"));
    QVERIFY(first.data(HistoryModel::VideoPathRole).toString().endsWith(QStringLiteral("newest.mp4")));
    QVERIFY(first.data(HistoryModel::PosterPathRole).toString().endsWith(QStringLiteral("newest.png")));
    QVERIFY(!first.data(Qt::DecorationRole).value<QIcon>().isNull());
    const QString params = first.data(HistoryModel::ParametersTextRole).toString();
    QVERIFY2(params.contains(QStringLiteral("Seed 33")) && params.contains(QStringLiteral("steps 50")), qPrintable(params));
    QCOMPARE(model.rowOfVideo(dir.filePath(QStringLiteral("middle.mp4"))), 1);
    model.setFolder(dir.filePath(QStringLiteral("missing")));
    QCOMPARE(model.rowCount(), 0);
}

void TestAppModels::historyDeletesAllThreeFiles() {
    QTemporaryDir dir;
    writeSampleOutput(dir.path(), QStringLiteral("a"), QStringLiteral("one"), 1, QDateTime::currentDateTime());
    writeSampleOutput(dir.path(), QStringLiteral("b"), QStringLiteral("two"), 2, QDateTime::currentDateTime().addSecs(-5));
    HistoryModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setFolder(dir.path());
    QCOMPARE(model.rowCount(), 2);
    QString error;
    QVERIFY2(model.removeEntry(0, &error), qPrintable(error));
    QCOMPARE(model.rowCount(), 1);
    for (const char* f : {"a.mp4", "a.png", "a.json"}) QVERIFY(!QFileInfo::exists(dir.filePath(QString::fromLatin1(f))));
    QVERIFY(QFileInfo::exists(dir.filePath(QStringLiteral("b.mp4"))));
    QVERIFY(!model.removeEntry(5, &error));
}

void TestAppModels::historyWatchesFolder() {
    QTemporaryDir dir;
    HistoryModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setWatching(true);
    model.setFolder(dir.path());
    QCOMPARE(model.rowCount(), 0);
    writeSampleOutput(dir.path(), QStringLiteral("late"), QStringLiteral("arrives later"), 5, QDateTime::currentDateTime());
    QTRY_COMPARE_WITH_TIMEOUT(model.rowCount(), 1, 5000);
}

QTEST_MAIN(TestAppModels)
#include "test_app_models.moc"
