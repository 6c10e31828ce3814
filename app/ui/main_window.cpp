#include "ui/main_window.h"

#include "launch/gpu_probe.h"
#include "launch/layout_proposal.h"
#include "launch/saved_queue.h"
#include "models/history_model.h"
#include "models/job_list_model.h"
#include "session/engine_link.h"
#include "session/engine_session.h"
#include "settings/settings.h"
#include "ui/connect_dialog.h"
#include "ui/history_panel.h"
#include "ui/icons.h"
#include "ui/job_queue_widget.h"
#include "ui/load_panel.h"
#include "ui/memory_dialog.h"
#include "ui/open_model_dialog.h"
#include "ui/parameters_panel.h"
#include "ui/preview_widget.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDesktopServices>
#include <QDir>
#include <QDockWidget>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QScrollBar>
#include <QShortcut>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QUrl>
#include <QVBoxLayout>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace wan::app {

namespace {
constexpr int kInfoRefreshMs = 5000;  // GPU memory in the status bar
}

MainWindow::MainWindow(EngineSession* session, Settings* settings, const AppOptions& options, QWidget* parent)
    : QMainWindow(parent), session_(session), settings_(settings), ckptDir_(QString::fromStdString(options.engine.ckpt_dir)) {
    setWindowTitle(tr("WanStudio"));
    currentModel_.ckptDir = options.engine.ckpt_dir;
    currentModel_.files = options.engine.components;
    launchLayout_ = options.engine.layout;
    memoryOptions_ = MemoryOptions::of(options.engine);
    remoteEngine_ = !options.connectAddress.empty();
    launchExecutable_ = QCoreApplication::applicationFilePath();
    launchArguments_ = QCoreApplication::arguments().mid(1);
    launchDryRun_ = qEnvironmentVariableIntValue("WANSTUDIO_LAUNCH_DRY_RUN") != 0;
    savedQueuePath_ = defaultSavedQueuePath();
    bool timeoutSet = false;
    const int timeoutS = qEnvironmentVariableIntValue("WANSTUDIO_CLOSE_TIMEOUT_S", &timeoutSet);
    if (timeoutSet && timeoutS > 0) shutdownTimeoutMs_ = timeoutS * 1000;
    forcedEnd_ = [] {
        std::fflush(nullptr);
        std::_Exit(3);
    };
    setWindowIcon(appIcon());
    jobs_ = new JobListModel(this);
    jobs_->attach(session_);
    history_ = new HistoryModel(this);
    buildUi();
    buildMenus();
    restoreSettings(options);

    connect(session_, &EngineSession::started, this, &MainWindow::onStarted);
    connect(session_, &EngineSession::startFailed, this, &MainWindow::onStartFailed);
    connect(session_, &EngineSession::loadProgress, this, &MainWindow::onLoadProgress);
    connect(session_, &EngineSession::startCancelled, this, &MainWindow::onStartCancelled);
    connect(loadPanel_, &LoadPanel::cancelRequested, session_, &EngineSession::cancelStart);
    // A --connect window's model is the server's: after a cancel it connects again instead (the same dialog as
    // File → Connect to engine…).
    connect(loadPanel_, &LoadPanel::openModelRequested, this, [this] {
        if (remoteEngine_) openConnectDialog();
        else openModelDialog(currentModel_);
    });
    if (remoteEngine_) {
        loadPanel_->openModelButton()->setText(tr("Connect…"));
        loadPanel_->openModelButton()->setToolTip(tr("Connect to this engine again, or to another one"));
    }
    connect(session_, &EngineSession::infoUpdated, this, &MainWindow::onInfo);
    connect(session_, &EngineSession::finished, this, &MainWindow::onFinished);
    connect(session_, &EngineSession::failed, this, &MainWindow::onFailed);
    connect(session_, &EngineSession::progress, this, &MainWindow::onProgress);
    connect(session_, &EngineSession::promptExtended, params_, &ParametersPanel::onPromptExtended);
    connect(session_, &EngineSession::extendFailed, params_, &ParametersPanel::onExtendFailed);
    connect(params_, &ParametersPanel::enhanceRequested, session_, &EngineSession::extendPrompt);
    // The saved queue follows the waiting jobs (saveQueue writes only when the set of waiting jobs changed).
    connect(jobs_, &QAbstractItemModel::rowsInserted, this, [this] { saveQueue(); });
    connect(jobs_, &QAbstractItemModel::rowsRemoved, this, [this] { saveQueue(); });
    connect(jobs_, &QAbstractItemModel::dataChanged, this, [this] { saveQueue(); });
    connect(session_, &EngineSession::stopped, this, [this] {
        engineState_->setText(tr("Engine stopped"));
        updateGenerateEnabled();
        if (shuttingDown_) {
            closeAccepted_ = true;
            close();
        }
    });

    infoTimer_ = new QTimer(this);
    infoTimer_->setInterval(kInfoRefreshMs);
    connect(infoTimer_, &QTimer::timeout, this, [this] {
        if (session_->isReady()) session_->refreshInfo();
    });

    // Whatever state the session is already in (the window may be created after start()).
    switch (session_->state()) {
        case EngineSession::State::Ready: onStarted(session_->engineInfo()); break;
        case EngineSession::State::StartFailed: onStartFailed(session_->startError()); break;
        case EngineSession::State::StartCancelled: onStartCancelled(session_->startError()); break;
        default:
            engineState_->setText(tr("Loading model…"));
            queue_->setIdleText(tr("Loading model…"));
            loadPanel_->showStarting();
            if (session_->lastLoadProgress().bytes_total > 0) onLoadProgress(session_->lastLoadProgress());
            break;
    }
    updateGenerateEnabled();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildUi() {
    // left: parameters (scrollable) + Generate
    params_ = new ParametersPanel;
    auto* left = new QWidget;
    auto* leftLayout = new QVBoxLayout(left);
    auto* scroll = new QScrollArea;
    scroll->setWidget(params_);
    scroll->setWidgetResizable(true);
    scroll->setFrameShape(QFrame::NoFrame);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);  // the column is as wide as its fields
    scroll->setMinimumWidth(params_->minimumSizeHint().width() + scroll->verticalScrollBar()->sizeHint().width());
    leftLayout->addWidget(scroll, 1);
    formError_ = new QLabel;
    formError_->setObjectName(QStringLiteral("formErrorLabel"));
    formError_->setWordWrap(true);
    formError_->setStyleSheet(QStringLiteral("color: #c0392b;"));
    formError_->setVisible(false);
    leftLayout->addWidget(formError_);
    generate_ = new QPushButton(generateIcon(), tr("Generate"));
    generate_->setObjectName(QStringLiteral("generateButton"));
    generate_->setToolTip(tr("Add a job with these parameters to the queue (Ctrl+Return)"));
    generate_->setMinimumHeight(36);
    generate_->setDefault(true);
    leftLayout->addWidget(generate_);

    // right: preview | history tabs, job queue below
    preview_ = new PreviewWidget;
    historyPanel_ = new HistoryPanel(history_);
    tabs_ = new QTabWidget;
    tabs_->setObjectName(QStringLiteral("rightTabs"));
    tabs_->addTab(preview_, tr("Preview"));
    tabs_->addTab(historyPanel_, tr("History"));
    queue_ = new JobQueueWidget(jobs_, session_);
    rightSplit_ = new QSplitter(Qt::Vertical);
    rightSplit_->addWidget(tabs_);
    rightSplit_->addWidget(queue_);
    rightSplit_->setStretchFactor(0, 3);
    rightSplit_->setStretchFactor(1, 1);

    mainSplit_ = new QSplitter(Qt::Horizontal);
    mainSplit_->addWidget(left);
    mainSplit_->addWidget(rightSplit_);
    mainSplit_->setStretchFactor(0, 2);
    mainSplit_->setStretchFactor(1, 3);
    setCentralWidget(mainSplit_);

    // status bar: engine state, layout, model, memory
    engineState_ = new QLabel;
    engineState_->setObjectName(QStringLiteral("engineStateLabel"));
    layout_ = new QLabel;
    layout_->setObjectName(QStringLiteral("layoutLabel"));
    model_ = new QLabel;
    model_->setObjectName(QStringLiteral("modelLabel"));
    memory_ = new QLabel;
    memory_->setObjectName(QStringLiteral("memoryLabel"));
    statusBar()->addWidget(engineState_, 1);
    loadPanel_ = new LoadPanel;
    statusBar()->addWidget(loadPanel_);
    statusBar()->addPermanentWidget(layout_);
    statusBar()->addPermanentWidget(model_);
    statusBar()->addPermanentWidget(memory_);

    // log dock (hidden by default)
    auto* dock = new QDockWidget(tr("Log"), this);
    dock->setObjectName(QStringLiteral("logDock"));
    log_ = new QPlainTextEdit(dock);
    log_->setReadOnly(true);
    log_->setMaximumBlockCount(5000);
    dock->setWidget(log_);
    addDockWidget(Qt::BottomDockWidgetArea, dock);
    dock->hide();

    connect(generate_, &QPushButton::clicked, this, &MainWindow::generate);
    for (const QKeySequence& keys : {QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)}) {
        auto* shortcut = new QShortcut(keys, this);
        shortcut->setContext(Qt::WindowShortcut);
        connect(shortcut, &QShortcut::activated, this, &MainWindow::generate);
    }
    connect(preview_, &PreviewWidget::loaded, this, &MainWindow::previewLoaded);
    connect(preview_, &PreviewWidget::failed, this, &MainWindow::previewFailed);
    connect(historyPanel_, &HistoryPanel::playRequested, this, &MainWindow::playVideo);
    connect(historyPanel_, &HistoryPanel::reuseRequested, this, &MainWindow::reuseHistoryEntry);
    connect(historyPanel_, &HistoryPanel::message, this, [this](const QString& m) { statusBar()->showMessage(m, 8000); });
    connect(params_, &ParametersPanel::outputFolderChanged, this, &MainWindow::setOutputFolder);
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* gen = file->addAction(tr("&Generate"), this, &MainWindow::generate);
    gen->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return));
    gen->setShortcutContext(Qt::WidgetShortcut);  // the window-wide QShortcut triggers it; this shows the keys
    buildModelMenu(file);
    file->addAction(tr("Open output &folder"), historyPanel_, &HistoryPanel::openFolder);
    QAction* connectAction = file->addAction(tr("&Connect to engine…"), this, &MainWindow::openConnectDialog);
    connectAction->setObjectName(QStringLiteral("connectAction"));
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
    quit->setShortcut(QKeySequence::Quit);
    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->addAction(findChild<QDockWidget*>(QStringLiteral("logDock"))->toggleViewAction());
    QAction* live = view->addAction(tr("&Live preview"));
    live->setObjectName(QStringLiteral("livePreviewAction"));
    live->setCheckable(true);
    live->setChecked(settings_->livePreview());
    live->setToolTip(tr("Show the video forming while it samples (a rough colour preview of every step)"));
    preview_->setLiveEnabled(live->isChecked());
    connect(live, &QAction::toggled, this, [this](bool on) {
        preview_->setLiveEnabled(on);
        settings_->setLivePreview(on);
    });
    QMenu* engine = menuBar()->addMenu(tr("&Engine"));
    QAction* gpus = engine->addAction(tr("&GPUs…"), this, &MainWindow::openGpuDialog);
    gpus->setObjectName(QStringLiteral("gpusAction"));
    QAction* memory = engine->addAction(tr("&Memory…"), this, &MainWindow::openMemoryDialog);
    memory->setObjectName(QStringLiteral("memoryAction"));
    memory->setToolTip(tr("fp8 weights, a GPU memory limit, DiT blocks streamed from host memory"));
    if (remoteEngine_) {  // the server's engine: its options are chosen where it runs
        memory->setEnabled(false);
        memory->setToolTip(tr("The remote engine's memory options are chosen where it runs (wanstudio --listen …)"));
    }
    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About WanStudio"), this, [this] {
        QMessageBox::about(this, tr("About WanStudio"),
                           tr("<b>WanStudio</b> %1<br>Native text-to-video studio for the Wan2.1 models.")
                               .arg(QString::fromUtf8(wan::version_string())));
    });
}

