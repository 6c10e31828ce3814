// Parallel layout validation (messages) and the Mesh's sub-communicators. Ref: wan21-reference.md §8.3, §8.4.
#include "test_util.h"

#include "core/core.h"
#include "protocol/deadline.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

using namespace wan::dist;
using wan::dist::test::world;

namespace {

::testing::AssertionResult throws_with(const ParallelLayout& l, int64_t heads, const std::string& needle) {
    try {
        l.validate(heads);
    } catch (const wan::Error& e) {
        if (std::string(e.what()).find(needle) != std::string::npos) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "message '" << e.what() << "' lacks '" << needle << "'";
    }
    return ::testing::AssertionFailure() << "no error thrown";
}

std::vector<int> members_of(Communicator& c) {
    at::Tensor g = c.all_gather(at::scalar_tensor(world().rank(), at::kInt));
    return std::vector<int>(g.data_ptr<int>(), g.data_ptr<int>() + g.numel());
}

/// An all-to-all, a ring shift and a broadcast over `c`, each with exactly predictable values.
void expect_exact_exchanges(Communicator& c) {
    const int P = c.size(), r = c.rank();
    at::Tensor y = c.all_to_all(at::arange(P, at::kFloat).add_(100.0 * r));  // block i came from rank i: 100i + r
    for (int i = 0; i < P; ++i) EXPECT_EQ(y[i].item<float>(), 100.0f * i + r) << "all-to-all block " << i;
    at::Tensor s = c.shift(at::full({2}, static_cast<float>(r)));  // from rank r − 1
    EXPECT_EQ(s[1].item<float>(), static_cast<float>((r + P - 1) % P)) << "ring shift";
    at::Tensor b = at::full({3}, r == 0 ? 7.0f : -1.0f);
    c.broadcast(b, 0);
    EXPECT_EQ(b[2].item<float>(), 7.0f) << "broadcast";
}

}  // namespace

TEST(ParallelLayout, ValidLayouts) {
    EXPECT_TRUE((ParallelLayout{1, 1, 1}).errors(12).empty());
    EXPECT_TRUE((ParallelLayout{8, 4, 2}).errors(12).empty());
    EXPECT_TRUE((ParallelLayout{8, 8, 1}).errors(40).empty());
    EXPECT_TRUE((ParallelLayout{4, 1, 1, false, true}).errors(12).empty());  // FSDP only: full sequence per rank
    EXPECT_TRUE((ParallelLayout{8, 2, 2, true}).errors(12).empty());         // CFG halves of 4
    EXPECT_EQ((ParallelLayout{4, 2, 2}).padded_seq_len(10), 12);
    EXPECT_EQ((ParallelLayout{4, 2, 2}).padded_seq_len(12), 12);
}

TEST(ParallelLayout, ErrorMessages) {
    EXPECT_TRUE(throws_with({4, 3, 1}, 12, "--ulysses-size 3 × --ring-size 1 = 3 must equal the number of processes 4"));
    EXPECT_TRUE(throws_with({2, 1, 4}, 12, "must equal the number of processes 2"));
    EXPECT_TRUE(throws_with({5, 5, 1}, 12, "valid Ulysses sizes for 12 heads: 1, 2, 3, 4, 6, 12"));
    EXPECT_TRUE(throws_with({8, 8, 1}, 12, "ulysses size 8 does not divide the 12 attention heads"));
    EXPECT_TRUE(throws_with({3, 3, 1}, 40, "valid Ulysses sizes for 40 heads: 1, 2, 4, 5, 8, 10, 20, 40"));
    EXPECT_TRUE(throws_with({3, 1, 1, true}, 12, "cfg_parallel needs an even number of ranks"));
    EXPECT_TRUE(throws_with({4, 4, 1, true}, 12, "must equal the number of processes per CFG half with cfg_parallel (4 / 2 = 2)"));
    EXPECT_TRUE(throws_with({4, 0, 1}, 12, "ulysses size must be at least 1"));
    // Both problems in one message.
    ParallelLayout both{6, 5, 2};
    EXPECT_EQ(both.errors(12).size(), 2u);
}

TEST(ParallelLayout, SingleProcessFsdpFlagsAreNoOps) {
    ParallelLayout l{1, 1, 1, false, true, true};
    EXPECT_TRUE(l.errors(12).empty());
    EXPECT_EQ(l.warnings().size(), 2u);
    EXPECT_FALSE(l.cfg_split());
    EXPECT_NO_THROW(l.validate(12));
    EXPECT_TRUE(throws_with({1, 2, 1}, 12, "must equal the number of processes 1"));
}

// The one layout rule (the CLI, the GUI and the engine all call validate()): two CFG halves cannot exist in a
// world of one, so --cfg-parallel there is an error, not a silent no-op.
TEST(ParallelLayout, SingleProcessCfgParallelIsAnError) {
    EXPECT_TRUE(throws_with({1, 1, 1, true}, 12, "cfg_parallel needs an even number of ranks"));
}

