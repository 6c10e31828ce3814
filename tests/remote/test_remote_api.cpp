// `wanstudio --listen` end to end on loopback: the real binary on the demo checkpoint (CPU), driven over HTTP
// and the /api/events WebSocket like a remote client would. WANSTUDIO names the binary; WAN_MPIRUN (a launcher
// prefix such as "mpiexec --oversubscribe -np 2") and WAN_COMPARE (tests/e2e's wan-compare) enable the
// multi-rank test, which is its own ctest entry.
#include "remote_test_client.h"

#include "core/batch_file.h"
#include "core/cancel.h"
#include "remote/preview_wire.h"
#include "remote/remote_backend.h"
#include "video/video.h"

#include <QDir>
#include <QFile>
#include <QImage>
#include <QNetworkReply>
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>
#include <QWebSocket>

#include <atomic>
#include <memory>

namespace {
constexpr int kReadyTimeoutMs = 180000;
constexpr int kJobTimeoutMs = 300000;
// Every job's defaults (the server's command line): small and quick on CPU.
const QStringList kJobDefaults = {QStringLiteral("--device"), QStringLiteral("cpu"), QStringLiteral("--size"),
                                  QStringLiteral("64*64"), QStringLiteral("--frame-num"), QStringLiteral("5"),
                                  QStringLiteral("--sample-steps"), QStringLiteral("3")};
const QByteArray kJob = R"({"prompt": "a lighthouse in a storm", "base_seed": 1234})";
}  // namespace

class TestRemoteApi : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void infoDescribesTheEngine();
    void loadProgressReachesConnectedClients();
    void roundTripWritesAPlayableVideo();
    void badRequestsGet400WithTheCliMessage();
    void oversizedBodyIsRefused();
    void onlyPlainFilesOfTheOutputFolderAreServed();
    void cancelsQueuedAndRunningJobs();
    void twoClientsShareOneQueueInOrder();
    void aRepeatedPostIsOneJob();
    void tokenIsRequiredAndChecked();
    void nonLoopbackAddressNeedsAToken();
    void connectedBatchFetchesTheVideo();
    void connectionLossIsReportedAndRetried();
    void livePreviewGoesOnlyToClientsThatAskOncePerStep();
    void thumbnailsComeFromThePosterOrTheLastPreview();
    void historyListsTheOutputFolderNewestFirst();
    void stalledRequestsTimeOutWithoutHoldingTheServer();
    void promptExtensionNeedsItConfigured();
    void promptExtensionRunsOnTheServer();
    void mpiServesTheSingleProcessLatent();
    void cleanupTestCase();

private:
    /// The shared single-process server (started on first use, so that the MPI test alone needs none).
    EngineProcess& server();
    qint64 submit(QNetworkAccessManager& nam, const QByteArray& body);
    /// Polls GET /api/jobs/N until `state` (or a final state); returns the last job JSON.
    QJsonObject waitForState(EngineProcess& engine, qint64 id, const QString& state, int timeoutMs = kJobTimeoutMs,
                             const QByteArray& token = {});
    QString outDir() const { return tmp_.filePath(QStringLiteral("out")); }
    /// GET /api/files/<name> from `engine`, as a remote client fetches an output, written to `localPath`.
    /// Returns the HTTP status (200 expected), or -1 where the local copy could not be written.
    int download(EngineProcess& engine, const QString& name, const QString& localPath);

    QTemporaryDir tmp_;
    std::unique_ptr<EngineProcess> server_;
    QNetworkAccessManager nam_;
};

void TestRemoteApi::initTestCase() {
    QVERIFY2(!qEnvironmentVariable("WANSTUDIO").isEmpty(), "set WANSTUDIO to the wanstudio binary");
    QVERIFY(tmp_.isValid());
}

EngineProcess& TestRemoteApi::server() {
    if (!server_) {
        server_ = std::make_unique<EngineProcess>();
        QString error;
        const bool started = server_->start({}, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"),
                                            QStringLiteral("--output-dir"), outDir()} + kJobDefaults, &error);
        if (!started) qFatal("%s", qPrintable(error));
        if (!server_->waitReady(kReadyTimeoutMs)) qFatal("engine not ready:\n%s", qPrintable(server_->output()));
    }
    return *server_;
}

qint64 TestRemoteApi::submit(QNetworkAccessManager& nam, const QByteArray& body) {
    const HttpReply r = httpRequest(nam, "POST", server().url(QStringLiteral("/api/jobs")), body);
    if (r.status != 202) qWarning("POST /api/jobs: %d %s", r.status, r.body.constData());
    return r.status == 202 ? r.json().value(QStringLiteral("id")).toInteger() : 0;
}

QJsonObject TestRemoteApi::waitForState(EngineProcess& engine, qint64 id, const QString& state, int timeoutMs,
                                        const QByteArray& token) {
    QJsonObject job;
    QElapsedTimer timer;
    timer.start();
    while (timer.elapsed() < timeoutMs) {
        job = httpRequest(nam_, "GET", engine.url(QStringLiteral("/api/jobs/%1").arg(id)), {}, token).json();
        const QString s = job.value(QStringLiteral("state")).toString();
        if (s == state || s == QLatin1String("done") || s == QLatin1String("failed") ||
            s == QLatin1String("cancelled"))
            return job;
        QTest::qWait(50);
    }
    return job;
}

int TestRemoteApi::download(EngineProcess& engine, const QString& name, const QString& localPath) {
    const HttpReply reply = httpRequest(nam_, "GET", engine.url(QStringLiteral("/api/files/") + name));
    if (reply.status != 200) return reply.status;
    QFile f(localPath);
    if (!f.open(QIODevice::WriteOnly) || f.write(reply.body) != reply.body.size()) return -1;
    return reply.status;
}

