// TEST-ONLY: see fault_injection.h.
#include "core/fault_injection.h"

#include "core/core.h"
#include "core/env.h"

#include <atomic>
#include <csignal>
#include <cstdlib>

namespace wan::test_hooks {

void maybe_fail_at_step(int rank, int step) {
    static std::atomic<int> jobs_failed{0};
    static const std::optional<std::string> fail_rank = env_string("WAN_TEST_FAIL_RANK");
    static const std::optional<std::string> fail_step = env_string("WAN_TEST_FAIL_STEP");
    if (!fail_rank || !fail_step || jobs_failed.load() > 0) return;
    if (std::atoi(fail_rank->c_str()) == rank && std::atoi(fail_step->c_str()) == step) {
        ++jobs_failed;
        WAN_THROW("injected failure at step %d (WAN_TEST_FAIL_RANK)", step);
    }
}

void maybe_fail_after_block(int rank, long long block) {
    static std::atomic<int> fired{0};
    static const std::optional<std::string> fail_rank = env_string("WAN_TEST_FAIL_BLOCK_RANK");
    static const std::optional<std::string> fail_block = env_string("WAN_TEST_FAIL_BLOCK");
    if (!fail_rank || !fail_block || fired.load() > 0) return;
    if (std::atoi(fail_rank->c_str()) == rank && std::atoll(fail_block->c_str()) == block) {
        ++fired;
        WAN_THROW("injected failure after DiT block %lld (WAN_TEST_FAIL_BLOCK_RANK)", block);
    }
}

void maybe_stop_at_step(int rank, int step) {
    static const std::optional<std::string> stop_rank = env_string("WAN_TEST_STOP_RANK");
    static const std::optional<std::string> stop_step = env_string("WAN_TEST_STOP_STEP");
    if (!stop_rank || !stop_step) return;
    if (std::atoi(stop_rank->c_str()) == rank && std::atoi(stop_step->c_str()) == step) {
        WAN_LOG_WARN("test hook: rank %d stops itself (SIGSTOP) at step %d (WAN_TEST_STOP_RANK)", rank, step);
        std::raise(SIGSTOP);
    }
}

void maybe_fail_video_write() {
    static const bool fail = env_string("WAN_TEST_FAIL_VIDEO_WRITE").has_value();
    if (fail) WAN_THROW("cannot write the video: no space left on device (injected by WAN_TEST_FAIL_VIDEO_WRITE)");
}

}  // namespace wan::test_hooks
