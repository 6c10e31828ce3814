// TEST-ONLY: see fault_injection.h.
#include "core/fault_injection.h"

#include "core/core.h"
#include "core/env.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

namespace wan::test_hooks {

namespace {

/// A hook armed by two variables: the rank it acts on and the point (step or block) at which it acts; an
/// optional third one picks which time the point is reached (1-based, default 1), e.g. a block of a later job.
class RankPointHook {
public:
    RankPointHook(const char* rank_var, const char* point_var, const char* time_var = nullptr)
        : rank_(env_string(rank_var)), point_(env_string(point_var)) {
        const std::optional<std::string> time = time_var ? env_string(time_var) : std::nullopt;
        if (time) time_ = std::atoll(time->c_str());
    }
    /// Both variables are set and name this rank and point.
    bool matches(int rank, long long point) const {
        return rank_ && point_ && std::atoi(rank_->c_str()) == rank && std::atoll(point_->c_str()) == point;
    }
    /// matches(), the chosen time only: an injected failure ends one job, not every job after it.
    bool fires_once(int rank, long long point) { return matches(rank, point) && ++seen_ == time_; }

private:
    std::optional<std::string> rank_;
    std::optional<std::string> point_;
    long long time_ = 1;
    std::atomic<long long> seen_{0};
};

}  // namespace

void maybe_fail_at_step(int rank, int step) {
    static RankPointHook hook("WAN_TEST_FAIL_RANK", "WAN_TEST_FAIL_STEP");
    if (hook.fires_once(rank, step)) WAN_THROW("injected failure at step %d (WAN_TEST_FAIL_RANK)", step);
}

void maybe_fail_after_block(int rank, long long block) {
    static RankPointHook hook("WAN_TEST_FAIL_BLOCK_RANK", "WAN_TEST_FAIL_BLOCK", "WAN_TEST_FAIL_BLOCK_TIME");
    if (hook.fires_once(rank, block))
        WAN_THROW("injected failure after DiT block %lld (WAN_TEST_FAIL_BLOCK_RANK)", block);
}

void maybe_stop_at_step(int rank, int step) {
    static const RankPointHook hook("WAN_TEST_STOP_RANK", "WAN_TEST_STOP_STEP");
    if (hook.matches(rank, step)) {
        WAN_LOG_WARN("test hook: rank %d stops itself (SIGSTOP) at step %d (WAN_TEST_STOP_RANK)", rank, step);
        std::raise(SIGSTOP);
    }
}

void maybe_fail_video_write() {
    static const bool fail = env_string("WAN_TEST_FAIL_VIDEO_WRITE").has_value();
    if (fail) WAN_THROW("cannot write the video: no space left on device (injected by WAN_TEST_FAIL_VIDEO_WRITE)");
}

void maybe_fail_load(int rank, long long tensor) {
    static RankPointHook hook("WAN_TEST_FAIL_LOAD_RANK", "WAN_TEST_FAIL_LOAD_TENSOR");
    if (hook.fires_once(rank, tensor))
        WAN_THROW("injected failure at tensor %lld of the load (WAN_TEST_FAIL_LOAD_RANK)", tensor);
}

void maybe_delay_load() {
    // Read on every call (not cached): a test process sets it between two loads.
    const std::optional<std::string> ms = env_string("WAN_TEST_LOAD_DELAY_MS");
    if (ms) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoll(ms->c_str())));
}

}  // namespace wan::test_hooks