void TestRemoteApi::infoDescribesTheEngine() {
    const HttpReply r = httpRequest(nam_, "GET", server().url(QStringLiteral("/api/info")));
    QCOMPARE(r.status, 200);
    const QJsonObject info = r.json();
    QCOMPARE(info.value(QStringLiteral("engine_state")).toString(), QStringLiteral("ready"));
    QCOMPARE(info.value(QStringLiteral("world_size")).toInt(), 1);
    QVERIFY(!info.value(QStringLiteral("model_variant")).toString().isEmpty());
    QVERIFY(!info.value(QStringLiteral("version")).toString().isEmpty());
    QVERIFY(info.contains(QStringLiteral("gpu_memory_used_gb")));
}

// A server still loading (each tensor read slowed down) says how far in /api/info; a --connect client shows that as
// its own load, and its Cancel stops only its own waiting: the server loads on.
void TestRemoteApi::loadProgressReachesConnectedClients() {
    EngineProcess engine;
    QString error;
    QVERIFY2(engine.start({}, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"),
                                          QStringLiteral("--output-dir"), outDir()} + kJobDefaults,
                          &error, {QStringLiteral("WAN_TEST_LOAD_DELAY_MS=30")}),
             qPrintable(error));
    QJsonObject load;
    QTRY_VERIFY_WITH_TIMEOUT((load = httpRequest(nam_, "GET", engine.url(QStringLiteral("/api/info")))
                                         .json().value(QStringLiteral("load")).toObject(),
                              load.value(QStringLiteral("bytes_total")).toInteger() > 0),
                             30000);
    QVERIFY(load.value(QStringLiteral("bytes_done")).toInteger() <= load.value(QStringLiteral("bytes_total")).toInteger());
    QVERIFY(!load.value(QStringLiteral("file")).toString().isEmpty());
    QVERIFY(!load.value(QStringLiteral("component")).toString().isEmpty());

    auto backend = wan::app::makeRemoteBackend(
        wan::app::parseRemoteEndpoint(QStringLiteral("127.0.0.1:%1").arg(engine.port()).toStdString()));
    std::atomic<bool> cancel{false};
    int reports = 0;
    wan::LoadControl control;
    control.cancel = &cancel;
    control.progress = [&](const wan::LoadProgress& p) {
        ++reports;
        if (p.bytes_total > 0) cancel = true;
    };
    bool cancelled = false;
    try {
        backend->start(control);
    } catch (const wan::Cancelled&) {
        cancelled = true;
    }
    QVERIFY(cancelled);
    QVERIFY(reports > 0);
    backend->shutdown();
    QVERIFY2(engine.waitReady(kReadyTimeoutMs), qPrintable(engine.output()));
    QCOMPARE(engine.stop(), 0);
}

void TestRemoteApi::roundTripWritesAPlayableVideo() {
    const qint64 id = submit(nam_, kJob);
    QVERIFY(id > 0);
    const QJsonObject job = waitForState(server(), id, QStringLiteral("done"));
    QCOMPARE(job.value(QStringLiteral("state")).toString(), QStringLiteral("done"));
    QCOMPARE(job.value(QStringLiteral("progress")).toDouble(), 1.0);
    QCOMPARE(job.value(QStringLiteral("steps")).toInt(), 3);
    const QJsonObject outputs = job.value(QStringLiteral("outputs")).toObject();
    const QString video = outputs.value(QStringLiteral("video")).toString();
    QVERIFY2(video.endsWith(QLatin1String(".mp4")), qPrintable(QJsonDocument(job).toJson()));

    const QString copy = tmp_.filePath(QStringLiteral("fetched.mp4"));
    QCOMPARE(download(server(), video, copy), 200);
    const wan::video::VideoInfo v = wan::video::probe_video(copy.toStdString());
    QCOMPARE(v.width, 64);
    QCOMPARE(v.height, 64);
    QCOMPARE(v.frames, int64_t{5});
    for (const QString key : {QStringLiteral("poster"), QStringLiteral("metadata")}) {
        const QString name = outputs.value(key).toString();
        QVERIFY2(!name.isEmpty(), qPrintable(key));
        QCOMPARE(httpRequest(nam_, "GET", server().url(QStringLiteral("/api/files/") + name)).status, 200);
    }
    // The job is listed, with the same fields.
    const QJsonArray jobs = httpRequest(nam_, "GET", server().url(QStringLiteral("/api/jobs"))).json()
                                .value(QStringLiteral("jobs")).toArray();
    bool listed = false;
    for (const auto& j : jobs) listed |= j.toObject().value(QStringLiteral("id")).toInteger() == id;
    QVERIFY(listed);
}

