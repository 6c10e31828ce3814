#include "pipeline/load_monitor.h"

#include "core/cancel.h"
#include "core/core.h"
#include "core/fault_injection.h"
#include "protocol/deadline.h"

#include <algorithm>

namespace wan::pipeline {

namespace {
// Headless: a long component (a 14B DiT takes minutes from a cold disk) says how far it is at most this often.
constexpr double kLogEverySeconds = 5.0;

/// "28.57 GB" or, below a gigabyte (the tiny test models), "3.1 MB".
std::string size_text(uint64_t bytes) {
    const double b = static_cast<double>(bytes);
    return b >= 1e9 ? strfmt("%.2f GB", b / 1e9) : strfmt("%.1f MB", b / 1e6);
}
}  // namespace

LoadMonitor::LoadMonitor(LoadControl control, bool distributed)
    : control_(std::move(control)), distributed_(distributed) {}

uint64_t LoadMonitor::Share::read_bytes() const {
    uint64_t sum = 0;
    for (const auto& [name, bytes] : bytes_read) sum += bytes;
    return sum;
}

void LoadMonitor::plan(const std::string& component, uint64_t bytes) { plan(component, bytes, Share()); }

void LoadMonitor::plan(const std::string& component, uint64_t file_bytes, Share share) {
    WAN_CHECK(share.full_bytes <= file_bytes, "load progress: the %s's shards (%llu bytes) exceed its files (%llu)",
              component.c_str(), static_cast<unsigned long long>(share.full_bytes),
              static_cast<unsigned long long>(file_bytes));
    const uint64_t bytes = file_bytes - share.full_bytes + share.read_bytes();
    plan_.push_back({component, bytes, file_bytes, std::move(share)});
    total_ += bytes;
}

uint64_t LoadMonitor::done_before_current() const {
    uint64_t done = 0;
    for (size_t i = 0; i < current_ && i < plan_.size(); ++i) done += plan_[i].bytes;
    return done;
}

bool LoadMonitor::cancel_seen() {
    if (control_.cancel && control_.cancel->load(std::memory_order_relaxed)) {
        if (distributed_) protocol::announce_cancel();
        return true;
    }
    return distributed_ && protocol::cancel_announced();
}

void LoadMonitor::begin(const std::string& component, const std::string& file) {
    auto it = std::find_if(plan_.begin(), plan_.end(), [&](const Component& c) { return c.name == component; });
    WAN_CHECK(it != plan_.end(), "load progress: component '%s' was not planned", component.c_str());
    current_ = static_cast<size_t>(it - plan_.begin());
    loading_ = true;
    current_done_ = 0;
    file_ = source_ = file;
    component_start_ = last_log_ = Clock::now();
    if (cancel_seen()) throw Cancelled("loading cancelled");
    report();
}

void LoadMonitor::tensor_read(const io::TensorInfo& info) {
    if (!loading_) return;
    test_hooks::maybe_delay_load();
    test_hooks::maybe_fail_load(log_rank(), ++tensors_read_);
    // A sharded tensor counts the part this rank copies out of it, not the whole view it is handed.
    const Share& share = plan_[current_].share;
    const auto shard = share.bytes_read.find(info.name);
    const uint64_t bytes = shard != share.bytes_read.end()
                               ? shard->second
                               : static_cast<uint64_t>(std::max<int64_t>(info.numel(), 0)) * c10::elementSize(info.dtype);
    current_done_ = std::min(current_done_ + bytes, plan_[current_].bytes);
    if (!info.file.empty()) file_ = info.file;
    report();
    if (seconds_since(last_log_) >= kLogEverySeconds) {
        last_log_ = Clock::now();
        const Component& c = plan_[current_];
        WAN_LOG_INFO("loading the %s: %s of %s (%.0f %%) from %s, %.1f s", c.name.c_str(),
                     size_text(current_done_).c_str(), size_text(c.bytes).c_str(),
                     c.bytes ? 100.0 * static_cast<double>(current_done_) / static_cast<double>(c.bytes) : 100.0,
                     file_.c_str(), seconds_since(component_start_));
    }
    if (cancel_seen()) throw Cancelled("loading cancelled");
}

void LoadMonitor::end() {
    const Component& c = plan_[current_];
    current_done_ = c.bytes;
    report();
    loading_ = false;
    if (c.bytes == 0) return;  // a component this rank does not load (the VAE where it never decodes)
    const std::string size = c.bytes == c.file_bytes
                                 ? size_text(c.bytes)
                                 : size_text(c.bytes) + " (this rank's shard of " + size_text(c.file_bytes) + ")";
    WAN_LOG_INFO("loaded the %s: %s from %s in %.1f s", c.name.c_str(), size.c_str(), source_.c_str(),
                 seconds_since(component_start_));
}

void LoadMonitor::confirm_shard(uint64_t bytes) const {
    if (!loading_) return;
    const Component& c = plan_[current_];
    if (bytes == c.share.read_bytes()) return;
    WAN_LOG_WARN("load progress: this rank read %llu bytes of the %s's shards, the plan counted %llu",
                 static_cast<unsigned long long>(bytes), c.name.c_str(),
                 static_cast<unsigned long long>(c.share.read_bytes()));
}

std::string LoadMonitor::current_component() const {
    return loading_ && current_ < plan_.size() ? plan_[current_].name : std::string();
}

void LoadMonitor::report() {
    if (!control_.progress) return;
    LoadProgress p;
    p.component = plan_[current_].name;
    p.file = file_;
    p.bytes_done = done_before_current() + current_done_;
    p.bytes_total = total_;
    p.elapsed_s = seconds_since(start_);
    control_.progress(p);
}

}  // namespace wan::pipeline
