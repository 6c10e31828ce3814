// Unit tests of engine/extend: system prompts, seeds, ChatML, model folder lookup, factory errors, NFC,
// tokenizer details, seeded sampling and the local_qwen back end end to end on the tiny model.
#include "extend/extend.h"
#include "extend/qwen.h"

#include "core/core.h"
#include "golden.h"
#include "scoped_env.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>

namespace {

using namespace wan::extend;

std::string qwen_dir() { return wan::test::test_data_dir() + "/qwen"; }

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    return h;
}

/// Code points as "XXXX XXXX" (for readable NFC failures).
std::string hex_code_points(const std::string& utf8) {
    std::string out;
    for (size_t i = 0; i < utf8.size();) {
        const auto b = static_cast<unsigned char>(utf8[i]);
        const int len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : 4;
        uint32_t cp = len == 1 ? b : b & (0xFF >> (len + 1));
        for (int k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3F);
        char buf[16];
        std::snprintf(buf, sizeof buf, "%s%04X", out.empty() ? "" : " ", cp);
        out += buf;
        i += len;
    }
    return out;
}

void make_model_dir(const std::string& dir) {
    ASSERT_EQ(std::system(("mkdir -p '" + dir + "'").c_str()), 0);
    std::ofstream(dir + "/config.json") << "{}";
}

using wan::test::ScopedEnv;

// ---- system prompts, seeds, ChatML -------------------------------------------------------------------------

TEST(ExtendSystemPrompts, ByteExactAsTheReference) {
    // Length and FNV-1a of wan21-reference.md Appendix B.2 / B.3, taken when the constants were written.
    const std::string zh = kLmZhSysPrompt, en = kLmEnSysPrompt;
    EXPECT_EQ(zh.size(), 3296u);
    EXPECT_EQ(fnv1a(zh), 0xbc7e448a88b2b6c6ULL);
    EXPECT_EQ(en.size(), 3681u);
    EXPECT_EQ(fnv1a(en), 0x37f15f213c13dac2ULL);
    EXPECT_EQ(zh.rfind("你是一位Prompt优化师", 0), 0u);
    EXPECT_EQ(en.rfind("You are a prompt engineer,", 0), 0u);
    EXPECT_NE(en.find("user\xE2\x80\x99s intent"), std::string::npos);  // typographic apostrophe U+2019
    EXPECT_NE(zh.back(), '\n');
    EXPECT_NE(en.back(), '\n');
}

TEST(ExtendSystemPrompts, ChosenByTargetLanguage) {
    EXPECT_EQ(system_prompt_for("zh"), kLmZhSysPrompt);
    EXPECT_EQ(system_prompt_for("ZH"), kLmZhSysPrompt);
    EXPECT_EQ(system_prompt_for(""), kLmZhSysPrompt);  // upstream default
    EXPECT_EQ(system_prompt_for("en"), kLmEnSysPrompt);
    EXPECT_EQ(system_prompt_for("EN"), kLmEnSysPrompt);
    try {
        system_prompt_for("fr");
        FAIL() << "no error for 'fr'";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("'fr'"), std::string::npos) << e.what();
    }
}

TEST(ExtendSeed, NegativeDrawsANonNegativeSeed) {
    EXPECT_EQ(resolve_seed(0), 0);
    EXPECT_EQ(resolve_seed(1234567890123LL), 1234567890123LL);
    const int64_t a = resolve_seed(-1), b = resolve_seed(-1), c = resolve_seed(-7);
    EXPECT_GE(a, 0);
    EXPECT_GE(b, 0);
    EXPECT_GE(c, 0);
    EXPECT_FALSE(a == b && b == c);
}

TEST(ExtendChatml, Qwen25Layout) {
    EXPECT_EQ(chatml_prompt("SYS", "a cat"),
              "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\na cat<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ExtendFactory, UnknownMethodIsAClearError) {
    try {
        make_prompt_extender("openai", "", {});
        FAIL() << "no error";
    } catch (const wan::Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("'openai'"), std::string::npos) << m;
        EXPECT_NE(m.find("dashscope"), std::string::npos) << m;
        EXPECT_NE(m.find("local_qwen"), std::string::npos) << m;
    }
    auto d = make_prompt_extender("DashScope", "", {});
    EXPECT_EQ(d->method(), "dashscope");
    EXPECT_EQ(d->model(), "qwen-plus");
}