void TestRemoteApi::badRequestsGet400WithTheCliMessage() {
    const QString jobs = server().url(QStringLiteral("/api/jobs"));
    HttpReply r = httpRequest(nam_, "POST", jobs, "{\"prompt\": \"unterminated");
    QCOMPARE(r.status, 400);
    QVERIFY2(r.error().contains(QLatin1String("not valid JSON")), qPrintable(r.error()));

    // The message a --batch line would get, with "request" in place of the file and line.
    const struct { QByteArray body; } invalid[] = {{R"({"prompt": "x", "frame_num": 6})"},
                                                   {R"({"prompt": "x", "bogus": 1})"},
                                                   {R"({"prompt": "x", "size": "832x"})"},
                                                   {R"({"prompt": "   "})"}};
    for (const auto& c : invalid) {
        QString cli;
        try {
            wan::parse_batch_text(c.body.toStdString(), wan::GenerationRequest{}, "request");
        } catch (const std::exception& e) {
            cli = QString::fromUtf8(e.what()).replace(QLatin1String("request, line 1: "), QLatin1String("request: "));
        }
        QVERIFY2(!cli.isEmpty(), c.body.constData());
        r = httpRequest(nam_, "POST", jobs, c.body);
        QCOMPARE(r.status, 400);
        QCOMPARE(r.error(), cli);
    }
    // Paths stay in the output folder.
    r = httpRequest(nam_, "POST", jobs, R"({"prompt": "x", "output_dir": "/tmp"})");
    QCOMPARE(r.status, 400);
    QVERIFY2(r.error().contains(QLatin1String("output_dir")), qPrintable(r.error()));
    r = httpRequest(nam_, "POST", jobs, R"({"prompt": "x", "save_latents": "../x.safetensors"})");
    QCOMPARE(r.status, 400);
    QVERIFY2(r.error().contains(QLatin1String("plain file name")), qPrintable(r.error()));
    // Unknown resources and methods, unknown jobs.
    QCOMPARE(httpRequest(nam_, "GET", server().url(QStringLiteral("/api/nothing"))).status, 404);
    QCOMPARE(httpRequest(nam_, "PUT", jobs, "{}").status, 404);
    QCOMPARE(httpRequest(nam_, "GET", server().url(QStringLiteral("/api/jobs/987654"))).status, 404);
    QCOMPARE(httpRequest(nam_, "DELETE", server().url(QStringLiteral("/api/jobs/abc"))).status, 404);
    // Still serving.
    QCOMPARE(httpRequest(nam_, "GET", server().url(QStringLiteral("/api/info"))).status, 200);
}

