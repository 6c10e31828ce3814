// NCCL communicators after a failure in the middle of a step (Note [Communicator renewal] in dist.h): an operation
// one rank queued on its GPU and no peer will ever join is aborted after the grace, and every rank re-creates the
// mesh's communicators from a fresh unique id; a failure seen at the agreement replaces nothing. Two ranks, one GPU
// each (NCCL needs a GPU per rank); built only with NCCL.
#include "test_util.h"

#include "core/core.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/DeviceGuard.h>
#include <gtest/gtest.h>

#include <memory>

using namespace wan::dist;

namespace {

/// Ulysses all-to-all over the mesh with exactly predictable values: block j of rank r holds 100r + j.
void expect_exact_all_to_all(Mesh& mesh, const c10::Device& device) {
    const int P = mesh.ulysses().size(), r = mesh.ulysses().rank();
    at::Tensor x = at::arange(P, at::kFloat).add_(100.0 * r).to(device);
    at::Tensor y = mesh.ulysses().all_to_all(x).cpu();  // block i came from rank i: 100i + r
    for (int i = 0; i < P; ++i) EXPECT_EQ(y[i].item<float>(), 100.0f * i + r) << "block " << i;
}

}  // namespace

TEST(NcclRenewal, AnUnmatchedOperationIsAbortedAndTheMeshRenewed) {
    const RankFacts facts = rank_facts(MPI_COMM_WORLD);
    if (facts.size != 2 || !at::hasCUDA() || static_cast<int>(at::getNumGPUs()) < facts.local_size)
        GTEST_SKIP() << "needs 2 ranks and a GPU for each (" << at::getNumGPUs() << " GPUs here)";
    const c10::Device device(c10::kCUDA, static_cast<c10::DeviceIndex>(facts.local_rank));
    const c10::DeviceGuard guard(device);
    std::unique_ptr<Communicator> comm = make_communicator(MPI_COMM_WORLD, device);
    ASSERT_STREQ(comm->backend(), "nccl");
    Mesh mesh(*comm, ParallelLayout{2, 2, 1}, 12);
    expect_exact_all_to_all(mesh, device);  // also sets up the connections, so the next call only queues work
    const MpiResources before = mpi_resources();

    // Rank 1 "fails" before an all-to-all that rank 0 queues: rank 0's GPU now waits for a peer that never comes,
    // while its host goes on to the agreement.
    if (facts.rank == 0) (void)mesh.ulysses().all_to_all(at::ones({2, 4}, at::TensorOptions().device(device)));
    EXPECT_EQ(mesh.agree(StepStatus::Failed), StepStatus::Failed);
    EXPECT_TRUE(mesh.recover_after_failure());  // rank 0's operation is still running after 2 s: aborted, renewed
    EXPECT_EQ(mesh.renewals(), 1);
    EXPECT_EQ(mpi_resources().communicators, before.communicators);  // the old MPI communicators were freed
    EXPECT_EQ(mpi_resources().pending_requests, 0);
    expect_exact_all_to_all(mesh, device);
    mesh.world().barrier();

    // A failure that every rank sees at the agreement, with nothing left running: nothing is replaced.
    EXPECT_EQ(mesh.agree(facts.rank == 1 ? StepStatus::Failed : StepStatus::Continue), StepStatus::Failed);
    EXPECT_FALSE(mesh.recover_after_failure());
    EXPECT_EQ(mesh.renewals(), 1);
    expect_exact_all_to_all(mesh, device);
}
