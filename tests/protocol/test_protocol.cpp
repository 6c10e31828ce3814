// Round trips of every message kind, rejection of mismatched peers, and the chunked broadcast across ranks.
#include "core/core.h"
#include "protocol/deadline.h"
#include "protocol/protocol.h"

#include <gtest/gtest.h>
#include <mpi.h>

namespace {

using wan::protocol::Message;
using wan::protocol::Tag;

TEST(Protocol, RoundTripEveryTag) {
    wan::GenerationRequest r;
    r.prompt = "两只猫 in boxing gear";
    r.width = 832;
    r.seed = 42;
    for (Tag t : {Tag::Generate, Tag::Info, Tag::Shutdown, Tag::Start}) {
        Message m{t, 7, t == Tag::Generate ? r.to_json() : ""};
        auto bytes = wan::protocol::encode(m);
        Message back = wan::protocol::decode(bytes.data(), bytes.size());
        EXPECT_EQ(back.tag, t);
        EXPECT_EQ(back.job_id, 7);
        EXPECT_EQ(back.payload, m.payload);
    }
    auto req = wan::GenerationRequest::from_json(r.to_json());
    EXPECT_EQ(req.prompt, r.prompt);
    EXPECT_EQ(req.width, 832);
    EXPECT_EQ(req.seed, 42);
}

TEST(Protocol, RejectsBadMessages) {
    Message m{Tag::Generate, 1, "x"};
    auto bytes = wan::protocol::encode(m);
    EXPECT_THROW(wan::protocol::decode(bytes.data(), 5), wan::Error);
    auto wrong = bytes;
    wrong[0] = 99;  // version
    try {
        wan::protocol::decode(wrong.data(), wrong.size());
        FAIL();
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("same wanstudio build"), std::string::npos);
    }
    auto badtag = bytes;
    badtag[4] = 77;
    EXPECT_THROW(wan::protocol::decode(badtag.data(), badtag.size()), wan::Error);
    badtag[4] = 2;  // the retired Extend tag
    EXPECT_THROW(wan::protocol::decode(badtag.data(), badtag.size()), wan::Error);
}

TEST(Protocol, ChunkedBroadcastReachesEveryRank) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    Message m;
    std::string big(10000, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    if (rank == 0) m = Message{Tag::Generate, 99, big};
    wan::protocol::broadcast(MPI_COMM_WORLD, 0, m, /*chunk_bytes=*/777);
    EXPECT_EQ(m.tag, Tag::Generate);
    EXPECT_EQ(m.job_id, 99);
    EXPECT_EQ(m.payload, big);
}

// protocol::wait_until (e.g. the head waiting for GPU work that may sit behind an NCCL operation a failed peer never
// joins): it returns when the condition holds, and a peer's failure notice ends it with PeerFailed, naming the
// peer and its reason, once the notice's grace has passed. Then every rank meets in an agreement, as a step's would.
TEST(Deadline, WaitUntilEndsOnAPeersFailureNotice) {
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int polls = 0;
    wan::protocol::wait_until([&] { return ++polls == 3; }, "test condition");
    EXPECT_EQ(polls, 3);
    if (size < 2) GTEST_SKIP() << "the failure notice needs a world of at least 2 ranks";
    wan::protocol::start_watchdog(MPI_COMM_WORLD);
    if (rank == 1) {
        wan::protocol::announce_failure("a test failure while a peer waits for its device");
    } else {
        try {
            wan::protocol::wait_until([] { return false; }, "device work");  // never done: only the notice ends it
            ADD_FAILURE() << "wait_until returned";
        } catch (const wan::protocol::PeerFailed& e) {
            const std::string m = e.what();
            EXPECT_NE(m.find("rank 1 failed during"), std::string::npos) << m;
            EXPECT_NE(m.find("a test failure while a peer waits for its device"), std::string::npos) << m;
            EXPECT_NE(m.find("in the device work"), std::string::npos) << m;
        }
        EXPECT_TRUE(wan::protocol::take_abandoned());
    }
    int status = 3, agreed = 0;  // the step's agreement: every rank "failed"
    MPI_Request request = MPI_REQUEST_NULL;
    {
        const wan::protocol::AgreementWait agreement;  // the notice belongs to this agreement, then it is stale
        MPI_Iallreduce(&status, &agreed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &request);
        wan::protocol::wait(request, "test agreement");
    }
    EXPECT_EQ(agreed, 3);
    EXPECT_FALSE(wan::protocol::take_abandoned());
}

// wait_until_for: the same polling with a deadline of its own, for a waiter that can release what it waits for (an
// NCCL communicator, aborted: Note [Bounded NCCL calls]): true once the condition holds, false after the limit.
TEST(Deadline, WaitUntilForGivesUpAfterItsLimit) {
    int polls = 0;
    EXPECT_TRUE(wan::protocol::wait_until_for([&] { return ++polls == 3; }, "test condition", 600.0));
    EXPECT_EQ(polls, 3);
    polls = 0;
    EXPECT_FALSE(wan::protocol::wait_until_for([&] { return ++polls < 0; }, "condition never met", 0.05));
    EXPECT_GE(polls, 1);
}

}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    ::testing::InitGoogleTest(&argc, argv);
    if (rank != 0) {
        auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
        delete listeners.Release(listeners.default_result_printer());
    }
    int failed = RUN_ALL_TESTS() != 0 ? 1 : 0, any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any;
}
