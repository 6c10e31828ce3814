// The Mesh of sub-communicators of a rank layout (the layout and its one validation are in
// core/engine_config), and the step-boundary status agreement. Ref: wan21-reference.md §8.1, §8.3, §8.4; style.md §3.6.
#include "dist/dist.h"
#include "dist/internal.h"

#include "core/core.h"

#include <chrono>

namespace wan::dist {

namespace {

/// How long, after a failed agreement, an operation still running on a communicator may take to finish before
/// the communicator counts as inconsistent (Note [Communicator renewal]); as the failure notices' grace.
constexpr std::chrono::milliseconds kSettleGrace{2000};

StepStatus agree_over(MPI_Comm comm, StepStatus mine) {
    int value = static_cast<int>(mine);
    // Host data: over MPI whatever the tensor backend (no device round trip, no stream involved).
    const protocol::AgreementWait agreement;  // Note [Failure notices]
    MPI_BOUNDED("step agreement", MPI_Iallreduce, MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, comm);
    WAN_CHECK(value >= static_cast<int>(StepStatus::Continue) && value <= static_cast<int>(StepStatus::Failed),
              "step agreement: unknown status %d received", value);
    return static_cast<StepStatus>(value);
}

}  // namespace

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
    MPI_CHECK(MPI_Comm_dup(world.mpi_comm(), &control_));
    MPI_CHECK(MPI_Comm_set_errhandler(control_, MPI_ERRORS_RETURN));
}

Mesh::~Mesh() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (control_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&control_);
}

StepStatus Mesh::agree(StepStatus mine) { return agree_over(control_, mine); }

bool Mesh::recover_after_failure() {
    // See Note [Communicator renewal]. Every communicator is settled (no short cut): each NCCL one that still
    // runs an operation after the grace is aborted, so its kernels return.
    const bool abandoned = protocol::take_abandoned();
    const bool settled = Communicator::settle_all(std::chrono::steady_clock::now() + kSettleGrace);
    try {
        Communicator::complete_unmatched_all(control_);  // Note [Unmatched operations]: nothing left pending
    } catch (const std::exception& e) {
        protocol::end_every_rank(strfmt("rank %d: completing the operations a failed job left unmatched failed: %s; "
                                        "ending every rank", world_.rank(), e.what()));
    }
    if (all_ok(control_, settled && !abandoned)) return false;
    if (world_.rank() == 0)
        WAN_LOG_WARN("a rank was left with an unfinished exchange by the failure: re-creating the communicators "
                     "on every rank before the next job");
    try {
        Communicator::renew_all(control_);
    } catch (const std::exception& e) {
        protocol::end_every_rank(strfmt("rank %d: re-creating the communicators after a failed job failed: %s; "
                                        "ending every rank", world_.rank(), e.what()));
    }
    ++renewals_;
    return true;
}

StepStatus agree(Communicator& world, StepStatus mine) { return agree_over(world.mpi_comm(), mine); }

}  // namespace wan::dist
