// The engine's load-time configuration, in one Torch-free place: what the command line, the GUI and the
// batch runner hand to the engine, and what the engine's ranks build from. Per-job settings live in
// wan::GenerationRequest (core.h). The runtime-only parts that cannot be written down (the mesh of
// communicators, the CUDA device index) are added by engine/pipeline's own config.
//
// Example:
//   wan::EngineConfig cfg;                      // defaults: the built-in demo checkpoint, device auto
//   cfg.ckpt_dir = "/models/Wan2.1-T2V-14B";
//   cfg.layout.ulysses = 4;  cfg.layout.dit_fsdp = true;
//   cfg.layout.world = 4;    cfg.layout.validate(40);   // throws wan::Error listing every problem
#pragma once

#include "core/component_paths.h"

#include <cstdint>
#include <string>
#include <vector>

namespace wan {

/// How the world of ranks is split. Ref: wan21-reference.md §8.3, §8.4.
///   - ulysses · ring ranks form one sequence-parallel (SP) group; with cfg_parallel the world is cut into
///     two halves (conditional: ranks [0, W/2), unconditional: [W/2, W)), each its own SP group.
///   - ulysses = ring = 1 with world > 1 is allowed: every rank (of a half) runs the full sequence
///     (useful with FSDP alone, §8.2).
///   - dit_fsdp / t5_fsdp with world 1 are accepted as no-ops with a warning (a world of one has nothing to
///     shard, and refusing the settings the GUI saved for a multi-GPU run would be unfriendly).
///   - cfg_parallel needs an even world; a world of one is an error like any odd one (the user asked for
///     two halves that cannot exist).
/// validate() is THE layout rule: the command line, the GUI, the batch runner and the engine all call it.
struct ParallelLayout {
    /// num_heads value for checks made before the checkpoint is read (the Ulysses/heads rule is skipped).
    static constexpr int64_t kHeadsUnknown = 0;

    int world = 1;             ///< number of processes (filled from MPI by whoever validates)
    int ulysses = 1;           ///< --ulysses-size
    int ring = 1;              ///< --ring-size
    bool cfg_parallel = false; ///< --cfg-parallel: the two guidance branches on the two halves of the world
    bool dit_fsdp = false;     ///< --dit-fsdp: DiT blocks sharded over the ranks of a cfg half
    bool t5_fsdp = false;      ///< --t5-fsdp: T5 blocks sharded over the world

    /// Every problem, one sentence each (empty when valid). `num_heads` of the DiT (12 or 40), or
    /// kHeadsUnknown before the checkpoint has been read.
    std::vector<std::string> errors(int64_t num_heads) const;
    /// Settings that are accepted but have no effect (world of one).
    std::vector<std::string> warnings() const;
    /// Throws wan::Error listing all errors. Does not log the warnings (the engine does, once).
    void validate(int64_t num_heads) const;
    /// Number of ranks of one SP group (ulysses · ring).
    int sp_size() const { return ulysses * ring; }
    /// Whether the world is cut into two CFG halves.
    bool cfg_split() const { return cfg_parallel && world > 1; }
    /// Sequence length rounded up to a multiple of sp_size() (§7.2: the padded token count S).
    int64_t padded_seq_len(int64_t tokens) const;
    /// "world 4, ulysses 2 × ring 1, cfg_parallel, dit_fsdp" (logs, the sidecar).
    std::string describe() const;
};

/// Divisors of `num_heads`: the Ulysses degrees it allows (12 → 1 2 3 4 6 12).
std::vector<int> valid_ulysses_sizes(int64_t num_heads);

/// Upstream's --offload_model, as what it does here.
enum class OffloadMode {
    Auto = 1,       ///< upstream's default: on for a single process, off distributed
    Off = 2,        ///< T5 weights stay on the device
    StreamT5 = 3,   ///< on CUDA keep T5's weights in host memory, streamed block by block while encoding
};

/// Everything the engine needs at load time. Grouped so that new kinds of settings join their group:
/// component files (--dit / --t5 / --vae, LoRAs, model kind) next to ckpt_dir.
struct EngineConfig {
    // ---- model files ----
    std::string ckpt_dir;               ///< Wan2.1 checkpoint folder; empty → the built-in tiny demo checkpoint
    /// Files replacing single components (--dit, --t5, --vae, --tokenizer, --dit-config), with or without
    /// ckpt_dir; with any of them and no ckpt_dir there is no demo fallback (io::ModelComponents::locate).
    ComponentPaths components;

