// Private to engine/pipeline: one load's progress, its headless log lines and its cancel point. The pipeline
// installs tensor_read() as the io read observer (io::ScopedTensorReadObserver), so every loader reports without
// taking a callback of its own. See Note [Load agreement] in pipeline.cpp.
#pragma once

#include "core/clock.h"
#include "core/load_progress.h"
#include "io/io.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace wan::pipeline {

class LoadMonitor {
public:
    /// `distributed`: the engine has peers, who hear of this rank's cancel (protocol Note [Cancel notices]) and
    /// whose cancel this rank hears of.
    LoadMonitor(LoadControl control, bool distributed);

    /// What this rank reads of a component that FSDP shards over the ranks (pipeline/parallel.h shard_share).
    struct Share {
        std::map<std::string, uint64_t> bytes_read;  ///< each sharded tensor → the bytes this rank reads of it
        uint64_t full_bytes = 0;                     ///< those tensors' whole size
        uint64_t read_bytes() const;
    };

    /// Before loading: a component, the size of its files, and the part of it that this rank reads only a shard
    /// of (FSDP; see Note [FSDP load progress] in pipeline.cpp). The component's size on this rank, `file_bytes`
    /// with the sharded tensors counted at their share (0: loaded elsewhere only, yet begun and ended here too,
    /// as every rank agrees after each component), adds to bytes_total.
    void plan(const std::string& component, uint64_t file_bytes, Share share);
    /// A component every byte of which this rank reads.
    void plan(const std::string& component, uint64_t bytes);
    /// The planned `component` starts; `file` is named until a tensor from another file is read. Throws
    /// wan::Cancelled when a cancel was seen.
    void begin(const std::string& component, const std::string& file);
    /// One tensor was read: counts its bytes (at most up to the component's size: a loader may read a tensor
    /// twice), reports, logs at most every few seconds, then throws wan::Cancelled when a cancel was seen.
    void tensor_read(const io::TensorInfo& info);
    /// The component is loaded: all of its bytes count; one log line with its size, file and seconds.
    void end();

    /// The current component's shard was built: `bytes` is what the sharded loader copied (ShardedParameters::
    /// bytes_read). A warning when it is not what the plan counted (the bar would then not be true).
    void confirm_shard(uint64_t bytes) const;

    /// This rank's flag (then told to the peers) or a peer's cancel notice.
    bool cancel_seen();
    /// The component between begin() and end(), else "".
    std::string current_component() const;

private:
    struct Component {
        std::string name;
        uint64_t bytes = 0;       ///< read by this rank
        uint64_t file_bytes = 0;  ///< in the files (more than `bytes` where the rank reads a shard)
        Share share;
    };
    void report();
    uint64_t done_before_current() const;

    LoadControl control_;
    bool distributed_;
    std::vector<Component> plan_;
    size_t current_ = 0;         ///< index into plan_ of the component being loaded
    bool loading_ = false;       ///< between begin() and end()
    uint64_t current_done_ = 0;  ///< bytes of the current component read so far
    uint64_t total_ = 0;
    long long tensors_read_ = 0;  ///< over every component (the test hook's count)
    std::string file_;
    std::string source_;  ///< the component's path as begin() named it (a sharded DiT: its index)
    Clock::time_point start_ = Clock::now();
    Clock::time_point component_start_ = start_;
    Clock::time_point last_log_ = start_;
};

}  // namespace wan::pipeline
