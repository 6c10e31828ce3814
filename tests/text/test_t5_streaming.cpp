// Streamed T5 weights (offload_model / --t5-cpu): bf16 host copy converted block by block gives exactly the
// resident f32 result on the CPU.
#include "golden.h"

#include "text/text.h"

#include <ATen/ATen.h>

TEST(T5Streaming, EqualsResidentOnCpu) {
    auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    wan::text::UMT5Options resident;
    wan::text::UMT5Options streamed;
    streamed.stream_weights = true;
    wan::text::TextEncoder a(ckpt, resident), b(ckpt, streamed);
    const std::vector<std::string> prompts = {"a panda eats bamboo", wan::text::kDefaultNegativePrompt};
    auto ra = a.encode(prompts), rb = b.encode(prompts);
    ASSERT_EQ(ra.size(), rb.size());
    for (size_t i = 0; i < ra.size(); ++i) {
        EXPECT_EQ(rb[i].scalar_type(), at::kFloat);
        EXPECT_TRUE(ra[i].equal(rb[i])) << "prompt " << i;
    }
}
