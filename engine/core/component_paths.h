// Per-component file overrides of a model: what `--dit`, `--t5`, `--vae`, `--tokenizer` and `--dit-config`
// name. No LibTorch: the app's option parsing and settings hold this, the engine (io::ModelComponents)
// resolves it against the checkpoint folder.
#pragma once

#include <string>

namespace wan {

/// Files that replace one component each of the checkpoint folder (or stand without one). Empty = take it
/// from the folder. Example (ComfyUI files, no folder):
///   ComponentPaths p;
///   p.dit = "wan2.1_t2v_14B_fp8_e4m3fn.safetensors";
///   p.t5 = "umt5_xxl_fp8_e4m3fn_scaled.safetensors";  // its tokenizer is inside
///   p.vae = "wan_2.1_vae.safetensors";
struct ComponentPaths {
    std::string dit;         ///< DiT safetensors (upstream names, `model.diffusion_model.` / `model.` prefix; fp8)
    std::string dit_config;  ///< config.json for the DiT; default: the folder's if it fits, else from shapes
    std::string t5;          ///< UMT5 encoder: upstream .pth, or safetensors in upstream or Hugging Face names
    std::string vae;         ///< Wan2.1 VAE: .pth or safetensors (the .pth's names)
    std::string tokenizer;   ///< spiece.model; default: the folder's, else the one inside the T5 file
    /// Wan2.2 T2V-A14B's two experts as single files (ComfyUI's wan2.2_t2v_high_noise_14B_*.safetensors and
    /// ..._low_noise_...; the same forms as `dit`). Both or neither, and not with `dit`; `dit_config` then
    /// describes both (the experts have one architecture).
    std::string dit_high;
    std::string dit_low;

    bool empty() const {
        return dit.empty() && dit_config.empty() && t5.empty() && vae.empty() && tokenizer.empty() &&
               dit_high.empty() && dit_low.empty();
    }
    bool has_expert_files() const { return !dit_high.empty() || !dit_low.empty(); }

    /// What is wrong with the DiT files as given, in words naming the options ("" when fine): one expert file
    /// without the other, --dit together with them, or the same file for both experts. The files themselves
    /// are checked where they are opened (io::ModelComponents::locate).
    std::string expert_files_problem() const {
        if (!has_expert_files()) return "";
        if (!dit.empty())
            return "--dit cannot be combined with --dit-high / --dit-low: --dit is a one-DiT model (Wan2.1), "
                   "--dit-high and --dit-low are the two experts of Wan2.2 T2V-A14B";
        if (dit_high.empty() || dit_low.empty())
            return std::string(dit_high.empty() ? "--dit-low" : "--dit-high") + " was given without " +
                   (dit_high.empty() ? "--dit-high" : "--dit-low") +
                   ": Wan2.2 T2V-A14B needs both experts, the high-noise and the low-noise file (ComfyUI: "
                   "wan2.2_t2v_high_noise_14B_*.safetensors and wan2.2_t2v_low_noise_14B_*.safetensors)";
        if (dit_high == dit_low)
            return "--dit-high and --dit-low name the same file (" + dit_high +
                   "); the high-noise and the low-noise expert are two different files";
        return "";
    }
};

}  // namespace wan
