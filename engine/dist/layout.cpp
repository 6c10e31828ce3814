// The Mesh of sub-communicators of a rank layout (the layout and its one validation are in
// core/engine_config), and the step-boundary status agreement. Ref: wan21-reference.md §8.1, §8.3, §8.4; style.md §3.6.
#include "dist/dist.h"
#include "dist/internal.h"

#include "core/core.h"


namespace wan::dist {

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
    const protocol::AgreementWait agreement;  // Note [Failure notices]
    MPI_BOUNDED("step agreement", MPI_Iallreduce, MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, world.mpi_comm());
    WAN_CHECK(value >= static_cast<int>(StepStatus::Continue) && value <= static_cast<int>(StepStatus::Failed),
              "step agreement: unknown status %d received", value);
    return static_cast<StepStatus>(value);
}

}  // namespace wan::dist
