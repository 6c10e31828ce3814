// Wan2.1 causal 3-D VAE (z_dim 16): latent → video decoding frame by frame with the temporal feature cache,
// and video → latent encoding in chunks of 1, 4, 4, … frames. ATen only (no torch::nn).
// Ref: ../shared/docs/wan21-reference.md §5 and Appendix C.
//
// Example:
//   auto store = wan::io::TensorStore::open_pth(ckpt + "/Wan2.1_VAE.pth");
//   wan::vae::WanVAE vae(store, {});                     // CPU, float32
//   at::Tensor video = vae.decode(latent);               // [16,T,h,w] → [3, 1+4(T-1), 8h, 8w] in [-1,1]
#pragma once

#include "core/cancel.h"
#include "core/core.h"
#include "io/io.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wan::dist {
class Communicator;
}

namespace wan::vae {

/// Thrown by decode/encode when the caller asked to stop (DecodeCallbacks): the engine's one cancellation
/// type (core/cancel.h), so that the job ends as cancelled rather than failed.
using Cancelled = wan::Cancelled;

/// Optional spatial tiling of the decode (upstream has none). The latent is cut into overlapping tiles of
/// `tile_size`×`tile_size` latent pixels; each tile is decoded through all frames with its own cache and the
/// overlaps are blended linearly in pixel space. Results differ from the untiled decode near tile seams
/// (the decoder's receptive field, including the global middle attention, is cut).
struct TilingOptions {
    bool enabled = false;   ///< default off: exact upstream behaviour
    int64_t tile_size = 32; ///< tile edge in latent pixels (≥ 1); a side not larger than this is not split
    int64_t overlap = 8;    ///< overlap between neighbouring tiles in latent pixels (0 ≤ overlap < tile_size)
};

/// Candidate speed-ups of the decode on the GPU (Note [VAE speed switches] in engine/vae/vae_modules.h), each
/// off here; the engine turns on the ones measured faster (pipeline::default_vae_speed). Each computes the same decode: f32 equal
/// up to float summation order, bf16 within bf16 rounding (tests/vae compare them with the plain path).
struct VAESpeedOptions {
    /// The causal 3×3×3 (and 3×1×1) convolutions as ONE conv2d over the input frames τ, τ+1, τ+2 stacked along
    /// the channels (weight [Co, 3·Ci, kh, kw]); 1×… convolutions (the resample's per-frame 3×3, the 1×1×1
    /// shortcuts) as conv2d over the frames as a batch. cuDNN's 2D channels-last kernels are better tuned.
    bool fold_time = false;
    /// The norm + SiLU before each cached convolution writes into the convolution's input buffer, behind the
    /// cached frames (no `cat` copy of the padded input). Ignored with fold_time (which builds its own input).
    bool cache_buffer = false;
    /// RMS norm · γ + SiLU as one CUDA kernel (one read, one write) on bf16 channels-last activations; other
    /// cases fall back to the ATen ops. Same roundings as the ATen path (bf16 after each op).
    bool fused_norm = false;
    /// The head's 3-channel convolution computed with 8 output channels (zero weights past 3), output narrowed:
    /// tensor-core kernels want channel counts that are multiples of 8.
    bool pad_head = false;
    /// Each spatial upsample (nearest ×2, then the 3×3 conv) as four 2×2 "phase" convolutions of the
    /// low-resolution input, computed as one conv with 4·Co output channels whose results are interleaved into
    /// the 2× map (Note [Sub-pixel upsample] in engine/vae/vae_modules.h): 4 instead of 9 multiply-adds per
    /// output pixel and channel pair, and the 4× larger upsampled input is never written.
    bool subpixel_upsample = false;
    /// Latent frames per decoder call after the first (upstream: 1). Every layer is causal in time with its cache,
    /// so longer chunks compute the same video with bigger kernels and fewer launches and copies; activation
    /// memory grows with the chunk (about 4·n output frames at full resolution). Progress and cancellation then
    /// come per chunk, and on_intermediate sees chunk-sized outputs.
    int64_t chunk_frames = 1;
    /// Memory, not speed: output frames per call through the decoder's tail, the layers after its last temporal
    /// upsample (the last two stages and the head, where the feature maps are largest); 0: the whole chunk at
    /// once. Every tail layer is causal in time with its cache, so the video is the same (Note [Decode tail] in
    /// engine/vae/vae_modules.h); the tail's activations shrink from 4·chunk_frames output frames to this many.
    /// The engine sets 1 on CUDA where memory comes first (fp8 DiT weights, --max-vram, --offload-dit:
    /// pipeline::default_vae_speed): 0.53 GB less at 480p for a 10 % slower decode (H200).
    int64_t tail_frames = 0;
};

/// Device time of each kind of work of a decode, summed over calls (filled through DecodeCallbacks::stage_times;
/// Note [VAE stage clock] in engine/vae/stage_clock.h). Stages are named "<kind> <level>", the level being the
/// resolution relative to the output: 1/8 (the latent's), 1/4, 1/2, 1/1.
struct StageTimes {
    struct Entry {
        std::string stage;
        double ms = 0;      ///< summed milliseconds
        int64_t calls = 0;  ///< how many times it was charged
    };
    std::vector<Entry> entries;  ///< in first-seen order
    int64_t decodes = 0;         ///< decodes added

