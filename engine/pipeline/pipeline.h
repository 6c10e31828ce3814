// The text-to-video pipeline (upstream WanT2V.generate): prompt → UMT5 → CFG denoising with the DiT and a
// flow-matching solver → VAE decode. Engine objects load once and serve many requests.
// Ref: wan21-reference.md §7 (pipeline), §6 (solvers), §8 (distributed).
//
// Example:
//   wan::pipeline::EngineConfig cfg;                 // empty ckpt_dir → the built-in tiny demo checkpoint
//   wan::pipeline::T2VPipeline pipe(cfg);
//   wan::GenerationRequest req;  req.prompt = "a red fox running through snow";
//   auto out = pipe.generate(req, [](const wan::ProgressInfo& p) { ... }, &cancel_flag);
//   // out.video: [3, F, H, W] f32 in [-1, 1] on the CPU
#pragma once

#include "core/cancel.h"
#include "core/core.h"
#include "core/engine_config.h"
#include "core/load_progress.h"
#include "lora/lora.h"
#include "vae/vae.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wan::dist {
class Mesh;
}
namespace wan::text {
class TextEncoder;
}
namespace wan::dit {
class WanModel;
}
namespace wan::vae {
class WanVAE;
}

namespace wan::pipeline {

/// Load-time settings: the engine's config (core/engine_config.h; per-job settings are in
/// wan::GenerationRequest) plus what only exists at run time.
struct EngineConfig : wan::EngineConfig {
    int device_index = 0;         ///< CUDA device (the rank's local rank)
    /// Distributed layout and communicators, or null for a single process. Not owned. When set, its
    /// layout is the one used (wan::EngineConfig::layout is not read).
    dist::Mesh* mesh = nullptr;
    /// Progress of the load (bytes over every component, the file being read; on the rank that reports) and
    /// its cancel flag, polled between tensors. With a mesh every rank leaves a cancelled load together
    /// (Note [Load agreement] in pipeline.cpp). Read by the loading constructor only.
    LoadControl load;
};

/// Thrown on the ranks that did not fail themselves when the ranks agreed that one did (a step, the job's
/// preparation, a component of the load); the failing rank throws its own error.
class FailedElsewhere : public Error {
public:
    using Error::Error;
};

/// Named intermediate tensors for tests and debugging ("context", "context_null", "noise", "latents.<i>",
/// "noise_pred_cond.<i>", "noise_pred_uncond.<i>", "final_latent", "video").
using TraceFn = std::function<void(const std::string& name, const at::Tensor& value)>;
using ProgressFn = std::function<void(const ProgressInfo&)>;

struct PipelineOutput {
    at::Tensor latent;           ///< [16, T, h, w] f32 CPU, the final latent (every rank)
    at::Tensor video;            ///< [3, F, H, W] f32 CPU in [-1, 1] (decoding rank only; empty elsewhere)
    int64_t seed_used = -1;
    GenerationRequest resolved;  ///< the request with every default filled in
    double seconds_text = 0, seconds_denoise = 0, seconds_decode = 0;
    /// DiT block-stack passes that ran, per CFG branch (= steps without step caching; with
    /// EngineConfig::teacache_threshold > 0, steps minus the skipped ones; the max of both branches).
    int steps_computed = 0;
    /// DiT forwards this rank ran in the denoising loop (2 per step with guidance, 1 at guide scale 1; with
    /// cfg-parallel 1 per step per rank). Skipped block stacks (step caching) still count.
    int dit_forwards = 0;
    /// The LoRAs merged into the DiT for this job (file name, SHA-256, strength), for the sidecar and tags.
    std::vector<lora::AppliedLora> loras;
    /// Two-expert models: the LoRAs merged into one expert only (after `loras`), from loras_high / loras_low.
    std::vector<lora::AppliedLora> loras_high, loras_low;
    double seconds_lora = 0;        ///< merging (or restoring) the LoRAs before this job; 0 when unchanged
    int64_t lora_backup_bytes = 0;  ///< host memory held to restore the base weights (lora::LoraSet)
};

/// Already built models (benchmarks with random weights, custom loading). `vae` may be null on ranks
/// that never decode.
struct PipelineParts {
    std::unique_ptr<text::TextEncoder> text;
    std::unique_ptr<dit::WanModel> dit;
    /// Optional: a second expert (Wan2.2 A14B's high-noise DiT; `dit` is then the low-noise one).
    std::unique_ptr<dit::WanModel> dit_high;
    std::unique_ptr<vae::WanVAE> vae;
    std::string variant;  ///< "1.3B", "14B", … for defaults and the info
};

/// Device memory a job of `width`×`height`×`frames` needs beyond the DiT weights, for a DiT of width `dim`:
/// an estimate fitted on the H200 (Note [What --max-vram keeps free] in pipeline.cpp), in bytes. `lean`: the
/// DiT runs with lean activations and a chunked FFN (dit::ModelOptions::lean_activations, --ffn-chunks > 1).
double working_memory_bytes(int64_t dim, int width, int height, int frames, bool lean = false);
/// Its largest value over the sizes `variant` was trained for, at the default frame count: what --max-vram
/// sets aside before placing the DiT blocks.
double planned_working_memory_bytes(int64_t dim, const std::string& variant, bool lean = false);
/// --ffn-chunks resolved: EngineConfig::ffn_chunks when given (> 0), else 4 in a memory-saving mode (the DiT
/// held as fp8, --max-vram or --offload-dit) and 1 otherwise. More than 1 also turns the DiT's lean activations
/// on (Note [Activation memory] in engine/dit/block.cpp).
int resolved_ffn_chunks(const EngineConfig& config, bool dit_fp8_weights);

/// Whether cuDNN's algorithm search runs for the VAE's convolutions (Note [VAE autotuning]): config.vae_autotune
/// "on" / "off", or for "auto" on where the warm-up at load takes the search's one-time cost: a CUDA device, the
/// warm-up on, one decoding rank (`decode_across_ranks` false) and no memory cap (--max-vram, --offload-dit:
/// the search's scratch buffers would crowd a small card). Throws on another value.
bool vae_autotune_enabled(const EngineConfig& config, bool cuda, bool decode_across_ranks);

/// True in the modes where memory is what the user asked for: DiT weights held as fp8, --max-vram, --offload-dit.
/// The engine then trades a little speed for memory (4 FFN chunks, the VAE's tail a frame at a time).
bool memory_first(const EngineConfig& config, bool dit_fp8_weights);
/// The VAE decode's switches the engine turns on for `device` (measured ones only: on CUDA the fused norm + SiLU,
/// the cache buffer and the sub-pixel upsample, and with `memory_first` the tail one frame at a time (Note
/// [Decode tail]); none on the CPU). One latent frame per decoder call: more is EngineConfig::vae_chunk_frames.
vae::VAESpeedOptions default_vae_speed(c10::Device device, bool memory_first = false);
/// Latent frames the warm-up at load decodes (Note [Warm-up at load]) so that a video of `video_latent_frames`
/// meets no convolution shape the warm-up did not: the first frame, two chunks of `chunk_frames` (the first
/// with one cached frame, then a steady one) and the video's shorter last chunk, if any; the whole video if it
/// is shorter.
int64_t warm_up_latent_frames(int64_t chunk_frames, int64_t video_latent_frames);

class T2VPipeline {
public:
    /// Loads tokenizer, T5, DiT and VAE, reporting through config.load. Throws wan::Error naming the file and
    /// problem, wan::Cancelled when config.load.cancel was set (nothing is kept: a later load starts afresh).
    explicit T2VPipeline(const EngineConfig& config);
    /// From built parts; `config.ckpt_dir` is ignored. With config.offload_dit / max_vram_gb the DiT's blocks
    /// past the budget move to host memory and are streamed, as when loading; with two experts and
    /// config.offload_idle_expert the idle expert waits in host memory, as when loading.
    T2VPipeline(PipelineParts parts, const EngineConfig& config);
    ~T2VPipeline();
    T2VPipeline(const T2VPipeline&) = delete;
    T2VPipeline& operator=(const T2VPipeline&) = delete;

