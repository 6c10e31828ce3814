// Round trips of every message kind, rejection of mismatched peers, and the chunked broadcast across ranks.
#include "core/core.h"
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