void MainWindow::buildModelMenu(QMenu* file) {
    QAction* open = file->addAction(tr("&Open model…"), this, [this] { openModelDialog(currentModel_); });
    open->setObjectName(QStringLiteral("openModelAction"));
    open->setShortcut(QKeySequence::Open);
    if (remoteEngine_) {  // the server chose its model; restarting here would start a local engine instead
        open->setEnabled(false);
        open->setToolTip(tr("The remote engine's model is chosen where it runs (wanstudio --listen --ckpt-dir …)"));
    }
    recentMenu_ = file->addMenu(tr("&Recent models"));
    recentMenu_->setObjectName(QStringLiteral("recentModelsMenu"));
    connect(recentMenu_, &QMenu::aboutToShow, this, &MainWindow::fillRecentModelsMenu);
    fillRecentModelsMenu();
    file->addSeparator();
}

void MainWindow::fillRecentModelsMenu() {
    recentMenu_->clear();
    const std::vector<ModelChoice> recent = settings_->recentModels();
    for (const ModelChoice& c : recent) {
        QStringList paths;
        for (const std::string& a : c.arguments()) paths << QString::fromStdString(a);
        const std::vector<std::string> missing = c.missingPaths();
        QAction* a = recentMenu_->addAction(QString::fromStdString(c.label()));
        a->setToolTip(paths.join(QLatin1Char(' ')));
        if (!missing.empty()) {  // moved or deleted: shown, not offered, and the menu says why
            a->setText(tr("%1 (not found: %2)").arg(QString::fromStdString(c.label()),
                                                     QString::fromStdString(missing.front())));
            a->setEnabled(false);
            continue;
        }
        a->setEnabled(!remoteEngine_);
        connect(a, &QAction::triggered, this, [this, c] { openModelDialog(c); });
    }
    if (recent.empty()) recentMenu_->addAction(tr("(none yet)"))->setEnabled(false);
    recentMenu_->addSeparator();
    QAction* clear = recentMenu_->addAction(tr("Clear the list"), this, [this] { settings_->setRecentModels({}); });
    clear->setEnabled(!recent.empty());
}

