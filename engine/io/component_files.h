// The model's components as users have them: the upstream Wan-AI folder, and single files that replace one
// component each (ComfyUI's `wan2.1_t2v_14B_fp8_e4m3fn.safetensors`, `umt5_xxl_fp8_e4m3fn_scaled.safetensors`,
// `wan_2.1_vae.safetensors`, …). Opening a component gives a TensorStore *view* with the upstream key names
// and decoded values, so the existing loaders (dit::WanModel, text::UMT5Encoder, vae::WanVAE) read any form.
// See Note [Component files].
//
// Example:
//   wan::ComponentPaths files;
//   files.dit = "wan2.1_t2v_1.3B_fp16.safetensors";
//   auto m = wan::io::ModelComponents::locate(ckpt_dir, files);   // ckpt_dir may be "" with every file given
//   wan::dit::WanModel dit(m.dit_config(), m.open_dit(), options);
#pragma once

#include "core/component_paths.h"
#include "io/io.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace wan::io {

// Note [Component files]
// A DiT file holds the upstream names, optionally under `model.diffusion_model.` or `model.`; every tensor has
// its own dtype (F32, BF16, F16, F8_E4M3, F8_E5M2). "Scaled fp8" files add a marker tensor `scaled_fp8` and,
// per Linear, a float32 `<layer>.scale_weight` (newer files: `<layer>.weight_scale`, with a `<layer>.comfy_quant`
// tensor holding JSON and/or `_quantization_metadata` in the header): the weight is fp8 · scale; an fp8 tensor
// without a scale has scale 1; `scale_input` / `input_scale` (activation scales) are ignored, since we use the
// weights only. A T5 file in Hugging Face UMT5 names is renamed to the upstream names, and its tokenizer may be
// inside as a U8 tensor `spiece_model`. load() widens fp8 values (to the loader's dtype) and the view
// reports them as bfloat16, which holds every fp8 value exactly; a loader that keeps fp8 (the DiT's --dit-dtype,
// dit Note [FP8 weights]) takes the stored e4m3 codes and scale through TensorStore::e4m3_codes instead. Files of another model (an I2V or
// Wan2.2 DiT, a Wan2.2 VAE, a CLIP, a LoRA) are named as such before anything is loaded.

/// What a file holds, judged from its names and shapes. Zero is not a valid value.
enum class ComponentKind {
    Unknown = 1,
    WanDiT = 2,         ///< Wan2.1 text-to-video DiT (1.3B, 14B or a custom size)
    WanDiTI2V = 3,      ///< Wan image-to-video / first-last-frame DiT (img_emb.*, or 36 input channels)
    WanDiTOther = 4,    ///< another Wan DiT (Wan2.2 TI2V-5B: 48 channels; VACE: vace_blocks.*)
    UMT5Encoder = 5,    ///< UMT5-XXL encoder (upstream or Hugging Face names)
    T5Other = 6,        ///< a T5 encoder that is not UMT5 (one shared position bias)
    WanVAE21 = 7,       ///< Wan2.1 VAE (z_dim 16)
    WanVAEOther = 8,    ///< another VAE of this family (Wan2.2: z_dim 48)
    CLIP = 9,           ///< a CLIP model (the I2V image encoder, or ComfyUI's clip_vision_h)
    LoRA = 10,          ///< LoRA / diff weights, not a full model
};
const char* component_kind_name(ComponentKind kind);

/// `--inspect FILE`: format, dtypes and what was detected.
struct FileReport {
    std::string path;
    std::string format;                     ///< "safetensors", "sharded safetensors (3 files)", "torch .pth (zip)"
    std::map<std::string, size_t> dtypes;   ///< stored dtype ("BF16", "F8_E4M3", …) → tensor count
    size_t tensors = 0;
    int64_t parameters = 0;                 ///< elements of the model's tensors (scales and markers excluded)
    uint64_t bytes = 0;                     ///< bytes of all tensor data as stored
    ComponentKind kind = ComponentKind::Unknown;
    std::string description;                ///< e.g. "Wan2.1 T2V DiT 14B (dim 5120, 40 layers, 40 heads)"
    std::string key_prefix;                 ///< stripped from every name ("model.diffusion_model."), or ""
    std::string naming;                     ///< "upstream" | "Hugging Face UMT5"
    size_t weight_scales = 0;               ///< scaled fp8: per-layer weight scales found
    bool has_tokenizer = false;             ///< a `spiece_model` tensor (T5 files)
    std::vector<std::string> notes;         ///< anything else worth saying (ignored tensors, ...)
};
/// Reads only headers. Throws wan::Error for unreadable/malformed files (naming the file).
FileReport inspect_file(const std::string& path);

