// The WanStudio window (rank 0): parameters on the left; preview and history tabs on the right with the job
// queue under them; engine world, layout, model and GPU memory in the status bar.
// Nothing here blocks the GUI thread: every engine call goes through EngineSession's queued slots.
#pragma once

#include "cli/model_probe.h"
#include "cli/options.h"
#include "launch/launcher.h"
#include "launch/layout_proposal.h"
#include "launch/memory_options.h"
#include "session/metatypes.h"
#include "ui/gpu_dialog.h"

#include <QMainWindow>
#include <QString>

#include <functional>
#include <memory>
#include <vector>

class QLabel;
class QMenu;
class QPlainTextEdit;
class QPushButton;
class QSplitter;
class QTabWidget;
class QTimer;

namespace wan::app {

class EngineLink;
class EngineSession;
class HistoryModel;
class HistoryPanel;
class JobListModel;
class JobQueueWidget;
class LoadPanel;
class ParametersPanel;
class PreviewWidget;
class Settings;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    /// Neither the session nor the settings are owned; both must outlive the window.
    MainWindow(EngineSession* session, Settings* settings, const AppOptions& options, QWidget* parent = nullptr);
    ~MainWindow() override;

    ParametersPanel* parametersPanel() const { return params_; }
    PreviewWidget* previewWidget() const { return preview_; }
    HistoryPanel* historyPanel() const { return historyPanel_; }
    JobQueueWidget* jobQueue() const { return queue_; }
    JobListModel* jobModel() const { return jobs_; }
    HistoryModel* historyModel() const { return history_; }
    QPushButton* generateButton() const { return generate_; }
    QTabWidget* tabs() const { return tabs_; }
    QLabel* engineStateLabel() const { return engineState_; }
    QLabel* layoutLabel() const { return layout_; }
    QLabel* modelLabel() const { return model_; }
    QLabel* memoryLabel() const { return memory_; }
    /// The status bar's load progress, Cancel and (after a cancel) Open model….
    LoadPanel* loadPanel() const { return loadPanel_; }
    QString outputFolder() const;

    /// A shared engine (--connect; not owned, must outlive the window): the window shows the link's state in the
    /// status bar, the other clients' jobs in the queue (cancellable), and has the engine's finished videos
    /// copied into its output folder, which its history lists.
    void setEngineLink(EngineLink* link);
    EngineLink* engineLink() const { return link_; }

    /// Whether closing with jobs pending asks first (true; tests turn it off).
    void setConfirmOnClose(bool on) { confirmOnClose_ = on; }
    /// Status-bar texts for an EngineInfo.
    static QString layoutText(const EngineInfo& info);
    static QString modelText(const EngineInfo& info);
    static QString memoryText(const EngineInfo& info);

