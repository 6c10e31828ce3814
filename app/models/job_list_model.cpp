#include "models/job_list_model.h"

#include "models/progress_format.h"
#include "session/engine_session.h"

#include <QFont>

#include <algorithm>

namespace wan::app {

JobListModel::JobListModel(QObject* parent) : QAbstractListModel(parent) {}

void JobListModel::attach(EngineSession* session) {
    connect(session, &EngineSession::jobStarted, this, &JobListModel::onJobStarted);
    connect(session, &EngineSession::progress, this, &JobListModel::onProgress);
    connect(session, &EngineSession::finished, this, &JobListModel::onFinished);
    connect(session, &EngineSession::failed, this, &JobListModel::onFailed);
}

void JobListModel::attach(EngineLink* link) {
    sharedEngine_ = true;
    connect(link, &EngineLink::otherJobChanged, this, &JobListModel::onOtherJob);
    connect(link, &EngineLink::otherJobsListed, this, &JobListModel::onOtherJobsListed);
}

void JobListModel::addJob(qint64 id, const GenerationRequest& request) {
    const int row = static_cast<int>(jobs_.size());
    beginInsertRows(QModelIndex(), row, row);
    Job job;
    job.id = id;
    job.request = request;
    job.request.job_id = id;
    jobs_.push_back(std::move(job));
    endInsertRows();
}

bool JobListModel::removeJob(qint64 id) {
    const int row = rowOf(id);
    if (row < 0) return false;
    beginRemoveRows(QModelIndex(), row, row);
    jobs_.erase(jobs_.begin() + row);
    endRemoveRows();
    return true;
}

void JobListModel::clearFinished() {
    for (int row = static_cast<int>(jobs_.size()) - 1; row >= 0; --row) {
        JobState s = jobs_[static_cast<size_t>(row)].state;
        if (s == JobState::Done || s == JobState::Cancelled || s == JobState::Failed) {
            beginRemoveRows(QModelIndex(), row, row);
            jobs_.erase(jobs_.begin() + row);
            endRemoveRows();
        }
    }
}

int JobListModel::rowOf(qint64 id) const {
    for (size_t i = 0; i < jobs_.size(); ++i) {
        if (jobs_[i].id == id) return static_cast<int>(i);
    }
    return -1;
}

const JobListModel::Job* JobListModel::job(qint64 id) const {
    int row = rowOf(id);
    return row < 0 ? nullptr : &jobs_[static_cast<size_t>(row)];
}

qint64 JobListModel::idAt(int row) const {
    return row >= 0 && row < rowCount() ? jobs_[static_cast<size_t>(row)].id : 0;
}

int JobListModel::countInState(JobState state) const {
    int n = 0;
    for (const Job& j : jobs_) n += j.state == state ? 1 : 0;
    return n;
}

std::vector<GenerationRequest> JobListModel::waitingRequests() const {
    std::vector<GenerationRequest> out;
    for (const Job& j : jobs_) {
        if (j.serverId == 0 && (j.state == JobState::Queued || j.state == JobState::Running)) out.push_back(j.request);
    }
    return out;
}

std::vector<qint64> JobListModel::waitingIds() const {
    std::vector<qint64> out;
    for (const Job& j : jobs_) {
        if (j.serverId == 0 && (j.state == JobState::Queued || j.state == JobState::Running)) out.push_back(j.id);
    }
    return out;
}

QString JobListModel::label(const Job& job) const {
    if (job.serverId == 0) return QStringLiteral("#%1").arg(job.id);
    return job.mine ? tr("your #%1 (other session)").arg(job.serverId) : tr("another client's #%1").arg(job.serverId);
}

int JobListModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(jobs_.size());
}

