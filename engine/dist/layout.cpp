// Rank layout (Ulysses × Ring × CFG halves), its validation, the Mesh of sub-communicators, and the
// step-boundary status agreement. Ref: wan21-reference.md §8.1, §8.3, §8.4; style.md §3.6.
#include "dist/dist.h"

#include "core/core.h"

#include <algorithm>
#include <sstream>

namespace wan::dist {

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
    if (num_heads < 1) out.push_back(strfmt("num_heads must be at least 1, got %lld", static_cast<long long>(num_heads)));
    if (!out.empty()) return out;

    if (cfg_split() && world % 2 != 0)
        out.push_back(strfmt("cfg_parallel needs an even number of ranks (one half per CFG branch), but the world "
                             "size is %d", world));
    const int half = cfg_split() ? world / 2 : world;
    // Ref: §8.4 — ulysses·ring = world_size is asserted when sequence parallelism is on.
    if ((ulysses > 1 || ring > 1) && ulysses * ring != half) {
        if (cfg_split())
            out.push_back(strfmt("ulysses size (%d) x ring size (%d) = %d must equal half the world size with "
                                 "cfg_parallel (%d / 2 = %d)", ulysses, ring, ulysses * ring, world, half));
        else
            out.push_back(strfmt("ulysses size (%d) x ring size (%d) = %d must equal the world size (%d)", ulysses,
                                 ring, ulysses * ring, world));
    }
    if (num_heads % ulysses != 0) {
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
        if (cfg_parallel) out.push_back("cfg_parallel has no effect with a single process (world size 1)");
    }
    return out;
}

void ParallelLayout::validate(int64_t num_heads) const {
    std::vector<std::string> errs = errors(num_heads);
    if (!errs.empty()) {
        std::string msg = "invalid parallel layout (world " + std::to_string(world) + ", ulysses " +
                          std::to_string(ulysses) + ", ring " + std::to_string(ring) +
                          (cfg_parallel ? ", cfg_parallel" : "") + "): ";
        for (size_t i = 0; i < errs.size(); ++i) msg += (i ? "; " : "") + errs[i];
        WAN_THROW("%s", msg.c_str());
    }
    for (const std::string& w : warnings()) WAN_LOG_WARN("%s", w.c_str());
}

// ---- Mesh -------------------------------------------------------------------------------------------

Mesh::Mesh(Communicator& world, const ParallelLayout& layout, int64_t num_heads) : world_(world), layout_(layout) {
    WAN_CHECK(layout_.world == world.size(), "parallel layout is for %d ranks but the communicator has %d",
              layout_.world, world.size());
    layout_.validate(num_heads);
    const int rank = world.rank();
    const bool cfg = layout_.cfg_split();
    const int half = cfg ? layout_.world / 2 : layout_.world;
    const int U = layout_.ulysses;
    const int R = layout_.ring;
    const int sp = U * R;
    cfg_index_ = cfg ? rank / half : 0;
    const int i = rank % half;     // rank inside its half
    const int replicas = half / sp;  // > 1 only with U = R = 1 (every rank runs the full sequence)
    const int group = cfg_index_ * replicas + i / sp;  // unique SP group id over the world
    const int j = i % sp;                             // SP rank = token chunk index
    // Ref: §8.3 — Ulysses groups: U consecutive ranks; Ring groups: strided {u, u+U, ...}. Keys = world
    // rank, so ulysses.rank() = j % U and ring.rank() = j / U.
    cfg_half_ = world.split(cfg_index_, rank);
    sp_ = world.split(group, rank);
    ulysses_ = world.split(group * R + j / U, rank);
    ring_ = world.split(group * U + j % U, rank);
    if (cfg) cfg_pair_ = world.split(i, rank);
    WAN_CHECK(sp_->size() == sp && ulysses_->size() == U && ring_->size() == R && sp_->rank() == j &&
                  ulysses_->rank() == j % U && ring_->rank() == j / U,
              "internal error: mesh groups do not match the layout (rank %d)", rank);
}

Mesh::~Mesh() = default;

// ---- step agreement ---------------------------------------------------------------------------------

StepStatus agree(Communicator& world, StepStatus mine) {
    int value = static_cast<int>(mine);
    // Host data: over MPI whatever the tensor backend (no device round trip, no stream involved).
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, world.mpi_comm()));
    WAN_CHECK(value >= static_cast<int>(StepStatus::Continue) && value <= static_cast<int>(StepStatus::Failed),
              "step agreement: unknown status %d received", value);
    return static_cast<StepStatus>(value);
}

}  // namespace wan::dist
