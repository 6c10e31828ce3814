#include "cli/model_probe.h"

#include "core/core.h"
#include "core/fs.h"
#include "core/model_defaults.h"
#include "io/component_files.h"
#include "io/io.h"

#include <algorithm>
#include <utility>

namespace wan::app {

namespace {

std::string baseName(const std::string& path) {
    std::string p = path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    const size_t slash = p.rfind('/');
    return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string sizeText(uint64_t bytes) {
    const double gb = static_cast<double>(bytes) / 1e9;
    if (gb >= 0.1) return strfmt("%.2f GB", gb);
    return strfmt("%.1f MB", static_cast<double>(bytes) / 1e6);
}

/// "F8_E4M3 ×400, F32 ×802", the most frequent dtype first.
std::string dtypesText(const std::map<std::string, size_t>& dtypes) {
    std::vector<std::pair<std::string, size_t>> sorted(dtypes.begin(), dtypes.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string text;
    for (const auto& [d, n] : sorted) text += (text.empty() ? "" : ", ") + d + " ×" + std::to_string(n);
    return text;
}

std::string describe(const io::FileReport& r) {
    std::string text = r.description + " · " + dtypesText(r.dtypes) + " · " + sizeText(r.bytes);
    if (r.weight_scales > 0) text += " · scaled fp8";
    if (!r.key_prefix.empty()) text += " · names under '" + r.key_prefix + "'";
    if (r.has_tokenizer) text += " · tokenizer inside";
    return text;
}

/// The slot a file was chosen for, and the kind it must be.
struct Slot {
    const char* role;
    const char* option;
    io::ComponentKind expected;
    const char* expectedText;
};
constexpr Slot kDitSlot{"DiT", "--dit", io::ComponentKind::WanDiT, "a Wan2.1/Wan2.2 text-to-video DiT"};
constexpr Slot kT5Slot{"T5 encoder", "--t5", io::ComponentKind::UMT5Encoder, "the UMT5-XXL text encoder"};
constexpr Slot kVaeSlot{"VAE", "--vae", io::ComponentKind::WanVAE21, "the Wan2.1 VAE (16 latent channels)"};

/// Inspects one chosen file: a row, or a problem saying what it is instead of what the slot needs.
void probeFile(const Slot& slot, const std::string& path, ModelProbe& out) {
    if (path.empty()) return;
    if (!fs::is_file(path)) {
        out.problems.push_back(strfmt("the %s file %s does not exist", slot.role, path.c_str()));
        return;
    }
    try {
        const io::FileReport r = io::inspect_file(path);
        out.components.push_back({slot.role, path, describe(r)});
        if (r.kind != slot.expected)
            out.problems.push_back(strfmt("the %s file %s is %s (%s), not %s", slot.role, baseName(path).c_str(),
                                          io::component_kind_name(r.kind), r.description.c_str(), slot.expectedText));
    } catch (const Error& e) {
        out.problems.push_back(strfmt("the %s file %s cannot be read: %s", slot.role, path.c_str(), e.what()));
    }
}

/// Components the folder supplies (those no file replaced), as rows.
void addFolderRow(const char* role, const std::string& path, bool replaced, ModelProbe& out) {
    if (replaced || path.empty()) return;
    try {
        out.components.push_back({role, path, describe(io::inspect_file(path))});
    } catch (const Error& e) {
        out.problems.push_back(strfmt("the %s %s cannot be read: %s", role, path.c_str(), e.what()));
    }
}

void nameFamily(const io::WanConfig& low, const io::WanConfig* high, ModelProbe& out) {
    out.numHeads = low.num_heads;
    if (high) {
        out.twoExperts = true;
        const bool a14b = low.variant() == "14B" && high->variant() == "14B";
        out.family = a14b ? "Wan2.2 T2V-A14B" : "two-expert model, " + low.variant();
        out.variant = a14b ? "A14B" : "";
    } else if (low.variant() == "1.3B" || low.variant() == "14B") {
        out.family = "Wan2.1 T2V-" + low.variant();
        out.variant = low.variant();
    } else {
        out.family = low.variant();  // "custom (dim D, L layers)"
    }
    if (!out.variant.empty()) out.sizes = model_defaults(out.variant).sizes;
}

/// The text encoder's width must be what the DiT's text embedding takes.
void checkTextWidth(const io::ModelComponents& m, const io::WanConfig& dit, ModelProbe& out) {
    const io::TensorStore t5 = m.open_t5();
    if (!t5.contains("token_embedding.weight")) return;
    const auto& shape = t5.info("token_embedding.weight").shape;
    if (shape.size() == 2 && shape[1] != dit.text_dim)
        out.problems.push_back(strfmt("the T5 encoder %s gives text features of width %lld, but the DiT %s takes "
                                      "width %lld: they belong to different models",
                                      baseName(m.t5_path).c_str(), static_cast<long long>(shape[1]),
                                      baseName(m.dit_path).c_str(), static_cast<long long>(dit.text_dim)));
}

/// The whole model as the engine would locate it: family, folder rows, cross-component checks.
void probeAssembly(const ModelChoice& c, ModelProbe& out) {
    const io::ModelComponents m = io::ModelComponents::locate(c.ckptDir, c.files);
    const io::WanConfig low = m.dit_config();
    if (m.two_experts) {
        const io::WanConfig high = m.high_noise_dit_config();
        nameFamily(low, &high, out);
        addFolderRow("DiT (high noise)", m.high_noise_dit_path, !c.files.dit_high.empty(), out);
        addFolderRow("DiT (low noise)", m.dit_path, !c.files.dit.empty() || !c.files.dit_low.empty(), out);
    } else {
        nameFamily(low, nullptr, out);
        addFolderRow("DiT", m.dit_path, !c.files.dit.empty(), out);
    }
    addFolderRow("T5 encoder", m.t5_path, !c.files.t5.empty(), out);
    addFolderRow("VAE", m.vae_path, !c.files.vae.empty(), out);
    out.components.push_back({"Tokenizer", m.tokenizer_path.empty() ? m.t5_path : m.tokenizer_path,
                              m.tokenizer_source()});
    checkTextWidth(m, low, out);
}

}  // namespace

std::string ModelChoice::label() const {
    if (!ckptDir.empty()) return baseName(ckptDir);
    return baseName(files.dit.empty() ? files.dit_high : files.dit);
}

std::vector<std::string> ModelChoice::missingPaths() const {
    std::vector<std::string> missing;
    if (!ckptDir.empty() && !fs::is_dir(ckptDir)) missing.push_back(ckptDir);
    for (const std::string* f : {&files.dit, &files.dit_config, &files.t5, &files.vae, &files.tokenizer,
                                 &files.dit_high, &files.dit_low})
        if (!f->empty() && !fs::is_file(*f)) missing.push_back(*f);
    return missing;
}

std::vector<std::string> ModelChoice::arguments() const {
    std::vector<std::string> args;
    const std::pair<const char*, const std::string*> options[] = {
        {"--ckpt-dir", &ckptDir}, {"--dit", &files.dit},     {"--dit-config", &files.dit_config},
        {"--t5", &files.t5},      {"--vae", &files.vae},     {"--tokenizer", &files.tokenizer},
        {"--dit-high", &files.dit_high}, {"--dit-low", &files.dit_low}};
    for (const auto& [name, value] : options)
        if (!value->empty()) args.insert(args.end(), {name, *value});
    return args;
}

bool ModelChoice::operator==(const ModelChoice& o) const {
    return ckptDir == o.ckptDir && files.dit == o.files.dit && files.dit_config == o.files.dit_config &&
           files.t5 == o.files.t5 && files.vae == o.files.vae && files.tokenizer == o.files.tokenizer &&
           files.dit_high == o.files.dit_high && files.dit_low == o.files.dit_low;
}

std::vector<std::string> stripModelArgs(const std::vector<std::string>& args) {
    static const char* const kNames[] = {"ckpt-dir", "dit", "dit-config", "t5", "vae", "tokenizer", "dit-high", "dit-low"};
    auto modelOption = [](std::string a, bool* inlineValue) {
        if (a.rfind("--", 0) != 0) return false;
        a = a.substr(2);
        const size_t eq = a.find('=');
        *inlineValue = eq != std::string::npos;
        if (*inlineValue) a.resize(eq);
        std::replace(a.begin(), a.end(), '_', '-');
        return std::find_if(std::begin(kNames), std::end(kNames), [&](const char* n) { return a == n; }) !=
               std::end(kNames);
    };
    std::vector<std::string> kept;
    for (size_t i = 0; i < args.size(); ++i) {
        bool inlineValue = false;
        if (!modelOption(args[i], &inlineValue)) {
            kept.push_back(args[i]);
            continue;
        }
        if (!inlineValue) ++i;  // its value
    }
    return kept;
}

ModelProbe probeModel(const ModelChoice& c) {
    ModelProbe out;
    if (c.empty()) {
        out.problems.push_back("choose a checkpoint folder, or the DiT, T5 and VAE files");
        return out;
    }
    if (!c.ckptDir.empty() && !fs::is_dir(c.ckptDir))
        out.problems.push_back(strfmt("the checkpoint folder %s does not exist", c.ckptDir.c_str()));
    probeFile(kDitSlot, c.files.dit, out);
    probeFile(kT5Slot, c.files.t5, out);
    probeFile(kVaeSlot, c.files.vae, out);
    if (!c.files.tokenizer.empty() && !fs::is_file(c.files.tokenizer))
        out.problems.push_back(strfmt("the tokenizer file %s does not exist", c.files.tokenizer.c_str()));
    if (!c.files.dit_config.empty() && !fs::is_file(c.files.dit_config))
        out.problems.push_back(strfmt("the DiT config %s does not exist", c.files.dit_config.c_str()));
    if (!out.problems.empty()) return out;  // a wrong file: say that, not what the assembly then lacks
    try {
        probeAssembly(c, out);
    } catch (const Error& e) {
        out.problems.push_back(e.what());
    }
    return out;
}

}  // namespace wan::app
