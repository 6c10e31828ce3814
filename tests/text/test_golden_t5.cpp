// Every `t5*` golden case: token ids/masks, each prompt's context (float32 compute) within tolerance("t5"),
// the first prompt's intermediates, and the bf16 compute path against the informational bf16 output.
// Ref: golden README §2 (`t5`), §3; wan21-reference.md §3.
#include "golden.h"
#include "text/text.h"

#include <ATen/ATen.h>

#include <iostream>

namespace {

using wan::text::TextEncoder;
using wan::text::UMT5Options;

double max_abs_err(const at::Tensor& a, const at::Tensor& e) {
    return (a.to(at::kDouble) - e.to(at::kDouble)).abs().max().item<double>();
}

struct Prompt {
    int64_t index;
    std::string text;
};

std::vector<Prompt> prompts_of(const wan::test::GoldenCase& c) {
    std::vector<Prompt> out;
    for (const auto& p : c.meta.at("prompts")) out.push_back({p.at("index").get<int64_t>(), p.at("prompt").get<std::string>()});
    return out;
}

std::vector<std::string> texts_of(const std::vector<Prompt>& prompts) {
    std::vector<std::string> out;
    for (const auto& p : prompts) out.push_back(p.text);
    return out;
}

TEST(GoldenT5, ContextMatchesFloat32Reference) {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    TextEncoder te(ckpt);  // CPU, float32 compute
    ASSERT_EQ(te.encoder().dtype(), at::kFloat);
    const auto tol = wan::test::tolerance("t5");
    for (const auto& name : wan::test::list_cases("t5")) {
        SCOPED_TRACE(name);
        const auto c = wan::test::load_case(name);
        const auto prompts = prompts_of(c);
        const std::vector<std::string> texts = texts_of(prompts);

        const auto batch = te.tokenizer().encode(texts);
        std::vector<at::Tensor> inter;
        at::Tensor y = te.encoder().forward(batch.ids, batch.mask, &inter);  // [B, S, dim], all prompts at once
        for (size_t b = 0; b < prompts.size(); ++b) {
            const std::string key = std::to_string(prompts[b].index);
            EXPECT_TRUE(wan::test::all_equal(batch.ids[b], c.get(key + ".input_ids"), name + "." + key + ".input_ids"));
            EXPECT_TRUE(wan::test::all_equal(batch.mask[b], c.get(key + ".attention_mask"),
                                             name + "." + key + ".attention_mask"));
            const at::Tensor expected = c.get(key + ".context");  // [L, dim]
            ASSERT_EQ(batch.lengths[b], expected.size(0));
            const at::Tensor got = y[b].narrow(0, 0, batch.lengths[b]);
            EXPECT_TRUE(wan::test::all_close(got, expected, tol, name + "." + key + ".context"));
            std::cout << name << "." << key << ".context: max |err| " << max_abs_err(got, expected) << "\n";

            // Intermediates (embedding, block<k>, final_norm), rows [:L], stored for some prompts.
            const std::string ip = key + ".intermediate.";
            const int64_t L = batch.lengths[b];
            auto check_inter = [&](const std::string& tname, const at::Tensor& full) {
                if (!c.has(ip + tname)) return;
                const at::Tensor exp = c.get(ip + tname);
                const at::Tensor act = full[b].narrow(0, 0, L);
                EXPECT_TRUE(wan::test::all_close(act, exp, tol, name + "." + ip + tname));
                std::cout << name << "." << ip << tname << ": max |err| " << max_abs_err(act, exp) << "\n";
            };
            check_inter("embedding", inter.front());
            for (size_t k = 1; k + 1 < inter.size(); ++k) check_inter("block" + std::to_string(k - 1), inter[k]);
            check_inter("final_norm", inter.back());
        }

        // encode() through the convenience class gives the same trimmed contexts.
        const auto ctx = te.encode(texts);
        ASSERT_EQ(ctx.size(), prompts.size());
        for (size_t b = 0; b < prompts.size(); ++b) {
            EXPECT_TRUE(ctx[b].equal(y[b].narrow(0, 0, batch.lengths[b])));
        }
    }
}

// The upstream default dtype (bf16 compute: bf16 tensors, f32 norm rsqrt, f32 softmax) on the CPU, against
// the informational `context_bf16_compute` (torch 1.13 CPU bf16 kernels), with the README's atol 0.1.
TEST(GoldenT5, Bfloat16ComputeIsClose) {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    UMT5Options opts;
    opts.dtype = at::kBFloat16;
    TextEncoder te(ckpt, opts);
    for (const auto& name : wan::test::list_cases("t5")) {
        SCOPED_TRACE(name);
        const auto c = wan::test::load_case(name);
        const auto prompts = prompts_of(c);
        const std::vector<std::string> texts = texts_of(prompts);
        const auto ctx = te.encode(texts);
        for (size_t b = 0; b < prompts.size(); ++b) {
            const std::string key = std::to_string(prompts[b].index) + ".context_bf16_compute";
            if (!c.has(key)) continue;
            ASSERT_EQ(ctx[b].scalar_type(), at::kBFloat16);
            const at::Tensor exp = c.get(key);
            EXPECT_TRUE(wan::test::all_close(ctx[b], exp, {0.1, 0.0}, name + "." + key));
            std::cout << name << "." << key << ": max |err| " << max_abs_err(ctx[b], exp) << "\n";
        }
    }
}

}  // namespace