// ---- model lookup -----------------------------------------------------------------------------------------

TEST(ExtendModelLookup, FolderAliasAndNames) {
    const std::string root = wan::test::make_temp_dir("extend_models");
    const std::string home = wan::test::make_temp_dir("extend_home");
    ScopedEnv models("WAN_MODELS_DIR", root.c_str());
    ScopedEnv h("HOME", home.c_str());
    ScopedEnv hf1("HF_HOME", nullptr);
    ScopedEnv hf2("HF_HUB_CACHE", nullptr);

    // A folder is used as is.
    EXPECT_EQ(resolve_qwen_model_dir(qwen_dir()), qwen_dir());

    // Not found: the error lists every place it looked.
    try {
        resolve_qwen_model_dir("Qwen/Qwen2.5-7B-Instruct");
        FAIL() << "no error";
    } catch (const wan::Error& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find(root + "/Qwen/Qwen2.5-7B-Instruct"), std::string::npos) << m;
        EXPECT_NE(m.find(root + "/Qwen2.5-7B-Instruct"), std::string::npos) << m;
        EXPECT_NE(m.find(home + "/.cache/wanstudio/models/Qwen/Qwen2.5-7B-Instruct"), std::string::npos) << m;
        EXPECT_NE(m.find(home + "/.cache/huggingface/hub/models--Qwen--Qwen2.5-7B-Instruct/snapshots"),
                  std::string::npos) << m;
        EXPECT_NE(m.find("nothing is downloaded"), std::string::npos) << m;
    }

    // $WAN_MODELS_DIR/<Org>/<Name>, reached through upstream's alias.
    make_model_dir(root + "/Qwen/Qwen2.5-7B-Instruct");
    EXPECT_EQ(resolve_qwen_model_dir("Qwen2.5_7B"), root + "/Qwen/Qwen2.5-7B-Instruct");
    EXPECT_EQ(resolve_qwen_model_dir("Qwen/Qwen2.5-7B-Instruct"), root + "/Qwen/Qwen2.5-7B-Instruct");

    // ~/.cache/wanstudio/models/<Name>; an extra folder comes first.
    make_model_dir(home + "/.cache/wanstudio/models/Qwen2.5-3B-Instruct");
    EXPECT_EQ(resolve_qwen_model_dir("Qwen/Qwen2.5-3B-Instruct"),
              home + "/.cache/wanstudio/models/Qwen2.5-3B-Instruct");
    const std::string extra = wan::test::make_temp_dir("extend_extra");
    make_model_dir(extra + "/Qwen2.5-3B-Instruct");
    EXPECT_EQ(resolve_qwen_model_dir("Qwen2.5_3B", {extra}), extra + "/Qwen2.5-3B-Instruct");

    // Hugging Face hub cache snapshot; the default (empty) is Qwen2.5-14B-Instruct.
    const std::string snap = home + "/.cache/huggingface/hub/models--Qwen--Qwen2.5-14B-Instruct/snapshots/abc123";
    make_model_dir(snap);
    EXPECT_EQ(resolve_qwen_model_dir(""), snap);

    // Vision-language models are refused; a folder without config.json is named.
    EXPECT_THROW(resolve_qwen_model_dir("QwenVL2.5_7B"), wan::Error);
    try {
        resolve_qwen_model_dir(extra);
        FAIL() << "no error for a folder without config.json";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    }
    EXPECT_THROW(make_prompt_extender("local_qwen", "Qwen/Qwen2.5-72B-Instruct", {}), wan::Error);
}

// ---- NFC, tokenizer ---------------------------------------------------------------------------------------

