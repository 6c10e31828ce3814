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

    bool empty() const { return dit.empty() && dit_config.empty() && t5.empty() && vae.empty() && tokenizer.empty(); }
};

}  // namespace wan