void TestRemoteApi::oversizedBodyIsRefused() {
    const QByteArray huge(200 * 1024, 'x');
    HttpReply r = rawRequest(server().port(), "POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                              "Content-Length: " + QByteArray::number(huge.size()) + "\r\n\r\n" + huge);
    QCOMPARE(r.status, 413);
    QVERIFY(r.error().contains(QLatin1String("too large")));
    r = rawRequest(server().port(), "POST /api/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "5\r\nhello\r\n0\r\n\r\n");
    QCOMPARE(r.status, 413);
    QCOMPARE(httpRequest(nam_, "GET", server().url(QStringLiteral("/api/info"))).status, 200);
}

void TestRemoteApi::onlyPlainFilesOfTheOutputFolderAreServed() {
    server();
    QDir out(outDir());
    QVERIFY(QFile::link(QStringLiteral("/etc/hostname"), out.filePath(QStringLiteral("link-out.txt"))));
    QVERIFY(out.mkpath(QStringLiteral("sub")));
    {
        QFile inside(out.filePath(QStringLiteral("sub/inner.txt")));
        QVERIFY(inside.open(QIODevice::WriteOnly));
        inside.write("x");
        QFile plain(out.filePath(QStringLiteral("plain.txt")));
        QVERIFY(plain.open(QIODevice::WriteOnly));
        plain.write("hello");
    }
    const QByteArray tails[] = {"../../../../etc/hostname", "..%2F..%2F..%2F..%2Fetc%2Fhostname", "%2Fetc%2Fhostname",
                                "..", "%2E%2E", "sub", "sub/inner.txt", "sub%2Finner.txt", "link-out.txt",
                                "no-such-file.mp4", ""};
    for (const QByteArray& tail : tails) {
        const HttpReply r = rawRequest(server().port(), "GET /api/files/" + tail + " HTTP/1.1\r\nHost: x\r\n\r\n");
        QVERIFY2(r.status == 404, qPrintable(QStringLiteral("/api/files/%1 gave %2").arg(QString::fromLatin1(tail))
                                                 .arg(r.status)));
    }
    const HttpReply ok = rawRequest(server().port(), "GET /api/files/plain.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    QCOMPARE(ok.status, 200);
    QCOMPARE(ok.body, QByteArray("hello"));
}

void TestRemoteApi::cancelsQueuedAndRunningJobs() {
    const QByteArray longJob = R"({"prompt": "a long job", "sample_steps": 1000})";
    const qint64 running = submit(nam_, longJob);
    const qint64 queued = submit(nam_, longJob);
    const qint64 behind = submit(nam_, longJob);
    QVERIFY(running > 0 && queued > running && behind > queued);
    QJsonObject job = waitForState(server(), running, QStringLiteral("running"));
    QCOMPARE(job.value(QStringLiteral("state")).toString(), QStringLiteral("running"));
    // A queued job says its place (1: next); the running one has none.
    auto jobJson = [&](qint64 id) { return httpRequest(nam_, "GET", server().url(QStringLiteral("/api/jobs/%1").arg(id))).json(); };
    QVERIFY(!jobJson(running).contains(QStringLiteral("queue_position")));
    QCOMPARE(jobJson(queued).value(QStringLiteral("queue_position")).toInt(), 1);
    QCOMPARE(jobJson(behind).value(QStringLiteral("queue_position")).toInt(), 2);
    // Whoever cancels is recorded (X-Wan-Client), for the submitter to see.
    const HttpReply cancelled = httpRequest(nam_, "DELETE", server().url(QStringLiteral("/api/jobs/%1").arg(queued)), {}, {},
                                            {{"X-Wan-Client", "api-test.1"}});
    QCOMPARE(cancelled.status, 202);
    QCOMPARE(cancelled.json().value(QStringLiteral("cancelled_by")).toString(), QStringLiteral("api-test.1"));
    QCOMPARE(jobJson(behind).value(QStringLiteral("queue_position")).toInt(), 1);
    QCOMPARE(httpRequest(nam_, "DELETE", server().url(QStringLiteral("/api/jobs/%1").arg(behind))).status, 202);
    QVERIFY(jobJson(behind).value(QStringLiteral("cancelled_by")).isNull());  // asked without a name
    // Wait for a denoising step so the cancel lands inside the loop, then cancel the running job.
    QTest::qWaitFor([&] {
        job = httpRequest(nam_, "GET", server().url(QStringLiteral("/api/jobs/%1").arg(running))).json();
        return job.value(QStringLiteral("step")).toInt() >= 1 && job.value(QStringLiteral("stage")) == "denoise";
    }, kJobTimeoutMs);
    QCOMPARE(httpRequest(nam_, "DELETE", server().url(QStringLiteral("/api/jobs/%1").arg(running))).status, 202);
    job = waitForState(server(), running, QStringLiteral("cancelled"), 120000);
    QCOMPARE(job.value(QStringLiteral("state")).toString(), QStringLiteral("cancelled"));
    QVERIFY(job.value(QStringLiteral("step")).toInt() < 1000);
    job = waitForState(server(), queued, QStringLiteral("cancelled"), 60000);
    QCOMPARE(job.value(QStringLiteral("state")).toString(), QStringLiteral("cancelled"));
    QCOMPARE(job.value(QStringLiteral("step")).toInt(), 0);  // never ran
}

void TestRemoteApi::twoClientsShareOneQueueInOrder() {
    server();
    // A watcher on /api/events records which job starts running, in order.
    QWebSocket events;
    QList<qint64> started;
    QList<QString> kinds;
    connect(&events, &QWebSocket::textMessageReceived, this, [&](const QString& text) {
        const QJsonObject msg = QJsonDocument::fromJson(text.toUtf8()).object();
        kinds << msg.value(QStringLiteral("type")).toString();
        const QJsonObject job = msg.value(QStringLiteral("job")).toObject();
        if (msg.value(QStringLiteral("type")) == "state" && job.value(QStringLiteral("state")) == "running")
            started << job.value(QStringLiteral("id")).toInteger();
    });
    QSignalSpy connected(&events, &QWebSocket::connected);
    events.open(QUrl(QStringLiteral("ws://127.0.0.1:%1/api/events").arg(server().port())));
    QVERIFY(connected.wait(10000));

    auto clientA = std::make_unique<QNetworkAccessManager>();
    auto clientB = std::make_unique<QNetworkAccessManager>();
    const qint64 a1 = submit(*clientA, kJob);
    const qint64 b1 = submit(*clientB, R"({"prompt": "a red fox in the snow", "base_seed": 7})");
    const qint64 a2 = submit(*clientA, R"({"prompt": "a city at night", "base_seed": 8})");
    QVERIFY(a1 > 0 && b1 > a1 && a2 > b1);
    clientB.reset();  // client B goes away: its job stays in the queue
    for (const qint64 id : {a1, b1, a2})
        QCOMPARE(waitForState(server(), id, QStringLiteral("done")).value(QStringLiteral("state")).toString(),
                 QStringLiteral("done"));
    QTest::qWait(200);
    QCOMPARE(started, (QList<qint64>{a1, b1, a2}));
    QVERIFY(kinds.contains(QStringLiteral("progress")));
    QCOMPARE(kinds.value(0), QStringLiteral("jobs"));  // the snapshot on connect
}

// A --connect client names itself (X-Wan-Client) and each job (X-Wan-Job-Key): a POST repeated after a lost
// answer gets the first one's id, and the job lists who submitted it.
void TestRemoteApi::aRepeatedPostIsOneJob() {
    auto post = [&](const QByteArray& client, const QByteArray& key) {
        return httpRequest(nam_, "POST", server().url(QStringLiteral("/api/jobs")),
                           R"({"prompt": "asked twice", "sample_steps": 1})", {},
                           {{"X-Wan-Client", client}, {"X-Wan-Job-Key", key}});
    };
    const HttpReply first = post("window-1", "5"), again = post("window-1", "5"), otherKey = post("window-1", "6"),
                    otherClient = post("window-2", "5");
    QCOMPARE(first.status, 202);
    const qint64 id = first.json().value(QStringLiteral("id")).toInteger();
    QCOMPARE(again.status, 202);
    QCOMPARE(again.json().value(QStringLiteral("id")).toInteger(), id);
    QVERIFY(otherKey.json().value(QStringLiteral("id")).toInteger() != id);
    QVERIFY(otherClient.json().value(QStringLiteral("id")).toInteger() != id);
    QCOMPARE(waitForState(server(), id, QStringLiteral("queued")).value(QStringLiteral("client")).toString(),
             QStringLiteral("window-1"));
    const HttpReply bad = post("not a client id", "5");
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.error().startsWith(QStringLiteral("X-Wan-Client: expected")), bad.body.constData());
    for (qint64 job : {id, otherKey.json().value(QStringLiteral("id")).toInteger(),
                       otherClient.json().value(QStringLiteral("id")).toInteger()})
        QCOMPARE(waitForState(server(), job, QStringLiteral("done")).value(QStringLiteral("state")).toString(),
                 QStringLiteral("done"));
}

void TestRemoteApi::tokenIsRequiredAndChecked() {
    EngineProcess secured;
    QString error;
    QVERIFY2(secured.start({}, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"),
                            QStringLiteral("--output-dir"), tmp_.filePath(QStringLiteral("secured"))} + kJobDefaults,
                           &error, {QStringLiteral("WANSTUDIO_API_TOKEN=s3cret-token")}),
             qPrintable(error));
    const QString info = secured.url(QStringLiteral("/api/info"));
    HttpReply r = httpRequest(nam_, "GET", info);
    QCOMPARE(r.status, 401);
    QVERIFY(r.error().contains(QLatin1String("token")));
    QCOMPARE(httpRequest(nam_, "GET", info, {}, "wrong").status, 401);
    QCOMPARE(httpRequest(nam_, "GET", info, {}, "s3cret-token-and-more").status, 401);
    QCOMPARE(httpRequest(nam_, "POST", secured.url(QStringLiteral("/api/jobs")), kJob).status, 401);
    QCOMPARE(httpRequest(nam_, "GET", secured.url(QStringLiteral("/api/files/x.mp4"))).status, 401);
    QCOMPARE(httpRequest(nam_, "GET", info, {}, "s3cret-token").status, 200);
    // The WebSocket too: refused without the header, accepted with it.
    QWebSocket anonymous;
    QSignalSpy refused(&anonymous, &QWebSocket::disconnected);
    anonymous.open(QUrl(QStringLiteral("ws://127.0.0.1:%1/api/events").arg(secured.port())));
    QVERIFY(refused.wait(10000));
    QWebSocket authed;
    QSignalSpy connected(&authed, &QWebSocket::connected);
    QNetworkRequest request(QUrl(QStringLiteral("ws://127.0.0.1:%1/api/events").arg(secured.port())));
    request.setRawHeader("Authorization", "Bearer s3cret-token");
    authed.open(request);
    QVERIFY(connected.wait(10000));
    QVERIFY(secured.waitReady(kReadyTimeoutMs, "s3cret-token"));
    QCOMPARE(secured.stop(), 0);
}

void TestRemoteApi::nonLoopbackAddressNeedsAToken() {
    QProcess p;
    QStringList env = QProcess::systemEnvironment();
    env.removeIf([](const QString& e) { return e.startsWith(QLatin1String("WANSTUDIO_API_TOKEN=")); });
    p.setEnvironment(env);
    p.start(qEnvironmentVariable("WANSTUDIO"), {QStringLiteral("--listen"), QStringLiteral("0.0.0.0:0"),
                                                QStringLiteral("--device"), QStringLiteral("cpu")});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 2);
    const QString err = QString::fromUtf8(p.readAllStandardError());
    QVERIFY2(err.contains(QLatin1String("--api-token")), qPrintable(err));
    // A malformed address is named.
    p.start(qEnvironmentVariable("WANSTUDIO"), {QStringLiteral("--listen"), QStringLiteral("localhost:http")});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 2);
    QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains(QLatin1String("--listen 'localhost:http'")));
}

