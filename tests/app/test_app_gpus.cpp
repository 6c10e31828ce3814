// Engine → GPUs…, Engine → Memory…, File → Connect to engine… and the saved queue (issues 26, 21 and 19): the
// layout proposals are valid for 12 and 40 heads on 1–8 GPUs, the exact mpirun line, the dialog in dry-run mode, a
// relaunch that keeps the queue (fake launcher: the new window restores it), a relaunch after a cancelled or failed
// load that repeats the launch layout, the memory options (settings, dialog, the reload's command line and
// EngineConfig), and the message when mpirun is missing.
#include "temporary_settings_test.h"
#include "window_fixture.h"


#include "cli/options.h"
#include "gui_entry.h"
#include "launch/fake_launcher.h"
#include "launch/gpu_probe.h"
#include "launch/layout_proposal.h"
#include "launch/memory_options.h"
#include "launch/saved_queue.h"
#include "models/job_list_model.h"
#include "settings/settings.h"
#include "ui/connect_dialog.h"
#include "ui/gpu_dialog.h"
#include "ui/load_panel.h"
#include "ui/main_window.h"
#include "ui/memory_dialog.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTest>

#include <unistd.h>

using namespace wan;
using namespace wan::app;
using namespace wan::app::test;

namespace {
const QString kExe = QStringLiteral("/opt/wanstudio/bin/wanstudio");

QStringList toQt(const std::vector<std::string>& v) {
    QStringList out;
    for (const std::string& s : v) out << QString::fromStdString(s);
    return out;
}

/// `mpirun -np 2 <kExe>`: the relaunch these tests ask for.
LaunchCommand mpirunTwoRanks() {
    LaunchCommand command;
    command.program = QStringLiteral("mpirun");
    command.arguments = {QStringLiteral("-np"), QStringLiteral("2"), kExe};
    return command;
}

/// What one MainWindow::relaunch did: whether it started the new engine, and the launchFailed messages.
struct Relaunch {
    bool started = false;
    QStringList failures;
};

/// A window over a fake engine that stalls its jobs (so they stay queued), its launcher a fake; the engine starts
/// once the window knows its queue file and launcher.
struct Window : WindowFixture {
    explicit Window(const QString& queueFile, std::function<bool(int)> ask = nullptr) {
        open(std::make_unique<FakeEngineBackend>(fastFake(200)), nullptr, false);
        window->setInteractive(false);
        window->setSavedQueuePath(queueFile);
        window->setLauncher(&launcher);
        window->setLaunchProgram(kExe, {QStringLiteral("--ckpt-dir"), QStringLiteral("/m/14B"),
                                        QStringLiteral("--ulysses-size=2"), QStringLiteral("--ring-size"),
                                        QStringLiteral("1")});
        window->setRestoreQuestion(ask ? ask : [](int) { return false; });
        session->start();
    }
    ~Window() { close(); }  // the window before the launcher it points to
    Relaunch relaunch(const LaunchCommand& command) {
        QSignalSpy failed(window.get(), &MainWindow::launchFailed);
        Relaunch r;
        r.started = window->relaunch(command);
        for (const QList<QVariant>& signal : failed) r.failures << signal.at(0).toString();
        return r;
    }
    FakeLauncher launcher;
};

/// The arguments a window launched as `mpirun -np 4 … --ulysses-size 2 --ring-size 2 --dit-fsdp` has.
const QStringList kFourRankArgs = {QStringLiteral("--ckpt-dir"), QStringLiteral("/m/14B"), QStringLiteral("--ulysses-size"),
                                   QStringLiteral("2"), QStringLiteral("--ring-size"), QStringLiteral("2"),
                                   QStringLiteral("--dit-fsdp")};

/// A window started as rank 0 of that four-rank layout (options.engine.layout as main.cpp validates it) over the
/// fake engine `config` (which reports a layout of its own once loaded), its launcher a fake; not yet started.
struct FourRankWindow : WindowFixture {
    explicit FourRankWindow(const FakeBackendConfig& config) {
        options.engine.ckpt_dir = "/m/14B";
        options.engine.layout.world = 4;
        options.engine.layout.ulysses = 2;
        options.engine.layout.ring = 2;
        options.engine.layout.dit_fsdp = true;
        open(std::make_unique<FakeEngineBackend>(config), nullptr, false);
        window->setInteractive(false);
        window->setLauncher(&launcher);
        window->setSavedQueuePath(dir.filePath(QStringLiteral("queue.json")));
        window->setLaunchProgram(kExe, kFourRankArgs);
    }
    ~FourRankWindow() { close(); }
    /// The line this window was started with: the relaunch must repeat it.
    static QStringList launchLine() {
        QStringList line = {QStringLiteral("--bind-to"), QStringLiteral("none")};
        if (::geteuid() == 0) line << QStringLiteral("--allow-run-as-root");
        return line << QStringLiteral("-np") << QStringLiteral("4") << kExe << kFourRankArgs;
    }
    FakeLauncher launcher;
};

/// What the engine started by `command` would load with: its arguments after the program, parsed as main.cpp does.
AppOptions optionsOf(const LaunchCommand& command) {
    const int exe = static_cast<int>(command.arguments.indexOf(kExe));
    std::vector<std::string> args = {kExe.toStdString()};
    for (int i = exe + 1; i < command.arguments.size(); ++i) args.push_back(command.arguments[i].toStdString());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    AppOptions o = parseOptions(static_cast<int>(argv.size()), argv.data());
    o.engine.layout.world = exe < 0 ? 1 : command.arguments.at(command.arguments.indexOf(QStringLiteral("-np")) + 1).toInt();
    return o;
}
}  // namespace

