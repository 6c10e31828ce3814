// ShardedParameters: every rank reads only its 1/N of each unit from the checkpoint, and gather()
// reproduces the file's tensors bit-exactly. Ref: wan21-reference.md §8.2.
#include "test_util.h"

#include "core/core.h"
#include "io/io.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include "golden.h"

#include <chrono>

using namespace wan::dist;
using wan::dist::test::world;

namespace {

/// Units of odd sizes and mixed dtypes (same draw on every rank).
wan::io::NamedTensors make_params() {
    at::manual_seed(99);
    return {
        {"blocks.0.self_attn.q.weight", at::randn({7, 3})},
        {"blocks.0.norm3.weight", at::randn({5})},
        {"blocks.0.ffn.0.weight", at::randn({4, 4}).to(at::kBFloat16)},
        {"blocks.0.modulation", at::randn({1, 6, 3})},
        {"blocks.1.self_attn.q.weight", at::randn({13})},
        {"blocks.1.ffn.0.weight", at::randn({3, 3}).to(at::kBFloat16)},
        {"head.head.weight", at::randn({1})},
    };
}

std::vector<std::vector<std::string>> units_of(const wan::io::NamedTensors& params) {
    std::vector<std::vector<std::string>> units(4);  // blocks.0, blocks.1, head, and an empty unit
    for (const auto& [name, t] : params)
        units[name.rfind("blocks.0.", 0) == 0 ? 0 : name.rfind("blocks.1.", 0) == 0 ? 1 : 2].push_back(name);
    return units;
}

}  // namespace

TEST(ShardedParameters, GatherIsBitExactAndEachRankReadsItsShare) {
    Communicator& w = world();
    const int P = w.size();
    const wan::io::NamedTensors params = make_params();
    const std::string dir = wan::test::make_temp_dir("dist_shard");
    wan::io::save_safetensors(dir + "/dit.safetensors", params);
    wan::io::save_pth(dir + "/dit.pth", params);

    for (const char* file : {"/dit.safetensors", "/dit.pth"}) {
        wan::io::TensorStore store = wan::io::TensorStore::open(dir + file);
        ShardedParameters sharded(store, units_of(params), w);
        ASSERT_EQ(sharded.num_units(), 4);

        // Shard sizes: per unit and dtype group, ceil(total / P) elements.
        EXPECT_EQ(sharded.shard_numel(0), (std::vector<int64_t>{(21 + 5 + 18 + P - 1) / P, (16 + P - 1) / P}));
        EXPECT_EQ(sharded.shard_numel(1), (std::vector<int64_t>{(13 + P - 1) / P, (9 + P - 1) / P}));
        EXPECT_EQ(sharded.shard_numel(2), (std::vector<int64_t>{1 / P + (1 % P ? 1 : 0)}));
        EXPECT_TRUE(sharded.shard_numel(3).empty());
        const int64_t total = (21 + 5 + 18 + 13 + 1) * 4 + (16 + 9) * 2;
        EXPECT_EQ(sharded.total_bytes(), total);

        // Each rank read only its own elements, and together the ranks read every element exactly once.
        EXPECT_LE(sharded.bytes_read(), sharded.local_bytes());
        at::Tensor read = at::scalar_tensor(sharded.bytes_read(), at::kLong);
        w.all_reduce(read, ReduceOp::Sum);
        EXPECT_EQ(read.item<int64_t>(), total) << file;
        if (P > 1) EXPECT_LT(sharded.bytes_read(), total);

        const std::vector<std::vector<std::string>> units = units_of(params);
        for (int64_t u = 0; u < sharded.num_units(); ++u) {
            sharded.prefetch(u);  // no-op on the CPU
            std::map<std::string, at::Tensor> full = sharded.gather(u);
            EXPECT_EQ(full.size(), units[u].size());
            for (const auto& [name, t] : params) {
                if (std::find(units[u].begin(), units[u].end(), name) == units[u].end()) continue;
                ASSERT_EQ(full.count(name), 1u) << name;
                EXPECT_EQ(full[name].scalar_type(), t.scalar_type()) << name;
                EXPECT_TRUE(wan::test::all_equal(full[name], t, name + " (" + file + ")"));
            }
            sharded.release(u);
        }
    }
}