void TestRemoteApi::connectedBatchFetchesTheVideo() {
    // `--connect` swaps the engine for the remote one under any front end; --prompt (headless) is the quickest.
    const QString local = tmp_.filePath(QStringLiteral("local"));
    QProcess p;
    p.start(qEnvironmentVariable("WANSTUDIO"),
            QStringList{QStringLiteral("--connect"), QStringLiteral("127.0.0.1:%1").arg(server().port()),
                        QStringLiteral("--prompt"), QStringLiteral("a paper boat on a pond"),
                        QStringLiteral("--output-dir"), local} + kJobDefaults);
    QVERIFY(p.waitForFinished(kJobTimeoutMs));
    const QString err = QString::fromUtf8(p.readAllStandardError());
    QVERIFY2(p.exitCode() == 0, qPrintable(err));
    const QString video = QString::fromUtf8(p.readAllStandardOutput()).trimmed();
    QVERIFY2(video.startsWith(local) && video.endsWith(QLatin1String(".mp4")), qPrintable(video));
    const wan::video::VideoInfo v = wan::video::probe_video(video.toStdString());
    QCOMPARE(v.width, 64);
    QCOMPARE(v.frames, int64_t{5});
    // An engine that is not there: a clear message, exit code 3 (the engine failed to start).
    p.start(qEnvironmentVariable("WANSTUDIO"), {QStringLiteral("--connect"), QStringLiteral("127.0.0.1:1"),
                                                QStringLiteral("--prompt"), QStringLiteral("x")});
    QVERIFY(p.waitForFinished(120000));
    QCOMPARE(p.exitCode(), 3);
    QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains(QLatin1String("cannot reach the engine at 127.0.0.1:1")));
}

void TestRemoteApi::connectionLossIsReportedAndRetried() {
    auto engine = std::make_unique<EngineProcess>();
    QString error;
    const QStringList serverArgs = QStringList{QStringLiteral("--output-dir"), tmp_.filePath(QStringLiteral("lossy"))}
                                   + kJobDefaults;
    QVERIFY2(engine->start({}, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0")} + serverArgs,
                           &error), qPrintable(error));
    const QString address = QStringLiteral("127.0.0.1:%1").arg(engine->port());
    QProcess client;
    client.setProcessChannelMode(QProcess::MergedChannels);
    client.start(qEnvironmentVariable("WANSTUDIO"),
                 QStringList{QStringLiteral("--connect"), address, QStringLiteral("--prompt"), QStringLiteral("a long job"),
                             QStringLiteral("--output-dir"), tmp_.filePath(QStringLiteral("lossy-local"))}
                     + kJobDefaults + QStringList{QStringLiteral("--sample-steps"), QStringLiteral("1000")});
    QByteArray log;
    auto logContains = [&](const char* text) {
        client.waitForReadyRead(200);
        log += client.readAll();
        return log.contains(text);
    };
    QVERIFY2(QTest::qWaitFor([&] { return logContains("Denoising"); }, kJobTimeoutMs), log.constData());
    engine->kill();  // the machine goes away mid-job
    QVERIFY2(QTest::qWaitFor([&] { return logContains("lost the connection to the engine at"); }, 60000),
             log.constData());
    QVERIFY(client.state() == QProcess::Running);  // retrying, not failed
    // An engine comes back on the same address without the job: the client says so and ends.
    engine = std::make_unique<EngineProcess>();
    QVERIFY2(engine->start({}, QStringList{QStringLiteral("--listen"), address} + serverArgs, &error),
             qPrintable(error));
    QVERIFY2(QTest::qWaitFor([&] { return logContains("lost the job on the engine at"); }, 60000), log.constData());
    QVERIFY(client.waitForFinished(60000));
    QCOMPARE(client.exitCode(), 1);
    QCOMPARE(engine->stop(), 0);
}

