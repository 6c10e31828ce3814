// Collectives on inputs whose results are exactly predictable (nccl-tests "verifiable" idea), and the
// step-status agreement. Run at 1, 2 and 4 ranks.
#include "test_util.h"

#include "core/core.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <numeric>

using namespace wan::dist;
using wan::dist::test::world;

namespace {

at::Tensor arange_f(int64_t n, double start = 0) { return at::arange(n, at::kDouble).add(start).to(at::kFloat); }

}  // namespace

TEST(Collectives, AllReduceSumAndMax) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    for (at::ScalarType dt : {at::kFloat, at::kDouble, at::kLong, at::kInt, at::kBFloat16, at::kHalf}) {
        at::Tensor t = at::full({3, 5}, r + 1, at::TensorOptions().dtype(dt));
        w.all_reduce(t, ReduceOp::Sum);
        EXPECT_TRUE(at::equal(t, at::full({3, 5}, P * (P + 1) / 2, t.options()))) << c10::toString(dt);
        at::Tensor m = at::arange(4, at::TensorOptions().dtype(dt)).add(r);
        w.all_reduce(m, ReduceOp::Max);
        EXPECT_TRUE(at::equal(m, at::arange(4, m.options()).add(P - 1))) << c10::toString(dt);
    }
    // Non-contiguous tensor: reduced values land in the original view.
    at::Tensor base = at::full({4, 6}, r, at::kFloat);
    at::Tensor view = base.t();
    w.all_reduce(view, ReduceOp::Sum);
    EXPECT_TRUE(at::equal(base, at::full({4, 6}, P * (P - 1) / 2, at::kFloat)));
}

TEST(Collectives, AllGatherAlongDims) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    at::Tensor local = arange_f(6).view({2, 3}).add(100 * r);  // [2, 3]
    at::Tensor g0 = w.all_gather(local, 0);                     // [2P, 3]
    at::Tensor g1 = w.all_gather(local, 1);                     // [2, 3P]
    ASSERT_EQ(g0.sizes(), (std::vector<int64_t>{2 * P, 3}));
    ASSERT_EQ(g1.sizes(), (std::vector<int64_t>{2, 3 * P}));
    for (int i = 0; i < P; ++i) {
        at::Tensor expect = arange_f(6).view({2, 3}).add(100 * i);
        EXPECT_TRUE(at::equal(g0.narrow(0, 2 * i, 2), expect)) << "dim 0, block " << i;
        EXPECT_TRUE(at::equal(g1.narrow(1, 3 * i, 3), expect)) << "dim 1, block " << i;
    }
    at::Tensor bf = w.all_gather(at::full({2}, r, at::kBFloat16), -1);
    EXPECT_TRUE(at::equal(bf, at::arange(P, at::kBFloat16).repeat_interleave(2)));
    at::Tensor scalar = w.all_gather(at::scalar_tensor(r, at::kLong));
    EXPECT_TRUE(at::equal(scalar, at::arange(P, at::kLong)));
}

TEST(Collectives, AllToAllEqualSplits) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    // Block j (2 elements) of rank r holds 100·r + 10·j + {0, 1}; after the exchange block i came from rank i.
    at::Tensor in = at::empty({2 * P}, at::kLong);
    for (int j = 0; j < P; ++j) in.narrow(0, 2 * j, 2).copy_(at::arange(2, at::kLong).add(100 * r + 10 * j));
    at::Tensor out = w.all_to_all(in);
    for (int i = 0; i < P; ++i)
        EXPECT_TRUE(at::equal(out.narrow(0, 2 * i, 2), at::arange(2, at::kLong).add(100 * i + 10 * r))) << i;
    if (P > 1) EXPECT_THROW(w.all_to_all(at::zeros({2 * P + 1})), wan::Error);
    EXPECT_THROW(w.all_to_all(at::scalar_tensor(1.0)), wan::Error);
}

TEST(Collectives, AllToAllUlyssesForm) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    const int64_t B = 2, s = 3, hl = 2, H = hl * P, D = 4;
    // Value encodes (source rank, batch, local token, head, d).
    auto code = [&](int64_t src) {
        return at::arange(B * s * H * D, at::kDouble).view({B, s, H, D}).add(10000.0 * src);
    };
    at::Tensor mine = code(r).to(at::kFloat);
    at::Tensor seq = w.all_to_all(mine, 2, 1);  // [B, P·s, H/P, D]
    ASSERT_EQ(seq.sizes(), (std::vector<int64_t>{B, P * s, hl, D}));
    for (int i = 0; i < P; ++i)
        EXPECT_TRUE(at::equal(seq.narrow(1, i * s, s), code(i).narrow(2, r * hl, hl).to(at::kFloat))) << i;
    at::Tensor back = w.all_to_all(seq, 1, 2);  // [B, s, H, D]
    EXPECT_TRUE(at::equal(back, mine));
}

