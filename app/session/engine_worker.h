// Private to EngineSession: the object living on the engine thread. Every EngineBackend call happens here.
#pragma once

#include "session/engine_backend.h"
#include "session/engine_events.h"
#include "session/metatypes.h"

#include <QObject>
#include <QString>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>

namespace wan::app {

/// Shared by the session (any thread) and the worker (engine thread).
struct EngineSharedState {
    std::mutex mutex;                 // guards cancelled and running (held for a few instructions only)
    std::set<int64_t> cancelled;      // ids cancelled while queued or running
    int64_t running = 0;              // id of the job inside backend->run(), 0 when none
    std::atomic<bool> cancelRunning{false};   // polled by the backend
    std::atomic<bool> cancelLoad{false};      // polled by backend->start() between tensors
    std::atomic<bool> shuttingDown{false};
    std::atomic<bool> infoPending{false};
    std::atomic<int64_t> nextId{1};
    static_assert(std::atomic<bool>::is_always_lock_free, "cancel flag must be lock-free");
};

/// Runs the backend on the engine thread and reports through EngineEvents' signals.
class EngineWorker : public EngineEvents {
    Q_OBJECT
public:
    EngineWorker(std::unique_ptr<EngineBackend> backend, std::shared_ptr<EngineSharedState> shared);
    ~EngineWorker() override;

    // All called on the engine thread (queued from EngineSession).
    void start();
    void enqueue(const wan::GenerationRequest& request);
    void extendPrompt(const QString& prompt, const QString& targetLang, qint64 seed);
    void refreshInfo();
    void shutdown();

private:
    void scheduleNext();
    void processNext();
    void runJob(const wan::GenerationRequest& request);
    void skipJob(const wan::GenerationRequest& request, const std::string& why, bool asFailure);

    std::unique_ptr<EngineBackend> backend_;
    std::shared_ptr<EngineSharedState> shared_;
    std::deque<wan::GenerationRequest> queue_;
    bool started_ = false;
    bool startFailed_ = false;
    bool startCancelled_ = false;  ///< the load was cancelled: jobs wait in the queue, none runs
    std::string startError_;
    bool scheduled_ = false;
    bool stopped_ = false;
};

}  // namespace wan::app
