// The remote engine's pieces without a server: address parsing, file-name and token checks, the job-request
// parser (same messages as --batch, paths kept in the output folder), the job table, the preview's wire form,
// the client ids and job keys (kept in the window's settings), the back-off, and the options; what a window
// makes of a shared engine's queue (its own job queued there, the jobs its session does not follow).
#include "progress_at.h"

#include "cli/options.h"
#include "models/job_list_model.h"
#include "models/progress_format.h"
#include "remote/api_server.h"
#include "remote/backoff.h"
#include "remote/job_table.h"
#include "remote/preview_wire.h"
#include "remote/job_json.h"
#include "remote/remote_backend.h"
#include "remote/remote_link.h"
#include "settings/settings.h"

#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

using namespace wan;
using namespace wan::app;
using namespace wan::app::test;

class TestRemoteUnit : public QObject {
    Q_OBJECT
private slots:
    void listenAddresses();
    void connectAddresses();
    void plainFileNames();
    void tokensCompare();
    void jobRequests();
    void jobTableFollowsTheSession();
    void jobTableKeepsOnePreviewPerStep();
    void jobTableKnowsWhoSubmittedWhat();
    void clientIds();
    void windowKeepsItsClientId();
    void jobTableSaysQueuePlacesAndWhoCancelled();
    void queuedJobReadsAsQueuedUntilItRuns();
    void sharedQueueRowsOfTheWindow();
    void backoffDoublesUpToItsCap();
    void requestTimeoutOption();
    void previewCrossesTheWireUnchanged();
    void options();
};

void TestRemoteUnit::listenAddresses() {
    ListenAddress a = parseListenAddress("7860");
    QCOMPARE(a.port, quint16(7860));
    QVERIFY(a.isLoopback());
    a = parseListenAddress("0.0.0.0:8000");
    QCOMPARE(a.port, quint16(8000));
    QVERIFY(!a.isLoopback());
    QVERIFY(parseListenAddress("localhost:1").isLoopback());
    QVERIFY(parseListenAddress("[::1]:7860").isLoopback());
    QVERIFY(!parseListenAddress("[::]:7860").isLoopback());
    for (const char* bad : {"", "abc", "127.0.0.1:", "1.2.3.4:70000", "host.example:80", "[::1]"}) {
        try {
            parseListenAddress(bad);
            QFAIL(bad);
        } catch (const Error& e) {
            QVERIFY2(QString::fromUtf8(e.what()).startsWith(QStringLiteral("--listen '%1'").arg(bad)), e.what());
        }
    }
}

void TestRemoteUnit::connectAddresses() {
    RemoteEndpoint e = parseRemoteEndpoint("gpu-box:9000");
    QCOMPARE(e.host, QStringLiteral("gpu-box"));
    QCOMPARE(e.port, quint16(9000));
    QCOMPARE(parseRemoteEndpoint("localhost").port, quint16(7860));
    QCOMPARE(parseRemoteEndpoint("[::1]:7860").label(), QStringLiteral("[::1]:7860"));
    QVERIFY_THROWS_EXCEPTION(Error, parseRemoteEndpoint("host:0"));
    QVERIFY_THROWS_EXCEPTION(Error, parseRemoteEndpoint(":7860"));
    QVERIFY_THROWS_EXCEPTION(Error, parseRemoteEndpoint("http://host/x"));
}