/// DiT hyper-parameters from tensor shapes of a store with upstream names: dim from head.modulation,
/// heads = dim / 128 (every released Wan DiT), ffn from blocks.0.ffn.0.weight, layers by counting blocks,
/// in/out channels and patch from patch_embedding and head.head, text_dim and freq_dim from the embeddings,
/// the rest upstream's T2V defaults (text_len 512, eps 1e-6). Throws naming `source` when dim is not a
/// multiple of 128 (pass a config.json then).
WanConfig infer_dit_config(const TensorStore& store, const std::string& source);

/// Opens one component file as a view with upstream names and decoded values (Note [Component files]).
/// Each throws wan::Error naming the file when it holds another model (and what it is) or an unsupported
/// quantisation.
TensorStore open_dit_file(const std::string& path);
TensorStore open_t5_file(const std::string& path);
TensorStore open_vae_file(const std::string& path);

// Note [Two-expert layout]
// Wan2.2 T2V-A14B keeps its two DiTs in `high_noise_model/` and `low_noise_model/`, each with its config.json and
// `diffusion_pytorch_model.safetensors` (or shards + index), and Wan2.1's T5, VAE and tokenizer at the top. A
// folder with either sub-folder is taken as this layout; then both must be complete, and a missing one is named.
//
// Note [Expert files]
// ComfyUI ships the experts as two single files (`wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors` and
// `..._low_noise_...`), read like `--dit` files. ComponentPaths::dit_high / dit_low name them, both or neither
// and never with `dit`; they replace the folder's experts (the folder, if any, still gives the T5, VAE and
// tokenizer). Their config: --dit-config for both, else the folder's where it fits each file's shapes, else
// inferred from the shapes. locate() checks that the two files hold the same tensor names and shapes (the
// dtypes may differ) and warns when the file names suggest they are swapped.

/// The model's components: the upstream folder's files, each replaceable by a file (ComponentPaths).
struct ModelComponents {
    std::string root;            ///< checkpoint folder, or "" when every component is given as a file
    std::string dit_path;        ///< DiT file (or index json of a sharded set)
    std::string dit_config_path; ///< explicit or the folder's config.json; "" → inferred from shapes
    std::string t5_path;
    std::string vae_path;
    std::string tokenizer_path;  ///< a spiece.model file, or "" → the `spiece_model` inside t5_path
    bool dit_overridden = false;
    bool dit_config_given = false;  ///< dit_config_path came from ComponentPaths::dit_config
    /// Wan2.2 A14B (Note [Two-expert layout]): dit_path / dit_config_path are then the low-noise expert's,
    /// these the high-noise expert's.
    bool two_experts = false;
    std::string high_noise_dit_path;
    std::string high_noise_config_path;

    /// `ckpt_dir` may be "" when files name the DiT, T5 and VAE. Checks that every file needed is present and
    /// throws one message listing each missing one, with the option that would replace it.
    static ModelComponents locate(const std::string& ckpt_dir, const ComponentPaths& overrides = {});

    /// An explicit config; else the folder's config.json when the DiT is the folder's own or when the config
    /// agrees with the override file's shapes; else infer_dit_config().
    WanConfig dit_config() const;
    TensorStore open_dit() const { return open_dit_file(dit_path); }
    /// Two experts only: the high-noise expert's config (as dit_config() decides it) and weights.
    WanConfig high_noise_dit_config() const;
    TensorStore open_high_noise_dit() const { return open_dit_file(high_noise_dit_path); }
    TensorStore open_t5() const { return open_t5_file(t5_path); }
    TensorStore open_vae() const { return open_vae_file(vae_path); }
    /// The SentencePiece model's bytes (the file, or the T5 file's `spiece_model`).
    std::string tokenizer_bytes() const;
    /// Where the tokenizer comes from, for messages: the path, or "spiece_model in <t5 file>".
    std::string tokenizer_source() const;
};

}  // namespace wan::io
