// The WanStudio window (rank 0): parameters on the left; preview and history tabs on the right with the job
// queue under them; engine world, layout, model and GPU memory in the status bar.
// Nothing here blocks the GUI thread: every engine call goes through EngineSession's queued slots.
#pragma once

#include "cli/options.h"
#include "session/metatypes.h"

#include <QMainWindow>
#include <QString>

class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSplitter;
class QTabWidget;
class QTimer;

namespace wan::app {

class EngineSession;
class HistoryModel;
class HistoryPanel;
class JobListModel;
class JobQueueWidget;
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
    QString outputFolder() const;

    /// Whether closing with jobs pending asks first (true; tests turn it off).
    void setConfirmOnClose(bool on) { confirmOnClose_ = on; }
    /// Status-bar texts for an EngineInfo.
    static QString layoutText(const EngineInfo& info);
    static QString modelText(const EngineInfo& info);
    static QString memoryText(const EngineInfo& info);

public slots:
    /// Queues a job with the current parameters; returns its id, or 0 when nothing was queued (no prompt,
    /// invalid values, engine not ready).
    qint64 generate();
    /// Fills the parameters from a history row (the seed used, the prompt used).
    void reuseHistoryEntry(int row);
    void playVideo(const QString& videoPath, const QString& posterPath);
    /// A line for the log dock (thread-safe to reach through a queued invocation).
    void appendLog(int level, const QString& line);

signals:
    /// The preview's video has loaded and is playing (for tests waiting for a generation to show).
    void previewLoaded(const QString& videoPath);
    void previewFailed(const QString& videoPath, const QString& error);
    void jobSubmitted(qint64 jobId);

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void buildUi();
    void buildMenus();
    void restoreSettings(const AppOptions& options);
    void saveSettings();
    void setOutputFolder(const QString& folder);
    void onStarted(const wan::EngineInfo& info);
    void onStartFailed(const QString& message);
    void onInfo(const wan::EngineInfo& info);
    void onProgress(qint64 id, const wan::ProgressInfo& info);
    void onFinished(qint64 id, const wan::GenerationResult& result);
    void onFailed(qint64 id, const QString& message);
    void updateGenerateEnabled();

    EngineSession* session_;
    Settings* settings_;
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
    QPlainTextEdit* log_ = nullptr;
    QTimer* infoTimer_ = nullptr;
    QString outputFolder_;
    bool confirmOnClose_ = true;
    bool closeAccepted_ = false;
    bool shuttingDown_ = false;
};

}  // namespace wan::app
