#include "cli/inspect.h"

#include "core/core.h"
#include "core/fs.h"
#include "io/component_files.h"
#include "io/io.h"

#include <map>

namespace wan::app {

namespace {

std::string humanBytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    return strfmt(u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
}

struct Summary {
    int64_t params = 0;
    uint64_t bytes = 0;
    std::map<std::string, int64_t> byDtype;   // dtype -> tensor count
    size_t tensors = 0;
};

Summary summarise(const io::TensorStore& st) {
    Summary s;
    for (const auto& n : st.names()) {
        const auto& info = st.info(n);
        s.params += info.numel();
        s.byDtype[c10::toString(info.dtype)] += 1;
        ++s.tensors;
    }
    s.bytes = st.total_bytes();
    return s;
}

std::string withCommas(int64_t v) {
    std::string s = std::to_string(v);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
    return s;
}

void printComponent(std::ostream& out, const char* label, const std::string& path, const Summary& s,
                     const std::string& variant) {
    std::string dtypes;
    for (const auto& [d, n] : s.byDtype) dtypes += (dtypes.empty() ? "" : ", ") + d + " ×" + std::to_string(n);
    out << strfmt("  %-13s %s\n", label, path.c_str());
    out << strfmt("  %-13s %s parameters in %zu tensors (%s), %s — %s\n", "", withCommas(s.params).c_str(), s.tensors,
                  dtypes.c_str(), humanBytes(static_cast<double>(s.bytes)).c_str(), variant.c_str());
}

std::string ditDescription(const io::WanConfig& cfg) {
    return strfmt("WanModel %s: dim %lld, %lld layers, %lld heads, ffn %lld, text_dim %lld", cfg.variant().c_str(),
                  static_cast<long long>(cfg.dim), static_cast<long long>(cfg.num_layers),
                  static_cast<long long>(cfg.num_heads), static_cast<long long>(cfg.ffn_dim),
                  static_cast<long long>(cfg.text_dim));
}

/// Wan2.2 T2V-A14B: both experts, then the shared T5, VAE and tokenizer (Note [Two-expert layout]).
void inspectTwoExperts(const io::ModelComponents& m, std::ostream& out) {
    const io::WanConfig high = m.high_noise_dit_config(), low = m.dit_config();
    out << "Checkpoint " << m.root << "\n";
    out << "Layout:\n";
    for (const auto& p : {m.high_noise_config_path, m.high_noise_dit_path, m.dit_config_path, m.dit_path, m.t5_path,
                          m.vae_path, m.tokenizer_path}) {
        if (p.empty()) continue;
        out << strfmt("  %-60s %s\n", p.substr(m.root.size() + 1).c_str(), humanBytes(static_cast<double>(fs::file_size_or_zero(p))).c_str());
    }
    const Summary sh = summarise(m.open_high_noise_dit()), sl = summarise(m.open_dit());
    const Summary st = summarise(m.open_t5()), sv = summarise(m.open_vae());
    out << "Components:\n";
    printComponent(out, "High-noise", m.high_noise_dit_path, sh, ditDescription(high) + " (t ≥ 875 by default)");
    printComponent(out, "Low-noise", m.dit_path, sl, ditDescription(low));
    printComponent(out, "T5 encoder", m.t5_path, st, st.params == 5680910336LL ? "UMT5-XXL encoder" : "UMT5 encoder (non-standard size)");
    printComponent(out, "VAE", m.vae_path, sv, sv.params == 126892531LL ? "Wan2.1 VAE" : "Wan VAE (non-standard size)");
    out << strfmt("  %-13s %s\n", "Tokenizer", m.tokenizer_source().c_str());
    out << strfmt("Total: %s parameters, %s\n", withCommas(sh.params + sl.params + st.params + sv.params).c_str(),
                  humanBytes(static_cast<double>(sh.bytes + sl.bytes + st.bytes + sv.bytes)).c_str());
    out << "Detected variant: "
        << (low.variant() == "14B" && high.variant() == "14B" ? "Wan2.2 T2V-A14B (two experts: high-noise and low-noise)"
                                                              : "custom two-expert model (Wan2.2 T2V-A14B layout)")
        << "\n";
}

}  // namespace

void inspectFile(const std::string& path, std::ostream& out) {
    const io::FileReport r = io::inspect_file(path);
    std::string dtypes;
    for (const auto& [d, n] : r.dtypes) dtypes += (dtypes.empty() ? "" : ", ") + d + " ×" + std::to_string(n);
    out << "File " << r.path << "\n";
    out << strfmt("  %-13s %s, %s\n", "Format", r.format.c_str(), humanBytes(static_cast<double>(r.bytes)).c_str());
    out << strfmt("  %-13s %zu (%s), %s parameters\n", "Tensors", r.tensors, dtypes.c_str(),
                  withCommas(r.parameters).c_str());
    out << strfmt("  %-13s %s\n", "Detected", r.description.c_str());
    if (!r.naming.empty()) out << strfmt("  %-13s %s\n", "Names", r.naming.c_str());
    if (!r.key_prefix.empty()) out << strfmt("  %-13s '%s' (stripped when loading)\n", "Key prefix", r.key_prefix.c_str());
    if (r.weight_scales > 0)
        out << strfmt("  %-13s scaled fp8: %zu weight scales (weight = fp8 · scale; widened at load)\n", "Quantisation",
                      r.weight_scales);
    else if (r.dtypes.count("F8_E4M3") || r.dtypes.count("F8_E5M2"))
        out << strfmt("  %-13s fp8 without scales (scale 1; widened at load)\n", "Quantisation");
    if (r.has_tokenizer) out << strfmt("  %-13s inside the file (spiece_model)\n", "Tokenizer");
    for (const auto& n : r.notes) out << strfmt("  %-13s %s\n", "Note", n.c_str());
    // A Wan2.2 A14B expert has Wan2.1's architecture: only ComfyUI's file name tells which expert it is.
    const std::string base = r.path.substr(r.path.find_last_of('/') + 1);
    const char* dit_use = base.find("high_noise") != std::string::npos
                              ? "--dit-high FILE (Wan2.2 A14B's high-noise expert, with --dit-low)"
                          : base.find("low_noise") != std::string::npos
                              ? "--dit-low FILE (Wan2.2 A14B's low-noise expert, with --dit-high)"
                              : "--dit FILE (or --dit-high / --dit-low for an expert of Wan2.2 A14B)";
    const char* use = r.kind == io::ComponentKind::WanDiT        ? dit_use
                      : r.kind == io::ComponentKind::UMT5Encoder ? "--t5 FILE"
                      : r.kind == io::ComponentKind::WanVAE21    ? "--vae FILE"
                                                                 : "not usable by WanStudio (text-to-video Wan2.1)";
    out << strfmt("  %-13s %s\n", "Use as", use);
}

void inspectCheckpoint(const std::string& dir, std::ostream& out) {
    if (fs::is_file(dir)) return inspectFile(dir, out);
    if (fs::is_dir(dir + "/high_noise_model") || fs::is_dir(dir + "/low_noise_model"))
        return inspectTwoExperts(io::ModelComponents::locate(dir), out);    // throws naming a missing expert
    io::CheckpointDir c = io::CheckpointDir::locate(dir);
    io::WanConfig cfg = c.config();
    out << "Checkpoint " << c.root << "\n";
    out << "Layout:\n";
    for (const auto& p : {c.config_json, c.dit_path, c.t5_path, c.vae_path, c.tokenizer_path}) {
        out << strfmt("  %-60s %s\n", p.substr(c.root.size() + 1).c_str(), humanBytes(static_cast<double>(fs::file_size_or_zero(p))).c_str());
    }
    io::TensorStore dit = c.open_dit();
    io::TensorStore t5 = c.open_t5();
    io::TensorStore vae = c.open_vae();
    Summary sd = summarise(dit), st = summarise(t5), sv = summarise(vae);
    out << "Components:\n";
    printComponent(out, "DiT", c.dit_path, sd,
                    strfmt("WanModel %s: dim %lld, %lld layers, %lld heads, ffn %lld, text_dim %lld", cfg.variant().c_str(),
                           static_cast<long long>(cfg.dim), static_cast<long long>(cfg.num_layers),
                           static_cast<long long>(cfg.num_heads), static_cast<long long>(cfg.ffn_dim),
                           static_cast<long long>(cfg.text_dim)));
    std::string t5_variant = st.params == 5680910336LL ? "UMT5-XXL encoder" : "UMT5 encoder (non-standard size)";
    if (t5.contains("token_embedding.weight")) {
        const auto& e = t5.info("token_embedding.weight");
        if (e.shape.size() == 2)
            t5_variant += strfmt(": vocab %lld, dim %lld", static_cast<long long>(e.shape[0]), static_cast<long long>(e.shape[1]));
    }
    printComponent(out, "T5 encoder", c.t5_path, st, t5_variant);
    std::string vae_variant = sv.params == 126892531LL ? "Wan2.1 VAE" : "Wan VAE (non-standard size)";
    if (vae.contains("decoder.head.0.gamma"))
        vae_variant += strfmt(": base dim %lld", static_cast<long long>(vae.info("decoder.head.0.gamma").shape[0]));
    printComponent(out, "VAE", c.vae_path, sv, vae_variant);
    out << strfmt("  %-13s %s\n", "Tokenizer", c.tokenizer_path.c_str());
    out << strfmt("Total: %s parameters, %s\n", withCommas(sd.params + st.params + sv.params).c_str(),
                  humanBytes(static_cast<double>(sd.bytes + st.bytes + sv.bytes)).c_str());
    out << "Detected variant: " << (cfg.variant() == "1.3B" ? "Wan2.1-T2V-1.3B"
                                    : cfg.variant() == "14B" ? "Wan2.1-T2V-14B"
                                                             : "custom " + cfg.variant().substr(7))
        << "\n";
}

}  // namespace wan::app