    // ---- relaunch (Engine → GPUs…, File → Connect to engine…) and the saved queue ----
    /// What starts the new window (not owned; default: a ProcessLauncher owned by the window).
    void setLauncher(Launcher* launcher) { launcher_ = launcher; }
    /// Dry run: relaunch() shows and prints the command and starts nothing (CI; WANSTUDIO_LAUNCH_DRY_RUN=1).
    void setLaunchDryRun(bool on) { launchDryRun_ = on; }
    /// The last command relaunch() started (or showed, in a dry run).
    QString lastLaunchCommand() const { return lastLaunchCommand_; }
    /// This program and its arguments, as the relaunch repeats them (default: QCoreApplication's).
    void setLaunchProgram(const QString& executable, const QStringList& arguments);
    /// The saved queue's file (default: defaultSavedQueuePath(), beside the settings).
    void setSavedQueuePath(const QString& path) { savedQueuePath_ = path; }
    QString savedQueuePath() const { return savedQueuePath_; }
    /// Asked (with the job count) whether to restore the jobs that were waiting at the last close; default: a
    /// message box. Jobs saved by a relaunch are restored without asking.
    void setRestoreQuestion(std::function<bool(int)> ask) { restoreQuestion_ = std::move(ask); }
    /// Message boxes for launch errors (true; tests turn them off and read launchFailed()).
    void setInteractive(bool on) { interactive_ = on; }
    /// How long Close waits for the engine to stop before ending the process, and how it ends it (default:
    /// 60 s or WANSTUDIO_CLOSE_TIMEOUT_S; std::_Exit(3), which under mpirun ends every rank).
    void setShutdownTimeout(int ms) { shutdownTimeoutMs_ = ms; }
    void setForcedEnd(std::function<void()> end) { forcedEnd_ = std::move(end); }
    /// What Engine → GPUs… shows: the GPUs found, the model's heads, the running layout, this program.
    GpuDialogSetup gpuDialogSetup() const;
    /// The model this window's engine was started with (--ckpt-dir and the component files).
    ModelChoice currentModel() const { return currentModel_; }
    /// What File → Open model… restarts with: this program's arguments with the model options replaced by
    /// `choice`'s, under the running layout (or, when the new model's `numHeads` forbid it, the layout proposed
    /// for as many processes).
    LaunchCommand modelLaunchCommand(const ModelChoice& choice, qint64 numHeads) const;
    /// The layout a restart repeats: the engine's once it has started, before that (a load cancelled or failed)
    /// the one this window was launched with (its command line and MPI world size).
    LayoutProposal runningLayout() const;
    /// The memory options the engine was loaded with (command line, or the saved ones: applySavedMemoryOptions).
    MemoryOptions memoryOptions() const { return memoryOptions_; }
    /// What Engine → Memory… restarts with: this program's arguments with the memory options replaced by
    /// `memory`'s, under the running layout.
    LaunchCommand memoryLaunchCommand(const MemoryOptions& memory) const;
    QMenu* recentModelsMenu() const { return recentMenu_; }
    /// The DiT's attention heads: `ckptDir`/config.json's num_heads, else from the variant name.
    static qint64 headsOfModel(const QString& ckptDir, const QString& variant);

public slots:
    /// Queues a job with the current parameters; returns its id, or 0 when nothing was queued (no prompt,
    /// invalid values, engine not ready).
    qint64 generate();
    /// Fills the parameters from a history row (the seed used, the prompt used).
    void reuseHistoryEntry(int row);
    void playVideo(const QString& videoPath, const QString& posterPath);
    /// A line for the log dock (thread-safe to reach through a queued invocation).
    void appendLog(int level, const QString& line);
    void openGpuDialog();
    void openConnectDialog();
    /// Engine → Memory…: the dialog, prefilled with the running engine's options.
    void openMemoryDialog();
    /// Restarts the engine with `memory` (relaunch(), every rank, the same layout) and, when that started (or, dry
    /// run, was shown), keeps it in the settings. Returns whether it started.
    bool applyMemoryOptions(const wan::app::MemoryOptions& memory);
    /// File → Open model… (and a recent model): the dialog, prefilled with `initial` (default: the loaded model).
    void openModelDialog(const wan::app::ModelChoice& initial);
    /// Remembers `choice` in the recent models and restarts the engine with it (relaunch()). The caller has
    /// checked it (OpenModelDialog). Returns whether the restart started (or, dry run, was shown).
    bool openModel(const wan::app::ModelChoice& choice, qint64 numHeads);
    /// Saves the waiting jobs for the new window, starts `command` and closes this window. On failure (no
    /// mpirun, the start failed) says why and changes nothing. Returns whether it started (or, dry run, showed).
    bool relaunch(const wan::app::LaunchCommand& command);

signals:
    /// The preview's video has loaded and is playing (for tests waiting for a generation to show).
    void previewLoaded(const QString& videoPath);
    void previewFailed(const QString& videoPath, const QString& error);
    void jobSubmitted(qint64 jobId);
    /// A relaunch did not start: the message says what to install or what failed.
    void launchFailed(const QString& message);
    /// The saved queue was restored (`count` jobs submitted again).
    void queueRestored(int count);

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void buildUi();
    void buildMenus();
    void buildModelMenu(QMenu* file);
    void fillRecentModelsMenu();
    void restoreSettings(const AppOptions& options);
    void saveSettings();
    void setOutputFolder(const QString& folder);
    void onStarted(const wan::EngineInfo& info);
    void onStartFailed(const QString& message);
    void onLoadProgress(const wan::LoadProgress& progress);
    void onStartCancelled(const QString& message);
    void onInfo(const wan::EngineInfo& info);
    void onProgress(qint64 id, const wan::ProgressInfo& info);
    void onFinished(qint64 id, const wan::GenerationResult& result);
    void onFailed(qint64 id, const QString& message);
    void onLinkUp();
    void onLinkDown(const QString& reason, int retryInMs);
    void updateGenerateEnabled();
    void offerSavedQueue();
    void applySavedQueue(bool restore);
    std::vector<GenerationRequest> queueToKeep() const;
    void saveQueue(bool force = false);
    bool writeQueue(int reason, const std::vector<GenerationRequest>& jobs);
    Launcher* launcher();
    /// `args` (a restart's arguments, model options already chosen) with the options of `memory`, under the running
    /// layout, or the layout proposed for as many processes when `numHeads` (> 0) forbid it.
    LaunchCommand restartCommand(const std::vector<std::string>& args, qint64 numHeads, const MemoryOptions& memory) const;
    QString memoryOptionsText() const;
    /// launchArguments_, for the Qt-free command builders.
    std::vector<std::string> launchArgs() const;

