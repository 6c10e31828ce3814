// TEST-ONLY: see fault_injection.h.
#include "core/fault_injection.h"

#include "core/core.h"
#include "core/env.h"

#include <atomic>
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

}  // namespace wan::test_hooks
