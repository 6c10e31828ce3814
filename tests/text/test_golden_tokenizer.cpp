// Every `tokenizer*` golden case: exact ids and masks, lengths, and the cleaned text. Ref: golden README §2, §4.1.
#include "golden.h"
#include "text/text.h"

#include <ATen/ATen.h>

namespace {

using wan::text::clean_text;
using wan::text::UMT5Tokenizer;

std::string spiece_path() { return wan::test::tiny_ckpt_dir() + "/" + wan::io::CheckpointDir::kTokenizerName; }

TEST(GoldenTokenizer, EveryCaseMatchesExactly) {
    for (const auto& name : wan::test::list_cases("tokenizer")) {
        SCOPED_TRACE(name);
        const auto c = wan::test::load_case(name);
        const auto& entries = c.meta.at("entries");
        const int64_t text_len = c.meta.value("text_len", int64_t{512});
        UMT5Tokenizer tok(spiece_path(), text_len);

        std::vector<std::string> prompts;
        for (const auto& e : entries) prompts.push_back(e.at("prompt").get<std::string>());
        const auto batch = tok.encode(prompts);  // one batch, rows in entries order
        EXPECT_TRUE(wan::test::all_equal(batch.ids, c.get("input_ids"), name + ".input_ids"));
        EXPECT_TRUE(wan::test::all_equal(batch.mask, c.get("attention_mask"), name + ".attention_mask"));

        for (size_t i = 0; i < entries.size(); ++i) {
            const auto& e = entries[i];
            const std::string entry = e.at("name").get<std::string>();
            SCOPED_TRACE(entry);
            const auto ids = e.at("ids").get<std::vector<int64_t>>();
            ASSERT_EQ(batch.lengths[i], static_cast<int64_t>(ids.size()));
            EXPECT_EQ(batch.lengths[i], e.at("num_tokens").get<int64_t>());
            for (size_t t = 0; t < ids.size(); ++t) ASSERT_EQ(batch.ids[i][t].item<int64_t>(), ids[t]) << "token " << t;
            EXPECT_EQ(batch.mask[i].sum().item<int64_t>(), batch.lengths[i]);

            // The golden environment had ftfy as the identity: that cleaning must match byte for byte.
            const std::string prompt = e.at("prompt").get<std::string>();
            const std::string golden_clean = e.at("cleaned").get<std::string>();
            EXPECT_EQ(clean_text(prompt, /*ftfy=*/false), golden_clean);
            // With our ftfy subset the text may differ (full-width forms, ligatures), but only in ways the
            // tokenizer's NFKC already folds: the pieces must be identical.
            const std::string ours = tok.clean(prompt);
            if (ours != golden_clean) {
                EXPECT_EQ(tok.piece_ids(ours), tok.piece_ids(golden_clean))
                    << "ftfy subset changed the ids: '" << ours << "' vs golden '" << golden_clean << "'";
            }
        }
    }
}

TEST(GoldenTokenizer, DefaultNegativePromptIsTheUpstreamString) {
    bool found = false;
    for (const auto& name : wan::test::list_cases("tokenizer")) {
        const auto c = wan::test::load_case(name);
        for (const auto& e : c.meta.at("entries")) {
            if (e.at("name").get<std::string>().find("negative") == std::string::npos) continue;
            EXPECT_EQ(e.at("prompt").get<std::string>(), std::string(wan::text::kDefaultNegativePrompt));
            found = true;
        }
    }
    EXPECT_TRUE(found) << "no tokenizer golden entry holds the default negative prompt";
}

}  // namespace
