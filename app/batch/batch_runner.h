// `--batch` / `--prompt` without a window: submits the jobs one after another to an EngineSession, draws a
// terminal progress bar on stderr and prints each output path on stdout.
#pragma once

#include "session/engine_session.h"

#include <QObject>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace wan::app {

class BatchRunner : public QObject {
    Q_OBJECT
public:
    /// Exit codes of runBatch.
    enum ExitCode { kExitOk = 0, kExitJobFailed = 1, kExitBadInput = 2, kExitEngineFailed = 3,
                    kExitInterrupted = 130 /* 128 + SIGINT, as shells report */ };

    BatchRunner(EngineSession* session, std::vector<GenerationRequest> jobs, QObject* parent = nullptr);

    /// Where the progress goes (default stderr) and whether to redraw one line with '\r' (default: whether
    /// that stream is a terminal). Without a terminal one line is printed per stage and per 10 %.
    void setProgressStream(FILE* stream, bool isTerminal);
    /// Where each output path goes (default stdout).
    void setResultStream(FILE* stream);

    /// Submits the first job once the session has started (call session->start() too). Emits done().
    void start();
    /// Asked before each job is submitted: true when Ctrl+C was pressed, so that a job that ended before the
    /// periodic check saw the signal (e.g. cancelled at once by a worker rank's own Ctrl+C) is not followed
    /// by the next one. run_batch sets it; interrupt() remains the way to act on the signal otherwise.
    void setInterruptRequested(std::function<bool()> requested);

    bool isDone() const { return done_; }
    int exitCode() const { return exitCode_; }
    int okCount() const { return ok_; }
    int failedCount() const { return failed_; }
    const std::vector<GenerationResult>& results() const { return results_; }

public slots:
    /// Ctrl+C: cancels the running job (at its next step), skips the rest, and ends with kExitInterrupted
    /// once the engine has given the job back. Idempotent.
    void interrupt();

signals:
    void done(int exitCode);

private:
    void submitNext();
    void onProgress(qint64 id, const wan::ProgressInfo& info);
    void onFinished(qint64 id, const wan::GenerationResult& result);
    void onFailed(qint64 id, const QString& message);
    void finish(int code);
    void clearLine();
    std::string jobTag() const;

    EngineSession* session_;
    std::vector<GenerationRequest> jobs_;
    std::vector<GenerationResult> results_;
    size_t next_ = 0;
    qint64 currentId_ = 0;
    FILE* progress_ = stderr;
    FILE* resultsOut_ = stdout;
    bool tty_ = false;
    bool lineDirty_ = false;
    Stage lastStage_ = Stage::Queued;
    int lastDecile_ = -1;
    int ok_ = 0, failed_ = 0;
    int exitCode_ = kExitOk;
    bool started_ = false;
    bool done_ = false;
    bool interrupted_ = false;
    std::function<bool()> interruptRequested_;
};

}  // namespace wan::app
