// Unit tests of the text module: bad inputs give clear errors, cleaning, buckets, batching.
#include "error_of.h"
#include "golden.h"
#include "text/text.h"

#include "core/core.h"

#include <ATen/ATen.h>

namespace {

using wan::text::clean_text;
using wan::text::UMT5Encoder;
using wan::text::UMT5Tokenizer;

std::string spiece_path() { return wan::test::tiny_ckpt_dir() + "/" + wan::io::CheckpointDir::kTokenizerName; }
std::string t5_path() { return wan::test::tiny_ckpt_dir() + "/" + wan::io::CheckpointDir::kT5Name; }

using wan::test::error_of;

// The tiny T5 state dict with `edit` applied, written as a .pth into a temp dir.
template <typename Edit>
std::string write_edited_t5(Edit&& edit) {
    auto src = wan::io::TensorStore::open(t5_path());
    wan::io::NamedTensors all;
    for (const auto& n : src.names()) all.emplace_back(n, src.get(n));
    edit(all);
    const std::string path = wan::test::make_temp_dir("t5bad") + "/models_t5_umt5-xxl-enc-bf16.pth";
    wan::io::save_pth(path, all);
    return path;
}

at::Tensor& find(wan::io::NamedTensors& all, const std::string& name) {
    for (auto& kv : all)
        if (kv.first == name) return kv.second;
    throw std::runtime_error("no tensor " + name);
}

TEST(TextErrors, ShapeThatContradictsTheOthers) {
    const std::string key = "blocks.1.attn.k.weight";
    std::vector<int64_t> bad_shape;
    const std::string path = write_edited_t5([&](wan::io::NamedTensors& all) {
        at::Tensor& k = find(all, key);
        k = at::zeros({k.size(0), k.size(1) + 1}, k.options());  // [dim_attn, dim+1]
        bad_shape = k.sizes().vec();
    });
    const std::string msg = error_of([&] { UMT5Encoder::from_file(path); });
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find("has shape [" + std::to_string(bad_shape[0]) + ", " + std::to_string(bad_shape[1]) + "]"),
              std::string::npos) << msg;
    EXPECT_NE(msg.find("expected [" + std::to_string(bad_shape[0]) + ", " + std::to_string(bad_shape[1] - 1) + "]"),
              std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(TextErrors, HeadCountThatContradictsBlockZero) {
    const std::string key = "blocks.1.pos_embedding.embedding.weight";
    const std::string path = write_edited_t5([&](wan::io::NamedTensors& all) {
        at::Tensor& p = find(all, key);
        p = at::zeros({p.size(0), p.size(1) * 2}, p.options());
    });
    const std::string msg = error_of([&] { UMT5Encoder::from_file(path); });
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
    EXPECT_NE(msg.find("[num_buckets, num_heads]"), std::string::npos) << msg;
}

TEST(TextErrors, MissingKey) {
    const std::string key = "blocks.1.norm2.weight";
    const std::string path = write_edited_t5([&](wan::io::NamedTensors& all) {
        for (auto it = all.begin(); it != all.end(); ++it)
            if (it->first == key) {
                all.erase(it);
                break;
            }
    });
    const std::string msg = error_of([&] { UMT5Encoder::from_file(path); });
    EXPECT_NE(msg.find("missing tensor '" + key + "'"), std::string::npos) << msg;
}

TEST(TextErrors, MissingTokenizerFile) {
    const std::string path = wan::test::make_temp_dir("tok") + "/google/umt5-xxl/spiece.model";
    const std::string msg = error_of([&] { UMT5Tokenizer tok(path); });
    EXPECT_NE(msg.find("tokenizer file not found: " + path), std::string::npos) << msg;
}

TEST(TextErrors, InvalidUtf8Prompt) {
    UMT5Tokenizer tok(spiece_path());
    const std::string msg = error_of([&] { tok.encode({"a fine prompt", "bad \xff byte"}); });
    EXPECT_NE(msg.find("prompt 1 is not valid UTF-8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset 4"), std::string::npos) << msg;
    // Truncated sequence, overlong form, encoded surrogate.
    for (const char* bad : {"\xe4\xb8", "\xc0\xaf", "\xed\xa0\x80"}) {
        const std::string m = error_of([&] { clean_text(bad); });
        EXPECT_NE(m.find("not valid UTF-8"), std::string::npos) << m;
    }
}

TEST(TextClean, FtfySubset) {
    // Curly quotes, full-width ASCII and ideographic space, ligatures, line breaks, controls.
    EXPECT_EQ(clean_text("\xE2\x80\x9CHi\xE2\x80\x9D \xE2\x80\x98there\xE2\x80\x99"), "\"Hi\" 'there'");
    EXPECT_EQ(clean_text("\xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\x91\xEF\xBC\x8C\xE3\x80\x80x"), "AB1, x");  // ＡＢ１，　x
    EXPECT_EQ(clean_text("\xEF\xAC\x81ne \xEF\xAC\x82ow"), "fine flow");                            // ﬁne ﬂow
    EXPECT_EQ(clean_text("a\r\nb\x01\x7f" "c\xE2\x80\xA8" "d"), "a bc d");
    EXPECT_EQ(clean_text("\x1b[31mred\x1b[0m"), "red");
    EXPECT_EQ(clean_text("\xC2\x93quoted\xC2\x94"), "\"quoted\"");  // C1 controls as Windows-1252, then uncurled
    // HTML: ftfy unescapes once (no '<' in the text), then html.unescape twice.
    EXPECT_EQ(clean_text("a &amp;amp;amp; b"), "a & b");
    EXPECT_EQ(clean_text("a <b> &amp;amp;amp; c"), "a <b> &amp; c");
    EXPECT_EQ(clean_text("&amp;amp;amp;\n<b> &amp;amp;amp;"), "& <b> &amp;");  // ftfy stops at the first '<' line
    EXPECT_EQ(clean_text("caf&eacute; &#233; &#xE9; &eacute &notit; &#128;"), "caf\xC3\xA9 \xC3\xA9 \xC3\xA9 \xC3\xA9 \xC2\xACit; \xE2\x82\xAC");
    EXPECT_EQ(clean_text("  \t\n "), "");
    // Without ftfy (the golden environment) only unescape + whitespace apply.
    EXPECT_EQ(clean_text("\xEF\xAC\x81 \xE2\x80\x9Cx\xE2\x80\x9D", false), "\xEF\xAC\x81 \xE2\x80\x9Cx\xE2\x80\x9D");
    // The negative prompt's U+FF0C commas become ASCII commas.
    const std::string neg = clean_text(wan::text::kDefaultNegativePrompt);
    EXPECT_EQ(neg.find("\xEF\xBC\x8C"), std::string::npos);
    EXPECT_NE(neg.find(","), std::string::npos);
}

TEST(TextTokenizer, TruncationKeepsEos) {
    UMT5Tokenizer tok(spiece_path(), 8);
    const auto b = tok.encode({"cat cat cat cat cat cat cat cat cat cat", "cat", ""});
    const auto n_cat = static_cast<int64_t>(tok.piece_ids(tok.clean("cat")).size()) + 1;  // + EOS
    ASSERT_LT(n_cat, 8);
    EXPECT_EQ(b.ids.sizes(), (at::IntArrayRef{3, 8}));
    EXPECT_EQ(b.lengths, (std::vector<int64_t>{8, n_cat, 1}));
    EXPECT_EQ(b.ids[0][7].item<int64_t>(), wan::text::kEosId);
    EXPECT_EQ(b.ids[2][0].item<int64_t>(), wan::text::kEosId);
    EXPECT_EQ(b.ids[2][1].item<int64_t>(), wan::text::kPadId);
    EXPECT_TRUE(wan::test::all_equal(b.mask.sum(1), at::tensor(std::vector<int64_t>{8, n_cat, 1}), "mask rows"));
}

TEST(TextEncoder, RelativeBucketsMatchTheSpecTable) {
    // wan21-reference.md §3.5, num_buckets 32, max_dist 128.
    const at::Tensor t = UMT5Encoder::relative_buckets(300, 32, 128);
    auto offset_of = [](int64_t a) -> int64_t {
        if (a < 8) return a;
        const int64_t edges[] = {12, 16, 23, 32, 46, 64, 91};
        int64_t k = 8;
        for (int64_t e : edges) k += a >= e;
        return k;
    };
    for (int64_t i : {0, 5, 150, 299}) {
        for (int64_t j = 0; j < 300; ++j) {
            const int64_t rel = j - i;
            const int64_t want = (rel > 0 ? 16 : 0) + offset_of(std::llabs(rel));
            ASSERT_EQ(t[i][j].item<int64_t>(), want) << "i " << i << " j " << j;
        }
    }
}

TEST(TextEncoder, BatchOfTwoEqualsEachAlone) {
    wan::text::TextEncoder te(t5_path(), spiece_path());
    const std::vector<std::string> prompts = {"A dog runs on the beach.", wan::text::kDefaultNegativePrompt};
    const auto both = te.encode(prompts);
    ASSERT_EQ(both.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        const auto alone = te.encode({prompts[i]});
        ASSERT_EQ(alone.size(), 1u);
        EXPECT_EQ(both[i].sizes(), alone[0].sizes());
        EXPECT_EQ(both[i].size(1), te.encoder().config().dim);
        EXPECT_TRUE(wan::test::all_close(both[i], alone[0], {1e-6, 1e-6}, "prompt " + std::to_string(i)));
    }
}

}  // namespace
