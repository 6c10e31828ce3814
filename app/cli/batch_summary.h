// The account that ends every `--batch` / `--prompt` run (issue 19: nothing lost when the engine dies): which
// jobs finished, which failed or were cancelled, and which never ran. Shared by the Qt batch runner
// (app/batch) and the Qt-free headless runner (app/cli/headless.cpp), so both print the same lines.
#pragma once

#include "core/core.h"

#include <string>
#include <vector>

namespace wan::app {

/// Lines such as "finished: job 1, 3\nfailed: job 2\nnever ran: job 4, 5\n" (1-based job numbers), for a
/// batch of `total` jobs of which the first `ran.size()` ran with the given statuses. "finished: none" when
/// none did; the other categories only when not empty. "" for a single job that ran (its own line says it all).
std::string batchSummary(const std::vector<JobStatus>& ran, size_t total);

}  // namespace wan::app
