// The window with its engine on the other side of `--connect` (here loopback): a `wanstudio --listen` child
// process on the demo checkpoint, and the unchanged MainWindow + EngineSession over the remote backend,
// offscreen. Generate, then the fetched video is on local disk, listed, and previewed (the live preview of
// every step too); the status bar says where the engine runs. The server's history is listed on connection and
// again after the server restarts, each video once, in the folder the window lists (chosen before any job, or
// changed later). Other clients' jobs are listed, followed and cancellable (after a question); the window's own
// job reads Queued, with its place, while it waits behind them. A restarted window knows the jobs it left on
// the engine. A network drop (a relay cut or stalled, then restored, the server running on) is shown and ridden
// out; another client's job that ran while the link was down is listed as the ones seen running are.
#include "remote_test_client.h"

#include "cli/options.h"
#include "models/history_model.h"
#include "models/job_list_model.h"
#include "remote/remote_backend.h"
#include "remote/remote_link.h"
#include "tcp_relay.h"
#include "session/engine_session.h"
#include "session/metatypes.h"
#include "settings/settings.h"
#include "ui/job_queue_widget.h"
#include "ui/main_window.h"
#include "ui/parameters_panel.h"
#include "ui/preview_widget.h"
#include "video/video.h"

#include <QApplication>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QFont>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QPlainTextEdit>
#include <QProgressBar>
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
    void otherClientsJobsAreListedFollowedAndCancellable();
    void aRestartedWindowKnowsItsJobs();
    void networkDropIsShownAndRiddenOut();

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
constexpr int kReadyMs = 180000;
constexpr int kJobMs = 300000;

/// POSTs a job to `server` as another client would (by default a curl user: no client id); returns its id, 0 on
/// failure.
qint64 postJob(EngineProcess& server, const QByteArray& prompt, int steps, const QByteArray& client = {}) {
    QNetworkAccessManager nam;
    QList<QPair<QByteArray, QByteArray>> headers;
    if (!client.isEmpty()) headers.append({QByteArrayLiteral("X-Wan-Client"), client});
    const HttpReply posted = httpRequest(nam, "POST", server.url(QStringLiteral("/api/jobs")),
        R"({"prompt": ")" + prompt + R"(", "size": "128*128", "frame_num": 5, "sample_steps": )" +
        QByteArray::number(steps) + "}", {}, headers);
    return posted.status == 202 ? posted.json().value(QStringLiteral("id")).toInteger() : 0;
}

/// The server's JSON for job `id` (empty when it does not answer).
QJsonObject jobOn(EngineProcess& server, qint64 id) {
    QNetworkAccessManager nam;
    return httpRequest(nam, "GET", server.url(QStringLiteral("/api/jobs/%1").arg(id))).json();
}
QString stateOn(EngineProcess& server, qint64 id) { return jobOn(server, id).value(QStringLiteral("state")).toString(); }

/// Starts a CPU `--listen` server on a free port, writing into `outputDir`, and waits until it is ready.
/// Returns "" or what went wrong.
QString startServer(EngineProcess& server, const QString& outputDir) {
    QString error;
    if (!server.start({}, {QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--device"),
                           QStringLiteral("cpu"), QStringLiteral("--output-dir"), outputDir}, &error))
        return error;
    return server.waitReady(kReadyMs) ? QString() : QStringLiteral("the server is not ready:\n") + server.output();
}

