// Our SentencePiece unigram encoder (engine/text/spm.cpp) gives exactly libsentencepiece's EncodeAsIds on the
// golden tokenizer prompts and on many pseudo-random strings (whitespace runs, full-width forms, ligatures,
// combining marks, CJK, emoji, unknown characters, malformed bytes). This process must not load LibTorch.
#include "text/spm.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <fstream>
#include <random>

namespace {

std::string golden_dir() {
    const char* env = std::getenv("WAN_GOLDEN_DIR");
    return env && *env ? env : std::string(WAN_SOURCE_DIR) + "/tests/data/golden";
}
std::string spiece_path() { return golden_dir() + "/tiny-ckpt/google/umt5-xxl/spiece.model"; }

std::vector<std::string> corpus() {
    std::vector<std::string> out;
    std::ifstream f(golden_dir() + "/cases/tokenizer.json");
    EXPECT_TRUE(bool(f)) << "cannot read tokenizer.json";
    if (f) {
        const auto j = nlohmann::json::parse(f);
        for (const auto& e : j.at("entries")) {
            out.push_back(e.at("prompt").get<std::string>());
            out.push_back(e.at("cleaned").get<std::string>());
        }
    }
    // Pieces of text mixed at random (deterministic seed).
    const std::vector<std::string> pool = {
        "a", "the", " ", "  ", "\t", "\n", "\xE3\x80\x80", "\xC2\xA0", "cat", "walk", "ing", ".", ",", "!", "?",
        "\xEF\xBC\x8C", "\xEF\xBC\xA1", "\xEF\xBC\x91", "\xEF\xAC\x81", "\xE2\x91\xA0", "x\xC2\xB2", "e\xCC\x81",
        "\xC3\xA9", "\xE2\x80\x9C", "\xE2\x80\x9D", "\xE4\xB8\x80", "\xE5\x8F\xAA", "\xE7\x86\x8A", "\xE7\x8C\xAB",
        "\xE9\xBE\x98", "\xF0\x9F\x98\x80", "Q", "Z", "\xE2\x96\x81", "<", "&", "100%", "2024", "\xEF\xBD\xB1",
        "\xE2\x84\xA2", "\xE3\x8E\x8F", "\x01", "\x7F", "\xFF", "\xE4\xB8", "\xC0\xAF", "\xED\xA0\x80", "JPEG",
    };
    std::mt19937 rng(1234);
    for (int n = 0; n < 3000; ++n) {
        std::string s;
        const int parts = 1 + static_cast<int>(rng() % 24);
        for (int k = 0; k < parts; ++k) s += pool[rng() % pool.size()];
        out.push_back(s);
    }
    return out;
}

TEST(SpmCrossCheck, IdsEqualLibSentencePiece) {
    sentencepiece::SentencePieceProcessor ref;
    ASSERT_TRUE(ref.Load(spiece_path()).ok()) << spiece_path();
    const auto ours = wan::text::spm::UnigramModel::from_file(spiece_path());
    ASSERT_EQ(ours.piece_size(), ref.GetPieceSize());
    int checked = 0;
    for (const auto& s : corpus()) {
        std::vector<int> want;
        ASSERT_TRUE(ref.Encode(s, &want).ok());
        ASSERT_EQ(ours.encode(s), want) << "text: '" << s << "' normalized: '" << ours.normalize(s) << "'";
        ++checked;
    }
    EXPECT_GT(checked, 3000);
}

}  // namespace