TEST(ShardedParameters, DtypeOverrideAndInMemorySource) {
    Communicator& w = world();
    const wan::io::NamedTensors params = make_params();
    std::map<std::string, at::Tensor> by_name(params.begin(), params.end());
    ShardOptions opt;
    // E.g. keep Linear weights in bf16 (autocast would round them anyway) and everything else as stored.
    opt.dtype_for = [](const std::string& name, at::ScalarType file) {
        return name.find(".q.weight") != std::string::npos ? at::kBFloat16 : file;
    };
    ShardedParameters sharded([&](const std::string& n) { return by_name.at(n); }, units_of(params), w, opt);
    EXPECT_EQ(sharded.shard_numel(0).size(), 2u);  // f32 (norm3, modulation) and bf16 (q, ffn)
    auto full = sharded.gather(0);
    EXPECT_TRUE(wan::test::all_equal(full["blocks.0.self_attn.q.weight"],
                                     by_name["blocks.0.self_attn.q.weight"].to(at::kBFloat16), "q as bf16"));
    EXPECT_TRUE(wan::test::all_equal(full["blocks.0.norm3.weight"], by_name["blocks.0.norm3.weight"], "norm3 f32"));
    sharded.release(0);
    EXPECT_THROW(sharded.gather(4), wan::Error);
}

TEST(ShardedParameters, RejectsDuplicateNames) {
    const wan::io::NamedTensors params = make_params();
    std::map<std::string, at::Tensor> by_name(params.begin(), params.end());
    auto view = [&](const std::string& n) { return by_name.at(n); };
    EXPECT_THROW(ShardedParameters(view, {{"head.head.weight"}, {"head.head.weight"}}, world()), wan::Error);
}

// A unit still held when a job fails (an error inside its block, or a prefetch) may be incomplete on this rank
// and absent on its peers: after the failure (Communicator::settle_all, on every rank) it is gathered again,
// collectively, instead of being reused. Ref: Note [Communicator renewal].
TEST(ShardedParameters, AUnitHeldAcrossAFailedJobIsGatheredAgain) {
    Communicator& w = world();
    const wan::io::NamedTensors params = make_params();
    std::map<std::string, at::Tensor> by_name(params.begin(), params.end());
    ShardedParameters sharded([&](const std::string& n) { return by_name.at(n); }, units_of(params), w);
    const std::string name = "blocks.0.norm3.weight";
    const at::Tensor before = sharded.gather(0).at(name);
    EXPECT_EQ(sharded.gather(0).at(name).data_ptr(), before.data_ptr());  // held: not gathered twice
    Communicator::settle_all(std::chrono::steady_clock::now());          // as after a failed job
    const at::Tensor after = sharded.gather(0).at(name);
    EXPECT_NE(after.data_ptr(), before.data_ptr());
    EXPECT_TRUE(wan::test::all_equal(after, by_name.at(name), "gathered again"));
    sharded.release(0);
}

// local_parts(u): each rank's elements of every tensor as writable views of its shard (the LoRA merge under FSDP).
// The parts of all ranks tile each tensor, and what a rank writes into its parts is what the next gather returns.
TEST(ShardedParameters, LocalPartsTileEachTensorAndWritesReachTheGather) {
    Communicator& w = world();
    const wan::io::NamedTensors params = make_params();
    std::map<std::string, at::Tensor> by_name(params.begin(), params.end());
    ShardedParameters sharded([&](const std::string& n) { return by_name.at(n); }, units_of(params), w);
    (void)sharded.gather(0);  // held before the write: must not be returned after it
    const auto parts = sharded.local_parts(0);
    ASSERT_EQ(parts.size(), 4u);  // every tensor of unit 0, also those this rank holds no element of
    for (const auto& p : parts) {
        const at::Tensor file = by_name.at(p.name);
        EXPECT_EQ(p.shape, file.sizes().vec()) << p.name;
        // Elements this rank holds, summed over the ranks: exactly the tensor's (no overlap, no gap).
        at::Tensor count = at::tensor({p.values.numel()}, at::kLong);
        w.all_reduce(count, ReduceOp::Sum);
        EXPECT_EQ(count.item<int64_t>(), file.numel()) << p.name;
        EXPECT_TRUE(wan::test::all_equal(p.values, file.reshape({-1}).narrow(0, p.offset, p.values.numel()), p.name));
        p.values.add_(1);
    }
    sharded.drop_gathered();
    const auto full = sharded.gather(0);
    for (const auto& p : parts)
        EXPECT_TRUE(wan::test::all_equal(full.at(p.name), by_name.at(p.name) + 1, p.name + " + 1"));
    sharded.release(0);
}