void MainWindow::openModelDialog(const ModelChoice& initial) {
    OpenModelDialog dialog(initial, this);
    if (dialog.exec() != QDialog::Accepted || !dialog.probe().loadable()) return;
    openModel(dialog.choice(), dialog.probe().numHeads);
}

std::vector<std::string> MainWindow::launchArgs() const {
    std::vector<std::string> args;
    for (const QString& a : launchArguments_) args.push_back(a.toStdString());
    return args;
}

LaunchCommand MainWindow::modelLaunchCommand(const ModelChoice& choice, qint64 numHeads) const {
    std::vector<std::string> args = stripModelArgs(launchArgs());
    for (const std::string& a : choice.arguments()) args.push_back(a);
    return restartCommand(args, numHeads, memoryOptions_);
}

LaunchCommand MainWindow::memoryLaunchCommand(const MemoryOptions& memory) const {
    return restartCommand(launchArgs(), 0, memory);
}

LayoutProposal MainWindow::runningLayout() const {
    if (!engineInfoKnown_) return layoutOf(launchLayout_);
    const EngineInfo& i = session_->engineInfo();
    return layoutOf(ParallelLayout{i.world_size, i.ulysses_size, i.ring_size, i.cfg_parallel, i.dit_fsdp, i.t5_fsdp});
}

