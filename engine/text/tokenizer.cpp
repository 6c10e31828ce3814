// UMT5 tokenizer: cleaning + SentencePiece + EOS + truncation + padding. Ref: wan21-reference.md §2.2.
#include "text/text.h"

#include "core/core.h"
#include "core/fs.h"

#include <ATen/ATen.h>
#include "text/spm.h"


namespace wan::text {

UMT5Tokenizer::UMT5Tokenizer(const std::string& spiece_model_path, int64_t text_len)
    : path_(spiece_model_path), text_len_(text_len) {
    WAN_CHECK(text_len >= 1, "tokenizer: text_len must be at least 1 (room for EOS), got %lld",
              static_cast<long long>(text_len));
    WAN_CHECK(fs::is_file(path_),
              "tokenizer file not found: %s (expected the UMT5 SentencePiece model, google/umt5-xxl/spiece.model)",
              path_.c_str());
    sp_ = std::make_unique<spm::UnigramModel>(spm::UnigramModel::from_file(path_));
    check_special_ids();
}

UMT5Tokenizer UMT5Tokenizer::from_bytes(const std::string& model_bytes, const std::string& source, int64_t text_len) {
    WAN_CHECK(text_len >= 1, "tokenizer: text_len must be at least 1 (room for EOS), got %lld",
              static_cast<long long>(text_len));
    UMT5Tokenizer t;
    t.path_ = source;
    t.text_len_ = text_len;
    t.sp_ = std::make_unique<spm::UnigramModel>(spm::UnigramModel::from_bytes(model_bytes, source));
    t.check_special_ids();
    return t;
}

void UMT5Tokenizer::check_special_ids() const {
    // The HF T5 conventions (pad 0, EOS 1) are hard-wired upstream; make sure this model agrees.
    WAN_CHECK(sp_->piece_to_id("<pad>") == kPadId && sp_->piece_to_id("</s>") == kEosId,
              "tokenizer %s: expected '<pad>' at id 0 and '</s>' at id 1 (UMT5), found %d and %d", path_.c_str(),
              sp_->piece_to_id("<pad>"), sp_->piece_to_id("</s>"));
}

UMT5Tokenizer::~UMT5Tokenizer() = default;
UMT5Tokenizer::UMT5Tokenizer(UMT5Tokenizer&&) noexcept = default;
UMT5Tokenizer& UMT5Tokenizer::operator=(UMT5Tokenizer&&) noexcept = default;

std::string UMT5Tokenizer::clean(const std::string& text) const { return clean_text(text, true); }

int64_t UMT5Tokenizer::vocab_size() const { return sp_->piece_size(); }

std::vector<int> UMT5Tokenizer::piece_ids(const std::string& cleaned) const { return sp_->encode(cleaned); }

TokenizedBatch UMT5Tokenizer::encode(const std::vector<std::string>& prompts) const {
    const auto batch = static_cast<int64_t>(prompts.size());
    TokenizedBatch out;
    out.ids = at::full({batch, text_len_}, kPadId, at::kLong);  // [B, text_len]
    out.mask = at::zeros({batch, text_len_}, at::kLong);        // [B, text_len]
    auto ids = out.ids.accessor<int64_t, 2>();
    auto mask = out.mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < batch; ++b) {
        check_utf8(prompts[b], strfmt("prompt %lld", static_cast<long long>(b)));
        std::vector<int> content = piece_ids(clean(prompts[b]));
        // HF truncation keeps the first text_len-1 content ids so that EOS survives.
        const int64_t n = std::min<int64_t>(static_cast<int64_t>(content.size()), text_len_ - 1);
        for (int64_t t = 0; t < n; ++t) ids[b][t] = content[t];
        ids[b][n] = kEosId;
        for (int64_t t = 0; t <= n; ++t) mask[b][t] = 1;
        out.lengths.push_back(n + 1);
    }
    return out;
}

}  // namespace wan::text
