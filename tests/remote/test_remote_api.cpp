// `wanstudio --listen` end to end on loopback: the real binary on the demo checkpoint (CPU), driven over HTTP
// and the /api/events WebSocket like a remote client would. WANSTUDIO names the binary; WAN_MPIRUN (a launcher
// prefix such as "mpiexec --oversubscribe -np 2") and WAN_COMPARE (tests/e2e's wan-compare) enable the
// multi-rank test, which is its own ctest entry.
#include "remote_test_client.h"

#include "core/batch_file.h"
#include "video/video.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QWebSocket>

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
    void roundTripWritesAPlayableVideo();
    void badRequestsGet400WithTheCliMessage();
    void oversizedBodyIsRefused();
    void onlyPlainFilesOfTheOutputFolderAreServed();
    void cancelsQueuedAndRunningJobs();
    void twoClientsShareOneQueueInOrder();
    void tokenIsRequiredAndChecked();
    void nonLoopbackAddressNeedsAToken();
    void connectedBatchFetchesTheVideo();
    void connectionLossIsReportedAndRetried();
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
    QVERIFY(running > 0 && queued > running);
    QJsonObject job = waitForState(server(), running, QStringLiteral("running"));
    QCOMPARE(job.value(QStringLiteral("state")).toString(), QStringLiteral("running"));
    QCOMPARE(httpRequest(nam_, "DELETE", server().url(QStringLiteral("/api/jobs/%1").arg(queued))).status, 202);
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