LaunchCommand MainWindow::restartCommand(const std::vector<std::string>& args, qint64 numHeads,
                                         const MemoryOptions& memory) const {
    LayoutProposal layout = runningLayout();
    if (numHeads > 0 && !layoutProblems(layout, numHeads).empty())
        layout = proposeLayout(layout.gpus, numHeads, !layout.dit_fsdp);
    const LaunchLine line = mpirunCommand("mpirun", launchExecutable_.toStdString(), withMemoryOptions(args, memory),
                                          layout, ::geteuid() == 0);
    LaunchCommand c;
    c.program = QString::fromStdString(line.program);
    for (const std::string& a : line.args) c.arguments << QString::fromStdString(a);
    return c;
}

bool MainWindow::openModel(const ModelChoice& choice, qint64 numHeads) {
    settings_->addRecentModel(choice);
    settings_->sync();
    fillRecentModelsMenu();
    return relaunch(modelLaunchCommand(choice, numHeads));
}

void MainWindow::restoreSettings(const AppOptions& options) {
    QString folder = settings_->outputFolder();
    if (folder.isEmpty()) folder = QDir::current().absoluteFilePath(QString::fromStdString(options.engine.output_dir));
    setOutputFolder(folder);
    if (settings_->hasLastRequest()) {
        params_->setRequest(settings_->lastRequest());
    } else {
        params_->setRequest(options.request);
    }
    const QByteArray geometry = settings_->windowGeometry();
    if (!geometry.isEmpty()) restoreGeometry(geometry);
    else resize(1280, 800);
    const QByteArray state = settings_->windowState();
    if (!state.isEmpty()) restoreState(state);
    const QByteArray mainSplit = settings_->splitterState(QStringLiteral("main"));
    if (!mainSplit.isEmpty()) mainSplit_->restoreState(mainSplit);
    else mainSplit_->setSizes({460, 820});
    const QByteArray rightSplit = settings_->splitterState(QStringLiteral("right"));
    if (!rightSplit.isEmpty()) rightSplit_->restoreState(rightSplit);
}

void MainWindow::saveSettings() {
    settings_->setOutputFolder(outputFolder_);
    settings_->setLastRequest(params_->savedRequest());
    settings_->setWindowGeometry(saveGeometry());
    settings_->setWindowState(saveState());
    settings_->setSplitterState(QStringLiteral("main"), mainSplit_->saveState());
    settings_->setSplitterState(QStringLiteral("right"), rightSplit_->saveState());
    settings_->sync();
}

QString MainWindow::outputFolder() const { return outputFolder_; }

void MainWindow::setOutputFolder(const QString& folder) {
    const QString absolute = folder.isEmpty() ? QString() : QDir(folder).absolutePath();
    if (params_->outputFolder() != absolute) params_->setOutputFolder(absolute);
    if (absolute == outputFolder_) return;
    outputFolder_ = absolute;
    settings_->setOutputFolder(absolute);
    if (link_) link_->setHistoryFolder(absolute);  // first: it makes the folder, so that the history can watch it
    history_->setWatching(true);
    history_->setFolder(absolute);
}

