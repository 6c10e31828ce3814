// LoRA key styles → upstream DiT parameter names.
#include "lora/lora.h"

#include "core/core.h"

#include <algorithm>
#include <array>
#include <utility>

namespace wan::lora {

// Note [LoRA key styles]
// A key is <prefix><module path><part>. Parts: .lora_A.weight / .lora_down.weight (down, [rank, in]),
// .lora_B.weight / .lora_up.weight (up, [out, rank]), .alpha (scalar), .diff (weight delta), .diff_b (bias
// delta), and diff_m (the delta of blocks.N.modulation, written as "blocks.N.diff_m"). PEFT may insert an
// adapter name ".default" before ".weight". Module paths:
//   native / ComfyUI: upstream's own names after "diffusion_model." / "model.diffusion_model." / nothing;
//   kohya / musubi-tuner: "lora_unet_" then the upstream path with '.' written as '_' (VideoX-Fun writes
//     "lora_unet__"); matched against the model's own module names written the same way, so no guessing
//     about which '_' were dots;
//   diffusers / PEFT: "transformer." then diffusers' WanTransformer3DModel names, renamed to upstream's:
//     attn1 = self_attn, attn2 = cross_attn, to_q/to_k/to_v/to_out.0 = q/k/v/o, ffn.net.0.proj = ffn.0,
//     ffn.net.2 = ffn.2, the block's norm2 = norm3 (diffusers numbers the affine cross-attention norm 2),
//     proj_out = head.head, condition_embedder.time_embedder.linear_1/2 = time_embedding.0/2,
//     condition_embedder.time_proj = time_projection.1, condition_embedder.text_embedder.linear_1/2 =
//     text_embedding.0/2; the image branch add_k_proj/add_v_proj/norm_added_k/image_embedder =
//     k_img/v_img/norm_k_img/img_emb.
// Keys of an image-to-video model's image branch are flagged so a T2V model can skip them; any other key
// that names no parameter of the model is an error (a LoRA that silently does nothing is the worst outcome).

namespace {

struct PartSuffix {
    const char* suffix;
    KeyPart part;
};

// Longest first where one is a suffix of another (".diff_b" before ".diff").
const std::array<PartSuffix, 9> kParts = {{
    {".lora_A.weight", KeyPart::Down},
    {".lora_down.weight", KeyPart::Down},
    {".lora_B.weight", KeyPart::Up},
    {".lora_up.weight", KeyPart::Up},
    {".alpha", KeyPart::Alpha},
    {".diff_b", KeyPart::DiffBias},
    {".diff_m", KeyPart::DiffModulation},
    {".diff", KeyPart::Diff},
    {"_diff_m", KeyPart::DiffModulation},  // kohya style "lora_unet_blocks_0_diff_m"
}};

const std::array<std::pair<const char*, const char*>, 19> kDiffusersRenames = {{
    {".attn1.", ".self_attn."},
    {".attn2.", ".cross_attn."},
    {".to_q.", ".q."},
    {".to_k.", ".k."},
    {".to_v.", ".v."},
    {".to_out.0.", ".o."},
    {".ffn.net.0.proj.", ".ffn.0."},
    {".ffn.net.2.", ".ffn.2."},
    {".add_k_proj.", ".k_img."},
    {".add_v_proj.", ".v_img."},
    {".norm_added_k.", ".norm_k_img."},
    {".norm2.", ".norm3."},
    {".proj_out.", ".head.head."},
    {".condition_embedder.time_embedder.linear_1.", ".time_embedding.0."},
    {".condition_embedder.time_embedder.linear_2.", ".time_embedding.2."},
    {".condition_embedder.time_proj.", ".time_projection.1."},
    {".condition_embedder.text_embedder.linear_1.", ".text_embedding.0."},
    {".condition_embedder.text_embedder.linear_2.", ".text_embedding.2."},
    {".condition_embedder.image_embedder.", ".img_emb."},
}};

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
    for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
        s.replace(pos, from.size(), to);
}

// Diffusers names → upstream names on a dotted module path.
std::string diffusers_to_upstream(const std::string& module) {
    std::string s = "." + module + ".";
    for (const auto& r : kDiffusersRenames) replace_all(s, r.first, r.second);
    return s.substr(1, s.size() - 2);
}

bool is_image_branch(const std::string& module) {
    const std::string s = "." + module + ".";
    for (const char* m : {".k_img.", ".v_img.", ".norm_k_img.", ".img_emb.", "_k_img", "_v_img", "img_emb"})
        if (s.find(m) != std::string::npos) return true;
    return false;
}

const char* leaf_of(KeyPart part) {
    switch (part) {
        case KeyPart::DiffBias: return "bias";
        case KeyPart::DiffModulation: return "modulation";
        default: return "weight";
    }
}

}  // namespace