class TestAppGpus : public TemporarySettingsTest {
    Q_OBJECT
private slots:
    void proposalsAreValid_data();
    void proposalsAreValid();
    void proposalFollowsLaunchers();
    void invalidLayoutIsReported();
    void exactMpirunCommand();
    void headsOfTheLoadedModel();
    void parsesNvidiaSmi();
    void dialogDryRunBuildsCommand();
    void relaunchKeepsQueue();
    void closedQueueIsOffered();
    void missingMpirunSaysWhatToInstall();
    void failedStartSaysWhatFailed();
    void connectDialogBuildsCommand();
    void relaunchAfterCancelledLoadKeepsTheLayout();
    void relaunchAfterFailedStartKeepsTheLayout();
    void memoryOptionsRoundTrip();
    void memoryDialogReloadsEveryRankWithTheOptions();
    void savedMemoryOptionsLoadASingleProcess();
    void stalledEngineEndsAfterBoundedWait();
    void processLauncherStartsDetached();
};

void TestAppGpus::proposalsAreValid_data() {
    QTest::addColumn<int>("heads");
    QTest::addColumn<bool>("fits");
    for (int heads : {12, 40})
        for (bool fits : {true, false})
            QTest::addRow("%d heads, %s", heads, fits ? "fits" : "fsdp") << heads << fits;
}

void TestAppGpus::proposalsAreValid() {
    QFETCH(int, heads);
    QFETCH(bool, fits);
    for (int gpus = 1; gpus <= 8; ++gpus) {
        const LayoutProposal p = proposeLayout(gpus, heads, fits);
        QCOMPARE(p.gpus, gpus);
        QCOMPARE(p.ulysses * p.ring, gpus);
        QCOMPARE(heads % p.ulysses, 0);
        QCOMPARE(p.dit_fsdp, gpus > 1 && !fits);
        QCOMPARE(p.t5_fsdp, p.dit_fsdp);
        const std::vector<std::string> problems = layoutProblems(p, heads);
        QVERIFY2(problems.empty(), problems.empty() ? "" : problems.front().c_str());
        // the largest Ulysses degree the heads allow: no larger divisor of the GPU count divides the heads
        for (int u = p.ulysses + 1; u <= gpus; ++u) QVERIFY(gpus % u != 0 || heads % u != 0);
    }
}

void TestAppGpus::proposalFollowsLaunchers() {
    // the examples quoted in scripts/examples/run_sequence_parallel_example.sh
    LayoutProposal p = proposeLayout(4, 12, true);
    QCOMPARE(p.ulysses, 4);
    QCOMPARE(p.ring, 1);
    p = proposeLayout(8, 40, true);
    QCOMPARE(p.ulysses, 8);
    QCOMPARE(p.ring, 1);
    p = proposeLayout(8, 12, true);
    QCOMPARE(p.ulysses, 4);
    QCOMPARE(p.ring, 2);
    p = proposeLayout(3, 40, true);
    QCOMPARE(p.ulysses, 1);
    QCOMPARE(p.ring, 3);
    // 14B (40 heads, ~40 GB of weights) fits an H200 but not a 24 GB card; 1.3B fits both
    QVERIFY(weightsFitOneGpu(40, 140.0));
    QVERIFY(!weightsFitOneGpu(40, 24.0));
    QVERIFY(weightsFitOneGpu(12, 24.0));
    QVERIFY_THROWS_EXCEPTION(wan::Error, proposeLayout(9, 12, true));
    QVERIFY_THROWS_EXCEPTION(wan::Error, proposeLayout(0, 12, true));
}