void MainWindow::setEngineLink(EngineLink* link) {
    link_ = link;
    params_->outputFolderEdit()->setToolTip(
        tr("Where this computer keeps the videos: its own jobs' and the server's finished ones are copied here. "
           "The engine at %1 writes into its own --output-dir.").arg(link->where()));
    jobs_->attach(link);
    queue_->setEngineLink(link);
    connect(link, &EngineLink::linkUp, this, &MainWindow::onLinkUp);
    connect(link, &EngineLink::linkDown, this, &MainWindow::onLinkDown);
    connect(link, &EngineLink::historyCopied, history_, &HistoryModel::refresh);
    // The window's folder, chosen before any job: the server's videos are copied where the history looks.
    link->setHistoryFolder(outputFolder_);
    history_->refresh();
}

void MainWindow::onLinkUp() {
    engineState_->setToolTip(QString());
    if (session_->isReady() && !shuttingDown_) engineState_->setText(tr("Ready"));
    if (linkWasDown_) statusBar()->showMessage(tr("Reconnected to the engine at %1").arg(link_->where()), 8000);
    linkWasDown_ = false;
}

void MainWindow::onLinkDown(const QString& reason, int retryInMs) {
    linkWasDown_ = true;
    // Closing, or no engine to wait for (the start failed and says why): the label has better news than this.
    if (shuttingDown_ || session_->state() == EngineSession::State::StartFailed) return;
    const int seconds = std::max(1, (retryInMs + 999) / 1000);
    engineState_->setText(tr("Disconnected from the engine at %1 — reconnecting in %n s", nullptr, seconds)
                              .arg(link_->where()));
    engineState_->setToolTip(reason);
}

QString MainWindow::layoutText(const EngineInfo& info) {
    QString text = tr("World %1 · Ulysses %2 × Ring %3").arg(info.world_size).arg(info.ulysses_size).arg(info.ring_size);
    QStringList fsdp;
    if (info.dit_fsdp) fsdp << QStringLiteral("DiT");
    if (info.t5_fsdp) fsdp << QStringLiteral("T5");
    if (!fsdp.isEmpty()) text += tr(" · FSDP %1").arg(fsdp.join(QLatin1Char('+')));
    if (info.cfg_parallel) text += tr(" · CFG-parallel");
    return text;
}

QString MainWindow::modelText(const EngineInfo& info) {
    QString text = tr("Model %1").arg(QString::fromStdString(info.model_variant.empty() ? "?" : info.model_variant));
    if (!info.device.empty()) text += tr(" on %1").arg(QString::fromStdString(info.device));
    return text;
}

QString MainWindow::memoryText(const EngineInfo& info) {
    if (info.gpu_memory_used_gb.empty()) return QString();
    QStringList parts;
    for (size_t r = 0; r < info.gpu_memory_used_gb.size(); ++r) {
        QString part = QStringLiteral("r%1 %2").arg(r).arg(info.gpu_memory_used_gb[r], 0, 'f', 1);
        if (r < info.gpu_memory_total_gb.size()) part += QStringLiteral("/%1").arg(info.gpu_memory_total_gb[r], 0, 'f', 0);
        parts << part + QStringLiteral(" GB");
    }
    return tr("GPU memory: %1").arg(parts.join(QStringLiteral(" · ")));
}

void MainWindow::onStarted(const EngineInfo& info) {
    engineInfoKnown_ = true;
    loadPanel_->clear();
    engineState_->setToolTip(QString());
    params_->setEngineInfo(info);
    params_->setEngineReady(true);
    engineState_->setText(tr("Ready"));
    queue_->setIdleText(tr("Idle"));
    onInfo(info);
    infoTimer_->start();
    updateGenerateEnabled();
    QTimer::singleShot(0, this, &MainWindow::offerSavedQueue);  // after the caller's own started() handlers
}

void MainWindow::onLoadProgress(const LoadProgress& progress) {
    if (session_->state() != EngineSession::State::Starting) return;  // a late report after the end
    loadPanel_->showProgress(progress);
    engineState_->setText(LoadPanel::statusText(progress));
    engineState_->setToolTip(QString::fromStdString(progress.file));
}

// The window stays usable: the history, the parameters and the queue (its jobs wait for the next engine, and
// Open model… restarts one with them).
void MainWindow::onStartCancelled(const QString& message) {
    loadPanel_->showCancelled();
    engineState_->setText(remoteEngine_ ? tr("Not connected: %1. Connect… tries again.").arg(message)
                                        : tr("Model not loaded: loading was cancelled. Open model… loads it (or another)."));
    engineState_->setToolTip(message);
    queue_->setIdleText(tr("Engine not loaded"));
    params_->setEngineReady(false);
    updateGenerateEnabled();
}