/// The window as gui_entry makes it for --connect: the session over the remote backend, and the link that
/// shares its client id, the one its settings keep. Its settings file is its own and remembers `folder` as the
/// window's output folder; `cliOutputDir` is --output-dir (by default the same folder).
struct ConnectedWindow {
    ConnectedWindow(const QString& address, const QString& settingsPath, const QString& folder,
                    const QString& cliOutputDir = {})
        : settings(settingsPath), endpoint(endpointOf(address, settings)),
          session(makeRemoteBackend(endpoint)), link(endpoint),
          window(&session, withFolder(&settings, folder), optionsWith(cliOutputDir.isEmpty() ? folder : cliOutputDir)) {
        window.setConfirmOnClose(false);
        window.setEngineLink(&link);
        link.open();
        session.start();
    }
    ~ConnectedWindow() {
        session.shutdown();
        if (!session.waitForStopped(60000)) qWarning("the window's session did not stop within 60 s");
    }
    static RemoteEndpoint endpointOf(const QString& address, Settings& settings) {
        RemoteEndpoint e = parseRemoteEndpoint(address.toStdString());
        e.clientId = settings.remoteClientId();
        return e;
    }
    static Settings* withFolder(Settings* settings, const QString& folder) {
        settings->setOutputFolder(folder);
        return settings;
    }
    static AppOptions optionsWith(const QString& outputDir) {
        AppOptions options;
        options.engine.output_dir = outputDir.toStdString();
        return options;
    }
    /// Queues a job from the parameters panel, as a click on Generate does; returns the session's id.
    qint64 generate(const QString& prompt, int steps) {
        ParametersPanel* p = window.parametersPanel();
        p->promptEdit()->setPlainText(prompt);
        p->sizeCombo()->setCurrentIndex(p->sizeCombo()->findData(QStringLiteral("128*128")));
        p->framesSpin()->setValue(5);
        p->stepsSpin()->setValue(steps);
        return window.generate();
    }
    /// The row of another client's job (its server id), −1 when not listed.
    int otherRow(qint64 serverId) const { return window.jobModel()->rowOf(JobListModel::otherJobKey(serverId)); }
    JobListModel::JobState stateOf(qint64 rowId) const {
        const JobListModel::Job* job = window.jobModel()->job(rowId);
        return job ? job->state : JobListModel::JobState{};
    }
    int stepOf(qint64 rowId) const {
        const JobListModel::Job* job = window.jobModel()->job(rowId);
        return job ? job->progress.step : -1;
    }
    QString textOf(qint64 rowId) const {
        const int row = window.jobModel()->rowOf(rowId);
        return row < 0 ? QString() : window.jobModel()->index(row).data(JobListModel::StateTextRole).toString();
    }

    Settings settings;
    RemoteEndpoint endpoint;
    EngineSession session;
    RemoteLink link;
    MainWindow window;
};

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

    // The window's folder is the one its settings remember, not --output-dir: the server's videos go where the
    // window looks, from the connection on, before any job of its own.
    const QString out = dir_.filePath(QStringLiteral("history-local"));
    const QString cliFolder = dir_.filePath(QStringLiteral("history-cli"));
    ConnectedWindow w(address, dir_.filePath(QStringLiteral("history-settings.ini")), out, cliFolder);
    MainWindow& window = w.window;
    EngineSession& session = w.session;
    QCOMPARE(window.outputFolder(), out);
    QTRY_VERIFY_WITH_TIMEOUT(window.generateButton()->isEnabled(), 180000);
    QTRY_COMPARE_WITH_TIMEOUT(window.historyModel()->rowCount(), 1, 30000);  // listed on connection
    QCOMPARE(window.jobModel()->rowCount(), 0);  // it ended before the window connected: history, not queue
    QVERIFY(!QFileInfo::exists(cliFolder));  // nothing copied where the window does not look

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

    // Another folder chosen in the window: the server's videos are copied there at once and listed.
    const QString other = dir_.filePath(QStringLiteral("history-other"));
    QLineEdit* folderEdit = window.parametersPanel()->outputFolderEdit();
    QVERIFY(folderEdit->toolTip().contains(address));  // says what the folder is for with a remote engine
    folderEdit->setText(other);
    emit folderEdit->editingFinished();
    QCOMPARE(window.outputFolder(), other);
    QTRY_COMPARE_WITH_TIMEOUT(window.historyModel()->rowCount(), 3, 30000);
    QCOMPARE(QFileInfo(window.historyModel()->entryAt(0).videoPath).absolutePath(), other);
    QCOMPARE(server->stop(), 0);
}