namespace {
/// A /api/events WebSocket that keeps every message it receives.
struct EventsClient {
    QWebSocket ws;
    QList<QJsonObject> messages;
    bool open(const QString& url) {
        QObject::connect(&ws, &QWebSocket::textMessageReceived, &ws, [this](const QString& text) {
            messages.append(QJsonDocument::fromJson(text.toUtf8()).object());
        });
        ws.open(QUrl(url));
        return QTest::qWaitFor([this] { return !messages.isEmpty(); }, 10000);  // the "jobs" snapshot
    }
    QList<QJsonObject> ofType(const QString& type, qint64 job) const {
        QList<QJsonObject> out;
        for (const QJsonObject& m : messages) {
            const qint64 id = m.value(QStringLiteral("job")).isObject()
                ? m.value(QStringLiteral("job")).toObject().value(QStringLiteral("id")).toInteger()
                : m.value(QStringLiteral("job")).toInteger();
            if (m.value(QStringLiteral("type")).toString() == type && id == job) out.append(m);
        }
        return out;
    }
};
}  // namespace

void TestRemoteApi::livePreviewGoesOnlyToClientsThatAskOncePerStep() {
    QString wsUrl = server().url(QStringLiteral("/api/events"));
    wsUrl.replace(QLatin1String("http://"), QLatin1String("ws://"));
    EventsClient withPreview, without;
    QVERIFY(withPreview.open(wsUrl + QStringLiteral("?preview=1")));
    QVERIFY(without.open(wsUrl));
    const qint64 id = submit(nam_, R"({"prompt": "a paper boat on a pond", "base_seed": 7})");
    QVERIFY(id > 0);
    QCOMPARE(waitForState(server(), id, QStringLiteral("done")).value(QStringLiteral("state")).toString(),
             QStringLiteral("done"));
    QTRY_COMPARE(withPreview.ofType(QStringLiteral("state"), id).last().value(QStringLiteral("job")).toObject()
                     .value(QStringLiteral("state")).toString(), QStringLiteral("done"));
    const QList<QJsonObject> previews = withPreview.ofType(QStringLiteral("preview"), id);
    QCOMPARE(previews.size(), 3);  // 3 denoising steps: one preview each, in order
    for (int i = 0; i < previews.size(); ++i) {
        wan::PreviewFrames frames;
        QString error;
        QVERIFY2(wan::app::previewFromMessage(previews[i], &frames, &error), qPrintable(error));
        QCOMPARE(frames.step, i + 1);
        QCOMPARE(frames.frames, 2);  // 5 video frames → 2 latent frames
        QCOMPARE(frames.width, 8);   // 64 / 8
        QCOMPARE(frames.height, 8);
        QCOMPARE(frames.rgb.size(), size_t(2 * 8 * 8 * 3));
    }
    QVERIFY(!without.ofType(QStringLiteral("state"), id).isEmpty());
    QVERIFY(without.ofType(QStringLiteral("preview"), id).isEmpty());  // only clients that ask get previews
}

void TestRemoteApi::thumbnailsComeFromThePosterOrTheLastPreview() {
    // A finished job: its poster, shrunk.
    const qint64 done = submit(nam_, R"({"prompt": "a kite over a beach", "base_seed": 3})");
    QCOMPARE(waitForState(server(), done, QStringLiteral("done")).value(QStringLiteral("state")).toString(),
             QStringLiteral("done"));
    QNetworkRequest request(QUrl(server().url(QStringLiteral("/api/jobs/%1/thumbnail").arg(done))));
    std::unique_ptr<QNetworkReply> reply(nam_.get(request));
    QVERIFY(QTest::qWaitFor([&] { return reply->isFinished(); }, 30000));
    QCOMPARE(reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt(), 200);
    QCOMPARE(reply->header(QNetworkRequest::ContentTypeHeader).toString(), QStringLiteral("image/jpeg"));
    QCOMPARE(reply->rawHeader("X-Thumbnail-Source"), QByteArray("poster"));
    const QImage poster = QImage::fromData(reply->readAll(), "JPEG");
    QCOMPARE(poster.size(), QSize(64, 64));  // the video's size: small already, never enlarged

    // A running job, before any poster exists: the middle frame of its last live preview, enlarged.
    const qint64 running = submit(nam_, R"({"prompt": "a slow job", "sample_steps": 1000})");
    QString wsUrl = server().url(QStringLiteral("/api/events?preview=1"));
    wsUrl.replace(QLatin1String("http://"), QLatin1String("ws://"));
    EventsClient events;
    QVERIFY(events.open(wsUrl));
    QVERIFY(QTest::qWaitFor([&] { return !events.ofType(QStringLiteral("preview"), running).isEmpty(); }, kJobTimeoutMs));
    reply.reset(nam_.get(QNetworkRequest(QUrl(server().url(QStringLiteral("/api/jobs/%1/thumbnail").arg(running))))));
    QVERIFY(QTest::qWaitFor([&] { return reply->isFinished(); }, 30000));
    QCOMPARE(reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt(), 200);
    QCOMPARE(reply->rawHeader("X-Thumbnail-Source"), QByteArray("preview"));
    QCOMPARE(QImage::fromData(reply->readAll(), "JPEG").size(), QSize(128, 128));  // 8×8 frame shown at 128

    // A queued job has no image yet: 404 saying why; an unknown job: 404.
    const qint64 queued = submit(nam_, kJob);
    HttpReply r = httpRequest(nam_, "GET", server().url(QStringLiteral("/api/jobs/%1/thumbnail").arg(queued)));
    QCOMPARE(r.status, 404);
    QVERIFY2(r.error().contains(QLatin1String("no image yet")), r.body.constData());
    QCOMPARE(httpRequest(nam_, "GET", server().url(QStringLiteral("/api/jobs/99999/thumbnail"))).status, 404);
    for (qint64 id : {running, queued}) httpRequest(nam_, "DELETE", server().url(QStringLiteral("/api/jobs/%1").arg(id)));
    QCOMPARE(waitForState(server(), queued, QStringLiteral("cancelled")).value(QStringLiteral("state")).toString(),
             QStringLiteral("cancelled"));
}

