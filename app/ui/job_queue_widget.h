// The job queue under the preview: the list of jobs, the running job's progress bar (stage, step/total,
// elapsed, ETA), cancel and clear buttons, and the last error.
#pragma once

#include <QWidget>

#include <functional>

class QLabel;
class QListView;
class QProgressBar;
class QPushButton;

namespace wan::app {

class EngineLink;
class EngineSession;
class JobListModel;

class JobQueueWidget : public QWidget {
    Q_OBJECT
public:
    JobQueueWidget(JobListModel* model, EngineSession* session, QWidget* parent = nullptr);

    QListView* view() const { return view_; }
    QProgressBar* progressBar() const { return progress_; }
    QPushButton* cancelButton() const { return cancel_; }
    QLabel* errorLabel() const { return error_; }
    /// A shared engine (--connect): other clients' jobs can be cancelled through it. Not owned.
    void setEngineLink(EngineLink* link);
    /// Asked before another client's job is cancelled: true to go ahead. By default a Yes/No message box
    /// (tests set their own).
    using CancelQuestion = std::function<bool(const QString& question)>;
    void setCancelQuestion(CancelQuestion question) { cancelQuestion_ = std::move(question); }

public slots:
    /// Cancels the selected job, or this window's running one when nothing is selected (never another
    /// client's by default).
    void cancelSelected();
    /// A queued job is removed from the list; the running one is stopped at its next step (on a shared
    /// engine also the one the session has sent and that waits there). A job the session does not follow is
    /// cancelled on the shared engine: another client's only once the CancelQuestion says yes (the engine lets
    /// any client holding the token cancel any job), this window's from an earlier run at once; its row
    /// follows the engine. Returns whether a cancel was asked for.
    bool cancelJob(qint64 id);
    void clearFinished();
    void showError(const QString& text);
    void clearError();
    void setIdleText(const QString& text);

private:
    void updateProgress();
    void updateButtons();
    /// The row of this window's running job (on a shared engine: the job its session has sent, running there
    /// or waiting), −1 when none.
    int ownRunningRow() const;
    bool askToCancelOthers(const QString& label);

    JobListModel* model_;
    EngineSession* session_;
    EngineLink* link_ = nullptr;
    QListView* view_ = nullptr;
    QProgressBar* progress_ = nullptr;
    QPushButton* cancel_ = nullptr;
    QPushButton* clear_ = nullptr;
    QLabel* error_ = nullptr;
    QString idleText_;
    CancelQuestion cancelQuestion_;
};

}  // namespace wan::app