// Before the checkpoint is read the heads rule is skipped; every other rule applies.
TEST(ParallelLayout, HeadsUnknownSkipsOnlyTheHeadsRule) {
    EXPECT_TRUE((ParallelLayout{5, 5, 1}).errors(ParallelLayout::kHeadsUnknown).empty());
    EXPECT_EQ((ParallelLayout{4, 3, 1}).errors(ParallelLayout::kHeadsUnknown).size(), 1u);
}

TEST(Mesh, RejectsWrongWorld) {
    ParallelLayout l{world().size() + 1, 1, 1};
    EXPECT_THROW(Mesh(world(), l, 12), wan::Error);
}

struct MeshCase {
    int ulysses, ring;
    bool cfg;
};

class MeshGroups : public ::testing::TestWithParam<MeshCase> {};

TEST_P(MeshGroups, UlyssesConsecutiveRingStrided) {
    const MeshCase c = GetParam();
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    const int half = c.cfg ? P / 2 : P;
    if ((c.cfg && P < 2) || c.ulysses * c.ring != half)
        GTEST_SKIP() << "needs a world of " << c.ulysses * c.ring * (c.cfg ? 2 : 1) << " ranks";
    Mesh mesh(w, ParallelLayout{P, c.ulysses, c.ring, c.cfg}, 12);
    const int U = c.ulysses, R = c.ring;
    const int cfg_index = r / half, base = cfg_index * half, j = r % half;
    EXPECT_EQ(mesh.cfg_index(), cfg_index);

    std::vector<int> ulysses, ring, sp, halfm;
    for (int u = 0; u < U; ++u) ulysses.push_back(base + j / U * U + u);  // §8.3: U consecutive ranks
    for (int m = 0; m < R; ++m) ring.push_back(base + j % U + m * U);     // strided {u, u+U, ...}
    for (int i = 0; i < half; ++i) sp.push_back(base + i);
    EXPECT_EQ(members_of(mesh.ulysses()), ulysses);
    EXPECT_EQ(members_of(mesh.ring()), ring);
    EXPECT_EQ(members_of(mesh.sp()), sp);
    EXPECT_EQ(members_of(mesh.cfg_half()), sp);
    EXPECT_EQ(mesh.sp().rank(), mesh.ring().rank() * U + mesh.ulysses().rank());  // token chunk index
    if (c.cfg) {
        ASSERT_NE(mesh.cfg_pair(), nullptr);
        EXPECT_EQ(members_of(*mesh.cfg_pair()), (std::vector<int>{j, j + half}));
    } else {
        EXPECT_EQ(mesh.cfg_pair(), nullptr);
    }
}

INSTANTIATE_TEST_SUITE_P(Layouts, MeshGroups,
                         ::testing::Values(MeshCase{1, 1, false}, MeshCase{2, 1, false}, MeshCase{1, 2, false},
                                           MeshCase{2, 2, false}, MeshCase{4, 1, false}, MeshCase{1, 4, false},
                                           MeshCase{1, 1, true}, MeshCase{2, 1, true}, MeshCase{1, 2, true}),
                         [](const auto& info) {
                             return "U" + std::to_string(info.param.ulysses) + "R" + std::to_string(info.param.ring) +
                                    (info.param.cfg ? "cfg" : "");
                         });

TEST(Mesh, ReplicasWithoutSequenceParallelism) {
    // U = R = 1 on several ranks: every rank is its own SP group (FSDP-only runs).
    Communicator& w = world();
    Mesh mesh(w, ParallelLayout{w.size(), 1, 1}, 12);
    EXPECT_EQ(mesh.sp().size(), 1);
    EXPECT_EQ(mesh.ulysses().size(), 1);
    EXPECT_EQ(mesh.ring().size(), 1);
    EXPECT_EQ(mesh.cfg_half().size(), w.size());
}

/// A Ulysses mesh over the whole world (at least 2 ranks) with the channel that carries failure notices: rank 1
/// fails while its peers are in an exchange (Note [Failure notices]).
class MeshFailure : public ::testing::Test {
protected:
    void SetUp() override {
        if (world().size() < 2) GTEST_SKIP() << "needs a world of at least 2 ranks";
        wan::protocol::start_watchdog(MPI_COMM_WORLD);
        mesh_ = std::make_unique<Mesh>(world(), ParallelLayout{world().size(), world().size(), 1}, 12);
    }
    std::unique_ptr<Mesh> mesh_;
    const int P = world().size(), r = world().rank();
};