    EngineSession* session_;
    Settings* settings_;
    EngineLink* link_ = nullptr;
    bool linkWasDown_ = false;
    JobListModel* jobs_ = nullptr;
    HistoryModel* history_ = nullptr;
    ParametersPanel* params_ = nullptr;
    PreviewWidget* preview_ = nullptr;
    HistoryPanel* historyPanel_ = nullptr;
    JobQueueWidget* queue_ = nullptr;
    QTabWidget* tabs_ = nullptr;
    QSplitter* mainSplit_ = nullptr;
    QSplitter* rightSplit_ = nullptr;
    QPushButton* generate_ = nullptr;
    QLabel* formError_ = nullptr;
    QLabel* engineState_ = nullptr;
    QLabel* layout_ = nullptr;
    QLabel* model_ = nullptr;
    QLabel* memory_ = nullptr;
    LoadPanel* loadPanel_ = nullptr;
    QPlainTextEdit* log_ = nullptr;
    QTimer* infoTimer_ = nullptr;
    QString outputFolder_;
    bool confirmOnClose_ = true;
    bool closeAccepted_ = false;
    bool shuttingDown_ = false;

    QString ckptDir_;
    ModelChoice currentModel_;
    ParallelLayout launchLayout_;    ///< the command line's layout and the MPI world size (options.engine.layout)
    MemoryOptions memoryOptions_;
    bool engineInfoKnown_ = false;   ///< the engine has started: its EngineInfo says the layout
    bool remoteEngine_ = false;  ///< --connect: the engine and its model belong to the server
    QMenu* recentMenu_ = nullptr;
    std::unique_ptr<Launcher> ownLauncher_;
    Launcher* launcher_ = nullptr;
    bool launchDryRun_ = false;
    bool relaunching_ = false;
    bool interactive_ = true;
    QString lastLaunchCommand_;
    QString launchExecutable_;
    QStringList launchArguments_;
    QString savedQueuePath_;
    std::function<bool(int)> restoreQuestion_;
    bool queueRead_ = false;     ///< the saved queue was read (when the engine became ready): saving may start
    std::vector<GenerationRequest> pendingSaved_;  ///< read, not yet restored or declined: kept in the file
    bool queueFrozen_ = false;   ///< closing or relaunching: the file keeps what was waiting
    std::vector<qint64> savedIds_;
    int shutdownTimeoutMs_ = 60000;
    std::function<void()> forcedEnd_;
};

}  // namespace wan::app
