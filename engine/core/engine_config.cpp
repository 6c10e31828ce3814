// The parallel layout rule (ParallelLayout::errors) — the only one; see engine_config.h.
#include "core/engine_config.h"

#include "core/core.h"

#include <algorithm>
#include <sstream>

namespace wan {

std::vector<int> valid_ulysses_sizes(int64_t num_heads) {
    std::vector<int> out;
    for (int64_t d = 1; d <= num_heads; ++d)
        if (num_heads % d == 0) out.push_back(static_cast<int>(d));
    return out;
}

int64_t ParallelLayout::padded_seq_len(int64_t tokens) const {
    const int64_t sp = std::max(1, sp_size());
    return (tokens + sp - 1) / sp * sp;
}

std::vector<std::string> ParallelLayout::errors(int64_t num_heads) const {
    std::vector<std::string> out;
    if (world < 1) out.push_back(strfmt("world size must be at least 1, got %d", world));
    if (ulysses < 1) out.push_back(strfmt("ulysses size must be at least 1, got %d", ulysses));
    if (ring < 1) out.push_back(strfmt("ring size must be at least 1, got %d", ring));
    if (num_heads < 0) out.push_back(strfmt("num_heads must be at least 1, got %lld", static_cast<long long>(num_heads)));
    if (!out.empty()) return out;

    if (cfg_parallel && world % 2 != 0)
        out.push_back(strfmt("cfg_parallel needs an even number of ranks (one half per CFG branch), but the world "
                             "size is %d", world));
    const int groups = cfg_parallel ? 2 : 1;
    const int half = cfg_parallel ? world / 2 : world;
    // Ref: §8.4 — ulysses·ring = world_size is asserted when sequence parallelism is on.
    if ((ulysses > 1 || ring > 1) && ulysses * ring != half) {
        const int needed = ulysses * ring * groups;
        if (cfg_parallel)
            out.push_back(strfmt("--ulysses-size %d × --ring-size %d = %d must equal the number of processes per CFG "
                                 "half with cfg_parallel (%d / 2 = %d); start %d processes (mpirun -np %d) or change "
                                 "the sizes", ulysses, ring, ulysses * ring, world, half, needed, needed));
        else
            out.push_back(strfmt("--ulysses-size %d × --ring-size %d = %d must equal the number of processes %d; start "
                                 "%d processes (mpirun -np %d) or change the sizes", ulysses, ring, ulysses * ring,
                                 world, needed, needed));
    }
    if (num_heads != kHeadsUnknown && num_heads % ulysses != 0) {
        std::ostringstream valid;
        for (int d : valid_ulysses_sizes(num_heads)) valid << (valid.tellp() > 0 ? ", " : "") << d;
        out.push_back(strfmt("ulysses size %d does not divide the %lld attention heads; valid Ulysses sizes for "
                             "%lld heads: %s", ulysses, static_cast<long long>(num_heads),
                             static_cast<long long>(num_heads), valid.str().c_str()));
    }
    return out;
}

std::vector<std::string> ParallelLayout::warnings() const {
    std::vector<std::string> out;
    if (world == 1) {
        if (dit_fsdp) out.push_back("dit_fsdp has no effect with a single process (world size 1): nothing to shard");
        if (t5_fsdp) out.push_back("t5_fsdp has no effect with a single process (world size 1): nothing to shard");
    }
    return out;
}

void ParallelLayout::validate(int64_t num_heads) const {
    std::vector<std::string> errs = errors(num_heads);
    if (errs.empty()) return;
    std::string msg = "invalid parallel layout (world " + std::to_string(world) + ", ulysses " +
                      std::to_string(ulysses) + ", ring " + std::to_string(ring) +
                      (cfg_parallel ? ", cfg_parallel" : "") + "): ";
    for (size_t i = 0; i < errs.size(); ++i) msg += (i ? "; " : "") + errs[i];
    WAN_THROW("%s", msg.c_str());
}

std::string ParallelLayout::describe() const {
    return strfmt("world %d, ulysses %d × ring %d%s%s%s", world, ulysses, ring, dit_fsdp ? ", dit_fsdp" : "",
                  t5_fsdp ? ", t5_fsdp" : "", cfg_parallel ? ", cfg_parallel" : "");
}

}  // namespace wan
