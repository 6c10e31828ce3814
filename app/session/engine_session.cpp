#include "session/engine_session.h"

#include "session/engine_worker.h"

#include "core/cancel.h"

#include <QDeadlineTimer>
#include <QMetaObject>

#include <chrono>

namespace wan::app {

// ---- EngineWorker (engine thread) -----------------------------------------------------------------------

namespace {
std::string exceptionText(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown error (non-standard exception)";
    }
}
}  // namespace

EngineWorker::EngineWorker(std::unique_ptr<EngineBackend> backend, std::shared_ptr<EngineSharedState> shared)
    : backend_(std::move(backend)), shared_(std::move(shared)) {}

EngineWorker::~EngineWorker() = default;

void EngineWorker::start() {
    if (started_ || startFailed_ || stopped_) return;
    if (!backend_) {
        startFailed_ = true;
        startError_ = "no engine backend";
        emit startFailed(QString::fromStdString(startError_));
        scheduleNext();
        return;
    }
    // Coalesced as job progress is: at most 10 signals per second, every component change and the end go through.
    using Clock = std::chrono::steady_clock;
    Clock::time_point lastEmit{};
    std::string lastComponent;
    LoadControl load;
    load.cancel = &shared_->cancelLoad;
    load.progress = [&](const LoadProgress& p) {
        const Clock::time_point now = Clock::now();
        if (p.component != lastComponent || p.bytes_done >= p.bytes_total ||
            now - lastEmit >= std::chrono::milliseconds(100)) {
            lastEmit = now;
            lastComponent = p.component;
            emit loadProgress(p);
        }
    };
    try {
        EngineInfo info = backend_->start(load);
        started_ = true;
        emit started(info);
    } catch (const Cancelled& e) {
        startCancelled_ = true;  // queued jobs stay: processNext() runs none, shutdown() gives them back
        emit startCancelled(QString::fromStdString(e.what()));
        return;
    } catch (...) {
        startFailed_ = true;
        startError_ = exceptionText(std::current_exception());
        emit startFailed(QString::fromStdString(startError_));
    }
    scheduleNext();  // jobs submitted while loading (or failing) are handled now
}

void EngineWorker::enqueue(const GenerationRequest& request) {
    queue_.push_back(request);
    scheduleNext();
}

void EngineWorker::scheduleNext() {
    if (scheduled_ || queue_.empty()) return;
    scheduled_ = true;
    // Queued to ourselves: events posted meanwhile (extend, info, shutdown) run between two jobs.
    QMetaObject::invokeMethod(this, [this] { processNext(); }, Qt::QueuedConnection);
}

void EngineWorker::processNext() {
    scheduled_ = false;
    if (queue_.empty()) return;
    if (!started_ && !startFailed_ && !stopped_ && !shared_->shuttingDown) return;   // start() schedules again
    GenerationRequest request = queue_.front();
    queue_.pop_front();
    if (stopped_ || shared_->shuttingDown) {
        skipJob(request, "cancelled: the engine is shutting down", false);
    } else if (startFailed_) {
        skipJob(request, "the engine failed to start: " + startError_, true);
    } else {
        runJob(request);
    }
    scheduleNext();
}

void EngineWorker::skipJob(const GenerationRequest& request, const std::string& why, bool asFailure) {
    {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->cancelled.erase(request.job_id);
    }
    GenerationResult result;
    result.job_id = request.job_id;
    result.status = asFailure ? JobStatus::Failed : JobStatus::Cancelled;
    result.message = why;
    result.prompt_used = request.prompt;
    if (asFailure)
        emit failed(request.job_id, QString::fromStdString(why));
    else
        emit finished(request.job_id, result);
}

