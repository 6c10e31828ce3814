#include "cli/batch_summary.h"

namespace wan::app {

namespace {

/// "job 1, 3, 4" of the 0-based indices in `which`.
std::string jobList(const std::vector<size_t>& which) {
    std::string out;
    for (size_t j : which) out += (out.empty() ? "job " : ", ") + std::to_string(j + 1);
    return out;
}

}  // namespace

std::string batchSummary(const std::vector<JobStatus>& ran, size_t total) {
    if (total < 2 && ran.size() == total) return {};
    std::vector<size_t> ok, failed, cancelled, never;
    for (size_t i = 0; i < total; ++i) {
        if (i >= ran.size()) never.push_back(i);
        else if (ran[i] == JobStatus::Ok) ok.push_back(i);
        else if (ran[i] == JobStatus::Cancelled) cancelled.push_back(i);
        else failed.push_back(i);
    }
    std::string out = "finished: " + (ok.empty() ? std::string("none") : jobList(ok)) + "\n";
    if (!failed.empty()) out += "failed: " + jobList(failed) + "\n";
    if (!cancelled.empty()) out += "cancelled: " + jobList(cancelled) + "\n";
    if (!never.empty()) out += "never ran: " + jobList(never) + "\n";
    return out;
}

}  // namespace wan::app