void TestRemoteWindow::otherClientsJobsAreListedFollowedAndCancellable() {
    EngineProcess server;
    const QString notStarted = startServer(server, dir_.filePath(QStringLiteral("others-server")));
    QVERIFY2(notStarted.isEmpty(), qPrintable(notStarted));
    // Another client's long job runs and a second one waits, before the window connects.
    const qint64 running = postJob(server, "another client's long job", 1000);
    const qint64 queued = postJob(server, "another client's queued job", 2);
    QVERIFY(running > 0 && queued > 0);
    QTRY_COMPARE_WITH_TIMEOUT(stateOn(server, running), QStringLiteral("running"), kJobMs);

    ConnectedWindow w(QStringLiteral("127.0.0.1:%1").arg(server.port()), dir_.filePath(QStringLiteral("others.ini")),
                      dir_.filePath(QStringLiteral("others-local")));
    JobListModel* jobs = w.window.jobModel();
    QTRY_VERIFY_WITH_TIMEOUT(w.window.generateButton()->isEnabled(), kReadyMs);
    // Listed on connection, marked as another client's, and followed: the running one's steps advance.
    QTRY_VERIFY_WITH_TIMEOUT(w.otherRow(running) >= 0 && w.otherRow(queued) >= 0, 30000);
    const qint64 runningKey = JobListModel::otherJobKey(running), queuedKey = JobListModel::otherJobKey(queued);
    QVERIFY(jobs->index(w.otherRow(running)).data(JobListModel::OtherClientRole).toBool());
    QVERIFY(jobs->index(w.otherRow(running)).data(Qt::DisplayRole).toString().contains(QStringLiteral("another client")));
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(runningKey), JobListModel::JobState::Running, 30000);
    QCOMPARE(w.stateOf(queuedKey), JobListModel::JobState::Queued);
    const int step = w.stepOf(runningKey);
    QTRY_VERIFY_WITH_TIMEOUT(w.stepOf(runningKey) > step, 60000);

    // The window's own job waits on the server behind them: one row (its own), not two, and it reads Queued
    // with its place there, without clock or ETA; the progress bar follows the job that runs.
    const qint64 own = w.generate(QStringLiteral("the window's job"), 2);
    QVERIFY(own > 0);
    QTRY_VERIFY_WITH_TIMEOUT(stateOn(server, queued + 1) == QLatin1String("queued"), 30000);  // POSTed
    QTRY_COMPARE_WITH_TIMEOUT(w.textOf(own), QStringLiteral("Queued · 2nd in line"), 30000);
    QCOMPARE(w.stateOf(own), JobListModel::JobState::Queued);
    QCOMPARE(jobs->rowCount(), 3);
    const QModelIndex ownRow = jobs->index(jobs->rowOf(own));
    QCOMPARE(ownRow.data(JobListModel::ProgressRole).toDouble(), 0.0);
    QVERIFY(ownRow.data(JobListModel::EtaRole).toDouble() < 0);
    JobQueueWidget* queue = w.window.jobQueue();
    QVERIFY2(queue->progressBar()->format().startsWith(QStringLiteral("another client's #%1 Denoising").arg(running)),
             qPrintable(queue->progressBar()->format()));
    QVERIFY2(queue->progressBar()->format().endsWith(QStringLiteral("2 queued")), qPrintable(queue->progressBar()->format()));

    // Cancel with nothing selected cancels this window's job (waiting on the engine), never another client's.
    queue->view()->setCurrentIndex(QModelIndex());
    QSignalSpy finished(&w.session, &EngineSession::finished);
    queue->cancelSelected();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 30000);
    QCOMPARE(finished.at(0).at(1).value<GenerationResult>().status, JobStatus::Cancelled);
    QCOMPARE(stateOn(server, running), QStringLiteral("running"));

    // Another client's jobs are cancellable from the window (any client with the token may), once the user
    // says yes to the question: the queued one at once, the running one at its next step; both rows follow the
    // server, which records who cancelled them.
    QStringList questions;
    bool answer = false;
    queue->setCancelQuestion([&](const QString& question) {
        questions << question;
        return answer;
    });
    queue->view()->setCurrentIndex(jobs->index(w.otherRow(queued)));
    QVERIFY(queue->cancelButton()->isEnabled());
    queue->cancelSelected();  // "No": nothing is sent
    QCOMPARE(questions.size(), 1);
    QVERIFY2(questions[0].contains(QStringLiteral("another client's #%1").arg(queued)) &&
                 questions[0].contains(w.link.where()), qPrintable(questions[0]));
    QCOMPARE(stateOn(server, queued), QStringLiteral("queued"));
    QCOMPARE(w.stateOf(queuedKey), JobListModel::JobState::Queued);
    answer = true;
    queue->cancelSelected();
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(queuedKey), JobListModel::JobState::Cancelled, 30000);
    QCOMPARE(stateOn(server, queued), QStringLiteral("cancelled"));
    QCOMPARE(jobOn(server, queued).value(QStringLiteral("cancelled_by")).toString(),
             QString::fromLatin1(w.endpoint.clientHeader()));
    QVERIFY(queue->cancelJob(runningKey));
    QCOMPARE(questions.size(), 3);
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(runningKey), JobListModel::JobState::Cancelled, 60000);
    QCOMPARE(stateOn(server, running), QStringLiteral("cancelled"));
    QVERIFY(w.window.jobModel()->waitingRequests().empty());  // other clients' jobs are not this window's to keep

    // Another client's job that is done: listed while it runs, then its video joins the window's history.
    QCOMPARE(w.window.historyModel()->rowCount(), 0);
    const qint64 done = postJob(server, "another client's finished job", 2);
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(JobListModel::otherJobKey(done)), JobListModel::JobState::Done, kJobMs);
    QTRY_COMPARE_WITH_TIMEOUT(w.window.historyModel()->rowCount(), 1, 30000);
    QCOMPARE(w.window.historyModel()->index(0).data(HistoryModel::PromptRole).toString(),
             QStringLiteral("another client's finished job"));

    // The window's job behind another client's running one: Queued (next) for as long as that one runs, then
    // running with progress once the engine starts it, then done.
    const qint64 blocker = postJob(server, "another client's job in front", 1000);
    QTRY_COMPARE_WITH_TIMEOUT(stateOn(server, blocker), QStringLiteral("running"), kJobMs);
    const qint64 second = w.generate(QStringLiteral("the window's job after the other"), 2);
    QList<JobListModel::JobState> seen;  // the window's states of it, in order
    QObject watcher;                     // destroyed before `seen`
    connect(jobs, &JobListModel::dataChanged, &watcher, [&] {
        if (seen.isEmpty() || seen.last() != w.stateOf(second)) seen << w.stateOf(second);
    });
    QTRY_COMPARE_WITH_TIMEOUT(w.textOf(second), QStringLiteral("Queued · next"), 30000);
    QTRY_VERIFY_WITH_TIMEOUT(w.stepOf(JobListModel::otherJobKey(blocker)) >= 2, kJobMs);  // it ran on, ours waited
    QCOMPARE(w.stateOf(second), JobListModel::JobState::Queued);
    QVERIFY(queue->cancelJob(JobListModel::otherJobKey(blocker)));
    QSignalSpy secondDone(&w.session, &EngineSession::finished);
    QTRY_COMPARE_WITH_TIMEOUT(secondDone.count(), 1, kJobMs);
    QCOMPARE(secondDone.at(0).at(0).toLongLong(), second);
    QCOMPARE(secondDone.at(0).at(1).value<GenerationResult>().status, JobStatus::Ok);
    QCOMPARE(w.stateOf(second), JobListModel::JobState::Done);
    QCOMPARE(seen.first(), JobListModel::JobState::Queued);
    QVERIFY2(seen.contains(JobListModel::JobState::Running), "shown running once the engine started it");
    QCOMPARE(seen.indexOf(JobListModel::JobState::Running), seen.lastIndexOf(JobListModel::JobState::Queued) + 1);
    QCOMPARE(server.stop(), 0);
}