void EngineWorker::runJob(const GenerationRequest& request) {
    const int64_t id = request.job_id;
    bool cancelledBeforeStart = false;
    {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        cancelledBeforeStart = shared_->cancelled.count(id) > 0;
        if (!cancelledBeforeStart) {
            shared_->running = id;
            shared_->cancelRunning = false;
        }
    }
    if (cancelledBeforeStart) {
        skipJob(request, "cancelled before it started", false);
        return;
    }

    emit jobStarted(id);
    using Clock = std::chrono::steady_clock;
    // Coalesce to ≤ 10 signals per second; a stage change always goes through.
    Clock::time_point lastEmit{};
    Stage lastStage = Stage::Queued;
    bool any = false;
    auto onProgress = [&](const ProgressInfo& info) {
        Clock::time_point now = Clock::now();
        bool last = info.total > 0 && info.step >= info.total;
        // A step with a live preview always goes through (one per step: the window shows every step's frames).
        if (!any || info.preview || info.stage != lastStage || now - lastEmit >= std::chrono::milliseconds(100) ||
            (last && now - lastEmit >= std::chrono::milliseconds(20))) {
            any = true;
            lastEmit = now;
            lastStage = info.stage;
            emit progress(id, info);
        }
    };
    GenerationResult result;
    try {
        result = backend_->run(request, onProgress, shared_->cancelRunning);
    } catch (...) {  // run() must not throw; if it does, the job fails and the session lives on
        result = GenerationResult{};
        result.status = JobStatus::Failed;
        result.message = exceptionText(std::current_exception());
    }
    result.job_id = id;
    bool wasCancelled = false;
    {
        std::lock_guard<std::mutex> lock(shared_->mutex);
        shared_->running = 0;
        wasCancelled = shared_->cancelled.erase(id) > 0 || shared_->cancelRunning;
        shared_->cancelRunning = false;
    }
    if (result.status == JobStatus::Failed) {
        if (result.message.empty()) result.message = "generation failed (no reason given)";
        emit failed(id, QString::fromStdString(result.message));
    } else {
        if (wasCancelled && result.status == JobStatus::Cancelled && result.message.empty())
            result.message = "cancelled";
        emit finished(id, result);
    }
    refreshInfo();  // memory changes after a job; info() is cheap
}

void EngineWorker::extendPrompt(const QString& prompt, const QString& targetLang, qint64 seed) {
    if (!started_ || !backend_) {
        emit extendFailed(prompt, startFailed_ ? QStringLiteral("the engine failed to start: %1")
                                                     .arg(QString::fromStdString(startError_))
                                               : QStringLiteral("the engine is not ready"));
        return;
    }
    try {
        std::string extended = backend_->extendPrompt(prompt.toStdString(), targetLang.toStdString(), seed);
        emit promptExtended(prompt, QString::fromStdString(extended));
    } catch (...) {
        emit extendFailed(prompt, QString::fromStdString(exceptionText(std::current_exception())));
    }
}

void EngineWorker::refreshInfo() {
    shared_->infoPending = false;
    if (!started_ || !backend_ || stopped_) return;
    try {
        emit infoUpdated(backend_->info());
    } catch (...) {
        WAN_LOG_WARN("engine info: %s", exceptionText(std::current_exception()).c_str());
    }
}

void EngineWorker::shutdown() {
    if (stopped_) return;
    stopped_ = true;
    while (!queue_.empty()) {
        skipJob(queue_.front(), "cancelled: the engine is shutting down", false);
        queue_.pop_front();
    }
    if (backend_) {
        try {
            backend_->shutdown();
        } catch (...) {
            WAN_LOG_ERROR("engine shutdown: %s", exceptionText(std::current_exception()).c_str());
        }
        try {
            backend_.reset();  // destroyed on the engine thread, where it was used
        } catch (...) {
        }
    }
    thread()->quit();
}

// ---- EngineSession (owner's thread) ---------------------------------------------------------------------