    void add(const std::string& stage, double ms, int64_t calls = 1);
    double total_ms() const;
    /// A text table: stage, ms per decode, share of the total, calls per decode; largest first; then a line
    /// "by kind:" with the same summed over the levels.
    std::string table() const;
};

/// Load-time options.
struct VAEOptions {
    c10::Device device = c10::Device(c10::kCPU);  ///< where weights live and compute runs
    /// Weight and activation dtype: kFloat (default; upstream computes in f32 — on CUDA cuDNN convolutions use
    /// TF32 by default, as upstream) or kBFloat16 (weights and activations; latent scaling and the output stay f32).
    at::ScalarType dtype = at::kFloat;
    c10::Device output_device = c10::Device(c10::kCPU);  ///< where decode/encode results are returned
    bool load_encoder = true;  ///< false: encoder weights are validated but not loaded; encode() throws
    /// Convolution weights and activations in channels-last 3D layout (NDHWC). cuDNN runs its bf16/TF32
    /// convolutions natively in that layout, so on CUDA it saves the layout transposes around every conv
    /// (measured in docs/PERFORMANCE.md). Results equal the default layout's within float rounding.
    bool channels_last = false;
    VAESpeedOptions speed;  ///< candidate speed-ups, all off by default
    TilingOptions tiling;
};

/// Hooks called between latent frames (decode) or frame chunks (encode), on the calling thread.
struct DecodeCallbacks {
    /// After each latent frame (decode; each chunk with VAESpeedOptions::chunk_frames > 1) / chunk (encode):
    /// frames_done = 1..frames_total. With tiling the total counts every (tile, frame) pair.
    std::function<void(int64_t frames_done, int64_t frames_total)> progress;
    /// Polled before each latent frame / chunk; returning true throws Cancelled.
    std::function<bool()> should_cancel;
    /// Alternative to should_cancel: a flag set from another thread (read before each frame / chunk).
    const std::atomic<bool>* cancel_flag = nullptr;
    /// Debugging/testing: receives the output of named modules ("conv2", "decoder.conv1", "decoder.middle",
    /// "decoder.upsamples.<i>", "decoder.head", "encoder.conv1", "encoder.downsamples.<i>", "encoder.middle",
    /// "encoder.head", "conv1") each time it runs, with the batch dimension of 1. Not called when tiling or
    /// decoding across ranks.
    std::function<void(const std::string& module, const at::Tensor& output)> on_intermediate;
    /// Measuring: when set, decode() adds the device time of each stage of the decoder into it (CUDA events on a
    /// GPU, wall time on the CPU) and counts one decode. Not used by decode_across() or encode().
    StageTimes* stage_times = nullptr;
};

/// Architecture of the checkpoint. `dim` and `z_dim` are read off tensor shapes; the rest is the fixed
/// WanVAE_ family (§5.1) and is checked key by key against the file.
struct VAEConfig {
    int64_t dim = 96;    ///< base channels (encoder.conv1.weight [dim,3,3,3,3])
    int64_t z_dim = 16;  ///< latent channels (conv2.weight [z,z,1,1,1])
    std::vector<int64_t> dim_mult{1, 2, 4, 4};
    int64_t num_res_blocks = 2;
    std::vector<bool> temporal_downsample{false, true, true};
    int64_t time_stride() const;   ///< 4 for the Wan VAE (2 per temporal stage)
    int64_t space_stride() const;  ///< 8 for the Wan VAE (2 per stage transition)
};

/// Per-channel latent statistics (§5.1), float32 [16].
at::Tensor latent_mean();
at::Tensor latent_std();
/// f32(1 / std), as upstream computes it (decode divides by this, encode multiplies).
at::Tensor latent_inv_std();

class WanVAE {
public:
    /// Validates every key and shape of `store` (errors name the key, expected and found shape) and loads
    /// the weights to `options.device` in `options.dtype`. The store may be closed afterwards.
    WanVAE(const io::TensorStore& store, VAEOptions options = {});
    ~WanVAE();
    WanVAE(WanVAE&&) noexcept;
    WanVAE& operator=(WanVAE&&) noexcept;
    WanVAE(const WanVAE&) = delete;
    WanVAE& operator=(const WanVAE&) = delete;