TEST(Collectives, Broadcast) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    for (int root : {0, P - 1}) {
        at::Tensor t = arange_f(10).add(r);
        w.broadcast(t, root);
        EXPECT_TRUE(at::equal(t, arange_f(10).add(root))) << "root " << root;
    }
    at::Tensor base = at::full({3, 4}, r, at::kBFloat16);
    at::Tensor view = base.t();
    w.broadcast(view, P - 1);
    EXPECT_TRUE(at::equal(base, at::full({3, 4}, P - 1, at::kBFloat16)));
    at::Tensor bad = at::zeros({1});
    EXPECT_THROW(w.broadcast(bad, P), wan::Error);
}

TEST(Collectives, RingShift) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    for (int offset : {1, 2, -1}) {
        at::Tensor got = w.shift(at::full({5}, r, at::kLong), offset);
        const int from = ((r - offset) % P + P) % P;
        EXPECT_TRUE(at::equal(got, at::full({5}, from, at::kLong))) << "offset " << offset;
    }
    // Nonblocking form: compute happens between start and wait.
    at::Tensor send = arange_f(8).add(r), recv = at::empty({8});
    auto pending = w.start_shift(send, recv);
    at::Tensor busy = at::matmul(at::ones({16, 16}), at::ones({16, 16}));
    pending->wait();
    EXPECT_TRUE(at::equal(recv, arange_f(8).add((r - 1 + P) % P)));
    EXPECT_EQ(busy[0][0].item<float>(), 16.0f);
}

TEST(Collectives, BytesBroadcastInChunks) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    w.set_bytes_chunk_limit(7);  // 100 bytes → 15 chunks
    for (int root : {0, P - 1}) {
        std::vector<uint8_t> bytes;
        if (r == root)
            for (int i = 0; i < 100; ++i) bytes.push_back(static_cast<uint8_t>(i * 3 + root));
        else
            bytes.assign(3, 0xEE);  // receivers' old content is replaced
        w.broadcast_bytes(bytes, root);
        ASSERT_EQ(bytes.size(), 100u);
        for (int i = 0; i < 100; ++i) EXPECT_EQ(bytes[i], static_cast<uint8_t>(i * 3 + root));
    }
    std::vector<uint8_t> empty = r == 0 ? std::vector<uint8_t>{} : std::vector<uint8_t>{1, 2};
    w.broadcast_bytes(empty, 0);
    EXPECT_TRUE(empty.empty());
    w.set_bytes_chunk_limit(size_t(1) << 30);
    EXPECT_THROW(w.set_bytes_chunk_limit(0), wan::Error);
}

TEST(Collectives, SplitAndBarrier) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    // Two colours by parity; key −rank reverses the order inside each group.
    auto sub = w.split(r % 2, -r);
    ASSERT_NE(sub, nullptr);
    std::vector<int> members;
    for (int i = 0; i < P; ++i)
        if (i % 2 == r % 2) members.push_back(i);
    std::reverse(members.begin(), members.end());
    EXPECT_EQ(sub->size(), static_cast<int>(members.size()));
    at::Tensor got = sub->all_gather(at::scalar_tensor(r, at::kInt));
    for (size_t i = 0; i < members.size(); ++i) EXPECT_EQ(got[i].item<int>(), members[i]);
    EXPECT_EQ(members[sub->rank()], r);
    EXPECT_STREQ(sub->backend(), "mpi");
    sub->barrier();
    // Negative colour: no communicator.
    auto none = w.split(r == 0 ? -1 : 0, r);
    EXPECT_EQ(none == nullptr, r == 0);
    w.barrier();
}

TEST(StepAgreement, MaxWins) {
    Communicator& w = world();
    const int P = w.size(), r = w.rank();
    EXPECT_EQ(agree(w, StepStatus::Continue), StepStatus::Continue);
    EXPECT_EQ(agree(w, r == P - 1 ? StepStatus::Failed : StepStatus::Continue), StepStatus::Failed);
    EXPECT_EQ(agree(w, r == 0 ? StepStatus::Cancel : StepStatus::Continue), StepStatus::Cancel);
    StepStatus mixed = r == 0 ? StepStatus::Cancel : (r == P - 1 ? StepStatus::Failed : StepStatus::Continue);
    EXPECT_EQ(agree(w, mixed), P == 1 ? StepStatus::Cancel : StepStatus::Failed);
}

TEST(Factory, CpuDeviceGivesMpiBackend) {
    auto c = make_communicator(MPI_COMM_WORLD, c10::Device(c10::kCPU));
    EXPECT_STREQ(c->backend(), "mpi");
    EXPECT_EQ(c->size(), world().size());
    EXPECT_EQ(c->rank(), world().rank());
}

// Note [Watched device waits]: on the CPU nothing is waited for and nothing is copied — the tensor itself comes back,
// as `t.to(at::kCPU)` gives it (the CUDA path is covered by the GPU runs).
TEST(WatchedDeviceWaits, CpuTensorsComeBackAsTheyAre) {
    at::Tensor t = at::arange(6, at::kDouble).reshape({2, 3});
    EXPECT_TRUE(to_host_watched(t, "test read-back").is_same(t));
    EXPECT_TRUE(t.to(at::kCPU).is_same(t));  // what the callers did before
    synchronize_watched(c10::Device(c10::kCPU), "test wait");  // returns at once
}