    /// Variant, defaults, supported sizes, device; world fields from the mesh.
    const EngineInfo& info() const;
    c10::Device device() const;

    /// The request with the model's defaults filled in, validated. Throws wan::Error listing every problem
    /// (width/height multiples of 16, frames 4n+1, steps ≥ 1, guide ≥ 0, shift > 0); sizes the model was not
    /// trained for only log a warning.
    GenerationRequest resolve(const GenerationRequest& request) const;

    /// Runs one job. `cancel` is polled between steps and between VAE frames (wan::Cancelled is thrown). With a
    /// mesh, every rank must call this with the same request; only the decoding rank fills `video`.
    PipelineOutput generate(const GenerationRequest& request, const ProgressFn& progress = {},
                            const std::atomic<bool>* cancel = nullptr, const TraceFn& trace = {});

    /// Step caching for the following jobs (EngineConfig::teacache_threshold; 0 = off). Not during a job.
    void set_teacache_threshold(double threshold);

    struct Impl;  ///< private

private:
    std::unique_ptr<Impl> impl_;
};

/// The built-in tiny demo checkpoint: $WAN_DEMO_CKPT, else <exe>/../share/wanstudio/demo-ckpt, else the
/// source tree's tests/data/golden/tiny-ckpt. Throws when none exists.
std::string demo_checkpoint_dir();

/// Upstream's conversion to 8-bit frames (§7.3): [3, F, H, W] in [-1, 1] → uint8 [F, H, W, 3] with
/// trunc(255·(x+1)/2) (truncation, not rounding, as upstream).
at::Tensor video_to_uint8(const at::Tensor& video);

/// Upstream seq_len (§7.2): ceil(h·w/4 · T / sp) · sp for latent [16, T, h, w].
int64_t sequence_length(int64_t latent_frames, int64_t latent_h, int64_t latent_w, int sp_size);

}  // namespace wan::pipeline