TEST(ExtendNfc, ComposesReordersAndMapsSingletons) {
    // Expected values from Python's unicodedata.normalize('NFC', ...).
    const std::pair<const char*, const char*> cases[] = {
        {"cafe\xCC\x81", "0063 0061 0066 00E9"},
        {"A\xCC\x8A", "00C5"},
        {"\xE2\x84\xAB", "00C5"},                      // ANGSTROM SIGN (singleton)
        {"\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8", "AC01"},  // Hangul jamo L V T
        {"d\xCC\x87\xCC\xA3", "1E0D 0307"},            // reordering, then composition past a blocker-free mark
        {"q\xCC\x87\xCC\xA3", "0071 0323 0307"},
        {"e\xCC\x81\xCC\x81", "00E9 0301"},
        {"\xEF\xA4\x80", "8C48"},                      // CJK compatibility ideograph
        {"\xCD\x84", "0308 0301"},                     // composition-excluded non-starter
        {"\xCC\x81" "a", "0301 0061"},
        {"\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4", "D55C AD6D C5B4"},
        {"\xCE\xA9\xE2\x84\xA6", "03A9 03A9"},         // OHM SIGN → Omega
    };
    for (const auto& [in, want] : cases) EXPECT_EQ(hex_code_points(nfc_normalize(in)), want) << in;
    const std::string zh = "一只小猫在草地上奔跑，阳光明媚。";
    EXPECT_EQ(nfc_normalize(zh), zh);
    EXPECT_EQ(nfc_normalize("plain ascii"), "plain ascii");
    EXPECT_EQ(hex_code_points(nfc_normalize("a\xE4\xB8" "b")), "0061 FFFD 0062");  // truncated sequence
}

TEST(ExtendTokenizer, NormalisesAndDecodesLossily) {
    const QwenTokenizer tok = QwenTokenizer::from_file(qwen_dir() + "/tokenizer.json");
    EXPECT_EQ(tok.encode("cafe\xCC\x81 au lait"), tok.encode("caf\xC3\xA9 au lait"));  // NFC normaliser
    const auto ids = tok.encode("<|im_start|>user\n猫<|im_end|>");
    EXPECT_EQ(ids.front(), tok.token_to_id("<|im_start|>"));
    EXPECT_EQ(ids.back(), tok.token_to_id("<|im_end|>"));
    EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), "user\n猫");
    // A token sequence cut inside a UTF-8 character decodes to U+FFFD instead of invalid bytes.
    const auto cat = tok.encode("猫");
    std::string partial;
    for (size_t n = 1; n <= cat.size(); ++n) partial = tok.decode({cat.begin(), cat.begin() + n});
    EXPECT_EQ(partial, "猫");
    // The byte-level token of the single byte 0xE7 (the character U+00E7) alone is an invalid sequence.
    const int64_t e7 = tok.token_to_id("\xC3\xA7");
    ASSERT_GE(e7, 0);
    EXPECT_EQ(tok.decode({e7}), "\xEF\xBF\xBD");
    EXPECT_EQ(tok.decode({e7, e7, tok.token_to_id("a")}), "\xEF\xBF\xBD\xEF\xBF\xBD" "a");
    EXPECT_EQ(tok.token_to_id("no-such-token-xyz"), -1);
    EXPECT_THROW(tok.decode({tok.size()}), wan::Error);
    EXPECT_THROW(QwenTokenizer::from_file(qwen_dir() + "/no-such-tokenizer.json"), wan::Error);
}

TEST(ExtendTokenizer, LongPromptsWithTheRealSystemPrompts) {
    const QwenTokenizer tok = QwenTokenizer::from_file(qwen_dir() + "/tokenizer.json");
    for (const char* sys : {kLmZhSysPrompt, kLmEnSysPrompt}) {
        const std::string text = chatml_prompt(sys, "两只猫在舞台上打拳击 — boxing cats!");
        EXPECT_EQ(tok.decode(tok.encode(text), false), text);
    }
}

// ---- generation ---------------------------------------------------------------------------------------------

TEST(ExtendGenerate, SeededSamplingIsReproducible) {
    const QwenTokenizer tok = QwenTokenizer::from_file(qwen_dir() + "/tokenizer.json");
    const QwenModel model = QwenModel::load(qwen_dir(), c10::Device(c10::kCPU), at::kFloat);
    const auto prompt = tok.encode(chatml_prompt("You are a prompt engineer.", "Two cats boxing."));
    SamplingParams sp;
    sp.do_sample = true;
    sp.temperature = 1.3;
    sp.top_p = 0.95;
    sp.top_k = 100;
    sp.repetition_penalty = 1.05;
    sp.max_new_tokens = 16;
    sp.seed = 42;
    const auto a = qwen_generate(model, prompt, sp);
    const auto b = qwen_generate(model, prompt, sp);
    EXPECT_EQ(a, b);
    EXPECT_EQ(a.size(), 16u);
    bool differs = false;
    for (uint64_t s = 1; s <= 4 && !differs; ++s) {
        sp.seed = s;
        differs = qwen_generate(model, prompt, sp) != a;
    }
    EXPECT_TRUE(differs) << "four other seeds gave the same tokens";
    // top_k = 1 is greedy.
    sp.top_k = 1;
    sp.repetition_penalty = 1.0;
    SamplingParams greedy = sp;
    greedy.do_sample = false;
    EXPECT_EQ(qwen_generate(model, prompt, sp), qwen_generate(model, prompt, greedy));
    // A stop id ends generation, and is returned.
    greedy.stop_ids = {qwen_generate(model, prompt, greedy)[2]};
    const auto stopped = qwen_generate(model, prompt, greedy);
    EXPECT_LE(stopped.size(), 3u);
    EXPECT_EQ(stopped.back(), greedy.stop_ids[0]);
}