void TestRemoteUnit::plainFileNames() {
    for (const char* ok : {"a.mp4", "t2v_1_seed42.png", "..hidden", "x y.json"}) QVERIFY2(isPlainFileName(ok), ok);
    for (const char* bad : {"", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b"}) QVERIFY2(!isPlainFileName(bad), bad);
    QVERIFY(!isPlainFileName(QStringLiteral("a") + QChar(0) + QStringLiteral("b")));
}

void TestRemoteUnit::tokensCompare() {
    QVERIFY(constantTimeEquals("s3cret", "s3cret"));
    QVERIFY(!constantTimeEquals("s3cre", "s3cret"));
    QVERIFY(!constantTimeEquals("s3crett", "s3cret"));
    QVERIFY(!constantTimeEquals("S3cret", "s3cret"));
    QVERIFY(!constantTimeEquals("", "s3cret"));
}

void TestRemoteUnit::jobRequests() {
    ApiConfig config;
    config.outputDir = QStringLiteral("/srv/out");
    config.defaults.sample_steps = 7;
    GenerationRequest r;
    QString error;
    // Spread over several lines (a pretty-printed body) is fine; the defaults fill what is left out.
    QVERIFY2(parseJobRequest("{\n  \"prompt\": \"a fox\",\n  \"size\": \"64*48\",\n  \"save_latents\": \"l.safetensors\"\n}",
                             config, &r, &error), qPrintable(error));
    QCOMPARE(r.prompt, std::string("a fox"));
    QCOMPARE(r.width, 64);
    QCOMPARE(r.height, 48);
    QCOMPARE(r.sample_steps, 7);
    QCOMPARE(r.output_dir, std::string("/srv/out"));
    QCOMPARE(r.save_latents, std::string("/srv/out/l.safetensors"));
    QVERIFY(!parseJobRequest("[1]", config, &r, &error));
    QVERIFY2(error.contains(QLatin1String("not an object")), qPrintable(error));
    QVERIFY(!parseJobRequest(R"({"prompt": "x", "init_noise": "/etc/passwd"})", config, &r, &error));
    QVERIFY2(error.contains(QLatin1String("\"init_noise\": expected a plain file name")), qPrintable(error));
    QVERIFY(!parseJobRequest(R"({"prompt": "x", "output_dir": "out"})", config, &r, &error));
    QVERIFY(!parseJobRequest(R"({"prompt": "x", "sample_steps": "many"})", config, &r, &error));
    QVERIFY2(error.startsWith(QLatin1String("request: ")), qPrintable(error));

    // The window's job over --connect is its request's JSON: the per-expert LoRAs of a Wan2.2 A14B job arrive.
    GenerationRequest sent;
    sent.prompt = "a kite";
    sent.loras = {{"/srv/loras/style.safetensors", 0.8}};
    sent.loras_high = {{"/srv/loras/high.safetensors", 1.0}};
    sent.loras_low = {{"/srv/loras/low.safetensors", 0.9}};
    QVERIFY2(parseJobRequest(remoteJobBody(sent), config, &r, &error), qPrintable(error));
    QVERIFY(r.loras == sent.loras);
    QVERIFY(r.loras_high == sent.loras_high);
    QVERIFY(r.loras_low == sent.loras_low);
}

void TestRemoteUnit::jobTableFollowsTheSession() {
    JobTable t;
    t.add(1, "a fox");
    t.add(2, "a cat");
    QCOMPARE(JobTable::toJson(*t.find(2)).value(QStringLiteral("state")).toString(), QStringLiteral("queued"));
    QVERIFY(t.markRunning(1));
    const ProgressInfo p = progressAt(Stage::Denoise, 5, 10, 2, 6);
    QJsonObject j = JobTable::toJson(*t.update(1, p));
    QCOMPARE(j.value(QStringLiteral("stage")).toString(), QStringLiteral("denoise"));
    QCOMPARE(j.value(QStringLiteral("step")).toInt(), 5);
    QCOMPARE(j.value(QStringLiteral("steps")).toInt(), 10);
    QCOMPARE(j.value(QStringLiteral("eta_s")).toDouble(), 4.0);  // seconds left
    QVERIFY(j.value(QStringLiteral("progress")).toDouble() > 0.4 && j.value(QStringLiteral("progress")).toDouble() < 0.5);
    GenerationResult done;
    done.status = JobStatus::Ok;
    done.video_path = "/srv/out/fox.mp4";
    done.seed_used = 42;
    j = JobTable::toJson(*t.finish(1, done));
    QCOMPARE(j.value(QStringLiteral("state")).toString(), QStringLiteral("done"));
    QCOMPARE(j.value(QStringLiteral("progress")).toDouble(), 1.0);
    QCOMPARE(j.value(QStringLiteral("outputs")).toObject().value(QStringLiteral("video")).toString(),
             QStringLiteral("fox.mp4"));  // a name for /api/files, never the server's path
    QCOMPARE(j.value(QStringLiteral("seed")).toInteger(), 42);
    j = JobTable::toJson(*t.fail(2, QStringLiteral("out of memory")));
    QCOMPARE(j.value(QStringLiteral("state")).toString(), QStringLiteral("failed"));
    QCOMPARE(j.value(QStringLiteral("error")).toString(), QStringLiteral("out of memory"));
    QVERIFY(!t.update(3, p));
    // Finished jobs are forgotten oldest first; unfinished ones never.
    for (int64_t id = 10; id < 10 + static_cast<int64_t>(JobTable::kMaxFinished) + 5; ++id) {
        t.add(id, "x");
        t.finish(id, done);
    }
    QVERIFY(t.find(1) == nullptr);
    QCOMPARE(t.jobs().size(), JobTable::kMaxFinished);
}

void TestRemoteUnit::jobTableKeepsOnePreviewPerStep() {
    JobTable t;
    t.add(1, "a fox");
    QImage frame(4, 4, QImage::Format_RGB888);
    frame.fill(Qt::red);
    QVERIFY(t.notePreview(1, 1, frame));
    QVERIFY(!t.notePreview(1, 1, frame));  // the same step again: not sent twice
    QVERIFY(t.notePreview(1, 3, frame));
    QVERIFY(!t.notePreview(1, 2, frame));  // an older step after a newer one
    QCOMPARE(t.find(1)->previewStep, 3);
    QCOMPARE(t.find(1)->previewFrame, frame);
    QVERIFY(!t.notePreview(2, 1, frame));  // unknown job
    GenerationResult done;
    done.status = JobStatus::Ok;
    t.finish(1, done);
    QVERIFY(!t.notePreview(1, 4, frame));  // over
}

void TestRemoteUnit::previewCrossesTheWireUnchanged() {
    PreviewFrames frames;
    frames.frames = 3;
    frames.height = 6;
    frames.width = 10;
    frames.step = 7;
    frames.rgb.resize(3 * 6 * 10 * 3);
    for (size_t i = 0; i < frames.rgb.size(); ++i) frames.rgb[i] = static_cast<uint8_t>((i * 37 + i / 7) % 256);
    const QJsonObject message = previewMessage(42, frames);
    QCOMPARE(message.value(QStringLiteral("type")).toString(), QStringLiteral("preview"));
    QCOMPARE(message.value(QStringLiteral("job")).toInteger(), 42);
    PreviewFrames back;
    QString error;
    QVERIFY2(previewFromMessage(message, &back, &error), qPrintable(error));
    QCOMPARE(back.step, 7);
    QCOMPARE(back.frames, 3);
    QCOMPARE(back.height, 6);
    QCOMPARE(back.width, 10);
    QVERIFY(back.rgb == frames.rgb);  // lossless: the window animates the engine's very pixels
    const QImage middle = previewMiddleFrame(frames);
    QCOMPARE(middle.size(), QSize(10, 6));
    QCOMPARE(middle.pixelColor(0, 0), QColor(frames.frame(1)[0], frames.frame(1)[1], frames.frame(1)[2]));
    // A message whose image does not match its declared sizes is refused with the sizes named.
    QJsonObject wrong = message;
    wrong.insert(QStringLiteral("frames"), 4);
    QVERIFY(!previewFromMessage(wrong, &back, &error));
    QVERIFY2(error.contains(QString::fromUtf8("the image is 10×18, expected 10×24")), qPrintable(error));
    wrong = message;
    wrong.remove(QStringLiteral("width"));
    QVERIFY(!previewFromMessage(wrong, &back, &error));
    QVERIFY2(error.contains(QLatin1String("\"width\"")), qPrintable(error));
}

void TestRemoteUnit::options() {
    const char* argv[] = {"wanstudio", "--listen", "0.0.0.0:7860", "--api-token", "t"};
    AppOptions o = parseOptions(5, const_cast<char**>(argv));
    QCOMPARE(o.mode, RunMode::Listen);
    QCOMPARE(o.listenAddress, std::string("0.0.0.0:7860"));
    QCOMPARE(o.apiToken, std::string("t"));
    const char* argv2[] = {"wanstudio", "--connect", "localhost:7860", "--batch", "jobs.txt"};
    o = parseOptions(5, const_cast<char**>(argv2));
    QCOMPARE(o.mode, RunMode::Headless);
    QCOMPARE(o.connectAddress, std::string("localhost:7860"));
    const char* argv3[] = {"wanstudio", "--listen", "7860", "--batch", "jobs.txt"};
    QVERIFY_THROWS_EXCEPTION(Error, parseOptions(5, const_cast<char**>(argv3)));
    QVERIFY(helpText().find("--listen [ADDR:]PORT") != std::string::npos);
    QVERIFY(helpText().find("--connect HOST:PORT") != std::string::npos);
}

void TestRemoteUnit::jobTableKnowsWhoSubmittedWhat() {
    JobTable t;
    t.add(1, "a fox", QStringLiteral("window-a"), QStringLiteral("7"));
    t.add(2, "a cat");  // a curl user: no client, no key
    QCOMPARE(JobTable::toJson(*t.find(1)).value(QStringLiteral("client")).toString(), QStringLiteral("window-a"));
    QVERIFY(JobTable::toJson(*t.find(2)).value(QStringLiteral("client")).isNull());
    QCOMPARE(t.findSubmitted(QStringLiteral("window-a"), QStringLiteral("7"))->id, int64_t(1));
    QVERIFY(!t.findSubmitted(QStringLiteral("window-b"), QStringLiteral("7")));  // keys are per client
    QVERIFY(!t.findSubmitted(QString(), QString()));
    // A queued job asked to cancel is cancelled in the table at once; a running one waits for its step.
    QCOMPARE(t.cancelQueued(2)->state, QStringLiteral("cancelled"));
    QCOMPARE(t.find(2)->error, QStringLiteral("cancelled before it started"));
    t.markRunning(1);
    QCOMPARE(t.cancelQueued(1)->state, QStringLiteral("running"));
    t.markRunning(2);  // the session's late word on a job it skipped changes nothing
    QCOMPARE(t.find(2)->state, QStringLiteral("cancelled"));
    QCOMPARE(JobTable::toJson(*t.update(1, progressAt(Stage::Denoise, 1, 4, 3.5))).value(QStringLiteral("elapsed_s")).toDouble(),
             3.5);
}

void TestRemoteUnit::clientIds() {
    QVERIFY(isClientId("0b6f2c1e-5d6a-4c59-9a43-1c2d3e4f5a6b"));
    QVERIFY(isClientId("7"));
    QVERIFY(!isClientId(""));
    QVERIFY(!isClientId("a b"));
    QVERIFY(!isClientId("../x"));
    QVERIFY(!isClientId(QByteArray(65, 'a')));
    // Each --connect process draws its own, valid as a header.
    const RemoteEndpoint a = parseRemoteEndpoint("localhost:7860"), b = parseRemoteEndpoint("localhost:7860");
    QVERIFY(isClientId(a.clientId));
    QVERIFY(a.clientId != b.clientId);
    // Jobs go out as "clientId.runId": valid as a header, told apart per run, all "mine" to the client.
    QVERIFY(isClientId(a.clientHeader()));
    RemoteEndpoint rerun = parseRemoteEndpoint("localhost:7860");
    rerun.clientId = a.clientId;  // the same window started again: its settings keep the id, the run is new
    QVERIFY(rerun.clientHeader() != a.clientHeader());
    QVERIFY(rerun.isMine(QString::fromLatin1(a.clientHeader())));
    QVERIFY(!b.isMine(QString::fromLatin1(a.clientHeader())));
    QVERIFY(!a.isMine(QString()));
    QVERIFY(!a.isMine(QString::fromLatin1(a.clientId)));  // a bare id is some other client's choice of name
}

// Settings::remoteClientId: drawn once per installation (settings file) and kept; a fresh one gets its own.
void TestRemoteUnit::windowKeepsItsClientId() {
    QTemporaryDir dir;
    const QString ini = dir.filePath(QStringLiteral("wanstudio.ini"));
    QByteArray first;
    {
        Settings settings(ini);
        first = settings.remoteClientId();
        QVERIFY(isClientId(first));
        QCOMPARE(settings.remoteClientId(), first);
    }
    QCOMPARE(Settings(ini).remoteClientId(), first);  // a restarted window
    QVERIFY(Settings(dir.filePath(QStringLiteral("fresh.ini"))).remoteClientId() != first);  // a fresh install
    {
        QSettings raw(ini, QSettings::IniFormat);
        raw.setValue(QStringLiteral("remote/clientId"), QStringLiteral("not/a valid id"));
    }
    const QByteArray replaced = Settings(ini).remoteClientId();
    QVERIFY(isClientId(replaced) && replaced != first);
    QCOMPARE(Settings(ini).remoteClientId(), replaced);
}

void TestRemoteUnit::jobTableSaysQueuePlacesAndWhoCancelled() {
    JobTable t;
    for (int64_t id = 1; id <= 4; ++id) t.add(id, "job");
    t.markRunning(1);
    QCOMPARE(t.queuePosition(1), 0);  // running: not in the queue
    QCOMPARE(t.queuePosition(2), 1);
    QCOMPARE(t.queuePosition(4), 3);
    QCOMPARE(t.describe(*t.find(4)).value(QStringLiteral("queue_position")).toInt(), 3);
    QVERIFY(!t.describe(*t.find(1)).contains(QStringLiteral("queue_position")));
    t.noteCancelRequest(2, QStringLiteral("window-b.1a2b3c4d"));
    t.noteCancelRequest(2, QStringLiteral("someone-else"));  // the first asker is the one recorded
    t.cancelQueued(2);
    QCOMPARE(t.queuePosition(4), 2);  // one fewer in front
    QCOMPARE(t.queuePosition(99), 0);
    QCOMPARE(JobTable::toJson(*t.find(2)).value(QStringLiteral("cancelled_by")).toString(),
             QStringLiteral("window-b.1a2b3c4d"));
    // A cancel asked without a name is recorded as asked (null "cancelled_by" once cancelled); a job that
    // finishes before the cancel takes effect was not cancelled by anyone.
    t.noteCancelRequest(3, QString());
    t.cancelQueued(3);
    QVERIFY(JobTable::toJson(*t.find(3)).value(QStringLiteral("cancelled_by")).isNull());
    t.noteCancelRequest(1, QStringLiteral("window-b.1a2b3c4d"));
    GenerationResult ok;
    ok.status = JobStatus::Ok;
    QVERIFY(JobTable::toJson(*t.finish(1, ok)).value(QStringLiteral("cancelled_by")).isNull());
}

// A job of this window waiting on the shared engine: Queued with its place, no clock, no ETA, until the engine
// starts it.
void TestRemoteUnit::queuedJobReadsAsQueuedUntilItRuns() {
    QJsonObject job{{QStringLiteral("state"), QStringLiteral("queued")}, {QStringLiteral("stage"), QStringLiteral("queued")},
                    {QStringLiteral("queue_position"), 2}, {QStringLiteral("elapsed_s"), 0}};
    ProgressInfo p = progressFromJob(job, 12.0);
    QCOMPARE(p.stage, Stage::Queued);
    QCOMPARE(p.step, 2);
    QCOMPARE(p.eta_s, -1.0);
    QCOMPARE(progressText(p), std::string("Queued · 2nd in line"));
    QCOMPARE(overallFraction(p), 0.0);
    p.step = 1;
    QCOMPARE(progressText(p), std::string("Queued · next"));
    p.step = 0;
    QCOMPARE(progressText(p), std::string("Queued"));
    for (const auto& [n, text] : {std::pair{3, "3rd"}, std::pair{4, "4th"}, std::pair{11, "11th"}, std::pair{12, "12th"},
                                  std::pair{13, "13th"}, std::pair{21, "21st"}, std::pair{22, "22nd"}, std::pair{101, "101st"}}) {
        p.step = n;
        QCOMPARE(progressText(p), std::string("Queued · ") + text + " in line");
    }
    // Started, before its first progress: running, in its first stage.
    job.insert(QStringLiteral("state"), QStringLiteral("running"));
    QCOMPARE(progressFromJob(job).stage, Stage::Text);
    QCOMPARE(RemoteLink::otherJobFrom(QJsonObject{{QStringLiteral("state"), QStringLiteral("queued")},
                                                  {QStringLiteral("queue_position"), 4}}).progress.step, 0);

    // The window's model: a session job on a shared engine stays Queued from its start until the engine runs it.
    JobListModel model;
    struct NoLink : EngineLink {
        QString where() const override { return QStringLiteral("gpu:7860"); }
        bool isUp() const override { return true; }
        void cancelOtherJob(qint64) override {}
        void setHistoryFolder(const QString&) override {}
    } link;
    model.attach(&link);
    GenerationRequest request;
    request.prompt = "mine";
    model.addJob(1, request);
    model.onJobStarted(1);
    const QModelIndex row = model.index(0);
    QCOMPARE(row.data(JobListModel::StateRole).toInt(), int(JobListModel::JobState::Queued));
    QCOMPARE(row.data(JobListModel::StateTextRole).toString(), QStringLiteral("Queued"));
    model.onProgress(1, progressAt(Stage::Queued, 2, 0, 5.0));
    QCOMPARE(row.data(JobListModel::StateRole).toInt(), int(JobListModel::JobState::Queued));
    QCOMPARE(row.data(JobListModel::StateTextRole).toString(), QStringLiteral("Queued · 2nd in line"));
    QCOMPARE(row.data(JobListModel::ProgressRole).toDouble(), 0.0);
    QVERIFY(row.data(JobListModel::EtaRole).toDouble() < 0);
    QCOMPARE(model.countInState(JobListModel::JobState::Queued), 1);
    QCOMPARE(model.waitingIds(), std::vector<qint64>{1});  // still kept by the saved queue
    model.onProgress(1, progressAt(Stage::Denoise, 1, 4, 2.0, 8.0));
    QCOMPARE(row.data(JobListModel::StateRole).toInt(), int(JobListModel::JobState::Running));
    QVERIFY(row.data(JobListModel::StateTextRole).toString().startsWith(QStringLiteral("Denoising 1/4")));
    // Cancelled by someone else: the row says so; a cancel of its own reads as before.
    GenerationResult cancelled;
    cancelled.status = JobStatus::Cancelled;
    cancelled.message = "another client (curl-user) cancelled it on the engine at gpu:7860";
    model.onFinished(1, cancelled);
    QCOMPARE(row.data(JobListModel::StateTextRole).toString(),
             QStringLiteral("Cancelled: another client (curl-user) cancelled it on the engine at gpu:7860"));
    // Without a shared engine a started job runs at once.
    JobListModel local;
    local.addJob(1, request);
    local.onJobStarted(1);
    QCOMPARE(local.job(1)->state, JobListModel::JobState::Running);
}

// The rows of jobs the session does not follow: this window's from an earlier run (its own, plain), another
// client's (set apart); one that ended while the link was down is listed like one seen ending, one that ended
// before the window connected is not (the history has it); a restarted engine's ids do not meet the old ones.
void TestRemoteUnit::sharedQueueRowsOfTheWindow() {
    auto listed = [](qint64 id, const char* state, bool mine, bool isNew, int engineRun = 0) {
        OtherJob o;
        o.serverId = id;
        o.prompt = QStringLiteral("job %1").arg(id);
        o.state = QString::fromLatin1(state);
        o.mine = mine;
        o.isNew = isNew;
        o.engineRun = engineRun;
        return o;
    };
    JobListModel model;
    model.onOtherJobsListed({listed(1, "done", false, false), listed(2, "running", true, false),
                             listed(3, "queued", false, false)});
    QCOMPARE(model.rowCount(), 2);  // job 1 ended before the window connected
    const QModelIndex earlier = model.index(model.rowOf(JobListModel::otherJobKey(2)));
    QVERIFY(earlier.data(JobListModel::EarlierRunRole).toBool());
    QVERIFY(!earlier.data(JobListModel::OtherClientRole).toBool());
    QCOMPARE(earlier.data(JobListModel::ServerIdRole).toLongLong(), 2LL);
    QVERIFY2(earlier.data(Qt::DisplayRole).toString().startsWith(QStringLiteral("your #2 (other session)")),
             qPrintable(earlier.data(Qt::DisplayRole).toString()));
    QVERIFY(model.index(model.rowOf(JobListModel::otherJobKey(3))).data(JobListModel::OtherClientRole).toBool());
    QVERIFY(model.waitingIds().empty());  // on the engine already: not the saved queue's
    // Back after a drop: job 4 came and went meanwhile, job 3 was cancelled meanwhile.
    model.onOtherJobsListed({listed(2, "running", true, false), listed(3, "cancelled", false, false),
                             listed(4, "done", false, true)});
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.job(JobListModel::otherJobKey(3))->state, JobListModel::JobState::Cancelled);
    QCOMPARE(model.job(JobListModel::otherJobKey(4))->state, JobListModel::JobState::Done);
    // Cleared rows stay cleared on the next listing.
    model.clearFinished();
    model.onOtherJobsListed({listed(2, "running", true, false), listed(3, "cancelled", false, false),
                             listed(4, "done", false, false)});
    QCOMPARE(model.rowCount(), 1);
    // The engine restarted: its job 2 is another job than the old run's 2, whose row (unfinished, lost) goes.
    model.onOtherJobsListed({listed(2, "queued", false, true, 1)});
    QCOMPARE(model.rowCount(), 1);
    QCOMPARE(model.rowOf(JobListModel::otherJobKey(2)), -1);
    QVERIFY(model.rowOf(JobListModel::otherJobKey(2, 1)) >= 0);
    QCOMPARE(model.job(JobListModel::otherJobKey(2, 1))->mine, false);
}

void TestRemoteUnit::backoffDoublesUpToItsCap() {
    Backoff b(500, 3000);
    QCOMPARE(b.next(), 500);
    QCOMPARE(b.next(), 1000);
    QCOMPARE(b.next(), 2000);
    QCOMPARE(b.next(), 3000);
    QCOMPARE(b.next(), 3000);
    b.reset();
    QCOMPARE(b.next(), 500);
}

void TestRemoteUnit::requestTimeoutOption() {
    for (const char* spelling : {"--api-request-timeout", "--api_request_timeout"}) {
        const char* argv[] = {"wanstudio", "--listen", "7860", spelling, "2.5"};
        QCOMPARE(parseOptions(5, const_cast<char**>(argv)).apiRequestTimeoutS, 2.5);
    }
    const char* inline_[] = {"wanstudio", "--listen", "7860", "--api-request-timeout=120"};
    QCOMPARE(parseOptions(4, const_cast<char**>(inline_)).apiRequestTimeoutS, 120.0);
    auto message = [](std::vector<const char*> args) {
        try {
            parseOptions(static_cast<int>(args.size()), const_cast<char**>(args.data()));
        } catch (const Error& e) {
            return QString::fromUtf8(e.what());
        }
        return QString();
    };
    for (const char* bad : {"0", "-1", "nan", "soon", "3601"}) {
        const QString m = message({"wanstudio", "--listen", "7860", "--api-request-timeout", bad});
        QVERIFY2(m.startsWith(QStringLiteral("--api-request-timeout %1").arg(QLatin1String(bad))) ||
                     m.startsWith(QStringLiteral("--api-request-timeout '%1'").arg(QLatin1String(bad))),
                 qPrintable(m));
    }
    QVERIFY(message({"wanstudio", "--listen", "7860", "--api-request-timeout", "0"}).contains(QStringLiteral("between 0.1 and 3600")));
    const QString noServer = message({"wanstudio", "--connect", "localhost:7860", "--api-request-timeout", "5"});
    QVERIFY2(noServer.contains(QStringLiteral("use it with --listen")), qPrintable(noServer));
    QVERIFY(helpText().find("--api-request-timeout SECONDS") != std::string::npos);
}

QTEST_GUILESS_MAIN(TestRemoteUnit)
#include "test_remote_unit.moc"
