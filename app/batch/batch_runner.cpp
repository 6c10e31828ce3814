#include "batch/batch_runner.h"

#include "cli/batch_summary.h"
#include "models/progress_format.h"

#include <unistd.h>

#include <cmath>

namespace wan::app {

BatchRunner::BatchRunner(EngineSession* session, std::vector<GenerationRequest> jobs, QObject* parent)
    : QObject(parent), session_(session), jobs_(std::move(jobs)) {
    tty_ = isatty(fileno(stderr)) != 0;
    connect(session_, &EngineSession::progress, this, &BatchRunner::onProgress);
    connect(session_, &EngineSession::finished, this, &BatchRunner::onFinished);
    connect(session_, &EngineSession::failed, this, &BatchRunner::onFailed);
    connect(session_, &EngineSession::startFailed, this, [this](const QString& message) {
        clearLine();
        std::fprintf(progress_, "error: the engine failed to start: %s\n", message.toStdString().c_str());
        finish(kExitEngineFailed);
    });
    connect(session_, &EngineSession::startCancelled, this, [this](const QString& message) {
        clearLine();
        std::fprintf(progress_, "%s\n", message.toStdString().c_str());
        finish(kExitInterrupted);
    });
    connect(session_, &EngineSession::started, this, [this](const wan::EngineInfo&) {
        if (started_ && currentId_ == 0 && !done_) submitNext();
    });
}

void BatchRunner::setProgressStream(FILE* stream, bool isTerminal) {
    progress_ = stream;
    tty_ = isTerminal;
}

void BatchRunner::setResultStream(FILE* stream) { resultsOut_ = stream; }

void BatchRunner::setInterruptRequested(std::function<bool()> requested) { interruptRequested_ = std::move(requested); }

void BatchRunner::start() {
    if (started_) return;
    started_ = true;
    if (jobs_.empty()) {
        std::fprintf(progress_, "error: no prompts to generate\n");
        finish(kExitBadInput);
        return;
    }
    if (session_->state() == EngineSession::State::StartFailed) {
        std::fprintf(progress_, "error: the engine failed to start: %s\n", session_->startError().toStdString().c_str());
        finish(kExitEngineFailed);
        return;
    }
    if (session_->isReady()) submitNext();
    // otherwise the started() connection submits the first job
}

std::string BatchRunner::jobTag() const {
    return strfmt("[job %zu/%zu]", next_, jobs_.size());
}

void BatchRunner::interrupt() {
    if (done_ || interrupted_) return;
    interrupted_ = true;
    clearLine();
    const size_t skipped = jobs_.size() - next_;
    std::fprintf(progress_, "interrupted: %s%s\n", currentId_ ? "cancelling the running job" : "stopping",
                 skipped ? strfmt(", %zu queued job(s) skipped", skipped).c_str() : "");
    std::fflush(progress_);
    if (currentId_) {
        session_->cancel(currentId_);  // onFinished/onFailed then ends the run
        return;
    }
    // Nothing running: ends the run; a model still loading stops at its next tensor, on every rank.
    if (session_->state() == EngineSession::State::Starting) session_->cancelStart();
    submitNext();
}

void BatchRunner::submitNext() {
    if (done_) return;
    if (!interrupted_ && interruptRequested_ && interruptRequested_()) {
        interrupt();  // calls back here with interrupted_ set
        return;
    }
    if (interrupted_) {
        std::fprintf(progress_, "%d of %zu jobs ok, interrupted\n", ok_, jobs_.size());
        finish(kExitInterrupted);
        return;
    }
    if (next_ >= jobs_.size()) {
        clearLine();
        std::fprintf(progress_, "%d of %zu jobs ok%s\n", ok_, jobs_.size(),
                     failed_ ? strfmt(", %d failed or cancelled", failed_).c_str() : "");
        finish(failed_ ? kExitJobFailed : kExitOk);
        return;
    }
    lastStage_ = Stage::Queued;
    lastDecile_ = -1;
    const GenerationRequest& r = jobs_[next_++];
    currentId_ = session_->submit(r);
    std::string prompt = r.prompt.size() > 60 ? r.prompt.substr(0, 57) + "..." : r.prompt;
    if (!tty_) std::fprintf(progress_, "%s %s\n", jobTag().c_str(), prompt.c_str());
    std::fflush(progress_);
}

void BatchRunner::clearLine() {
    if (tty_ && lineDirty_) {
        std::fputs("\r\x1b[K", progress_);
        lineDirty_ = false;
    }
}

void BatchRunner::onProgress(qint64 id, const ProgressInfo& info) {
    if (id != currentId_ || done_) return;
    const double fraction = overallFraction(info);
    const int percent = static_cast<int>(std::floor(fraction * 100.0));
    if (tty_) {
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(std::lround(fraction * kWidth));
        std::string bar(static_cast<size_t>(filled), '#');
        bar.append(static_cast<size_t>(kWidth - filled), '.');
        std::fprintf(progress_, "\r\x1b[K%s [%s] %3d%% %s", jobTag().c_str(), bar.c_str(), percent,
                     progressText(info).c_str());
        lineDirty_ = true;
    } else {
        const int decile = percent / 10;
        if (info.stage != lastStage_ || decile != lastDecile_) {
            std::fprintf(progress_, "%s %3d%% %s\n", jobTag().c_str(), percent, progressText(info).c_str());
        }
        lastDecile_ = decile;
    }
    lastStage_ = info.stage;
    std::fflush(progress_);
}

void BatchRunner::onFinished(qint64 id, const GenerationResult& result) {
    if (id != currentId_ || done_) return;
    currentId_ = 0;
    results_.push_back(result);
    clearLine();
    if (result.status == JobStatus::Ok) {
        ++ok_;
        std::fprintf(progress_, "%s done in %s (seed %lld)%s%s\n", jobTag().c_str(),
                     formatDuration(result.seconds).c_str(), static_cast<long long>(result.seed_used),
                     result.message.empty() ? "" : ": ", result.message.c_str());
        if (!result.video_path.empty()) {
            std::fprintf(resultsOut_, "%s\n", result.video_path.c_str());
            std::fflush(resultsOut_);
        }
    } else {
        ++failed_;
        std::fprintf(progress_, "%s cancelled%s%s\n", jobTag().c_str(), result.message.empty() ? "" : ": ",
                     result.message.c_str());
    }
    std::fflush(progress_);
    submitNext();
}

void BatchRunner::onFailed(qint64 id, const QString& message) {
    if (id != currentId_ || done_) return;
    currentId_ = 0;
    GenerationResult r;
    r.job_id = id;
    r.status = JobStatus::Failed;
    r.message = message.toStdString();
    results_.push_back(r);
    ++failed_;
    clearLine();
    std::fprintf(progress_, "%s failed: %s\n", jobTag().c_str(), r.message.c_str());
    std::fflush(progress_);
    submitNext();
}

void BatchRunner::finish(int code) {
    if (done_) return;
    done_ = true;
    exitCode_ = code;
    std::vector<JobStatus> ran;
    for (const GenerationResult& r : results_) ran.push_back(r.status);
    std::fputs(batchSummary(ran, jobs_.size()).c_str(), progress_);
    std::fflush(progress_);
    emit done(code);
}

}  // namespace wan::app