    const VAEConfig& config() const;
    const VAEOptions& options() const;

    /// Normalised latent [z, T, h, w] (or [1, z, T, h, w]) → video [3, 1+4(T-1), 8h, 8w], float32, clamped to
    /// [-1, 1], on options().output_device. Runs one latent frame at a time; only the 2-frame caches persist
    /// between frames. Thread-safe for concurrent calls (no mutable state in the object).
    at::Tensor decode(const at::Tensor& z, const DecodeCallbacks& callbacks = {}) const;
    /// Allocates and releases the result buffer of a decode to `frames` × `height` × `width` pixels, so that
    /// LibTorch's caching host allocator holds it for the first such decode: pinning a video's pages costs about
    /// as much as a third of its decode (0.36 s of the first 480p×81 decode on the H200, 0.76 s at 720p). Only
    /// where decode() pins its result (a GPU decode into host memory); elsewhere nothing.
    void reserve_result(int64_t frames, int64_t height, int64_t width) const;
    /// As decode(), without the final clamp (golden `video_unclamped`).
    at::Tensor decode_unclamped(const at::Tensor& z, const DecodeCallbacks& callbacks = {}) const;

    /// decode() spread over the ranks of `ranks` (collective: every rank calls it with the same latent). Each
    /// rank decodes a band of rows of every frame, exchanging the rows its 3×3 kernels reach with its
    /// neighbours and all-gathering keys and values for the middle attention, so the result equals decode()
    /// up to float rounding (no seams). Returns the video on ranks.rank() 0, an undefined tensor elsewhere.
    /// With more ranks than latent rows the ranks past the rows sit out (a log line says so). Cancellation
    /// (callbacks) is agreed on by all ranks before each latent frame. Ignores options().tiling.
    at::Tensor decode_across(const at::Tensor& z, dist::Communicator& ranks, const DecodeCallbacks& callbacks = {},
                             bool clamp = true) const;

    /// Video [3, F, H, W] (or [1, 3, F, H, W]) in [-1, 1], H and W multiples of 8 → normalised latent
    /// [z, 1+(F-1)/4, H/8, W/8] float32 on options().output_device. Frames after the last full chunk of 4
    /// are ignored, as upstream does (a warning is logged).
    at::Tensor encode(const at::Tensor& video, const DecodeCallbacks& callbacks = {}) const;

    /// 1 + 4(T-1) for T ≥ 1.
    int64_t num_frames_video(int64_t num_frames_latent) const;

    struct Impl;  ///< private (engine/vae)

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace wan::vae
