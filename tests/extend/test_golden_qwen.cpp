// Golden parity of the local Qwen prompt extender against Hugging Face (tests/data/qwen, see its README):
// tokenizer ids for every text, logits of every chat prompt, greedy continuations.
#include "extend/extend.h"
#include "extend/qwen.h"

#include "golden.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <iostream>

namespace {

using wan::extend::QwenModel;
using wan::extend::QwenTokenizer;

std::string qwen_dir() { return wan::test::test_data_dir() + "/qwen"; }

nlohmann::json golden() {
    std::ifstream f(qwen_dir() + "/golden.json");
    EXPECT_TRUE(f.good()) << "missing " << qwen_dir() << "/golden.json";
    return nlohmann::json::parse(f);
}

at::Tensor ids_tensor(const std::vector<int64_t>& ids) {
    return at::tensor(ids, at::TensorOptions().dtype(at::kLong));
}

TEST(GoldenQwen, TokenizerIdsMatchEveryText) {
    const nlohmann::json g = golden();
    const QwenTokenizer tok = QwenTokenizer::from_file(qwen_dir() + "/tokenizer.json");
    ASSERT_FALSE(g["texts"].empty());
    for (auto it = g["texts"].begin(); it != g["texts"].end(); ++it) {
        const std::string text = it.value().get<std::string>();
        const auto expected = g["token_ids"].at(it.key()).get<std::vector<int64_t>>();
        const auto ids = tok.encode(text);
        EXPECT_TRUE(wan::test::all_equal(ids_tensor(ids), ids_tensor(expected), "token ids of " + it.key()));
        // Decoding gives the text back (it is NFC already; special tokens kept).
        EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/false), text) << it.key();
    }
    for (auto it = g["special_ids"].begin(); it != g["special_ids"].end(); ++it)
        EXPECT_EQ(tok.token_to_id(it.key()), it.value().get<int64_t>()) << it.key();
}

TEST(GoldenQwen, LogitsOfChatPrompts) {
    const nlohmann::json g = golden();
    const QwenTokenizer tok = QwenTokenizer::from_file(qwen_dir() + "/tokenizer.json");
    const QwenModel model = QwenModel::load(qwen_dir(), c10::Device(c10::kCPU), at::kFloat);
    const auto store = wan::io::TensorStore::open(qwen_dir() + "/golden.safetensors");
    int checked = 0;
    for (const auto& name : store.names()) {
        const std::string suffix = ".logits";
        if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
            continue;
        const std::string key = name.substr(0, name.size() - suffix.size());
        const auto ids = tok.encode(g["texts"].at(key).get<std::string>());
        const at::Tensor expected = store.load(name, c10::Device(c10::kCPU), at::kFloat);  // [L, V]
        ASSERT_EQ(expected.size(0), static_cast<int64_t>(ids.size())) << name;
        const at::Tensor logits = model.forward(ids, nullptr, /*last_only=*/false);  // [L, V]
        ASSERT_EQ(logits.sizes(), expected.sizes()) << name;
        const double max_err = (logits - expected).abs().max().item<double>();
        const double max_ref = expected.abs().max().item<double>();
        std::cout << name << ": relative max error " << max_err / max_ref << "\n";
        EXPECT_LE(max_err / max_ref, 1e-4) << name << ": max abs err " << max_err << ", max |logit| " << max_ref;
        // The cached path (prefill, then one token at a time) gives the same logits.
        QwenModel::Cache cache = model.make_cache(static_cast<int64_t>(ids.size()));
        const int64_t half = static_cast<int64_t>(ids.size()) / 2;
        std::vector<at::Tensor> parts{model.forward({ids.begin(), ids.begin() + half}, &cache, false)};
        for (size_t i = static_cast<size_t>(half); i < ids.size(); ++i)
            parts.push_back(model.forward({ids[i]}, &cache, false));
        const double cached_err = (at::cat(parts, 0) - expected).abs().max().item<double>();
        EXPECT_LE(cached_err / max_ref, 1e-4) << name << " (KV cache path)";
        ++checked;
    }
    EXPECT_GT(checked, 0) << "golden.safetensors has no *.logits tensor";
}

TEST(GoldenQwen, GreedyContinuations) {
    const nlohmann::json g = golden();
    const QwenTokenizer tok = QwenTokenizer::from_file(qwen_dir() + "/tokenizer.json");
    const QwenModel model = QwenModel::load(qwen_dir(), c10::Device(c10::kCPU), at::kFloat);
    ASSERT_FALSE(g["greedy"].empty());
    for (auto it = g["greedy"].begin(); it != g["greedy"].end(); ++it) {
        const auto expected = it.value().get<std::vector<int64_t>>();
        wan::extend::SamplingParams sp;
        sp.do_sample = false;
        sp.max_new_tokens = static_cast<int>(expected.size());
        sp.stop_ids = {tok.token_to_id("<|im_end|>")};
        const auto out = wan::extend::qwen_generate(model, tok.encode(g["texts"].at(it.key()).get<std::string>()), sp);
        EXPECT_TRUE(wan::test::all_equal(ids_tensor(out), ids_tensor(expected), "greedy continuation of " + it.key()));
    }
}

}  // namespace
