// The remote engine's pieces without a server: address parsing, file-name and token checks, the job-request
// parser (same messages as --batch, paths kept in the output folder), the job table, the preview's wire form,
// the client ids and job keys, the back-off, and the options.
#include "progress_at.h"

#include "cli/options.h"
#include "remote/api_server.h"
#include "remote/backoff.h"
#include "remote/job_table.h"
#include "remote/preview_wire.h"
#include "remote/remote_backend.h"

#include <QJsonObject>
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