// The window's client id is kept in its settings: started again, it lists the jobs it left on the engine as its
// own (cancelled without a question), and another client's only after one. A job of this run that another
// client cancels says so.
void TestRemoteWindow::aRestartedWindowKnowsItsJobs() {
    EngineProcess server;
    const QString notStarted = startServer(server, dir_.filePath(QStringLiteral("restart-server")));
    QVERIFY2(notStarted.isEmpty(), qPrintable(notStarted));
    const QString ini = dir_.filePath(QStringLiteral("restart.ini"));
    QByteArray clientId;
    {
        Settings settings(ini);
        clientId = settings.remoteClientId();
    }
    // The window's earlier run left a long job running and one waiting (as gui_entry's backend sends them:
    // "ID.RUN"); another client has one waiting too.
    const QByteArray earlierRun = clientId + ".0e0e0e0e";
    const qint64 running = postJob(server, "left running by the last run", 1000, earlierRun);
    const qint64 waiting = postJob(server, "left waiting by the last run", 2, earlierRun);
    const qint64 others = postJob(server, "another client's waiting job", 2, "someone-else.1");
    QVERIFY(running > 0 && waiting > 0 && others > 0);
    QTRY_COMPARE_WITH_TIMEOUT(stateOn(server, running), QStringLiteral("running"), kJobMs);

    ConnectedWindow w(QStringLiteral("127.0.0.1:%1").arg(server.port()), ini, dir_.filePath(QStringLiteral("restart-local")));
    QCOMPARE(w.endpoint.clientId, clientId);
    JobListModel* jobs = w.window.jobModel();
    QTRY_VERIFY_WITH_TIMEOUT(w.otherRow(running) >= 0 && w.otherRow(waiting) >= 0 && w.otherRow(others) >= 0, kReadyMs);
    for (const qint64 id : {running, waiting}) {
        const QModelIndex row = jobs->index(w.otherRow(id));
        QVERIFY(row.data(JobListModel::EarlierRunRole).toBool());
        QVERIFY(!row.data(JobListModel::OtherClientRole).toBool());
        QVERIFY2(row.data(Qt::DisplayRole).toString().startsWith(QStringLiteral("your #%1 (other session)").arg(id)),
                 qPrintable(row.data(Qt::DisplayRole).toString()));
        QVERIFY(!row.data(Qt::FontRole).value<QFont>().italic());
    }
    QVERIFY(jobs->index(w.otherRow(others)).data(JobListModel::OtherClientRole).toBool());
    QVERIFY(jobs->waitingRequests().empty());  // on the engine already: not the saved queue's to send again

    JobQueueWidget* queue = w.window.jobQueue();
    int questions = 0;
    queue->setCancelQuestion([&](const QString&) { return ++questions > 1; });  // "No", then "Yes"
    QVERIFY(queue->cancelJob(JobListModel::otherJobKey(waiting)));  // its own: no question
    QCOMPARE(questions, 0);
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(JobListModel::otherJobKey(waiting)), JobListModel::JobState::Cancelled, 30000);
    QVERIFY(!queue->cancelJob(JobListModel::otherJobKey(others)));
    QCOMPARE(stateOn(server, others), QStringLiteral("queued"));
    QVERIFY(queue->cancelJob(JobListModel::otherJobKey(others)));
    QCOMPARE(questions, 2);
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(JobListModel::otherJobKey(others)), JobListModel::JobState::Cancelled, 30000);

    // This run's job, behind the earlier run's: queued, then running once that one is cancelled; then another
    // client cancels it, and the window says who.
    QTRY_VERIFY_WITH_TIMEOUT(w.window.generateButton()->isEnabled(), kReadyMs);
    const qint64 own = w.generate(QStringLiteral("cancelled by someone else"), 1000);
    QTRY_COMPARE_WITH_TIMEOUT(w.textOf(own), QStringLiteral("Queued · next"), 30000);
    QVERIFY(queue->cancelJob(JobListModel::otherJobKey(running)));
    QCOMPARE(questions, 2);
    QTRY_VERIFY_WITH_TIMEOUT(w.stepOf(own) >= 1 && w.stateOf(own) == JobListModel::JobState::Running, kJobMs);
    QNetworkAccessManager nam;
    qint64 ownOnServer = 0;
    for (const QJsonValue& job : httpRequest(nam, "GET", server.url(QStringLiteral("/api/jobs"))).json()
                                     .value(QStringLiteral("jobs")).toArray())
        if (job.toObject().value(QStringLiteral("client")).toString() == QString::fromLatin1(w.endpoint.clientHeader()))
            ownOnServer = job.toObject().value(QStringLiteral("id")).toInteger();
    QVERIFY(ownOnServer > others);
    QSignalSpy finished(&w.session, &EngineSession::finished);
    QCOMPARE(httpRequest(nam, "DELETE", server.url(QStringLiteral("/api/jobs/%1").arg(ownOnServer)), {}, {},
                         {{QByteArrayLiteral("X-Wan-Client"), QByteArrayLiteral("curl-user")}}).status, 202);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, kJobMs);
    const auto result = finished.at(0).at(1).value<GenerationResult>();
    QCOMPARE(result.status, JobStatus::Cancelled);
    QVERIFY2(w.textOf(own).startsWith(QStringLiteral("Cancelled: another client (curl-user) cancelled it on the engine at ")),
             qPrintable(w.textOf(own)));
    QCOMPARE(server.stop(), 0);
}

