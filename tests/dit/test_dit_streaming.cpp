// Streamed DiT blocks (dit/streaming.h) on the CPU, where "host" and "device" are the same memory: the
// residency count from a budget, the order in which copies start and are used (one block of lookahead), a
// forward equal to resident weights for every residency, and an in-place change of the stored tensors
// (what a LoRA merge does) reaching the next forward.
#include "tiny_dit.h"

#include "core/core.h"
#include "dit/dit.h"
#include "dit/streaming.h"

#include <ATen/ATen.h>

#include <vector>

namespace {

using wan::dit::StreamedBlockWeights;
using wan::dit::WanModel;
using wan::io::WanConfig;
using Event = StreamedBlockWeights::Event;

using wan::test::tiny_config;
using wan::test::tiny_store;

using Case = wan::test::TinyForwardInputs;
Case make_case(const WanConfig& c) { return wan::test::tiny_forward_inputs(c, 11, 600.0, 4); }

TEST(DitStreaming, ResidentCountFromTheBudget) {
    using wan::dit::resident_block_count;
    EXPECT_EQ(resident_block_count(40 * 100, 100, 40), 40);       // everything fits: no streaming buffers
    EXPECT_EQ(resident_block_count(40 * 100 - 1, 100, 40), 37);   // two buffers kept out of the rest
    EXPECT_EQ(resident_block_count(12 * 100 + 99, 100, 40), 10);
    EXPECT_EQ(resident_block_count(150, 100, 40), 0);             // below two blocks: everything streams
    EXPECT_EQ(resident_block_count(0, 100, 40), 0);
    // The real 14B (bf16): 40 blocks of 5120-wide layers.
    WanConfig c = tiny_config();
    c.dim = 5120, c.ffn_dim = 13824, c.num_heads = 40, c.num_layers = 40;
    const int64_t block = wan::dit::block_weight_bytes(c, wan::dit::Precision::BF16Mixed);
    // q,k,v,o ×2 (D² + D) + ffn (2·D·F + F + D) in bf16; 6 norm vectors, norm3 ×2 and the [1,6,D] modulation f32.
    const int64_t D = 5120, F = 13824;
    EXPECT_EQ(block, 2 * (8 * (D * D + D) + 2 * D * F + F + D) + 4 * (4 * D + 2 * D + 6 * D));
    // In f32 every parameter is 4 bytes: the blocks and the root add up to the whole model.
    EXPECT_EQ(40 * wan::dit::block_weight_bytes(c, wan::dit::Precision::Float32) +
                  wan::dit::root_weight_bytes(c, wan::dit::Precision::Float32),
              4 * wan::dit::expected_parameter_count(c));
}

TEST(DitStreaming, PrefetchesOneBlockAheadAndEqualsResidentWeights) {
    const WanConfig c = tiny_config();
    ASSERT_GE(c.num_layers, 2);
    auto store = tiny_store();
    const WanModel resident(c, store);
    const Case k = make_case(c);
    const at::Tensor want = resident.forward(k.x, k.t, k.ctx, k.seq_len);
    for (int64_t keep = 0; keep <= c.num_layers; ++keep) {
        SCOPED_TRACE("resident blocks: " + std::to_string(keep));
        auto blocks = StreamedBlockWeights::load(c, store, resident.options(), keep);
        EXPECT_EQ(blocks->resident_blocks(), keep);
        EXPECT_FALSE(blocks->resident());
        WanModel m(c, resident.root_weights(), blocks, resident.options());
        for (int run = 0; run < 2; ++run) {  // a second forward starts over: nothing carried across
            blocks->clear_events();
            EXPECT_TRUE(at::equal(m.forward(k.x, k.t, k.ctx, k.seq_len), want));
            std::vector<Event> expected;
            for (int64_t i = keep; i < c.num_layers; ++i) {
                if (i == 0) {
                    expected.push_back({Event::Fetch, 0});  // nothing before it to hide the copy behind
                } else {
                    if (i == keep) expected.push_back({Event::Prefetch, i});  // started at acquire(i − 1)
                    expected.push_back({Event::Hit, i});
                }
                if (i + 1 < c.num_layers) expected.push_back({Event::Prefetch, i + 1});
            }
            EXPECT_EQ(blocks->events(), expected);
        }
    }
}

TEST(DitStreaming, InPlaceChangesOfStoredWeightsReachTheForward) {
    // What a LoRA merge does: named_parameters() gives the stored tensors (host copies of the streamed blocks),
    // the merge writes into them, weights_changed() drops anything derived.
    const WanConfig c = tiny_config();
    auto store = tiny_store();
    WanModel resident(c, store);
    auto blocks = StreamedBlockWeights::load(c, store, resident.options(), 1);
    WanModel streamed(c, resident.root_weights(), blocks, resident.options());
    const Case k = make_case(c);
    const at::Tensor before = streamed.forward(k.x, k.t, k.ctx, k.seq_len);
    const std::string last = "blocks." + std::to_string(c.num_layers - 1) + ".ffn.2.bias";
    for (WanModel* m : {&resident, &streamed}) {
        for (auto& [name, t] : m->named_parameters())
            if (name == last || name == "blocks.0.ffn.2.bias") t.add_(0.25);
        m->weights_changed();
    }
    const at::Tensor after = streamed.forward(k.x, k.t, k.ctx, k.seq_len);
    EXPECT_FALSE(at::equal(after, before));
    EXPECT_TRUE(at::equal(after, resident.forward(k.x, k.t, k.ctx, k.seq_len)));
}

}  // namespace