void TestAppGpus::invalidLayoutIsReported() {
    LayoutProposal bad;
    bad.gpus = 8;
    bad.ulysses = 8;
    bad.ring = 1;
    const std::vector<std::string> problems = layoutProblems(bad, 12);
    QCOMPARE(problems.size(), size_t(1));
    QVERIFY(QString::fromStdString(problems[0]).contains(QStringLiteral("does not divide the 12 attention heads")));
    bad.ulysses = 2;  // 2 × 1 != 8
    QVERIFY(QString::fromStdString(layoutProblems(bad, 12).at(0)).contains(QStringLiteral("must equal")));
}

void TestAppGpus::exactMpirunCommand() {
    const std::vector<std::string> args = {"--ckpt-dir", "/m/Wan2.1-T2V-14B", "--ulysses_size", "2", "--ring-size=1",
                                           "--dit_fsdp", "--cfg-parallel", "--size", "1280*720", "--connect", "h:1"};
    LaunchLine line = mpirunCommand("mpirun", kExe.toStdString(), args, proposeLayout(8, 40, false));
    QCOMPARE(QString::fromStdString(shellLine(line)),
             QStringLiteral("mpirun --bind-to none -np 8 /opt/wanstudio/bin/wanstudio --ckpt-dir /m/Wan2.1-T2V-14B "
                            "--size '1280*720' --ulysses-size 8 --ring-size 1 --dit-fsdp --t5-fsdp"));
    line = mpirunCommand("mpirun", kExe.toStdString(), {"--ckpt-dir", "/m/1.3B"}, proposeLayout(6, 12, true));
    QCOMPARE(line.program, std::string("mpirun"));
    QCOMPARE(toQt(line.args), (QStringList{"--bind-to", "none", "-np", "6", kExe, "--ckpt-dir", "/m/1.3B",
                                           "--ulysses-size", "6", "--ring-size", "1"}));
    line = mpirunCommand("mpirun", kExe.toStdString(), {}, proposeLayout(8, 12, true), /*as_root=*/true);
    QCOMPARE(QString::fromStdString(shellLine(line)),
             QStringLiteral("mpirun --bind-to none --allow-run-as-root -np 8 /opt/wanstudio/bin/wanstudio "
                            "--ulysses-size 4 --ring-size 2"));
    // one GPU: this program alone, without the layout options (and without needing OpenMPI)
    line = mpirunCommand("mpirun", kExe.toStdString(), {"--ulysses-size", "4", "--t5-fsdp", "--prompt", "a b"},
                          proposeLayout(1, 40, false));
    QCOMPARE(QString::fromStdString(shellLine(line)), QStringLiteral("/opt/wanstudio/bin/wanstudio --prompt 'a b'"));
    // A running layout is repeated as it is: the T5 alone sharded, CFG-parallel.
    ParallelLayout running;
    running.world = 4;
    running.ulysses = 2;
    running.t5_fsdp = true;
    running.cfg_parallel = true;
    QVERIFY(layoutProblems(layoutOf(running), 40).empty());
    QCOMPARE(QString::fromStdString(describeLayout(layoutOf(running))),
             QStringLiteral("4 GPUs: Ulysses 2 × Ring 1, T5 sharded (FSDP), CFG-parallel"));
    line = mpirunCommand("mpirun", kExe.toStdString(), {"--cfg-parallel", "--t5-fsdp"}, layoutOf(running));
    QCOMPARE(QString::fromStdString(shellLine(line)),
             QStringLiteral("mpirun --bind-to none -np 4 /opt/wanstudio/bin/wanstudio --ulysses-size 2 --ring-size 1 "
                            "--t5-fsdp --cfg-parallel"));
}

void TestAppGpus::headsOfTheLoadedModel() {
    QCOMPARE(MainWindow::headsOfModel(QStringLiteral(WAN_APP_TEST_DATA "/../../data/golden/tiny-ckpt"), QString()), qint64(4));
    QCOMPARE(MainWindow::headsOfModel(QString(), QStringLiteral("14B")), qint64(40));
    QCOMPARE(MainWindow::headsOfModel(QStringLiteral("/nonexistent"), QStringLiteral("1.3B")), qint64(12));
}