KeyMapper::KeyMapper(const std::vector<std::string>& parameter_names)
    : parameters_(parameter_names.begin(), parameter_names.end()) {
    for (const auto& p : parameter_names) {
        const size_t dot = p.rfind('.');
        if (dot == std::string::npos) continue;
        const std::string module = p.substr(0, dot);
        std::string underscored = module;
        std::replace(underscored.begin(), underscored.end(), '.', '_');
        kohya_modules_.emplace(underscored, module);
    }
}

MappedKey KeyMapper::map(const std::string& key_in, const std::string& file) const {
    std::string key = key_in;
    replace_all(key, ".default.", ".");  // PEFT adapter name
    MappedKey out;
    std::string stem;
    for (const auto& p : kParts) {
        if (ends_with(key, p.suffix)) {
            out.part = p.part;
            stem = key.substr(0, key.size() - std::char_traits<char>::length(p.suffix));
            break;
        }
    }
    WAN_CHECK(!stem.empty(),
              "LoRA file '%s': key '%s' is not a LoRA tensor this engine understands (expected a module's "
              ".lora_A/.lora_B/.lora_down/.lora_up weight, .alpha, .diff, .diff_b or a block's diff_m)",
              file.c_str(), key_in.c_str());

    std::string module;
    if (starts_with(stem, "lora_unet_")) {
        out.style = "kohya";
        std::string rest = stem.substr(std::char_traits<char>::length("lora_unet_"));
        while (!rest.empty() && rest.front() == '_') rest.erase(rest.begin());  // VideoX-Fun: lora_unet__
        if (is_image_branch(rest)) {
            out.image_to_video = true;
            return out;
        }
        const auto it = kohya_modules_.find(rest);
        if (it != kohya_modules_.end()) module = it->second;
    } else {
        bool diffusers = false;
        for (const char* prefix : {"model.diffusion_model.", "diffusion_model.", "base_model.model."}) {
            if (starts_with(stem, prefix)) {
                diffusers = std::string(prefix) == "base_model.model.";  // PEFT's wrapper
                stem = stem.substr(std::char_traits<char>::length(prefix));
                break;
            }
        }
        if (starts_with(stem, "transformer.")) {
            diffusers = true;
            stem = stem.substr(std::char_traits<char>::length("transformer."));
        }
        const std::string leaf = std::string(".") + leaf_of(out.part);
        if (!diffusers && parameters_.count(stem + leaf)) {
            module = stem;
            out.style = "native";
        } else {
            const std::string renamed = diffusers_to_upstream(stem);
            out.style = (diffusers || renamed != stem) ? "diffusers" : "native";
            module = renamed;
        }
        if (is_image_branch(module)) {
            out.image_to_video = true;
            return out;
        }
    }
    out.target = module.empty() ? std::string() : module + "." + leaf_of(out.part);
    WAN_CHECK(!module.empty() && parameters_.count(out.target),
              "LoRA file '%s': key '%s' matches no module of the model (read as %s-style key for '%s'); the LoRA "
              "may be for another model (Wan2.2, I2V, a different size)",
              file.c_str(), key_in.c_str(), out.style.c_str(),
              out.target.empty() ? stem.c_str() : out.target.c_str());
    return out;
}

}  // namespace wan::lora