EngineSession::EngineSession(std::unique_ptr<EngineBackend> backend, QObject* parent)
    : EngineEvents(parent), shared_(std::make_shared<EngineSharedState>()) {
    registerMetaTypes();
    thread_.setObjectName(QStringLiteral("wan-engine"));
    worker_ = new EngineWorker(std::move(backend), shared_);
    worker_->moveToThread(&thread_);

    connect(worker_, &EngineWorker::started, this, [this](const EngineInfo& info) {
        info_ = info;
        if (state_ == State::Starting) state_ = State::Ready;
        emit started(info);
    });
    connect(worker_, &EngineWorker::startFailed, this, [this](const QString& message) {
        startError_ = message;
        if (state_ == State::Starting) state_ = State::StartFailed;
        emit startFailed(message);
    });
    connect(worker_, &EngineWorker::loadProgress, this, [this](const LoadProgress& p) {
        loadProgress_ = p;
        emit loadProgress(p);
    });
    connect(worker_, &EngineWorker::startCancelled, this, [this](const QString& message) {
        startError_ = message;
        if (state_ == State::Starting) state_ = State::StartCancelled;
        emit startCancelled(message);
    });
    connect(worker_, &EngineWorker::jobStarted, this, [this](qint64 id) {
        running_ = id;
        emit jobStarted(id);
    });
    connect(worker_, &EngineWorker::progress, this, &EngineSession::progress);
    connect(worker_, &EngineWorker::finished, this, [this](qint64 id, const GenerationResult& result) {
        if (running_ == id) running_ = 0;
        pending_ = std::max(0, pending_ - 1);
        emit finished(id, result);
    });
    connect(worker_, &EngineWorker::failed, this, [this](qint64 id, const QString& message) {
        if (running_ == id) running_ = 0;
        pending_ = std::max(0, pending_ - 1);
        emit failed(id, message);
    });
    connect(worker_, &EngineWorker::infoUpdated, this, [this](const EngineInfo& info) {
        info_ = info;
        emit infoUpdated(info);
    });
    connect(worker_, &EngineWorker::promptExtended, this, &EngineSession::promptExtended);
    connect(worker_, &EngineWorker::extendFailed, this, &EngineSession::extendFailed);
    connect(&thread_, &QThread::finished, this, [this] {
        state_ = State::Stopped;
        emit stopped();
    });
    thread_.start();
}

EngineSession::~EngineSession() {
    shutdown();
    thread_.wait();
    delete worker_;  // the thread has ended: safe from here
    worker_ = nullptr;
}

void EngineSession::start() {
    if (state_ != State::Idle) return;
    state_ = State::Starting;
    EngineWorker* w = worker_;
    QMetaObject::invokeMethod(w, [w] { w->start(); }, Qt::QueuedConnection);
}

void EngineSession::cancelStart() { shared_->cancelLoad = true; }

qint64 EngineSession::submit(const GenerationRequest& request) {
    GenerationRequest r = request;
    r.job_id = shared_->nextId.fetch_add(1);
    ++pending_;
    EngineWorker* w = worker_;
    QMetaObject::invokeMethod(w, [w, r] { w->enqueue(r); }, Qt::QueuedConnection);
    return r.job_id;
}

void EngineSession::cancel(qint64 jobId) {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->cancelled.insert(jobId);
    if (shared_->running == jobId) shared_->cancelRunning = true;
}

void EngineSession::cancelAll() {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    // Every id handed out so far: queued ones are skipped, the running one stops.
    for (int64_t id = 1, end = shared_->nextId.load(); id < end; ++id) shared_->cancelled.insert(id);
    if (shared_->running != 0) shared_->cancelRunning = true;
}

void EngineSession::extendPrompt(const QString& prompt, const QString& targetLang, qint64 seed) {
    EngineWorker* w = worker_;
    QMetaObject::invokeMethod(w, [w, prompt, targetLang, seed] { w->extendPrompt(prompt, targetLang, seed); },
                              Qt::QueuedConnection);
}

void EngineSession::refreshInfo() {
    if (shared_->infoPending.exchange(true)) return;
    EngineWorker* w = worker_;
    QMetaObject::invokeMethod(w, [w] { w->refreshInfo(); }, Qt::QueuedConnection);
}

void EngineSession::shutdown() {
    if (shutdownRequested_) return;
    shutdownRequested_ = true;
    if (state_ != State::Stopped) state_ = State::ShuttingDown;
    shared_->shuttingDown = true;
    shared_->cancelLoad = true;  // closing while the model loads need not wait for the load
    cancelAll();
    EngineWorker* w = worker_;
    QMetaObject::invokeMethod(w, [w] { w->shutdown(); }, Qt::QueuedConnection);
}

bool EngineSession::waitForStopped(int timeoutMs) {
    return timeoutMs < 0 ? thread_.wait() : thread_.wait(QDeadlineTimer(timeoutMs));
}

}  // namespace wan::app