void TestRemoteWindow::networkDropIsShownAndRiddenOut() {
    EngineProcess server;
    const QString notStarted = startServer(server, dir_.filePath(QStringLiteral("drop-server")));
    QVERIFY2(notStarted.isEmpty(), qPrintable(notStarted));
    TcpRelay relay(server.port());  // the window's only way to the server
    QVERIFY(relay.port() != 0);

    ConnectedWindow w(QStringLiteral("127.0.0.1:%1").arg(relay.port()), dir_.filePath(QStringLiteral("drop.ini")),
                      dir_.filePath(QStringLiteral("drop-local")));
    QTRY_VERIFY_WITH_TIMEOUT(w.window.generateButton()->isEnabled(), kReadyMs);
    QTRY_VERIFY_WITH_TIMEOUT(w.link.isUp(), 30000);
    QLabel* state = w.window.engineStateLabel();

    // 1. The window's job is still running when the link comes back: its progress goes on in the window.
    const qint64 longJob = w.generate(QStringLiteral("a long job across a drop"), 1000);
    QTRY_VERIFY_WITH_TIMEOUT(w.stepOf(longJob) >= 1, kJobMs);
    relay.cut();
    QTRY_VERIFY_WITH_TIMEOUT(!w.link.isUp(), 30000);
    QTRY_VERIFY_WITH_TIMEOUT(state->text().contains(QStringLiteral("Disconnected")), 5000);
    QVERIFY2(state->text().contains(w.link.where()), qPrintable(state->text()));
    const int stepAtCut = w.stepOf(longJob);
    QTest::qWait(2000);
    QCOMPARE(w.stateOf(longJob), JobListModel::JobState::Running);  // not failed: waiting for the link
    relay.restore();
    QTRY_VERIFY_WITH_TIMEOUT(w.link.isUp(), 30000);  // back by itself
    QTRY_COMPARE_WITH_TIMEOUT(state->text(), QStringLiteral("Ready"), 5000);
    QTRY_VERIFY_WITH_TIMEOUT(w.stepOf(longJob) > stepAtCut + 1, 60000);
    QSignalSpy finished(&w.session, &EngineSession::finished);
    QSignalSpy failed(&w.session, &EngineSession::failed);
    w.window.jobQueue()->cancelJob(longJob);
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 60000);
    QCOMPARE(finished.at(0).at(1).value<GenerationResult>().status, JobStatus::Cancelled);

    // 2. A job that finishes while the link is down: done in the window and in its history once it is back.
    const qint64 blocker = postJob(server, "another client's job, in front", 1000);  // straight to the server
    QTRY_COMPARE_WITH_TIMEOUT(stateOn(server, blocker), QStringLiteral("running"), kJobMs);
    const qint64 quick = w.generate(QStringLiteral("finished while away"), 2);
    QTRY_COMPARE_WITH_TIMEOUT(stateOn(server, blocker + 1), QStringLiteral("queued"), 30000);  // the window's, POSTed
    relay.cut();
    QTRY_VERIFY_WITH_TIMEOUT(!w.link.isUp(), 30000);
    QNetworkAccessManager nam;
    QCOMPARE(httpRequest(nam, "DELETE", server.url(QStringLiteral("/api/jobs/%1").arg(blocker))).status, 202);
    QTRY_COMPARE_WITH_TIMEOUT(stateOn(server, blocker + 1), QStringLiteral("done"), kJobMs);
    QCOMPARE(finished.count(), 1);  // the window cannot know yet
    relay.restore();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 60000);
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.at(0).at(1).toString()));
    QCOMPARE(finished.at(1).at(0).toLongLong(), quick);
    QCOMPARE(finished.at(1).at(1).value<GenerationResult>().status, JobStatus::Ok);
    QTRY_COMPARE_WITH_TIMEOUT(w.window.historyModel()->rowCount(), 1, 30000);
    QTRY_VERIFY_WITH_TIMEOUT(w.link.isUp(), 30000);
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(JobListModel::otherJobKey(blocker)), JobListModel::JobState::Cancelled,
                              5000);  // from the list the link gets on its return

    // 3. A job submitted while the link is down waits for it, and runs once; another client's job that ran and
    // finished meanwhile is in the history once the link is back.
    relay.cut();
    QTRY_VERIFY_WITH_TIMEOUT(!w.link.isUp(), 30000);
    const qint64 waiting = w.generate(QStringLiteral("submitted while away"), 2);
    const qint64 foreign = postJob(server, "another client's, done while away", 2);
    QTRY_COMPARE_WITH_TIMEOUT(stateOn(server, foreign), QStringLiteral("done"), kJobMs);
    relay.restore();
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 3, kJobMs);
    QCOMPARE(finished.at(2).at(0).toLongLong(), waiting);
    QCOMPARE(finished.at(2).at(1).value<GenerationResult>().status, JobStatus::Ok);
    QTRY_COMPARE_WITH_TIMEOUT(historyPrompts(*w.window.historyModel()),
                              (QStringList{QStringLiteral("another client's, done while away"),
                                           QStringLiteral("finished while away"), QStringLiteral("submitted while away")}),
                              30000);
    // ... and in the queue, done, as if the window had watched it run.
    QTRY_COMPARE_WITH_TIMEOUT(w.stateOf(JobListModel::otherJobKey(foreign)), JobListModel::JobState::Done, 5000);
    QVERIFY(relay.connectionsCut() > 0);

    // 4. A link that goes silent without closing (a laptop asleep, a cable pulled: no FIN ever comes) is given
    // up once pings go unanswered, and comes back when the bytes flow again.
    relay.stall();
    QTRY_VERIFY_WITH_TIMEOUT(!w.link.isUp(), 40000);
    QTRY_VERIFY_WITH_TIMEOUT(state->text().contains(QStringLiteral("Disconnected")), 5000);
    QVERIFY2(state->toolTip().startsWith(QStringLiteral("no answer")), qPrintable(state->toolTip()));
    relay.restore();
    QTRY_VERIFY_WITH_TIMEOUT(w.link.isUp(), 40000);
    QTRY_COMPARE_WITH_TIMEOUT(state->text(), QStringLiteral("Ready"), 5000);
    QCOMPARE(server.stop(), 0);
}

QTEST_MAIN(TestRemoteWindow)
#include "test_remote_window.moc"