void MainWindow::onStartFailed(const QString& message) {
    loadPanel_->clear();
    engineState_->setText(tr("Engine failed to start"));
    engineState_->setToolTip(message);
    queue_->setIdleText(tr("Engine not available"));
    queue_->showError(tr("The engine failed to start: %1\nThe history stays available.").arg(message));
    params_->setEngineReady(false);
    updateGenerateEnabled();
}

void MainWindow::onInfo(const EngineInfo& info) {
    layout_->setText(layoutText(info));
    const QString memory = memoryOptionsText();
    model_->setText(memory.isEmpty() ? modelText(info) : tr("%1 · %2").arg(modelText(info), memory));
    QStringList modelPaths;
    for (const std::string& a : currentModel_.arguments()) modelPaths << QString::fromStdString(a);
    for (const std::string& a : memoryOptions_.arguments()) modelPaths << QString::fromStdString(a);
    model_->setToolTip(modelPaths.isEmpty() ? tr("The built-in demo checkpoint") : modelPaths.join(QLatin1Char(' ')));
    const QString used = memoryText(info);
    memory_->setText(used);
    memory_->setVisible(!used.isEmpty());
}

void MainWindow::updateGenerateEnabled() {
    generate_->setEnabled(session_->isReady() && !shuttingDown_);
}

qint64 MainWindow::generate() {
    if (!generate_->isEnabled()) return 0;
    GenerationRequest r = params_->request();
    if (r.prompt.empty()) {
        formError_->setText(tr("Enter a prompt first."));
        formError_->setVisible(true);
        params_->promptEdit()->setFocus();
        return 0;
    }
    const std::vector<std::string> problems = r.validate();
    if (!problems.empty()) {
        QStringList lines;
        for (const std::string& p : problems) lines << QString::fromStdString(p);
        formError_->setText(lines.join(QLatin1Char('\n')));
        formError_->setVisible(true);
        return 0;
    }
    if (!outputFolder_.isEmpty() && !QDir().mkpath(outputFolder_)) {
        formError_->setText(tr("Cannot create the output folder %1").arg(outputFolder_));
        formError_->setVisible(true);
        return 0;
    }
    formError_->setVisible(false);
    r.output_dir = outputFolder_.toStdString();
    settings_->setLastRequest(params_->savedRequest());
    const qint64 id = session_->submit(r);
    jobs_->addJob(id, r);
    queue_->clearError();
    emit jobSubmitted(id);
    return id;
}

void MainWindow::onProgress(qint64, const ProgressInfo& info) {
    if (!info.preview || info.preview->empty()) return;
    if (!preview_->isShowingLive()) tabs_->setCurrentWidget(preview_);
    preview_->showLiveFrames(*info.preview, info.total);
}

void MainWindow::onFinished(qint64 id, const GenerationResult& result) {
    if (result.status != JobStatus::Ok) {
        preview_->endLive();
        statusBar()->showMessage(tr("Job #%1 cancelled").arg(id), 5000);
        return;
    }
    params_->setLastSeed(result.seed_used);
    statusBar()->showMessage(tr("Job #%1 done (seed %2)").arg(id).arg(result.seed_used), 8000);
    history_->refresh();
    const QString video = QString::fromStdString(result.video_path);
    if (!video.isEmpty()) {
        playVideo(video, QString::fromStdString(result.poster_path));
        historyPanel_->selectRow(history_->rowOfVideo(video));
    }
}

void MainWindow::onFailed(qint64 id, const QString& message) {
    preview_->endLive();
    queue_->showError(tr("Job #%1 failed: %2").arg(id).arg(message));
    statusBar()->showMessage(tr("Job #%1 failed").arg(id), 8000);
}

void MainWindow::playVideo(const QString& videoPath, const QString& posterPath) {
    tabs_->setCurrentWidget(preview_);
    preview_->showVideo(videoPath, posterPath);
}

void MainWindow::reuseHistoryEntry(int row) {
    if (row < 0 || row >= history_->rowCount()) return;
    const HistoryEntry& e = history_->entryAt(row);
    GenerationRequest r = e.meta.request;
    const std::string& used = e.meta.result.prompt_used;
    if (!used.empty() && used != r.prompt) {  // extended by the engine: keep the user's text as the original
        if (r.original_prompt.empty()) r.original_prompt = r.prompt;
        r.prompt = used;
    }
    if (e.meta.result.seed_used >= 0) r.seed = e.meta.result.seed_used;
    r.use_prompt_extend = false;
    params_->setRequest(r);
    statusBar()->showMessage(tr("Parameters loaded from %1").arg(QFileInfo(e.videoPath).fileName()), 5000);
}