void TestRemoteApi::historyListsTheOutputFolderNewestFirst() {
    const qint64 id = submit(nam_, R"({"prompt": "the newest video", "base_seed": 5})");
    const QJsonObject job = waitForState(server(), id, QStringLiteral("done"));
    QCOMPARE(job.value(QStringLiteral("state")).toString(), QStringLiteral("done"));
    HttpReply r = httpRequest(nam_, "GET", server().url(QStringLiteral("/api/history")));
    QCOMPARE(r.status, 200);
    const QJsonArray all = r.json().value(QStringLiteral("history")).toArray();
    QVERIFY(all.size() >= 2);  // earlier cases finished jobs in this folder too
    const QJsonObject newest = all.first().toObject();
    const QJsonObject outputs = job.value(QStringLiteral("outputs")).toObject();
    QCOMPARE(newest.value(QStringLiteral("prompt")).toString(), QStringLiteral("the newest video"));
    for (const char* key : {"video", "poster", "metadata"})
        QCOMPARE(newest.value(QLatin1String(key)).toString(), outputs.value(QLatin1String(key)).toString());
    for (const QJsonValue& e : all)  // every listed video can be fetched
        QVERIFY(QFile::exists(QDir(outDir()).filePath(e.toObject().value(QStringLiteral("video")).toString())));
    r = httpRequest(nam_, "GET", server().url(QStringLiteral("/api/history?limit=1")));
    QCOMPARE(r.json().value(QStringLiteral("history")).toArray().size(), 1);
}

void TestRemoteApi::stalledRequestsTimeOutWithoutHoldingTheServer() {
    EngineProcess engine;
    QString error;
    // The option wins over the environment variable, which stays a fallback.
    QVERIFY2(engine.start({}, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--output-dir"),
                                          tmp_.filePath(QStringLiteral("stalled")), QStringLiteral("--api-request-timeout"),
                                          QStringLiteral("1")} + kJobDefaults,
                          &error, {QStringLiteral("WANSTUDIO_API_REQUEST_TIMEOUT_S=600")}),
             qPrintable(error));
    auto connectTo = [&](QTcpSocket& s) {
        s.connectToHost(QStringLiteral("127.0.0.1"), engine.port());
        return s.waitForConnected(10000);
    };
    QTcpSocket stalled, silent;
    QVERIFY(connectTo(stalled));
    QVERIFY(connectTo(silent));
    // Headers promise 40 bytes of body; one comes, then nothing.
    stalled.write("POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{");
    stalled.flush();
    QElapsedTimer timer;
    timer.start();
    // Meanwhile the server answers everyone else at once.
    QCOMPARE(httpRequest(nam_, "GET", engine.url(QStringLiteral("/api/info"))).status, 200);
    QVERIFY(timer.elapsed() < 1000);
    QByteArray answer;
    QVERIFY(QTest::qWaitFor([&] {
        answer += stalled.readAll();
        return stalled.state() == QAbstractSocket::UnconnectedState || answer.contains("}");
    }, 10000));
    QVERIFY2(answer.startsWith("HTTP/1.1 408"), answer.constData());
    QVERIFY2(answer.contains("request timed out: no complete request (headers and the whole body) within 1 s"),
             answer.constData());
    QVERIFY(timer.elapsed() < 5000);
    // A connection that sends nothing is closed without an answer.
    QVERIFY(QTest::qWaitFor([&] { return silent.state() == QAbstractSocket::UnconnectedState; }, 10000));
    QVERIFY(silent.readAll().isEmpty());
    // A WebSocket is not a stalled request: it stays open past the deadline.
    QString wsUrl = engine.url(QStringLiteral("/api/events"));
    wsUrl.replace(QLatin1String("http://"), QLatin1String("ws://"));
    EventsClient events;
    QVERIFY(events.open(wsUrl));
    QTest::qWait(2500);
    QCOMPARE(events.ws.state(), QAbstractSocket::ConnectedState);
    QCOMPARE(engine.stop(), 0);
}

void TestRemoteApi::promptExtensionNeedsItConfigured() {
    QVERIFY(httpRequest(nam_, "GET", server().url(QStringLiteral("/api/info"))).json()
                .value(QStringLiteral("prompt_extend")).isNull());
    const HttpReply r = httpRequest(nam_, "POST", server().url(QStringLiteral("/api/extend")), R"({"prompt": "a cat"})");
    QCOMPARE(r.status, 501);
    QVERIFY2(r.error().contains(QLatin1String("prompt extension is not configured on this server")), r.body.constData());
    QVERIFY2(r.error().contains(QLatin1String("--prompt-extend-method")), r.body.constData());
    // The window's "Enhance prompt" over --connect: the server's reason, naming the server.
    wan::app::RemoteEndpoint endpoint = wan::app::parseRemoteEndpoint(
        QStringLiteral("127.0.0.1:%1").arg(server().port()).toStdString());
    auto backend = wan::app::makeRemoteBackend(endpoint);
    backend->start({});
    try {
        backend->extendPrompt("a cat", "en", 1);
        QFAIL("extendPrompt should have thrown");
    } catch (const std::exception& e) {
        const QString message = QString::fromUtf8(e.what());
        QVERIFY2(message.contains(endpoint.label()) && message.contains(QLatin1String("not configured")),
                 e.what());
    }
    backend->shutdown();
}

