// WanConfig (config.json) and the upstream checkpoint directory layout. Ref: wan21-reference.md §1.1, §1.3, §4.1.
#include "io/io.h"

#include "core/core.h"
#include "core/json_fields.h"
#include "io/mapped_file.h"
#include "io/untrusted.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

namespace wan::io {

namespace {
bool is_file(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_dir(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
}  // namespace

std::string WanConfig::variant() const {
    // Known variants (wan21-reference.md §4.1): 1.3B = dim 1536 / 30 layers / 12 heads; 14B = 5120 / 40 / 40.
    if (dim == 1536 && num_layers == 30 && num_heads == 12 && ffn_dim == 8960) return "1.3B";
    if (dim == 5120 && num_layers == 40 && num_heads == 40 && ffn_dim == 13824) return "14B";
    return strfmt("custom (dim %lld, %lld layers)", static_cast<long long>(dim), static_cast<long long>(num_layers));
}

void WanConfig::validate(const std::string& source) const {
    WAN_CHECK(model_type == "t2v", "%s: model_type '%s' is not supported (expected \"t2v\")", source.c_str(),
              model_type.c_str());
    WAN_CHECK(dim > 0 && num_heads > 0 && num_layers > 0 && ffn_dim > 0 && freq_dim > 0 && text_len > 0 &&
                  text_dim > 0 && in_dim > 0 && out_dim > 0,
              "%s: dim, num_heads, num_layers, ffn_dim, freq_dim, text_len, text_dim, in_dim and out_dim must all "
              "be positive", source.c_str());
    WAN_CHECK(dim % num_heads == 0, "%s: dim %lld is not divisible by num_heads %lld", source.c_str(),
              static_cast<long long>(dim), static_cast<long long>(num_heads));
    WAN_CHECK(head_dim() % 2 == 0, "%s: head dim %lld (dim / num_heads) must be even for the rotary embedding",
              source.c_str(), static_cast<long long>(head_dim()));
    // The 3-axis RoPE splits d into d - 4*(d/6), 2*(d/6), 2*(d/6); each part must be a positive even size.
    const int64_t d = head_dim();
    WAN_CHECK(d / 6 >= 1 && d - 4 * (d / 6) > 0, "%s: head dim %lld is too small for the 3-axis rotary split",
              source.c_str(), static_cast<long long>(d));
    WAN_CHECK(eps > 0, "%s: eps must be positive", source.c_str());
}

WanConfig WanConfig::from_json_string(const std::string& text, const std::string& source) {
    const nlohmann::json j = json_fields::parse_object(text, source);
    WanConfig c;
    auto get_int = [&](const char* key, int64_t& out, bool required) {
        if (!j.contains(key)) {
            WAN_CHECK(!required, "%s: missing field \"%s\"", source.c_str(), key);
            return;
        }
        WAN_CHECK(j[key].is_number_integer(), "%s: field \"%s\" must be an integer, got %s", source.c_str(), key,
                  json_excerpt(j[key]).c_str());
        out = j[key].get<int64_t>();
    };
    if (j.contains("model_type")) {
        WAN_CHECK(j["model_type"].is_string(), "%s: field \"model_type\" must be a string", source.c_str());
        c.model_type = j["model_type"].get<std::string>();
    }
    get_int("dim", c.dim, true);
    get_int("ffn_dim", c.ffn_dim, true);
    get_int("num_heads", c.num_heads, true);
    get_int("num_layers", c.num_layers, true);
    get_int("freq_dim", c.freq_dim, false);
    get_int("in_dim", c.in_dim, false);
    get_int("out_dim", c.out_dim, false);
    get_int("text_len", c.text_len, false);
    get_int("text_dim", c.text_dim, false);  // absent in real checkpoints: upstream always builds 4096
    if (j.contains("eps")) {
        WAN_CHECK(j["eps"].is_number(), "%s: field \"eps\" must be a number", source.c_str());
        c.eps = j["eps"].get<double>();
    }
    c.validate(source);
    return c;
}

WanConfig WanConfig::from_json_file(const std::string& path) {
    MappedFile f(path);
    return from_json_string(std::string(reinterpret_cast<const char*>(f.data()), f.size()), path);
}

CheckpointDir CheckpointDir::locate(const std::string& dir_in) {
    std::string dir = dir_in;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    WAN_CHECK(is_dir(dir), "checkpoint directory '%s' does not exist or is not a directory", dir_in.c_str());
    CheckpointDir c;
    c.root = dir;
    c.config_json = dir + "/" + kConfigName;
    c.t5_path = dir + "/" + kT5Name;
    c.vae_path = dir + "/" + kVaeName;
    c.tokenizer_path = dir + "/" + kTokenizerName;
    std::vector<std::string> missing;
    if (!is_file(c.config_json)) missing.push_back(std::string(kConfigName) + " (DiT hyper-parameters)");
    if (is_file(dir + "/" + kDitIndexName)) {
        c.dit_path = dir + "/" + kDitIndexName;
    } else if (is_file(dir + "/" + kDitName)) {
        c.dit_path = dir + "/" + kDitName;
    } else {
        missing.push_back(std::string(kDitName) + " or " + kDitIndexName + " with its shards (DiT weights)");
    }
    if (!is_file(c.t5_path)) missing.push_back(std::string(kT5Name) + " (UMT5-XXL text encoder)");
    if (!is_file(c.vae_path)) missing.push_back(std::string(kVaeName) + " (video VAE)");
    if (!is_file(c.tokenizer_path)) missing.push_back(std::string(kTokenizerName) + " (UMT5 tokenizer)");
    if (!missing.empty()) {
        std::string msg = "checkpoint directory '" + dir + "' is incomplete; missing:";
        for (const auto& m : missing) msg += "\n  - " + m;
        msg += "\n(expected the layout of Wan-AI/Wan2.1-T2V-1.3B or -14B)";
        throw Error(msg);
    }
    return c;
}

WanConfig CheckpointDir::config() const { return WanConfig::from_json_file(config_json); }
TensorStore CheckpointDir::open_dit() const { return TensorStore::open(dit_path); }
TensorStore CheckpointDir::open_t5() const { return TensorStore::open_pth(t5_path); }
TensorStore CheckpointDir::open_vae() const { return TensorStore::open_pth(vae_path); }

}  // namespace wan::io