TEST(ExtendGenerate, Bfloat16PathMatchesFloat32Loosely) {
    // The dtype flow used on CUDA (bf16 weights and activations, float32 norms, softmax and logits), run
    // on the CPU: close to the float32 logits at bf16 precision.
    const QwenTokenizer tok = QwenTokenizer::from_file(qwen_dir() + "/tokenizer.json");
    const QwenModel f32 = QwenModel::load(qwen_dir(), c10::Device(c10::kCPU), at::kFloat);
    const QwenModel bf16 = QwenModel::load(qwen_dir(), c10::Device(c10::kCPU), at::kBFloat16);
    EXPECT_EQ(bf16.dtype(), at::kBFloat16);
    const auto ids = tok.encode(chatml_prompt("You are a prompt engineer.", "Two cats boxing."));
    const at::Tensor a = f32.forward(ids, nullptr, false);
    const at::Tensor b = bf16.forward(ids, nullptr, false);
    EXPECT_EQ(b.scalar_type(), at::kFloat);
    const double rel = (a - b).abs().max().item<double>() / a.abs().max().item<double>();
    EXPECT_LT(rel, 5e-2) << "bf16 vs f32 relative max error";
}

TEST(ExtendLocalQwen, ExtendsWithTheTinyModel) {
    ExtendOptions opt;
    opt.max_new_tokens = 12;
    opt.decoding = ExtendOptions::Decoding::Sample;
    opt.temperature = 0.7;
    opt.top_p = 0.8;
    opt.top_k = 20;
    auto ext = make_prompt_extender("local_qwen", qwen_dir(), opt);
    EXPECT_EQ(ext->method(), "local_qwen");
    EXPECT_EQ(ext->model(), qwen_dir());
    const ExtendResult a = ext->extend("两只猫在舞台上打拳击", "zh", 7);
    ASSERT_TRUE(a.ok) << a.message;
    EXPECT_EQ(a.seed, 7);
    EXPECT_EQ(a.system_prompt, kLmZhSysPrompt);
    EXPECT_FALSE(a.prompt.empty());
    EXPECT_NE(a.prompt, "两只猫在舞台上打拳击");
    const ExtendResult b = ext->extend("两只猫在舞台上打拳击", "zh", 7);
    EXPECT_EQ(a.prompt, b.prompt);  // the seed is applied
    const ExtendResult e = ext->extend("Two cats boxing.", "en", -1);
    EXPECT_GE(e.seed, 0);
    EXPECT_EQ(e.system_prompt, kLmEnSysPrompt);

    // Failures keep the original prompt.
    const ExtendResult bad = ext->extend("Two cats boxing.", "fr", 1);
    EXPECT_FALSE(bad.ok);
    EXPECT_EQ(bad.prompt, "Two cats boxing.");
    EXPECT_NE(bad.message.find("'fr'"), std::string::npos) << bad.message;

    ExtendOptions cuda = opt;
    cuda.device = "not-a-device";
    EXPECT_THROW(make_prompt_extender("local_qwen", qwen_dir(), cuda), wan::Error);
}

TEST(ExtendLocalQwen, MissingWeightsFailInExtendKeepingThePrompt) {
    const std::string dir = wan::test::make_temp_dir("extend_noweights");
    for (const char* f : {"config.json", "tokenizer.json", "generation_config.json"}) {
        std::ifstream in(qwen_dir() + "/" + f, std::ios::binary);
        std::ofstream(dir + "/" + f, std::ios::binary) << in.rdbuf();
    }
    auto ext = make_prompt_extender("local_qwen", dir, {});
    const ExtendResult r = ext->extend("a cat", "en", 3);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.prompt, "a cat");
    EXPECT_NE(r.message.find("model.safetensors"), std::string::npos) << r.message;
}

}  // namespace