void TestAppGpus::parsesNvidiaSmi() {
    const QVector<GpuInfo> gpus =
        parseNvidiaSmi(QStringLiteral("NVIDIA H200, 143771 MiB\nNVIDIA GeForce RTX 4090, 24564 MiB\ngarbage\n"));
    QCOMPARE(gpus.size(), 2);
    QCOMPARE(gpus[0].name, QStringLiteral("NVIDIA H200"));
    QVERIFY(qAbs(gpus[0].memoryGb - 140.4) < 0.1);
    QCOMPARE(gpus[1].name, QStringLiteral("NVIDIA GeForce RTX 4090"));
    QVERIFY(parseNvidiaSmi(QString()).isEmpty());
}

void TestAppGpus::dialogDryRunBuildsCommand() {
    GpuDialogSetup setup;
    setup.current.world_size = 2;  // started under mpirun -np 2 --ulysses-size 2
    setup.current.ulysses_size = 2;
    for (int i = 0; i < 8; ++i) setup.gpus.push_back({QStringLiteral("NVIDIA GeForce RTX 4090"), 24.0});
    setup.numHeads = 40;
    setup.modelName = QStringLiteral("14B");
    setup.executable = kExe;
    setup.arguments = {QStringLiteral("--ckpt-dir"), QStringLiteral("/m/14B")};
    GpuDialog dialog(setup);
    QCOMPARE(dialog.countBox()->maximum(), 8);
    QCOMPARE(dialog.countBox()->value(), 2);  // the running world
    QCOMPARE(dialog.findChild<QLabel*>(QStringLiteral("currentLayoutLabel"))->text(),
             QStringLiteral("2 processes: Ulysses 2 × Ring 1"));
    dialog.setGpuCount(8);
    QVERIFY(dialog.fsdpBox()->isChecked());  // 14B does not fit 24 GB
    QCOMPARE(dialog.layoutLabel()->text(), QStringLiteral("8 GPUs: Ulysses 8 × Ring 1, DiT and T5 sharded (FSDP)"));
    const QString expected = QStringLiteral("mpirun --bind-to none -np 8 /opt/wanstudio/bin/wanstudio --ckpt-dir "
                                            "/m/14B --ulysses-size 8 --ring-size 1 --dit-fsdp --t5-fsdp");
    QCOMPARE(dialog.commandView()->toPlainText(), expected);
    dialog.fsdpBox()->setChecked(false);  // the user's choice wins
    QVERIFY(!dialog.command().arguments.contains(QStringLiteral("--dit-fsdp")));
    dialog.fsdpBox()->setChecked(true);

    // the window in dry-run mode shows the command and starts nothing
    QTemporaryDir dir;
    Window w(dir.filePath(QStringLiteral("queue.json")));
    QVERIFY(w.waitReady());
    w.window->setLaunchDryRun(true);
    QVERIFY(w.window->relaunch(dialog.command()));
    QCOMPARE(w.window->lastLaunchCommand(), expected);
    QVERIFY(w.launcher.started.isEmpty());
    QVERIFY(w.window->isVisible());

    // no GPU: the dialog says so and still offers CPU ranks
    GpuDialogSetup none;
    none.probeNote = QStringLiteral("No NVIDIA GPU found (nvidia-smi is not installed).");
    GpuDialog empty(none);
    QCOMPARE(empty.findChild<QLabel*>(QStringLiteral("gpuListLabel"))->text(), none.probeNote);
    QCOMPARE(empty.countBox()->maximum(), 8);
}

