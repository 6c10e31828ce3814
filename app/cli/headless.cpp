#include "cli/headless.h"

#include "cli/batch_summary.h"
#include "core/batch_file.h"
#include "core/cancel.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <unistd.h>

namespace wan::app {

namespace {

/// Ctrl+C: the current job is cancelled (at the next point all ranks agree on) and no further job starts.
/// A second Ctrl+C ends the process at once (the default action is restored by the first).
std::atomic<bool> g_interrupted{false};
extern "C" void onInterrupt(int) {
    g_interrupted.store(true);
    std::signal(SIGINT, SIG_DFL);
}

void printBar(const ProgressInfo& p, int job, int jobs, bool tty) {
    static Stage last_stage = Stage::Queued;
    static int last_decile = -1;
    const double frac = p.total > 0 ? static_cast<double>(p.step) / p.total : 0.0;
    if (tty) {
        const int width = 30;
        const int filled = static_cast<int>(frac * width);
        std::string bar(static_cast<size_t>(filled), '#');
        bar.resize(width, '.');
        std::string eta = p.eta_s >= 0 ? strfmt("ETA %.0fs", std::max(0.0, p.eta_s - p.elapsed_s)) : "ETA --";
        std::fprintf(stderr, "\r[%d/%d] %-7s [%s] %d/%d  %.1fs  %s   ", job, jobs, stage_name(p.stage), bar.c_str(),
                     p.step, p.total, p.elapsed_s, eta.c_str());
    } else {
        const int decile = static_cast<int>(frac * 10);
        if (p.stage != last_stage || decile != last_decile) {
            std::fprintf(stderr, "[%d/%d] %s %d/%d (%.1fs)\n", job, jobs, stage_name(p.stage), p.step, p.total, p.elapsed_s);
        }
        last_decile = decile;
    }
    last_stage = p.stage;
    std::fflush(stderr);
}
}  // namespace

int runHeadless(const AppOptions& options, std::unique_ptr<EngineBackend> backend) {
    std::vector<GenerationRequest> jobs;
    GenerationRequest defaults = options.request;
    defaults.output_dir = options.engine.output_dir;
    try {
        if (!options.batchFile.empty()) jobs = read_batch_file(options.batchFile, defaults);
        else jobs.push_back(defaults);
    } catch (const Error& e) {
        std::fprintf(stderr, "wanstudio: %s\n", e.what());
        backend->shutdown();
        return 2;
    }
    EngineInfo info;
    std::signal(SIGINT, onInterrupt);  // before loading: Ctrl+C cancels the load (on every rank) as it does a job
    try {
        LoadControl load;
        load.cancel = &g_interrupted;
        info = backend->start(load);
    } catch (const Cancelled& e) {
        std::fprintf(stderr, "wanstudio: %s\n", e.what());
        backend->shutdown();
        return 130;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wanstudio: the engine failed to start: %s\n", e.what());
        backend->shutdown();
        return 3;
    }
    std::fprintf(stderr, "wanstudio: %s on %s, %d rank(s)%s\n", info.model_variant.c_str(), info.device.c_str(),
                 info.world_size, info.demo_checkpoint ? " — built-in demo checkpoint (tiny, random weights: noise-like output)" : "");
    const bool tty = ::isatty(2);
    int failures = 0;
    std::vector<JobStatus> ran;  // of the jobs that ran, in order
    for (size_t i = 0; i < jobs.size() && !g_interrupted.load(); ++i) {
        jobs[i].job_id = static_cast<int64_t>(i + 1);
        GenerationResult r = backend->run(jobs[i], [&](const ProgressInfo& p) { printBar(p, static_cast<int>(i + 1), static_cast<int>(jobs.size()), tty); }, g_interrupted);
        ran.push_back(r.status);
        if (tty) std::fprintf(stderr, "\n");
        if (r.status == JobStatus::Ok) {
            std::fprintf(stderr, "[%zu/%zu] done in %.1fs, seed %lld%s%s\n", i + 1, jobs.size(), r.seconds,
                         static_cast<long long>(r.seed_used), r.message.empty() ? "" : " — ", r.message.c_str());
            if (!r.video_path.empty()) std::printf("%s\n", r.video_path.c_str());
        } else {
            ++failures;
            std::fprintf(stderr, "[%zu/%zu] %s: %s\n", i + 1, jobs.size(), job_status_name(r.status), r.message.c_str());
        }
        std::fflush(stdout);
    }
    backend->shutdown();
    std::fprintf(stderr, "%zu of %zu jobs ok\n", ran.size() - static_cast<size_t>(failures), jobs.size());
    std::fputs(batchSummary(ran, jobs.size()).c_str(), stderr);
    if (g_interrupted.load()) {
        std::fprintf(stderr, "wanstudio: interrupted (Ctrl+C)\n");
        return 130;
    }
    return failures || ran.size() < jobs.size() ? 1 : 0;
}

}  // namespace wan::app
