// File → Open model…: what a chosen checkpoint is before the engine loads it. A choice is an upstream folder
// and/or single component files (ComfyUI style, fp8 included); the probe reads only headers (io::inspect_file,
// io::ModelComponents::locate) and says what each file is, which model family they make, and every reason
// not to load them, one sentence each. Also the command-line form of a choice, for the engine restart.
// Qt-free, so the CLI could print the same report.
//
// Example:
//   ModelChoice c;
//   c.files.dit = "wan2.1_t2v_14B_fp8_e4m3fn.safetensors";
//   c.files.t5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors";
//   c.files.vae = "wan_2.1_vae.safetensors";
//   ModelProbe p = probeModel(c);
//   if (!p.loadable()) show(p.problems);   // e.g. "the VAE file x.safetensors is a CLIP model, …"
#pragma once

#include "core/component_paths.h"

#include <cstdint>
#include <string>
#include <vector>

namespace wan::app {

/// A model as the user picked it: a checkpoint folder, files replacing single components, or both.
struct ModelChoice {
    std::string ckptDir;
    ComponentPaths files;

    bool empty() const { return ckptDir.empty() && files.empty(); }
    /// A short name for menus: the folder's name, else the DiT file's name.
    std::string label() const;
    /// Every path of the choice that no longer exists (for the recent-models menu).
    std::vector<std::string> missingPaths() const;
    /// The options that select it: --ckpt-dir DIR --dit FILE --dit-config FILE --t5 FILE --vae FILE
    /// --tokenizer FILE (only those set).
    std::vector<std::string> arguments() const;
    bool operator==(const ModelChoice& o) const;
    bool operator!=(const ModelChoice& o) const { return !(*this == o); }
};

/// `args` (a program's arguments) without the options that choose the model: --ckpt-dir, --dit, --dit-config,
/// --t5, --vae, --tokenizer (either spelling, `=value` or a separate value). Options that only start with
/// those names (--t5-fsdp, --vae-tile, --dit-fsdp, …) stay.
std::vector<std::string> stripModelArgs(const std::vector<std::string>& args);

/// One component as the probe found it.
struct ProbedComponent {
    std::string role;         ///< "DiT", "DiT (high noise)", "DiT (low noise)", "T5 encoder", "VAE", "Tokenizer"
    std::string path;
    std::string description;  ///< "Wan2.1 T2V DiT 14B: dim 5120, … · F8_E4M3 ×400, F32 ×… · 14.29 GB"
};

struct ModelProbe {
    /// "Wan2.1 T2V-1.3B", "Wan2.1 T2V-14B", "Wan2.2 T2V-A14B", or "custom …" / "two-expert model, custom …"
    /// (sizes no released model has: the tiny test models).
    std::string family;
    /// The model_defaults row: "1.3B", "14B", "A14B"; "" for a custom size.
    std::string variant;
    int64_t numHeads = 0;      ///< the DiT's attention heads (0 when unknown)
    bool twoExperts = false;
    std::vector<std::string> sizes;  ///< "W*H" the model was trained for (empty for a custom size)
    std::vector<ProbedComponent> components;
    /// Why it cannot be loaded, one sentence each naming the file and what was expected; empty: loadable.
    std::vector<std::string> problems;

    bool loadable() const { return problems.empty() && !family.empty(); }
};

/// Reads only the headers of the chosen files and judges them. Never throws: every
/// error becomes a problem.
ModelProbe probeModel(const ModelChoice& choice);

}  // namespace wan::app