    // ---- placement and precision ----
    std::string device = "auto";        ///< auto (CUDA when available) | cuda | cpu
    bool t5_cpu = false;                ///< run T5 on the CPU (upstream --t5_cpu)
    OffloadMode offload = OffloadMode::Auto;
    std::string vae_dtype = "auto";     ///< auto (bf16 on CUDA, f32 on CPU) | f32 | bf16
    std::string t5_dtype = "auto";      ///< T5 compute: auto (bf16 on CUDA, f32 on CPU) | f32 | bf16
    int vae_tile = 0;                   ///< spatial VAE tiling in latent pixels (0 = off)
    /// --vae-parallel: under mpirun every rank decodes a band of rows of each frame (vae::WanVAE::decode_across,
    /// equal to the one-rank decode); false: rank 0 decodes alone. Off with vae_tile > 0 (the tiled decode runs
    /// on rank 0 alone).
    bool vae_parallel = true;
    /// On CUDA, one small decode and one T5 encode at load so that the first job does not pay cuDNN's and the
    /// kernels' one-time set-up (Note [Warm-up at load] in engine/pipeline/pipeline.cpp).
    bool warm_up = true;
    /// The size the warm-up decode runs at (0 × 0: the model's default size). The CLI passes its job's --size, so
    /// that the warm-up meets (and with vae_autotune tunes) exactly the convolutions of the job to come.
    int warm_up_width = 0, warm_up_height = 0;
    /// --vae-autotune auto|on|off: cuDNN's algorithm search for the VAE's convolutions (Note [VAE autotuning] in
    /// engine/pipeline/pipeline.cpp). auto: on where the warm-up at load pays the search (CUDA, one decoding
    /// rank, no --max-vram / --offload-dit); WAN_CUDNN_BENCHMARK=0|1 overrides.
    std::string vae_autotune = "auto";
    /// --vae-chunk-frames N: latent frames per VAE decoder call after the first (Note [Decode chunks]); 0 = the
    /// engine's choice (one). More frames make bigger convolutions and take more memory; the video is the same up to
    /// summation order. Measured in engine/pipeline/pipeline.cpp (where it is applied).
    int vae_chunk_frames = 0;
    /// --offload-dit: the DiT blocks stay in host memory (pinned on CUDA) and are copied to the device one
    /// block ahead of use (dit::StreamedBlockWeights). With max_vram_gb > 0 only the blocks past the budget.
    bool offload_dit = false;
    /// --max-vram GB (> 0): keep as many DiT blocks resident as fit in GB (minus a working reserve), stream
    /// the rest from host memory; implies offload_dit where they do not all fit. 0 = no limit.
    double max_vram_gb = 0;
    /// --dit-dtype: how the DiT's block Linear weights are held. auto: fp8 for an F8_E4M3 (scaled) fp8 file, else
    /// the compute dtype | fp8: e4m3 codes with a scale per row, half of bf16 (other files quantised at load) |
    /// bf16: the compute dtype (bf16 on CUDA, f32 on the CPU; fp8 files widened). dit::WeightDtype.
    std::string dit_dtype = "auto";
    /// --ffn-chunks N: the DiT's FFN runs on N chunks of tokens, and with N > 1 its other activations are kept
    /// lean too (same result, lower peak: Note [Activation memory] in engine/dit/block.cpp). 0 = auto: 4 with
    /// fp8 DiT weights, --max-vram or --offload-dit, else 1 (pipeline::resolved_ffn_chunks).
    int ffn_chunks = 0;

    // ---- distribution ----
    ParallelLayout layout;
    /// Seconds any wait on another rank may last before the engine names the silent rank and ends every rank
    /// (--collective-timeout; 0 = no deadline). See engine/protocol/deadline.h and README "Failures".
    double collective_timeout_s = 600;

    // ---- beyond upstream ----
    double teacache_threshold = 0;      ///< > 0: step caching (see Note [Step caching] in engine/pipeline)
    bool fp8 = false;                   ///< FP8 block GEMMs on Hopper (dit::ModelOptions::fp8)
    /// --fp8-attention off|on|kmean: the DiT's self-attention in FP8 through FlashAttention-3 (on Hopper, in builds
    /// with it; else bf16 with a log line); kmean subtracts K's mean over the tokens first. dit::AttentionFp8.
    std::string fp8_attention = "off";
    /// Two-expert models (Wan2.2 A14B): keep the idle expert's block weights in pinned host memory and swap
    /// them in at the switch (--offload-idle-expert). Not with --dit-fsdp (the shards are small already).
    bool offload_idle_expert = false;
    /// --lora-backup auto|device|host: where the base values of LoRA-merged weights are kept for the next
    /// job's restore (lora::LoraSet::BackupPlace; auto = the GPU when it leaves room for the generation).
    std::string lora_backup = "auto";

    // ---- prompt extension (rank 0) ----
    std::string prompt_extend_method;   ///< dashscope | local_qwen | "" (not configured)
    std::string prompt_extend_model;    ///< model name (dashscope) or folder (local_qwen); "" = the method's default

    // ---- outputs ----
    std::string output_dir = "outputs"; ///< used when a request names none
    /// After each denoising step the head turns the clean-video estimate into small RGB frames for the
    /// progress callback (engine/preview: one 16×3 matrix product on the latent, no VAE).
    bool live_preview = true;
    /// --preview-dir: the head also writes DIR/preview.png after every step (atomically replaced), for people
    /// who watch a remote run. Empty: no file.
    std::string preview_dir;
};

}  // namespace wan