void MainWindow::appendLog(int level, const QString& line) {
    static const char* letters = "?DIWE";
    const QChar letter = QLatin1Char(level >= 1 && level <= 4 ? letters[level] : '?');
    log_->appendPlainText(QStringLiteral("%1 %2").arg(letter, line));
}

void MainWindow::closeEvent(QCloseEvent* event) {
    if (closeAccepted_ || session_->state() == EngineSession::State::Stopped) {
        if (!shuttingDown_) saveSettings();
        event->accept();
        return;
    }
    if (shuttingDown_) {  // asked again while the engine winds down: keep waiting
        event->ignore();
        return;
    }
    if (confirmOnClose_ && !relaunching_ && session_->pendingJobs() > 0) {
        const auto answer = QMessageBox::question(
            this, tr("Quit WanStudio"),
            tr("%n job(s) are queued or running. Cancel them and quit?", nullptr, session_->pendingJobs()),
            QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
        if (answer != QMessageBox::Yes) {
            event->ignore();
            return;
        }
    }
    saveSettings();
    saveQueue();
    queueFrozen_ = true;  // the cancellations below must not empty the saved queue
    shuttingDown_ = true;
    infoTimer_->stop();
    updateGenerateEnabled();
    engineState_->setText(tr("Shutting down…"));
    event->ignore();
    session_->shutdown();  // cancels, backend->shutdown() on the engine thread; stopped() closes the window
    // A stalled engine (a rank that stopped answering) must not keep the window forever: after the bounded
    // wait the process ends; the queue is already on disk.
    QTimer::singleShot(shutdownTimeoutMs_, this, [this] {
        if (session_->state() == EngineSession::State::Stopped) return;
        std::fprintf(stderr, "wanstudio: the engine did not stop within %.1f s of closing the window; ending it "
                     "(the waiting jobs are saved in %s)\n", shutdownTimeoutMs_ / 1000.0, qPrintable(savedQueuePath_));
        if (forcedEnd_) forcedEnd_();
    });
}

// ---- relaunch and the saved queue -----------------------------------------------------------------------

Launcher* MainWindow::launcher() {
    if (launcher_) return launcher_;
    if (!ownLauncher_) ownLauncher_ = std::make_unique<ProcessLauncher>();
    return ownLauncher_.get();
}

void MainWindow::setLaunchProgram(const QString& executable, const QStringList& arguments) {
    launchExecutable_ = executable;
    launchArguments_ = arguments;
}

qint64 MainWindow::headsOfModel(const QString& ckptDir, const QString& variant) {
    if (!ckptDir.isEmpty()) {
        QFile config(QDir(ckptDir).filePath(QStringLiteral("config.json")));
        if (config.open(QIODevice::ReadOnly)) {
            const QJsonObject json = QJsonDocument::fromJson(config.read(1 << 20)).object();
            const qint64 heads = json.value(QStringLiteral("num_heads")).toInteger();
            if (heads > 0) return heads;
        }
    }
    if (variant.contains(QLatin1String("14B"))) return 40;
    if (variant.contains(QLatin1String("demo"))) return 4;  // tests/data/golden/tiny-ckpt/config.json
    return 12;                                              // 1.3B
}

GpuDialogSetup MainWindow::gpuDialogSetup() const {
    GpuDialogSetup s;
    s.gpus = probeGpus(&s.probeNote);
    const EngineInfo& info = session_->engineInfo();
    s.current = info;
    const LayoutProposal running = runningLayout();  // also after a cancelled or failed load
    s.current.world_size = running.gpus;
    s.current.ulysses_size = running.ulysses;
    s.current.ring_size = running.ring;
    s.current.dit_fsdp = running.dit_fsdp;
    s.current.t5_fsdp = running.t5_fsdp;
    s.current.cfg_parallel = running.cfg_parallel;
    s.modelName = QString::fromStdString(info.model_variant);
    s.numHeads = headsOfModel(ckptDir_, s.modelName);
    s.executable = launchExecutable_;
    for (const std::string& a : withMemoryOptions(launchArgs(), memoryOptions_)) s.arguments << QString::fromStdString(a);
    s.asRoot = ::geteuid() == 0;
    return s;
}

void MainWindow::openGpuDialog() {
    GpuDialog dialog(gpuDialogSetup(), this);
    if (dialog.exec() == QDialog::Accepted) relaunch(dialog.command());
}

void MainWindow::openMemoryDialog() {
    MemoryDialog dialog(memoryOptions_, this);
    if (dialog.exec() == QDialog::Accepted) applyMemoryOptions(dialog.options());
}

bool MainWindow::applyMemoryOptions(const MemoryOptions& memory) {
    if (!relaunch(memoryLaunchCommand(memory))) return false;  // the engine keeps its options, and so do the settings
    settings_->setMemoryOptions(memory);
    settings_->sync();
    return true;
}

QString MainWindow::memoryOptionsText() const { return QString::fromStdString(memoryOptions_.summary()); }

void MainWindow::openConnectDialog() {
    ConnectDialog dialog(launchExecutable_, launchArguments_, this);
    if (dialog.exec() == QDialog::Accepted) relaunch(dialog.command());
}

bool MainWindow::relaunch(const LaunchCommand& command) {
    const QString text = command.displayText();
    if (launchDryRun_) {
        lastLaunchCommand_ = text;
        std::fprintf(stdout, "wanstudio: dry run, would relaunch as: %s\n", qPrintable(text));
        std::fflush(stdout);
        statusBar()->showMessage(tr("Dry run: %1").arg(text));
        return true;
    }
    if (!queueRead_) {  // the engine never became ready: the old saved queue is handed on as it is
        pendingSaved_ = readSavedQueue(savedQueuePath_).jobs;
        queueRead_ = true;
    }
    writeQueue(static_cast<int>(SavedQueue::Reason::Relaunch), queueToKeep());
    queueFrozen_ = true;
    const LaunchOutcome outcome = launchDetached(*launcher(), command);
    if (!outcome.started) {
        queueFrozen_ = false;
        saveQueue(true);
        appendLog(static_cast<int>(wan::LogLevel::Error), outcome.message);
        statusBar()->showMessage(outcome.message, 15000);
        emit launchFailed(outcome.message);
        if (interactive_) QMessageBox::warning(this, tr("Restart WanStudio"), outcome.message);
        return false;
    }
    lastLaunchCommand_ = text;
    appendLog(static_cast<int>(wan::LogLevel::Info), tr("relaunched as: %1").arg(text));
    relaunching_ = true;
    close();
    return true;
}

void MainWindow::offerSavedQueue() {
    if (queueRead_ || shuttingDown_) return;
    QString warning;
    const SavedQueue saved = readSavedQueue(savedQueuePath_, &warning);
    if (!warning.isEmpty()) appendLog(static_cast<int>(wan::LogLevel::Warn), warning);
    pendingSaved_ = saved.jobs;
    queueRead_ = true;
    const int n = static_cast<int>(saved.jobs.size());
    if (n == 0) return;
    if (saved.reason == SavedQueue::Reason::Relaunch) return applySavedQueue(true);
    if (restoreQuestion_) return applySavedQueue(restoreQuestion_(n));
    // Not modal: the window works meanwhile, and until the answer the saved jobs stay in the file (a new job
    // is saved beside them).
    auto* box = new QMessageBox(QMessageBox::Question, tr("Restore the queue"),
                                n == 1 ? tr("1 job was waiting when WanStudio last closed: restore?")
                                       : tr("%1 jobs were waiting when WanStudio last closed: restore?").arg(n),
                                QMessageBox::Yes | QMessageBox::No, this);
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->setWindowModality(Qt::NonModal);
    connect(box, &QMessageBox::finished, this, [this](int answer) { applySavedQueue(answer == QMessageBox::Yes); });
    box->show();
}

void MainWindow::applySavedQueue(bool restore) {
    std::vector<GenerationRequest> saved = std::move(pendingSaved_);
    pendingSaved_.clear();
    if (restore && !shuttingDown_) {
        for (const GenerationRequest& r : saved) jobs_->addJob(session_->submit(r), r);
        const int n = static_cast<int>(saved.size());
        statusBar()->showMessage(
            n == 1 ? tr("1 job restored to the queue") : tr("%1 jobs restored to the queue").arg(n), 8000);
        emit queueRestored(n);
    }
    saveQueue(true);  // now the file says what this window has waiting (nothing, when declined)
}

std::vector<GenerationRequest> MainWindow::queueToKeep() const {
    std::vector<GenerationRequest> out = pendingSaved_;
    for (GenerationRequest& r : jobs_->waitingRequests()) out.push_back(std::move(r));
    return out;
}

void MainWindow::saveQueue(bool force) {
    if (!queueRead_ || queueFrozen_) return;
    std::vector<qint64> ids = jobs_->waitingIds();
    if (!force && ids == savedIds_) return;
    if (writeQueue(static_cast<int>(SavedQueue::Reason::Closed), queueToKeep())) savedIds_ = std::move(ids);
}

bool MainWindow::writeQueue(int reason, const std::vector<GenerationRequest>& jobs) {
    SavedQueue q;
    q.reason = static_cast<SavedQueue::Reason>(reason);
    q.jobs = jobs;
    QString error;
    if (writeSavedQueue(savedQueuePath_, q, &error)) return true;
    appendLog(static_cast<int>(wan::LogLevel::Warn), tr("the queue could not be saved: %1").arg(error));
    return false;
}

}  // namespace wan::app
