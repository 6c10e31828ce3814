// Non-blocking NCCL set-up and calls (Note [Bounded NCCL calls] in engine/dist/nccl.cpp): collectives are exact after
// a set-up that NCCL finishes in the background (any world whose ranks have a GPU each, one rank included), and a
// set-up that a peer never joins ends at --collective-timeout with an error naming it (two ranks; only rank 0 needs
// a GPU). Built only with NCCL.
#include "test_util.h"

#include "core/core.h"
#include "protocol/deadline.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/DeviceGuard.h>
#include <gtest/gtest.h>
#include <nccl.h>

#include <array>
#include <memory>
#include <string>

using namespace wan::dist;

namespace {

/// --collective-timeout for one test.
class TimeoutScope {
public:
    explicit TimeoutScope(double seconds) : previous_(wan::protocol::collective_timeout()) {
        wan::protocol::set_collective_timeout(seconds);
    }
    ~TimeoutScope() { wan::protocol::set_collective_timeout(previous_); }
    TimeoutScope(const TimeoutScope&) = delete;
    TimeoutScope& operator=(const TimeoutScope&) = delete;

private:
    double previous_;
};

}  // namespace

TEST(NcclBounded, CollectivesAreExactAfterANonBlockingSetUp) {
    const RankFacts facts = rank_facts(MPI_COMM_WORLD);
    if (!at::hasCUDA() || static_cast<int>(at::getNumGPUs()) < facts.local_size)
        GTEST_SKIP() << "needs a GPU for each of the " << facts.local_size << " ranks here (" << at::getNumGPUs()
                     << " GPUs)";
    const c10::Device device(c10::kCUDA, static_cast<c10::DeviceIndex>(facts.local_rank));
    const c10::DeviceGuard guard(device);
    std::unique_ptr<Communicator> comm = make_communicator(MPI_COMM_WORLD, device);
    ASSERT_STREQ(comm->backend(), "nccl");
    const int P = comm->size(), r = comm->rank();
    const auto on_gpu = at::TensorOptions().dtype(at::kFloat).device(device);

    at::Tensor blocks = comm->all_to_all(at::arange(P, on_gpu).add_(100.0 * r)).cpu();  // block j of rank r: 100r + j
    at::Tensor gathered = comm->all_gather(at::full({1}, static_cast<float>(r), on_gpu)).cpu();
    for (int i = 0; i < P; ++i) {
        EXPECT_EQ(blocks[i].item<float>(), 100.0f * i + r) << "all-to-all block " << i;
        EXPECT_EQ(gathered[i].item<float>(), static_cast<float>(i)) << "all-gather part " << i;
    }
    at::Tensor send = at::full({4}, static_cast<float>(r), on_gpu), recv = at::empty_like(send);
    comm->start_shift(send, recv, 1)->wait();
    EXPECT_EQ(recv.cpu()[3].item<float>(), static_cast<float>((r + P - 1) % P));
    at::Tensor sum = at::full({1}, static_cast<float>(r + 1), on_gpu);
    comm->all_reduce(sum, ReduceOp::Sum);
    EXPECT_EQ(sum.cpu().item<float>(), P * (P + 1) / 2.0f);
    at::Tensor last = at::full({1}, static_cast<float>(r), on_gpu);
    comm->broadcast(last, P - 1);
    EXPECT_EQ(last.cpu().item<float>(), static_cast<float>(P - 1));
}

TEST(NcclBounded, ASetUpThatAPeerNeverJoinsEndsAtTheDeadline) {
    const RankFacts facts = rank_facts(MPI_COMM_WORLD);
    if (facts.size != 2 || !at::hasCUDA())
        GTEST_SKIP() << "needs 2 ranks and a GPU for rank 0 (" << facts.size << " ranks, " << at::getNumGPUs()
                     << " GPUs here)";
    const TimeoutScope timeout(3.0);
    if (facts.rank == 0) {
        const c10::Device device(c10::kCUDA, 0);
        const c10::DeviceGuard guard(device);
        try {
            (void)make_communicator(MPI_COMM_WORLD, device);
            ADD_FAILURE() << "the NCCL set-up returned although its peer never called NCCL";
        } catch (const wan::Error& e) {
            const std::string m = e.what();
            EXPECT_NE(m.find("NCCL communicator set-up did not complete within 3 s"), std::string::npos) << m;
            EXPECT_NE(m.find("world ranks 0, 1 (rank 0 of 2, cuda:0)"), std::string::npos) << m;
        }
    } else {
        // Everything the set-up does over MPI (the duplicate communicator, the unique id's broadcast), then no NCCL
        // call: as a rank that fails or stops right before its own set-up.
        MpiCommunicator peer(MPI_COMM_WORLD);
        std::array<char, sizeof(ncclUniqueId)> id{};
        MPI_Request request = MPI_REQUEST_NULL;
        EXPECT_EQ(MPI_Ibcast(id.data(), static_cast<int>(id.size()), MPI_BYTE, 0, peer.mpi_comm(), &request),
                  MPI_SUCCESS);
        EXPECT_EQ(MPI_Wait(&request, MPI_STATUS_IGNORE), MPI_SUCCESS);
    }
    MPI_Barrier(MPI_COMM_WORLD);  // EXPECT, not ASSERT, above: no rank may return before it
}