QString JobListModel::stateText(const Job& job) const {
    switch (job.state) {
        case JobState::Queued: return QString::fromStdString(progressText(job.progress));  // "Queued · next"
        case JobState::Running:
            return QString::fromStdString(progressText(job.progress));
        case JobState::Done: return tr("Done in %1").arg(QString::fromStdString(formatDuration(job.result.seconds)));
        case JobState::Cancelled:  // with the reason when it is news ("another client cancelled it …")
            return job.message.isEmpty() || job.message.startsWith(QLatin1String("cancelled"), Qt::CaseInsensitive)
                       ? tr("Cancelled") : tr("Cancelled: %1").arg(job.message);
        case JobState::Failed: return tr("Failed: %1").arg(job.message);
    }
    return {};
}

QVariant JobListModel::data(const QModelIndex& index, int role) const {
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const Job& job = jobs_[static_cast<size_t>(index.row())];
    const QString prompt = QString::fromStdString(job.request.prompt);
    switch (role) {
        case Qt::DisplayRole: {
            QString shortPrompt = prompt.simplified();
            if (shortPrompt.size() > 80) shortPrompt = shortPrompt.left(79) + QChar(0x2026);
            return QStringLiteral("%1  %2\n%3").arg(label(job), shortPrompt, stateText(job));
        }
        case Qt::FontRole: {  // another client's job reads apart from this window's own at a glance
            if (job.serverId == 0 || job.mine) return {};
            QFont font;
            font.setItalic(true);
            return font;
        }
        case Qt::ToolTipRole:
            if (job.serverId == 0) return prompt;
            return job.mine ? tr("%1\n\nQueued on the shared engine by this window in an earlier run, or by another "
                                 "window with the same settings (its job %2 there).").arg(prompt).arg(job.serverId)
                            : tr("%1\n\nQueued on the shared engine by another client (its job %2 there).")
                                  .arg(prompt).arg(job.serverId);
        case IdRole: return job.id;
        case PromptRole: return prompt;
        case StateRole: return static_cast<int>(job.state);
        case StateTextRole: return stateText(job);
        case ProgressRole:
            return job.state == JobState::Done ? 1.0 : job.state == JobState::Queued ? 0.0 : overallFraction(job.progress);
        case StageRole: return static_cast<int>(job.progress.stage);
        case StepRole: return job.progress.step;
        case TotalRole: return job.progress.total;
        case ElapsedRole: return job.progress.elapsed_s;
        case EtaRole: return remainingSeconds(job.progress);
        case ProgressTextRole: return QString::fromStdString(progressText(job.progress));
        case ResultPathRole: return QString::fromStdString(job.result.video_path);
        case PosterPathRole: return QString::fromStdString(job.result.poster_path);
        case MessageRole: return job.message;
        case SeedUsedRole: return static_cast<qlonglong>(job.result.seed_used);
        case OtherClientRole: return job.serverId != 0 && !job.mine;
        case EarlierRunRole: return job.mine;
        case ServerIdRole: return static_cast<qlonglong>(job.serverId);
        default: return {};
    }
}

QHash<int, QByteArray> JobListModel::roleNames() const {
    QHash<int, QByteArray> names = QAbstractListModel::roleNames();
    names.insert(IdRole, "jobId");
    names.insert(PromptRole, "prompt");
    names.insert(StateRole, "state");
    names.insert(StateTextRole, "stateText");
    names.insert(ProgressRole, "progress");
    names.insert(StageRole, "stage");
    names.insert(StepRole, "step");
    names.insert(TotalRole, "total");
    names.insert(ElapsedRole, "elapsed");
    names.insert(EtaRole, "eta");
    names.insert(ProgressTextRole, "progressText");
    names.insert(ResultPathRole, "resultPath");
    names.insert(PosterPathRole, "posterPath");
    names.insert(MessageRole, "message");
    names.insert(SeedUsedRole, "seedUsed");
    names.insert(OtherClientRole, "otherClient");
    names.insert(ServerIdRole, "serverId");
    names.insert(EarlierRunRole, "earlierRun");
    return names;
}

void JobListModel::changed(int row) {
    const QModelIndex i = index(row);
    emit dataChanged(i, i);
}