void TestRemoteApi::promptExtensionRunsOnTheServer() {
    // A stand-in for DashScope on loopback (DASH_API_URL), answering every request with one completion.
    QTcpServer dashscope;
    QVERIFY(dashscope.listen(QHostAddress::LocalHost));
    QByteArray seen;
    connect(&dashscope, &QTcpServer::newConnection, this, [&] {
        QTcpSocket* s = dashscope.nextPendingConnection();
        connect(s, &QTcpSocket::readyRead, s, [s, &seen] {
            seen += s->readAll();
            const qsizetype end = seen.indexOf("\r\n\r\n");
            if (end < 0 || !seen.contains("\"messages\"") || !seen.endsWith("}")) return;
            const QByteArray body = R"({"status_code":200,"request_id":"r-1","output":{"choices":[{"finish_reason":)"
                R"("stop","message":{"role":"assistant","content":"A grey cat naps in warm sunlight."}}]}})";
            s->write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                     QByteArray::number(body.size()) + "\r\n\r\n" + body);
            s->disconnectFromHost();
        });
    });
    EngineProcess engine;
    QString error;
    QVERIFY2(engine.start({}, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"),
                                          QStringLiteral("--prompt-extend-method"), QStringLiteral("dashscope"),
                                          QStringLiteral("--output-dir"), tmp_.filePath(QStringLiteral("extend"))}
                                  + kJobDefaults,
                          &error, {QStringLiteral("DASH_API_KEY=test-key"),
                                   QStringLiteral("DASH_API_URL=http://127.0.0.1:%1").arg(dashscope.serverPort())}),
             qPrintable(error));
    QVERIFY2(engine.waitReady(kReadyTimeoutMs), qPrintable(engine.output()));
    QCOMPARE(httpRequest(nam_, "GET", engine.url(QStringLiteral("/api/info"))).json()
                 .value(QStringLiteral("prompt_extend")).toString(), QStringLiteral("dashscope"));
    const HttpReply r = httpRequest(nam_, "POST", engine.url(QStringLiteral("/api/extend")),
                                    R"({"prompt": "a cat", "target_lang": "en", "seed": 5})");
    QCOMPARE(r.status, 200);
    QCOMPARE(r.json().value(QStringLiteral("prompt")).toString(), QStringLiteral("A grey cat naps in warm sunlight."));
    QCOMPARE(r.json().value(QStringLiteral("original")).toString(), QStringLiteral("a cat"));
    QVERIFY2(seen.contains("Bearer test-key") && seen.contains("a cat"), seen.constData());
    const HttpReply bad = httpRequest(nam_, "POST", engine.url(QStringLiteral("/api/extend")), R"({"prompt": ""})");
    QCOMPARE(bad.status, 400);
    QVERIFY2(bad.error().contains(QLatin1String("not empty")), bad.body.constData());
    QCOMPARE(engine.stop(), 0);
}

void TestRemoteApi::mpiServesTheSingleProcessLatent() {
    const QStringList launcher = qEnvironmentVariable("WAN_MPIRUN").split(u' ', Qt::SkipEmptyParts);
    const QString compare = qEnvironmentVariable("WAN_COMPARE");
    if (launcher.isEmpty() || compare.isEmpty()) QSKIP("WAN_MPIRUN and WAN_COMPARE not set");
    // The single-process reference, through the API too.
    const qint64 ref = submit(nam_, R"({"prompt": "a lighthouse in a storm", "base_seed": 1234,
                                        "save_latents": "single.safetensors"})");
    QCOMPARE(waitForState(server(), ref, QStringLiteral("done")).value(QStringLiteral("state")).toString(),
             QStringLiteral("done"));

    EngineProcess mpi;
    QString error;
    QVERIFY2(mpi.start(launcher, QStringList{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"),
                       QStringLiteral("--output-dir"), tmp_.filePath(QStringLiteral("mpi")),
                       QStringLiteral("--ulysses-size"), QStringLiteral("2")} + kJobDefaults, &error),
             qPrintable(error));
    QVERIFY2(mpi.waitReady(kReadyTimeoutMs), qPrintable(mpi.output()));
    const QJsonObject info = httpRequest(nam_, "GET", mpi.url(QStringLiteral("/api/info"))).json();
    QCOMPARE(info.value(QStringLiteral("world_size")).toInt(), 2);
    QCOMPARE(info.value(QStringLiteral("ulysses_size")).toInt(), 2);
    const HttpReply posted = httpRequest(nam_, "POST", mpi.url(QStringLiteral("/api/jobs")),
        R"({"prompt": "a lighthouse in a storm", "base_seed": 1234, "save_latents": "np2.safetensors"})");
    QCOMPARE(posted.status, 202);
    const qint64 id = posted.json().value(QStringLiteral("id")).toInteger();
    const QJsonObject job = waitForState(mpi, id, QStringLiteral("done"));
    QVERIFY2(job.value(QStringLiteral("state")) == "done", qPrintable(mpi.output()));
    // Fetch the latent over the API, as a remote client would.
    const QString fetched = tmp_.filePath(QStringLiteral("np2-fetched.safetensors"));
    QCOMPARE(download(mpi, QStringLiteral("np2.safetensors"), fetched), 200);
    QCOMPARE(mpi.stop(), 0);

    QProcess cmp;
    cmp.setProcessChannelMode(QProcess::MergedChannels);
    cmp.start(compare, {QDir(outDir()).filePath(QStringLiteral("single.safetensors")), fetched,
                        QStringLiteral("1e-4"), QStringLiteral("1e-3")});
    QVERIFY(cmp.waitForFinished(60000));
    QVERIFY2(cmp.exitCode() == 0, cmp.readAll().constData());
}

void TestRemoteApi::cleanupTestCase() {
    if (server_) QCOMPARE(server_->stop(), 0);
}

QTEST_GUILESS_MAIN(TestRemoteApi)
#include "test_remote_api.moc"