// Note [Communicator renewal]: rank 1 fails without joining the Ulysses all-to-all its peers are in. Its failure
// notice makes them abandon it (protocol::PeerFailed, after the notice's grace), every rank agrees the step failed,
// and the mesh replaces its communicators; the next exchanges over every group give exact results again.
TEST_F(MeshFailure, RecoversFromAnAbandonedCollective) {
    Mesh& mesh = *mesh_;
    StepStatus mine = StepStatus::Failed;
    if (r == 1) {
        wan::protocol::announce_failure("a test failure between two exchanges");
    } else {
        at::Tensor x = at::full({P, 3}, static_cast<float>(r));
        try {
            mesh.ulysses().all_to_all(x);
            ADD_FAILURE() << "the all-to-all completed without rank 1";
        } catch (const wan::protocol::PeerFailed& e) {
            EXPECT_NE(std::string(e.what()).find("rank 1 failed during"), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("a test failure between two exchanges"), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(mesh.agree(mine), StepStatus::Failed);
    EXPECT_TRUE(mesh.recover_after_failure());
    EXPECT_EQ(mesh.renewals(), 1);

    // Every group works again, with the same members in the same order.
    std::vector<int> all(static_cast<size_t>(P));
    for (int i = 0; i < P; ++i) all[static_cast<size_t>(i)] = i;
    EXPECT_EQ(members_of(mesh.world()), all);
    EXPECT_EQ(members_of(mesh.ulysses()), all);
    EXPECT_EQ(members_of(mesh.sp()), all);
    at::Tensor x = at::arange(P * 2, at::kFloat).add_(100.0 * r);  // block j of rank r: 100r + 2j, 100r + 2j + 1
    at::Tensor y = mesh.ulysses().all_to_all(x);                   // block i of the result came from rank i
    for (int i = 0; i < P; ++i) {
        EXPECT_EQ(y[2 * i].item<float>(), 100.0f * i + 2 * r);
        EXPECT_EQ(y[2 * i + 1].item<float>(), 100.0f * i + 2 * r + 1);
    }
    EXPECT_EQ(mesh.agree(StepStatus::Continue), StepStatus::Continue);
}

// Note [Unmatched operations]: ten failed jobs in a row, each failing on rank 1 while the other ranks are in an
// exchange rank 1 never joins (an all-to-all, a ring shift, or a broadcast whose root may complete it alone and go
// on), leave no MPI communicator and no request behind, and the exchanges after each give exact results.
TEST_F(MeshFailure, RepeatedFailuresLeaveNothingPending) {
    Mesh& mesh = *mesh_;
    expect_exact_exchanges(mesh.ulysses());
    const MpiResources before = mpi_resources();
    EXPECT_EQ(before.pending_requests, 0);
    for (int job = 0; job < 10; ++job) {
        if (r == 1) {
            wan::protocol::announce_failure("a test failure in job " + std::to_string(job));
        } else {
            at::Tensor x = at::full({P, 3}, static_cast<float>(r));
            try {
                if (job % 3 == 0) (void)mesh.ulysses().all_to_all(x);
                else if (job % 3 == 1) (void)mesh.ulysses().shift(x);
                else mesh.ulysses().broadcast(x, 0);  // the root's part may complete without rank 1
            } catch (const wan::protocol::PeerFailed&) {
                // abandoned: rank 1 never joins it
            }
        }
        EXPECT_EQ(mesh.agree(StepStatus::Failed), StepStatus::Failed);
        mesh.recover_after_failure();
        const MpiResources now = mpi_resources();
        EXPECT_EQ(now.communicators, before.communicators) << "after failed job " << job;
        EXPECT_EQ(now.pending_requests, 0) << "after failed job " << job;
        expect_exact_exchanges(mesh.ulysses());
        EXPECT_EQ(members_of(mesh.sp()).size(), static_cast<size_t>(P));
    }
}

// The notice's grace: rank 1 fails but still completes an all-to-all it had started (here: joins it half a second
// after its notice, well within the 2 s grace). Its peers finish that exchange normally instead of abandoning it,
// and no communicator needs replacing.
TEST_F(MeshFailure, ACollectiveTheFailedRankStillCompletesIsNotAbandoned) {
    Mesh& mesh = *mesh_;
    if (r == 1) {
        wan::protocol::announce_failure("a test failure after starting an exchange");
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    at::Tensor x = at::arange(P, at::kFloat).add_(100.0 * r);
    at::Tensor y;
    EXPECT_NO_THROW(y = mesh.ulysses().all_to_all(x));
    if (y.defined())
        for (int i = 0; i < P; ++i) EXPECT_EQ(y[i].item<float>(), 100.0f * i + r);
    EXPECT_EQ(mesh.agree(StepStatus::Failed), StepStatus::Failed);
    EXPECT_FALSE(mesh.recover_after_failure());
    EXPECT_EQ(mesh.renewals(), 0);
}

// A failure seen at the agreement by every rank before its next collective leaves every communicator
// consistent: nothing is replaced.
TEST(Mesh, FailureAtTheAgreementReplacesNothing) {
    Communicator& w = world();
    if (w.size() < 2) GTEST_SKIP() << "needs a world of at least 2 ranks";
    Mesh mesh(w, ParallelLayout{w.size(), w.size(), 1}, 12);
    EXPECT_EQ(mesh.agree(w.rank() == 1 ? StepStatus::Failed : StepStatus::Continue), StepStatus::Failed);
    EXPECT_FALSE(mesh.recover_after_failure());
    EXPECT_EQ(mesh.renewals(), 0);
    EXPECT_EQ(members_of(mesh.ulysses()).size(), static_cast<size_t>(w.size()));
}
