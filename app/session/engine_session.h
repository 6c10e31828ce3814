// EngineSession: the GUI's (and --batch's) handle on the engine. It owns a QThread on which a private worker
// owns the EngineBackend and makes every call to it; results come back as queued signals.
// Ref: style.md §3.5 (GUI thread ↔ engine thread), §1.6 (mandelbrot RenderThread, qthread worker snippet).
//
// Every submitted job ends with exactly one of finished() (status Ok or Cancelled) or failed().
// Cancel never travels through the engine thread's event queue (the thread is busy computing): cancel() sets
// an atomic that the backend polls between steps, and marks queued jobs so that the worker skips them.
#pragma once

#include "session/engine_backend.h"
#include "session/engine_events.h"
#include "session/metatypes.h"

#include <QObject>
#include <QString>
#include <QThread>

#include <memory>

namespace wan::app {

class EngineWorker;
struct EngineSharedState;

class EngineSession : public EngineEvents {
    Q_OBJECT
public:
    enum class State { Idle = 1, Starting = 2, Ready = 3, StartFailed = 4, ShuttingDown = 5, Stopped = 6,
                       StartCancelled = 7 };
    Q_ENUM(State)

    /// Takes the backend and starts the engine thread (the backend is not started yet: call start()).
    explicit EngineSession(std::unique_ptr<EngineBackend> backend, QObject* parent = nullptr);
    /// Cancels everything, runs backend->shutdown() on the engine thread, then quit(); wait().
    ~EngineSession() override;

    State state() const { return state_; }
    bool isReady() const { return state_ == State::Ready; }
    /// Last EngineInfo received (started() or infoUpdated()).
    const EngineInfo& engineInfo() const { return info_; }
    /// The last load progress (while Starting), and the start failure or cancel text (StartFailed, StartCancelled).
    const LoadProgress& lastLoadProgress() const { return loadProgress_; }
    /// The start failure text (StartFailed), or the cancel's (StartCancelled).
    QString startError() const { return startError_; }
    /// Jobs submitted and not yet finished/failed (queued + running).
    int pendingJobs() const { return pending_; }
    /// Id of the job being computed now, 0 when none (GUI-thread view, from jobStarted/finished).
    qint64 runningJob() const { return running_; }

public slots:
    /// Calls backend->start() on the engine thread; emits started() or startFailed(). Jobs submitted before
    /// wait for it.
    void start();
    /// Thread-safe: cancels the load that start() began, between two tensors; emits startCancelled(). Jobs
    /// submitted meanwhile stay queued (the window keeps them for the next engine). No effect once loaded.
    void cancelStart();
    /// Queues a job (a copy; its job_id is set) and returns the job id (> 0).
    qint64 submit(const wan::GenerationRequest& request);
    /// Thread-safe, idempotent. A queued job is skipped (finished() with Cancelled); the running one is
    /// cancelled at its next step boundary.
    void cancel(qint64 jobId);
    void cancelAll();
    /// backend->extendPrompt on the engine thread (after the running job, if any); emits promptExtended()
    /// or extendFailed().
    void extendPrompt(const QString& prompt, const QString& targetLang, qint64 seed);
    /// backend->info() on the engine thread when it is idle; emits infoUpdated(). Requests do not pile up.
    void refreshInfo();
    /// Asynchronous shutdown: cancels every job, backend->shutdown() on the engine thread, then the thread
    /// ends and stopped() is emitted. Idempotent.
    void shutdown();
    /// Blocks until the engine thread has ended (for --batch and tests; the GUI waits for stopped()).
    bool waitForStopped(int timeoutMs = -1);

signals:
    // Besides EngineEvents' signals (the worker's, delivered on the GUI thread): the engine thread has ended.
    void stopped();

private:
    std::shared_ptr<EngineSharedState> shared_;
    QThread thread_;
    EngineWorker* worker_ = nullptr;  // lives on thread_; deleted after the thread ended
    State state_ = State::Idle;
    EngineInfo info_;
    LoadProgress loadProgress_;
    QString startError_;
    int pending_ = 0;
    qint64 running_ = 0;
    bool shutdownRequested_ = false;
};

}  // namespace wan::app