void TestAppGpus::relaunchKeepsQueue() {
    QTemporaryDir dir;
    const QString queueFile = dir.filePath(QStringLiteral("queue.json"));
    {
        Window old(queueFile);
        QVERIFY(old.waitReady());
        for (const char* prompt : {"first", "second", "third"})
            old.window->jobModel()->addJob(old.session->submit(requestFor(QString::fromLatin1(prompt))),
                                           requestFor(QString::fromLatin1(prompt)));
        QTRY_VERIFY(QFile::exists(queueFile));  // saved as soon as the queue changed
        const LaunchCommand command = mpirunTwoRanks();
        QVERIFY(old.window->relaunch(command));
        QCOMPARE(old.launcher.started.size(), 1);
        QCOMPARE(old.launcher.started[0].arguments, command.arguments);
        QTRY_VERIFY_WITH_TIMEOUT(!old.window->isVisible(), 5000);  // the old window closes
    }
    const SavedQueue saved = readSavedQueue(queueFile);
    QCOMPARE(saved.reason, SavedQueue::Reason::Relaunch);
    QCOMPARE(saved.jobs.size(), size_t(3));  // cancelling them on close did not empty the file

    bool asked = false;
    Window next(queueFile, [&asked](int) { return asked = true; });
    QSignalSpy restored(next.window.get(), &MainWindow::queueRestored);
    QVERIFY(next.waitReady());
    QTRY_COMPARE(restored.count(), 1);
    QVERIFY(!asked);  // a relaunch restores without asking
    QCOMPARE(restored.at(0).at(0).toInt(), 3);
    JobListModel* jobs = next.window->jobModel();
    QCOMPARE(jobs->rowCount(), 3);
    QCOMPARE(jobs->data(jobs->index(0), JobListModel::PromptRole).toString(), QStringLiteral("first"));
    QCOMPARE(jobs->data(jobs->index(2), JobListModel::PromptRole).toString(), QStringLiteral("third"));
    QTRY_COMPARE(readSavedQueue(queueFile).reason, SavedQueue::Reason::Closed);  // now this window's queue
}

void TestAppGpus::closedQueueIsOffered() {
    QTemporaryDir dir;
    const QString queueFile = dir.filePath(QStringLiteral("queue.json"));
    SavedQueue q;
    q.jobs = {requestFor(QStringLiteral("left over")), requestFor(QStringLiteral("another"))};
    QVERIFY(writeSavedQueue(queueFile, q));
    int askedWith = 0;
    {
        Window declined(queueFile, [&askedWith](int n) {
            askedWith = n;
            return false;
        });
        QVERIFY(declined.waitReady());
        QTRY_COMPARE(askedWith, 2);
        QCOMPARE(declined.window->jobModel()->rowCount(), 0);
        QTRY_VERIFY(!QFile::exists(queueFile));  // declined: nothing waits any more
    }
    QVERIFY(writeSavedQueue(queueFile, q));
    Window accepted(queueFile);
    accepted.window->setRestoreQuestion(nullptr);  // the real question: a message box that does not block
    QVERIFY(accepted.waitReady());
    QMessageBox* box = nullptr;
    QTRY_VERIFY((box = accepted.window->findChild<QMessageBox*>()) != nullptr);
    QCOMPARE(box->text(), QStringLiteral("2 jobs were waiting when WanStudio last closed: restore?"));
    QVERIFY(accepted.window->generateButton()->isEnabled());  // the window works while it is open
    box->button(QMessageBox::Yes)->click();
    QTRY_COMPARE(accepted.window->jobModel()->rowCount(), 2);
    QCOMPARE(accepted.window->jobModel()->data(accepted.window->jobModel()->index(0), JobListModel::PromptRole)
                 .toString(), QStringLiteral("left over"));
}

void TestAppGpus::missingMpirunSaysWhatToInstall() {
    QTemporaryDir dir;
    const QString queueFile = dir.filePath(QStringLiteral("queue.json"));
    Window w(queueFile);
    QVERIFY(w.waitReady());
    w.launcher.missing.insert(QStringLiteral("mpirun"));
    w.window->jobModel()->addJob(w.session->submit(requestFor(QStringLiteral("kept"))), requestFor(QStringLiteral("kept")));
    const Relaunch relaunch = w.relaunch(mpirunTwoRanks());
    QVERIFY(!relaunch.started);
    QCOMPARE(relaunch.failures.size(), 1);
    const QString message = relaunch.failures.at(0);
    QVERIFY2(message.contains(QStringLiteral("sudo apt install openmpi-bin")), qPrintable(message));
    QVERIFY(message.contains(QStringLiteral("keeps working")));
    QVERIFY(w.launcher.started.isEmpty());
    QVERIFY(w.window->isVisible());
    QVERIFY(w.window->generateButton()->isEnabled());  // the current engine keeps working
    QCOMPARE(readSavedQueue(queueFile).reason, SavedQueue::Reason::Closed);
}

