#include "ui/job_queue_widget.h"

#include "models/job_list_model.h"
#include "session/engine_link.h"
#include "session/engine_session.h"
#include "ui/error_label.h"
#include "ui/model_content.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QListView>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QVBoxLayout>

#include <cmath>

namespace wan::app {

JobQueueWidget::JobQueueWidget(JobListModel* model, EngineSession* session, QWidget* parent)
    : QWidget(parent), model_(model), session_(session) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* row = new QHBoxLayout;
    progress_ = new QProgressBar(this);
    progress_->setObjectName(QStringLiteral("jobProgressBar"));
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    progress_->setTextVisible(true);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setObjectName(QStringLiteral("cancelButton"));
    cancel_->setToolTip(tr("Cancel the selected job (or this window's running one)"));
    clear_ = new QPushButton(tr("Clear finished"), this);
    row->addWidget(progress_, 1);
    row->addWidget(cancel_);
    row->addWidget(clear_);
    layout->addLayout(row);
    error_ = newErrorLabel(QStringLiteral("jobErrorLabel"), this);
    error_->setVisible(false);
    layout->addWidget(error_);
    view_ = new QListView(this);
    view_->setObjectName(QStringLiteral("jobView"));
    view_->setModel(model_);
    view_->setSelectionMode(QAbstractItemView::SingleSelection);
    view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    view_->setWordWrap(true);
    view_->setAlternatingRowColors(true);
    layout->addWidget(view_, 1);

    connect(cancel_, &QPushButton::clicked, this, &JobQueueWidget::cancelSelected);
    connect(clear_, &QPushButton::clicked, this, &JobQueueWidget::clearFinished);
    onModelContentChanged(model_, this, &JobQueueWidget::updateProgress);
    connect(view_->selectionModel(), &QItemSelectionModel::currentChanged, this, &JobQueueWidget::updateButtons);
    updateProgress();
}

void JobQueueWidget::setEngineLink(EngineLink* link) {
    link_ = link;
    updateButtons();
}

void JobQueueWidget::setIdleText(const QString& text) {
    idleText_ = text;
    updateProgress();
}

void JobQueueWidget::updateProgress() {
    int running = -1;
    for (int r = 0; r < model_->rowCount(); ++r) {
        if (model_->jobAt(r).state == JobListModel::JobState::Running) {
            running = r;
            break;
        }
    }
    const int queued = model_->countInState(JobListModel::JobState::Queued);
    if (running >= 0) {
        const QModelIndex i = model_->index(running);
        const double fraction = i.data(JobListModel::ProgressRole).toDouble();
        progress_->setValue(static_cast<int>(std::lround(fraction * 1000.0)));
        QString text = QStringLiteral("%1 %2").arg(model_->label(model_->jobAt(running)),
                                                   i.data(JobListModel::ProgressTextRole).toString());
        if (queued > 0) text += tr(" · %n queued", nullptr, queued);
        progress_->setFormat(text);
    } else {
        progress_->setValue(0);
        progress_->setFormat(queued > 0 ? tr("%n queued", nullptr, queued)
                                        : (idleText_.isEmpty() ? tr("Idle") : idleText_));
    }
    updateButtons();
}

void JobQueueWidget::updateButtons() {
    const QModelIndex current = view_->currentIndex();
    bool cancellable = false;
    if (current.isValid()) {
        const auto s = static_cast<JobListModel::JobState>(current.data(JobListModel::StateRole).toInt());
        cancellable = (s == JobListModel::JobState::Queued || s == JobListModel::JobState::Running) &&
                      (link_ || current.data(JobListModel::ServerIdRole).toLongLong() == 0);
    } else {
        cancellable = ownRunningRow() >= 0;
    }
    cancel_->setEnabled(cancellable);
    clear_->setEnabled(model_->countInState(JobListModel::JobState::Done) +
                           model_->countInState(JobListModel::JobState::Cancelled) +
                           model_->countInState(JobListModel::JobState::Failed) >
                       0);
}

void JobQueueWidget::cancelSelected() {
    const QModelIndex current = view_->currentIndex();
    if (current.isValid()) {
        cancelJob(model_->idAt(current.row()));
        return;
    }
    if (const int row = ownRunningRow(); row >= 0) cancelJob(model_->idAt(row));
}

int JobQueueWidget::ownRunningRow() const {
    for (int r = 0; r < model_->rowCount(); ++r) {
        const JobListModel::Job& job = model_->jobAt(r);
        if (job.serverId == 0 && (job.state == JobListModel::JobState::Running || job.id == session_->runningJob()))
            return r;
    }
    return -1;
}

bool JobQueueWidget::cancelJob(qint64 id) {
    const JobListModel::Job* job = model_->job(id);
    if (!job) return false;
    if (job->serverId != 0) {
        const bool waiting = job->state == JobListModel::JobState::Queued || job->state == JobListModel::JobState::Running;
        if (!link_ || !waiting) return false;
        const qint64 serverId = job->serverId;
        const QString label = model_->label(*job);
        if (!job->mine && !askToCancelOthers(label)) return false;
        link_->cancelOtherJob(serverId);  // `job` may be gone: the question ran an event loop
        progress_->setFormat(tr("%1 cancelling…").arg(label));
        return true;
    }
    if (id == session_->runningJob()) {  // running, or sent to a shared engine and waiting there
        session_->cancel(id);  // an atomic: the engine stops at the next step boundary
        progress_->setFormat(tr("#%1 cancelling…").arg(id));
    } else if (job->state == JobListModel::JobState::Queued) {
        session_->cancel(id);  // the worker skips it when it gets there
        model_->removeJob(id);
    } else if (job->state == JobListModel::JobState::Running) {
        session_->cancel(id);
        progress_->setFormat(tr("#%1 cancelling…").arg(id));
    } else {
        return false;
    }
    return true;
}

bool JobQueueWidget::askToCancelOthers(const QString& label) {
    const QString question = tr("Cancel %1? Another client submitted it to the shared engine at %2; it is cancelled "
                                "for them too.").arg(label, link_->where());
    if (cancelQuestion_) return cancelQuestion_(question);
    return QMessageBox::question(this, tr("Cancel another client's job"), question, QMessageBox::Yes | QMessageBox::No,
                                 QMessageBox::No) == QMessageBox::Yes;
}

void JobQueueWidget::clearFinished() { model_->clearFinished(); }

void JobQueueWidget::showError(const QString& text) {
    error_->setText(text);
    error_->setVisible(true);
}

void JobQueueWidget::clearError() {
    error_->clear();
    error_->setVisible(false);
}

}  // namespace wan::app