void JobListModel::updateJob(qint64 id, const std::function<void(Job&)>& update) {
    const int row = rowOf(id);
    if (row < 0) return;
    update(jobs_[static_cast<size_t>(row)]);
    changed(row);
}

void JobListModel::onJobStarted(qint64 id) {
    updateJob(id, [this](Job& job) {
        // On a shared engine the session has sent it; it runs when the engine says so (onProgress).
        job.state = sharedEngine_ ? JobState::Queued : JobState::Running;
        job.progress = ProgressInfo{};
        job.progress.stage = sharedEngine_ ? Stage::Queued : Stage::Text;
    });
}

void JobListModel::onProgress(qint64 id, const ProgressInfo& info) {
    updateJob(id, [&](Job& job) {
        job.state = info.stage == Stage::Queued ? JobState::Queued : JobState::Running;
        job.progress = info;
    });
}

void JobListModel::onFinished(qint64 id, const GenerationResult& result) {
    updateJob(id, [&](Job& job) {
        job.result = result;
        job.message = QString::fromStdString(result.message);
        if (result.status == JobStatus::Ok) {
            job.state = JobState::Done;
            job.progress.stage = Stage::Done;
            job.progress.elapsed_s = result.seconds;
            job.progress.eta_s = result.seconds;
        } else {
            job.state = JobState::Cancelled;
        }
    });
}

void JobListModel::onFailed(qint64 id, const QString& message) {
    updateJob(id, [&](Job& job) {
        job.state = JobState::Failed;
        job.message = message;
        job.result.status = JobStatus::Failed;
        job.result.message = message.toStdString();
    });
}

namespace {
JobListModel::JobState stateOfOther(const QString& state) {
    using S = JobListModel::JobState;
    if (state == QLatin1String("running")) return S::Running;
    if (state == QLatin1String("done")) return S::Done;
    if (state == QLatin1String("failed")) return S::Failed;
    if (state == QLatin1String("cancelled")) return S::Cancelled;
    return S::Queued;
}
}  // namespace

void JobListModel::onOtherJob(const OtherJob& other) {
    const qint64 id = otherJobKey(other.serverId, other.engineRun);
    const JobState state = stateOfOther(other.state);
    const bool finished = state == JobState::Done || state == JobState::Failed || state == JobState::Cancelled;
    if (rowOf(id) < 0) {
        if (finished && !other.isNew) return;  // ended before the window connected (the history has it), or cleared
        const int row = static_cast<int>(jobs_.size());
        beginInsertRows(QModelIndex(), row, row);
        Job job;
        job.id = id;
        job.serverId = other.serverId;
        job.mine = other.mine;
        jobs_.push_back(std::move(job));
        endInsertRows();
    }
    updateJob(id, [&](Job& job) {
        job.request.prompt = other.prompt.toStdString();
        job.state = state;
        job.progress = other.progress;
        job.message = other.error;
        job.result.seconds = other.seconds;
        job.result.status = state == JobState::Done ? JobStatus::Ok
                            : state == JobState::Failed ? JobStatus::Failed : JobStatus::Cancelled;
        if (state == JobState::Done) job.progress.stage = Stage::Done;
    });
}

void JobListModel::onOtherJobsListed(const QList<OtherJob>& jobs) {
    for (int row = static_cast<int>(jobs_.size()) - 1; row >= 0; --row) {
        const Job& job = jobs_[static_cast<size_t>(row)];
        if (job.serverId == 0 || (job.state != JobState::Queued && job.state != JobState::Running)) continue;
        const bool held = std::any_of(jobs.begin(), jobs.end(),
                                      [&](const OtherJob& o) { return otherJobKey(o.serverId, o.engineRun) == job.id; });
        if (held) continue;
        beginRemoveRows(QModelIndex(), row, row);  // the engine no longer holds it (it restarted)
        jobs_.erase(jobs_.begin() + row);
        endRemoveRows();
    }
    for (const OtherJob& other : jobs) onOtherJob(other);
}

}  // namespace wan::app