void TestAppGpus::failedStartSaysWhatFailed() {
    QTemporaryDir dir;
    Window w(dir.filePath(QStringLiteral("queue.json")));
    QVERIFY(w.waitReady());
    w.launcher.failWith = QStringLiteral("Permission denied");
    const Relaunch relaunch = w.relaunch(mpirunTwoRanks());
    QVERIFY(!relaunch.started);
    QCOMPARE(relaunch.failures,
             QStringList{QStringLiteral("Could not start mpirun -np 2 /opt/wanstudio/bin/wanstudio: Permission "
                                        "denied. The current engine keeps working.")});
    QVERIFY(w.window->isVisible());

    // a relaunch from inside an mpirun job must not inherit the old job's MPI variables
    QProcessEnvironment base;
    base.insert(QStringLiteral("OMPI_COMM_WORLD_RANK"), QStringLiteral("0"));
    base.insert(QStringLiteral("PMIX_RANK"), QStringLiteral("0"));
    base.insert(QStringLiteral("DISPLAY"), QStringLiteral(":0"));
    QProcessEnvironment extra;
    extra.insert(QStringLiteral("WANSTUDIO_API_TOKEN"), QStringLiteral("t"));
    const QProcessEnvironment env = childEnvironment(base, extra);
    QCOMPARE(env.keys().size(), 2);
    QCOMPARE(env.value(QStringLiteral("DISPLAY")), QStringLiteral(":0"));
    QCOMPARE(env.value(QStringLiteral("WANSTUDIO_API_TOKEN")), QStringLiteral("t"));
}

void TestAppGpus::connectDialogBuildsCommand() {
    ConnectDialog dialog(kExe, {QStringLiteral("--ckpt-dir"), QStringLiteral("/m"), QStringLiteral("--ulysses-size"),
                                QStringLiteral("2"), QStringLiteral("--connect=old:1")});
    QVERIFY(!ConnectDialog::addressProblem(QStringLiteral("gpu-box")).isEmpty());
    QVERIFY(ConnectDialog::addressProblem(QStringLiteral("gpu-box:99999")).contains(QStringLiteral("1 to 65535")));
    QVERIFY(ConnectDialog::addressProblem(QStringLiteral("gpu-box:8080")).isEmpty());
    dialog.addressEdit()->setText(QStringLiteral("gpu-box:8080"));
    dialog.tokenEdit()->setText(QStringLiteral("secret"));
    const LaunchCommand c = dialog.command();
    QCOMPARE(c.displayText(), QStringLiteral("/opt/wanstudio/bin/wanstudio --ckpt-dir /m --connect gpu-box:8080"));
    QCOMPARE(c.extraEnvironment.value(QStringLiteral("WANSTUDIO_API_TOKEN")), QStringLiteral("secret"));
}

void TestAppGpus::stalledEngineEndsAfterBoundedWait() {
    // A step that takes 3 s stands for a rank that stopped answering: Close cancels, the engine does not stop
    // in time, and the window ends the process (here: a hook) after its bounded wait, the queue saved.
    QTemporaryDir dir;
    const QString queueFile = dir.filePath(QStringLiteral("queue.json"));
    int forcedEnds = 0;  // before the window, whose teardown may still end the process
    WindowFixture f;
    f.open(std::make_unique<FakeEngineBackend>(fastFake(3000)), nullptr, false);
    MainWindow* window = f.window.get();
    window->setSavedQueuePath(queueFile);
    window->setShutdownTimeout(300);
    window->setForcedEnd([&forcedEnds] { ++forcedEnds; });
    f.session->start();
    QVERIFY(f.waitReady());
    window->jobModel()->addJob(f.session->submit(requestFor(QStringLiteral("stalls"))), requestFor(QStringLiteral("stalls")));
    QTRY_COMPARE(f.session->runningJob() != 0, true);
    window->close();
    QVERIFY(window->isVisible());  // still waiting for the engine
    QTRY_COMPARE_WITH_TIMEOUT(forcedEnds, 1, 2000);
    QCOMPARE(readSavedQueue(queueFile).jobs.size(), size_t(1));
}  // the fake's step ends; the engine thread stops

void TestAppGpus::processLauncherStartsDetached() {
    // The real launcher: the program runs detached, gets the extra environment, and not the MPI job's.
    QTemporaryDir dir;
    const QString out = dir.filePath(QStringLiteral("env.txt"));
    qputenv("OMPI_COMM_WORLD_RANK", "3");
    ProcessLauncher launcher;
    LaunchCommand c;
    c.program = QStringLiteral("sh");
    c.arguments = {QStringLiteral("-c"),
                   QStringLiteral("echo \"$WANSTUDIO_API_TOKEN ${OMPI_COMM_WORLD_RANK:-none}\" > %1.tmp && mv %1.tmp %1")
                       .arg(out)};
    c.extraEnvironment.insert(QStringLiteral("WANSTUDIO_API_TOKEN"), QStringLiteral("tok"));
    const LaunchOutcome started = launchDetached(launcher, c);
    qunsetenv("OMPI_COMM_WORLD_RANK");
    QVERIFY2(started.started, qPrintable(started.message));
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(out), 5000);
    QFile f(out);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll(), QByteArray("tok none\n"));

    c.program = QStringLiteral("wanstudio-no-such-program");
    const LaunchOutcome missing = launchDetached(launcher, c);
    QVERIFY(!missing.started);
    QCOMPARE(missing.message, QStringLiteral("wanstudio-no-such-program was not found. The current engine keeps working."));
}

void TestAppGpus::relaunchAfterCancelledLoadKeepsTheLayout() {
    FakeBackendConfig slow = fastFake();
    slow.loadSteps = 1000;  // 20 s unless cancelled
    FourRankWindow w(slow);
    w.session->start();
    QTRY_VERIFY(w.window->loadPanel()->progressBar()->value() > 0);
    w.session->cancelStart();
    QTRY_COMPARE(w.session->state(), EngineSession::State::StartCancelled);
    QCOMPARE(w.window->runningLayout().gpus, 4);  // the engine never said: the launch's layout
    QVERIFY(!w.window->gpuDialogSetup().current.t5_fsdp);
    QCOMPARE(w.window->gpuDialogSetup().current.world_size, 4);
    QVERIFY(w.window->openModel(w.window->currentModel(), 40));  // the load panel's Open model…, same model
    QCOMPARE(w.launcher.started.size(), 1);
    QCOMPARE(w.launcher.started[0].program, QStringLiteral("mpirun"));
    QCOMPARE(w.launcher.started[0].arguments, FourRankWindow::launchLine());
}

void TestAppGpus::relaunchAfterFailedStartKeepsTheLayout() {
    FakeBackendConfig failing = fastFake();
    failing.startError = "CUDA out of memory";
    FourRankWindow w(failing);
    w.session->start();
    QTRY_COMPARE(w.session->state(), EngineSession::State::StartFailed);
    GpuDialog dialog(w.window->gpuDialogSetup());
    QCOMPARE(dialog.countBox()->value(), 4);
    QCOMPARE(dialog.findChild<QLabel*>(QStringLiteral("currentLayoutLabel"))->text(),
             QStringLiteral("4 processes: Ulysses 2 × Ring 2, weights sharded (FSDP)"));
    QVERIFY(w.window->openModel(w.window->currentModel(), 40));
    QCOMPARE(w.launcher.started.size(), 1);
    QCOMPARE(w.launcher.started[0].arguments, FourRankWindow::launchLine());
}

void TestAppGpus::memoryOptionsRoundTrip() {
    MemoryOptions m;
    QVERIFY(m.isDefault());
    QVERIFY(m.arguments().empty());
    QVERIFY(m.summary().empty());
    m.ditDtype = "fp8";
    m.maxVramGb = 22.5;
    m.offloadDit = true;
    QCOMPARE(toQt(m.arguments()), (QStringList{"--dit-dtype", "fp8", "--max-vram", "22.5", "--offload-dit"}));
    QCOMPARE(QString::fromStdString(m.summary()),
             QStringLiteral("fp8 weights · at most 22.5 GB of GPU memory · DiT streamed from host memory"));
    // The options on a command line are replaced, whichever spelling they were given in; the rest stays.
    QCOMPARE(toQt(withMemoryOptions({"--dit_dtype=bf16", "--max-vram", "10", "--offload_dit", "--vae-tile", "32"}, m)),
             (QStringList{"--vae-tile", "32", "--dit-dtype", "fp8", "--max-vram", "22.5", "--offload-dit"}));
    QCOMPARE(toQt(withMemoryOptions({"--max-vram=10", "--size", "832*480"}, MemoryOptions())),
             (QStringList{"--size", "832*480"}));

    const QString ini = QDir(settingsDir_.path()).filePath(QStringLiteral("memory.ini"));
    {
        Settings settings(ini);
        QVERIFY(settings.memoryOptions().isDefault());  // never chosen
        settings.setMemoryOptions(m);
        settings.sync();
    }
    QVERIFY(Settings(ini).memoryOptions() == m);
    {
        QSettings raw(ini, QSettings::IniFormat);  // edited by hand into something the engine refuses
        raw.setValue(QStringLiteral("engine/ditDtype"), QStringLiteral("fp4"));
    }
    QVERIFY(Settings(ini).memoryOptions().isDefault());
}

void TestAppGpus::memoryDialogReloadsEveryRankWithTheOptions() {
    FourRankWindow w(fastFake());
    w.session->start();
    QVERIFY(w.waitReady());
    QVERIFY(w.window->findChild<QAction*>(QStringLiteral("memoryAction"))->isEnabled());
    QVERIFY(!w.window->modelLabel()->text().contains(QStringLiteral("fp8")));  // defaults: nothing said

    MemoryDialog dialog(w.window->memoryOptions());
    QVERIFY(!dialog.reloadButton()->isEnabled());  // nothing changed yet
    dialog.dtypeCombo()->setCurrentIndex(dialog.dtypeCombo()->findData(QStringLiteral("fp8")));
    dialog.maxVramSpin()->setValue(22);
    dialog.offloadBox()->setChecked(true);
    QVERIFY(dialog.reloadButton()->isEnabled());
    const MemoryOptions chosen = dialog.options();
    QCOMPARE(chosen.ditDtype, std::string("fp8"));

    w.launcher.failWith = QStringLiteral("Permission denied");
    QVERIFY(!w.window->applyMemoryOptions(chosen));  // not restarted: the engine and the settings keep theirs
    QVERIFY(Settings().memoryOptions().isDefault());
    w.launcher.failWith.clear();
    QVERIFY(w.window->applyMemoryOptions(chosen));
    QCOMPARE(w.launcher.started.size(), 1);
    const AppOptions reload = optionsOf(w.launcher.started[0]);
    QCOMPARE(reload.engine.dit_dtype, std::string("fp8"));  // what the reloaded engine's EngineConfig holds
    QCOMPARE(reload.engine.max_vram_gb, 22.0);
    QVERIFY(reload.engine.offload_dit);
    QCOMPARE(reload.engine.ckpt_dir, std::string("/m/14B"));
    // On every rank of the layout the window runs: the fake engine's (world 2, Ulysses 2, DiT FSDP).
    QCOMPARE(reload.engine.layout.world, 2);
    QCOMPARE(reload.engine.layout.ulysses, 2);
    QVERIFY(reload.engine.layout.dit_fsdp);
    QVERIFY(Settings().memoryOptions() == chosen);
    QTRY_VERIFY_WITH_TIMEOUT(!w.window->isVisible(), 5000);  // the old window makes way
}

void TestAppGpus::savedMemoryOptionsLoadASingleProcess() {
    MemoryOptions saved;
    saved.ditDtype = "fp8";
    saved.maxVramGb = 22;
    Settings().setMemoryOptions(saved);
    AppOptions plain;
    QVERIFY(applySavedMemoryOptions(plain, 1));  // the desktop entry: no option on the command line
    QVERIFY(MemoryOptions::of(plain.engine) == saved);
    AppOptions ranks;
    QVERIFY(!applySavedMemoryOptions(ranks, 2));  // under mpirun only the command line counts
    QVERIFY(MemoryOptions::of(ranks.engine).isDefault());
    AppOptions given;
    given.engine.offload_dit = true;
    QVERIFY(!applySavedMemoryOptions(given, 1));  // the command line wins
    QCOMPARE(given.engine.dit_dtype, std::string("auto"));

    // A window loaded with them says so, and Engine → GPUs… carries them into its mpirun line.
    WindowFixture w;
    w.options = plain;
    w.open(std::make_unique<FakeEngineBackend>(fastFake()), nullptr, false);
    w.window->setLaunchProgram(kExe, {QStringLiteral("--ckpt-dir"), QStringLiteral("/m/14B")});
    w.session->start();
    QVERIFY(w.waitReady());
    QVERIFY2(w.window->modelLabel()->text().endsWith(QStringLiteral("fp8 weights · at most 22 GB of GPU memory")),
             qPrintable(w.window->modelLabel()->text()));
    GpuDialog dialog(w.window->gpuDialogSetup());
    dialog.setGpuCount(2);
    QVERIFY2(dialog.commandView()->toPlainText().contains(QStringLiteral("/m/14B --dit-dtype fp8 --max-vram 22 --ulysses-size")),
             qPrintable(dialog.commandView()->toPlainText()));
    Settings().setMemoryOptions(MemoryOptions());
}

QTEST_MAIN(TestAppGpus)
#include "test_app_gpus.moc"
