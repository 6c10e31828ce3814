#include "pipeline/pipeline.h"

#include "core/clock.h"
#include "core/env.h"
#include "core/model_defaults.h"
#include "core/fault_injection.h"
#include "core/fs.h"
#include "io/save_new.h"
#include "protocol/deadline.h"
#include "core/seed.h"
#include "dist/dist.h"
#include "dit/dit.h"
#include "dit/streaming.h"
#include "pipeline/experts.h"
#include "pipeline/load_monitor.h"
#include "pipeline/parallel.h"
#include "preview/preview.h"
#include "io/component_files.h"
#include "io/io.h"
#include "lora/lora.h"
#include "sched/sched.h"
#include "text/text.h"
#include "vae/vae.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <unistd.h>

// Note [Distributed pipeline]
// Every rank runs generate() with the same request (rank 0 broadcast it, seed resolved). Every rank encodes
// the text itself (identical results, as upstream), draws the same noise, and runs every solver step:
//  - sequence parallel (U·R > 1): the DiT splits its tokens over the SP group (UspSequenceParallel), so
//    each rank holds the full latent but computes only its chunk of every block;
//  - cfg-parallel: half 0 computes the conditional prediction, half 1 the unconditional one, exchanged
//    each step over the cfg pair; each half is its own SP group;
//  - FSDP: blocks are sharded over the ranks of a cfg half (both halves run different branches, so their
//    per-block gathers cannot be matched across halves) and gathered one block at a time.
// At every step boundary (and once after preparing the job) all ranks agree on continue / cancel / failed in
// one tiny all-reduce (on_every_rank below), so that all leave at the same point and no rank is left waiting
// in a collective. Every rank ends with the same latent; by default (--vae-parallel) all ranks decode it
// together, each a band of rows (vae::WanVAE::decode_across), and rank 0 receives the video; with
// --vae-parallel false or --vae-tile only world rank 0 decodes.

// Note [Step caching]
// EngineConfig::teacache_threshold > 0 gives each CFG branch a dit::StepCache (TeaCache-style; see the
// Note of the same name in engine/dit/step_cache.cpp): the DiT skips its block stack on steps where its input
// barely changed and reuses the branch's last residual. Beyond upstream, off by default (0 passes no
// cache: bit-identical to upstream's arithmetic). The decision is taken identically on every SP rank (the
// change sums are all-reduced over the SP group); with cfg-parallel each half owns its branch's cache.

namespace wan::pipeline {

namespace {


bool cancel_requested(const std::atomic<bool>* cancel) {
    return cancel && cancel->load(std::memory_order_relaxed);
}

/// Runs `work` on this rank, then — with a mesh — every rank agrees on how it went, in one tiny all-reduce,
/// so that all leave together: Cancelled is thrown on every rank when one saw its cancel flag, wan::Error
/// when one failed (that rank's own message; `failed_elsewhere` on the others). A failing rank still takes
/// part in the agreement, so no peer waits in a collective; after a failure the communicators are settled
/// (re-created when one was left inconsistent: Note [Communicator renewal] in dist.h), so the next job runs. A
/// rank whose work threw Cancelled votes Cancel.
/// Without a mesh the cancel flag is checked first and exceptions pass straight through.
template <typename Work>
void on_every_rank(dist::Mesh* mesh, const std::atomic<bool>* cancel, const std::string& what,
                   const std::string& failed_elsewhere, Work&& work) {
    if (!mesh) {
        if (cancel_requested(cancel)) throw Cancelled();
        work();
        return;
    }
    const protocol::StageScope stage(what);  // named in the message if a peer stops answering meanwhile
    dist::StepStatus mine = dist::StepStatus::Continue;
    std::string failure;
    try {
        work();
    } catch (const Cancelled&) {
        mine = dist::StepStatus::Cancel;  // this rank saw a cancel inside the work (the load, between tensors)
    } catch (const std::exception& e) {
        mine = dist::StepStatus::Failed;
        failure = e.what();
        WAN_LOG_ERROR("%s failed: %s", what.c_str(), e.what());
        protocol::announce_failure(failure);  // peers left in one of this work's collectives learn why at once
    }
    if (mine == dist::StepStatus::Continue && cancel_requested(cancel)) mine = dist::StepStatus::Cancel;
    const dist::StepStatus agreed = mesh->agree(mine);
    if (agreed == dist::StepStatus::Cancel) throw Cancelled();
    if (agreed != dist::StepStatus::Failed) return;
    mesh->recover_after_failure();  // a failure mid-step may have left a communicator unusable for the next job
    if (failure.empty()) throw FailedElsewhere(failed_elsewhere);
    WAN_THROW("%s", failure.c_str());
}

/// Progress, trace and cancel of one job, and its start time (for the elapsed/ETA figures).
struct JobContext {
    const ProgressFn& progress;
    const TraceFn& trace;
    const std::atomic<bool>* cancel;
    Clock::time_point start = Clock::now();

    void report(Stage stage, int step, int total, double eta,
                std::shared_ptr<const PreviewFrames> preview = nullptr) const {
        if (!progress) return;
        ProgressInfo p;
        p.stage = stage;
        p.step = step;
        p.total = total;
        p.elapsed_s = seconds_since(start);
        p.eta_s = eta;
        p.preview = std::move(preview);
        progress(p);
    }
    void emit(const std::string& name, const at::Tensor& t) const {
        if (trace) trace(name, t.detach().to(at::kCPU).to(at::kFloat));
    }
};

/// Latent sizes of a request: [z_dim, T, h, w] and the (padded) DiT sequence length.
struct LatentShape {
    int64_t z_dim = 16, T = 1, h = 1, w = 1, seq_len = 1;
};

/// The text encodings of a job on the device: the prompt and the negative prompt.
struct PromptContext {
    at::Tensor cond, uncond;
};

}  // namespace

int64_t sequence_length(int64_t latent_frames, int64_t latent_h, int64_t latent_w, int sp_size) {
    // Upstream: math.ceil((h * w) / (p_h * p_w) * T / sp_size) * sp_size, in float arithmetic. Patching
    // floors odd sizes, but the float formula does not; keep the formula (it only adds padding).
    const double tokens = static_cast<double>(latent_h * latent_w) / 4.0 * static_cast<double>(latent_frames);
    return static_cast<int64_t>(std::ceil(tokens / sp_size)) * sp_size;
}

at::Tensor video_to_uint8(const at::Tensor& video) {
    WAN_CHECK(video.dim() == 4 && video.size(0) == 3, "video_to_uint8: expected [3, F, H, W], got %s",
              c10::str(video.sizes()).c_str());
    // Ref: §7.3 — clamp, (x + 1) / 2, × 255 in f32, truncation toward zero.
    at::Tensor x = video.to(at::kFloat).clamp(-1, 1);
    x = (x + 1.0) / 2.0;
    x = (x * 255.0).to(at::kByte);  // float → uint8 conversion truncates
    return x.permute({1, 2, 3, 0}).contiguous();  // [F, H, W, 3]
}

std::string demo_checkpoint_dir() {
    if (std::optional<std::string> env = env_string("WAN_DEMO_CKPT")) {
        WAN_CHECK(fs::is_dir(*env), "WAN_DEMO_CKPT='%s' is not a directory", env->c_str());
        return *env;
    }
    char exe[4096];
    ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        std::string dir(exe);
        dir = dir.substr(0, dir.find_last_of('/'));
        std::string installed = dir + "/../share/wanstudio/demo-ckpt";
        if (fs::is_dir(installed)) return installed;
    }
    std::string source = std::string(WAN_SOURCE_DIR) + "/tests/data/golden/tiny-ckpt";
    WAN_CHECK(fs::is_dir(source), "the built-in demo checkpoint was not found (looked in $WAN_DEMO_CKPT, "
              "<exe>/../share/wanstudio/demo-ckpt and %s); pass --ckpt-dir", source.c_str());
    return source;
}

struct T2VPipeline::Impl {
    EngineConfig config;
    io::ModelComponents ckpt;
    io::WanConfig wan_config;
    c10::Device device{c10::kCPU};
    std::unique_ptr<text::TextEncoder> text;
    std::unique_ptr<dit::WanModel> dit;       ///< the DiT; with two experts the low-noise one
    std::unique_ptr<dit::WanModel> dit_high;  ///< two experts (Wan2.2 A14B): the high-noise one; else null
    /// --offload-idle-expert: the experts' blocks, parkable in host memory (Note [Idle expert in host memory]).
    std::shared_ptr<ParkableBlockWeights> parkable_low, parkable_high;
    /// What is merged into each DiT now; restores the base weights between jobs (`--lora` applies to both
    /// experts of a two-expert model).
    lora::LoraSet dit_loras, dit_high_loras;
    std::unique_ptr<vae::WanVAE> vae;
    /// FSDP's own gather groups, split before the load's components (Note [Load agreement]); each is handed to
    /// the sharded weights that use it, so they are null after loading.
    std::unique_ptr<dist::Communicator> t5_gather_comm, dit_gather_comm, dit_high_gather_comm;
    EngineInfo info;
    LoadMonitor* load_monitor = nullptr;  ///< while loading: told what the sharded loaders read
    bool decode_here = true;
    bool decode_across_ranks = false;  ///< every rank holds the VAE and decodes a band of rows (--vae-parallel)

    // loading (the constructor)
    void load_text_encoder();
    void load_dit();
    void load_high_noise_dit();
    void load_all();
    template <typename Work>
    void load_component(LoadMonitor& monitor, const std::string& name, const std::string& file, Work&& work);
    bool t5_sharded() const;
    bool dit_sharded() const;
    void split_gather_communicators();
    /// The DiT's options before the file is looked at: the environment's switches, the device, --fp8.
    dit::ModelOptions dit_options() const;
    /// What this rank reads of the sharded parts of the text encoder and of a DiT (empty when not sharded).
    LoadMonitor::Share t5_share(const io::TensorStore& store) const;
    LoadMonitor::Share dit_share(const io::TensorStore& store, const io::WanConfig& wc) const;
    /// `gather_comm`: the DiT is FSDP-sharded over it (split_gather_communicators()); null: resident or streamed.
    std::unique_ptr<dit::WanModel> build_dit(const io::WanConfig& wc, const io::TensorStore& store,
                                             std::unique_ptr<dist::Communicator> gather_comm,
                                             std::shared_ptr<ParkableBlockWeights>* parkable) const;
    void load_vae();
    void warm_up();
    bool t5_streamed = false;  ///< T5's weights in host memory, streamed per encode
    dit::WanModel& expert_model(Expert e);
    /// --max-vram: says so when this job needs more working memory than the block placement planned for.
    void warn_beyond_max_vram(const GenerationRequest& r) const;
    void use_lora_backup_place() {
        const auto place = lora::LoraSet::parse_backup_place(config.lora_backup, "--lora-backup");
        dit_loras.set_backup_place(place);
        dit_high_loras.set_backup_place(place);
    }
    void make_resident(Expert e);

    // one job (generate())
    LatentShape latent_shape(const GenerationRequest& r) const;
    PromptContext encode_prompts(const GenerationRequest& r, PipelineOutput& out) const;
    /// The encodings of the last job's prompts, reused by the next job with the same ones (Note [Prompt reuse]).
    struct EncodedPrompts {
        std::string prompt, negative;
        bool guided = false;
        PromptContext ctx;
    };
    std::optional<EncodedPrompts> last_prompts;
    at::Tensor load_init_noise(const GenerationRequest& r, const LatentShape& s) const;
    at::Tensor initial_noise(const GenerationRequest& r, const LatentShape& s, int64_t* seed_used) const;
    at::Tensor denoise(const GenerationRequest& r, const LatentShape& s, const PromptContext& ctx, at::Tensor z,
                       const JobContext& job, PipelineOutput& out);
    void decode(const at::Tensor& z, const JobContext& job, PipelineOutput& out);
    std::optional<preview::PendingFrames> start_preview(const at::Tensor& z, const at::Tensor& v, double sigma,
                                                        int step, const JobContext& job) const;
    std::shared_ptr<const PreviewFrames> finish_preview(std::optional<preview::PendingFrames>& pending, int step) const;
    void apply_loras(const GenerationRequest& r, PipelineOutput& out);
};

namespace {
void fill_info(T2VPipeline::Impl& m, bool demo, dist::Mesh* mesh, const std::string& variant_in = "") {
    EngineInfo& info = m.info;
    const std::string variant = variant_in.empty() ? m.wan_config.variant() : variant_in;
    info.demo_checkpoint = demo;
    info.model_variant = demo ? "demo (tiny, random weights)" : variant;
    info.device = m.device.is_cuda() ? "cuda" : "cpu";
    if (mesh) {
        const auto& l = mesh->layout();
        info.world_size = l.world;
        info.ulysses_size = l.ulysses;
        info.ring_size = l.ring;
        info.cfg_parallel = l.cfg_split();
        info.dit_fsdp = l.dit_fsdp;
        info.t5_fsdp = l.t5_fsdp;
    }
#if WAN_HAVE_CUDA
    if (m.device.is_cuda()) info.device += std::string(" (") + at::cuda::getDeviceProperties(m.device.index())->name + ")";
#endif
    if (variant == "14B") {
        info.default_width = 1280;
        info.default_height = 720;
        info.sizes = {"1280*720", "720*1280", "832*480", "480*832"};
    } else if (variant == "1.3B") {
        info.default_width = 832;
        info.default_height = 480;
        info.sizes = {"832*480", "480*832"};
    } else {
        // The tiny demo model: small and few steps so that a laptop CPU finishes in seconds.
        info.default_width = 128;
        info.default_height = 128;
        info.default_frames = 17;
        info.default_steps = 8;
        info.sizes = {"128*128", "192*128", "128*192", "256*256"};
    }
    if (m.dit_high) {
        // Wan2.2 A14B: its row of the table at 14B sizes; a smaller two-expert model (the tests' tiny one)
        // keeps the demo sizes but takes the guide pair and the boundary.
        const ModelDefaults& a14b = model_defaults("A14B");
        if (variant == "14B" && !demo) {
            apply_model_defaults(a14b, info);
            info.model_variant = "A14B";
        } else {
            info.default_guide_scale = a14b.guide_scale;
            info.default_guide_scale_high = a14b.guide_scale_high;
            info.default_boundary = a14b.boundary;
            info.two_experts = true;
            info.model_variant += " (two experts)";
        }
    } else {
        info.default_guide_scale_high = info.default_guide_scale;
    }
}
}  // namespace

namespace {

// Note [T5 resident when there is room]
// A single process streams T5 from pinned host memory by default (--offload-model auto): each prompt then moves
// its 11.4 GB over PCIe once, 0.44 s on the H200, a sixth of a 4-step 1.3B job. Where the GPU's free memory holds
// T5 beside everything else the process keeps there for its life (the DiT file(s) as stored, an upper bound when
// they are held as fp8; the VAE; the working memory planned for the model's largest video) with kT5Spare to spare,
// auto keeps T5 resident instead. --max-vram and --offload-dit ask for little memory, so they keep it streamed; an
// explicit --offload-model true|false decides alone. Measured: docs/PERFORMANCE.md (session 31).
constexpr double kT5Spare = 3.0 * 1024 * 1024 * 1024;

bool t5_fits_resident(const io::ModelComponents& ckpt, const EngineConfig& config, c10::Device device) {
    if (!device.is_cuda() || config.max_vram_gb > 0 || config.offload_dit) return false;
#if WAN_HAVE_CUDA
    size_t free_b = 0, total_b = 0;
    {
        c10::cuda::CUDAGuard on(device);
        if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return false;
    }
    const io::WanConfig wc = ckpt.dit_config();
    double needed = static_cast<double>(ckpt.open_t5().total_bytes() + ckpt.open_dit().total_bytes() +
                                        ckpt.open_vae().total_bytes());
    if (ckpt.two_experts && !config.offload_idle_expert)
        needed += static_cast<double>(ckpt.open_high_noise_dit().total_bytes());
    needed += planned_working_memory_bytes(wc.dim, wc.variant(), false) + kT5Spare;
    const double gb = 1e9;
    WAN_LOG_INFO("text encoder %s: %.1f GB free on %s, %.1f GB needed with T5 resident (--offload-model true|false "
                 "decides instead)", needed <= static_cast<double>(free_b) ? "kept on the GPU" : "streamed from host memory",
                 static_cast<double>(free_b) / gb, device.str().c_str(), needed / gb);
    return needed <= static_cast<double>(free_b);
#else
    return false;
#endif
}

}  // namespace

void T2VPipeline::Impl::load_text_encoder() {
    dist::Mesh* mesh = config.mesh;
    const bool t5_fsdp = mesh && mesh->layout().t5_fsdp;
    try {
        text::UMT5Options topt;
        topt.device = config.t5_cpu ? c10::Device(c10::kCPU) : device;
        // auto leaves UMT5Options' own default (f32 on the CPU, as the golden data; bf16 on CUDA). bf16 on the
        // CPU: 4.92 s against 10.85 s per prompt pair on the H200 host's 16 cores (docs/PERFORMANCE.md).
        if (config.t5_dtype == "f32") topt.dtype = at::kFloat;
        if (config.t5_dtype == "bf16") topt.dtype = at::kBFloat16;
        const bool single = mesh == nullptr || mesh->world().size() == 1;
        const bool offload = config.offload == OffloadMode::Auto ? single && !t5_fits_resident(ckpt, config, topt.device)
                                                                 : config.offload == OffloadMode::StreamT5;
        // --t5-cpu streams too: bf16 host weights converted per block (half the RAM of resident f32).
        topt.stream_weights = (offload || config.t5_cpu) && !(t5_fsdp && !config.t5_cpu);
        t5_streamed = topt.stream_weights;
        if (t5_gather_comm) {  // t5_sharded()
            io::TensorStore store = ckpt.open_t5();
            text::UMT5Config tcfg = text::UMT5Config::from_store(store);
            auto provider = std::make_shared<ShardedT5Weights>(store, tcfg, std::move(t5_gather_comm), topt.device, topt.resolved_dtype());
            if (load_monitor) load_monitor->confirm_shard(static_cast<uint64_t>(provider->params().bytes_read()));
            text = std::make_unique<text::TextEncoder>(text::UMT5Tokenizer::from_bytes(ckpt.tokenizer_bytes(), ckpt.tokenizer_source(),
                                                                                       wan_config.text_len),
                                                       text::UMT5Encoder(tcfg, provider, topt));
        } else {
            text = std::make_unique<text::TextEncoder>(ckpt, topt);
        }
    } catch (const Cancelled&) {
        throw;
    } catch (const Error& e) {
        throw Error(std::string("loading the text encoder from ") + ckpt.t5_path + ": " + e.what(), e.where());
    }
}

namespace {

// Note [What --max-vram keeps free]
// --max-vram GB is a ceiling for everything on the device, so the DiT blocks get what is left after the job's
// working memory. That memory grows with the video: the denoising holds a few activations of width `dim` per
// token, the decode a few feature maps per output pixel (one latent frame at a time, so not per frame). Fitted on
// the H200 with 14B random weights (docs/PERFORMANCE.md, session 29: peak minus resident weights, 480p and 720p,
// 81 frames): denoising ≈ 22 B × dim per token, decode ≈ 10 kB per output pixel, plus ~2.5 GB of fixed buffers
// (T5's streamed block, the VAE weights, cuBLAS/cuDNN workspaces). The blocks are placed once at load, before any
// request is known, so the plan covers the model's largest trained size at its default frame count; a larger job
// is warned about (working_memory_bytes below, checked per job in generate()).
// With lean activations and a chunked FFN (the default of --max-vram since session 30) the denoising holds
// 8 B × dim per token less (Note [Activation memory] in engine/dit/block.cpp: estimated, not yet fitted); for 14B
// at 81 frames the decode term is the larger one either way, so the plan for the trained sizes is unchanged.
constexpr double kFixedWorkingBytes = 2.5e9;
constexpr double kDenoiseBytesPerTokenPerDim = 22;
constexpr double kLeanDenoiseBytesPerTokenPerDim = 22 - 8;
constexpr double kDecodeBytesPerPixel = 10e3;

}  // namespace

double working_memory_bytes(int64_t dim, int width, int height, int frames, bool lean) {
    const double latent_frames = (frames - 1) / 4 + 1;
    const double tokens = latent_frames * (height / 16) * (width / 16);
    const double per_token = lean ? kLeanDenoiseBytesPerTokenPerDim : kDenoiseBytesPerTokenPerDim;
    const double denoise = per_token * static_cast<double>(dim) * tokens;
    const double decode = kDecodeBytesPerPixel * static_cast<double>(width) * height;
    return kFixedWorkingBytes + std::max(denoise, decode);
}

double planned_working_memory_bytes(int64_t dim, const std::string& variant, bool lean) {
    const ModelDefaults& d = model_defaults(variant);
    double most = working_memory_bytes(dim, d.width, d.height, d.frames, lean);
    for (const std::string& size : d.sizes) {
        int w = 0, h = 0;
        if (std::sscanf(size.c_str(), "%d*%d", &w, &h) == 2)
            most = std::max(most, working_memory_bytes(dim, w, h, d.frames, lean));
    }
    return most;
}

bool memory_first(const EngineConfig& config, bool dit_fp8_weights) {
    return dit_fp8_weights || config.max_vram_gb > 0 || config.offload_dit;
}

vae::VAESpeedOptions default_vae_speed(c10::Device device, bool memory_first) {
    // The switches that pay on their own (H200, 480p×81 bf16, 2026-12-02, docs/PERFORMANCE.md): the fused norm +
    // SiLU kernel 1.225 → 1.062 s (67 dB against the plain decode), the conv input written behind the cache
    // 1.225 → 1.186 s (bit-exact), and with both on the sub-pixel upsample 1.030 → 0.993 s (51.6 dB against f32,
    // as plain bf16). fold_time and pad_head measured slower or equal: they stay off.
    vae::VAESpeedOptions speed;
    speed.fused_norm = speed.cache_buffer = speed.subpixel_upsample = device.is_cuda();
    // Memory: the decoder's tail one output frame at a time (Note [Decode tail]), measured on the H200 (session
    // 32): the 14B fp8 480p job's peak 18.13 → 17.60 GB, the decode 0.870 → 0.960 s at 480p and 2.049 → 2.261 s at
    // 720p (+10 %). So on where memory is what the user asked for, as --ffn-chunks; off on the CPU, whose RAM is
    // not the limit.
    speed.tail_frames = device.is_cuda() && memory_first ? 1 : 0;
    return speed;
}

int64_t warm_up_latent_frames(int64_t chunk_frames, int64_t video_latent_frames) {
    const int64_t n = std::max<int64_t>(1, chunk_frames);
    const int64_t last = (video_latent_frames - 1) % n;  // the shorter last chunk's frames (0: none)
    return std::max<int64_t>(1, std::min(video_latent_frames, 1 + 2 * n + last));
}

// Note [VAE autotuning]
// With cuDNN's benchmark mode on, the first convolution of each new shape tries every algorithm and keeps the
// fastest for the process. On the VAE decode it pays: 480p 1.071 → 0.915 s and 720p 2.558 → 2.196 s (−14 %, H100,
// bf16 with the default switches, 2026-12-02, docs/PERFORMANCE.md). The search itself costs seconds, once per
// shape, which is why it used to be opt-in: it landed in the first job's decode. Now the warm-up at load (Note
// [Warm-up at load]) decodes the first latent frames at the job's size (the CLI's --size, else the model's
// default), which meet every convolution shape of a decode of that size, so the search is paid at load and every job at
// that size runs tuned; a job at another size pays it in its first decode (later ones at that size are tuned).
// auto leaves it off where no warm-up decode runs (the decode across ranks) and under --max-vram /
// --offload-dit, where the search's scratch buffers could crowd a small card.
bool vae_autotune_enabled(const EngineConfig& config, bool cuda, bool decode_across_ranks) {
    const std::string& v = config.vae_autotune;
    WAN_CHECK(v == "auto" || v == "on" || v == "off", "--vae-autotune '%s': expected auto, on or off", v.c_str());
    if (!cuda || v == "off") return false;
    if (v == "on") return true;
    return config.warm_up && !decode_across_ranks && config.max_vram_gb <= 0 && !config.offload_dit;
}

int resolved_ffn_chunks(const EngineConfig& config, bool dit_fp8_weights) {
    // Measured on the H200 (session 31, 14B fp8, 2 steps): 4 chunks take the denoising's peak from 18.75 to 17.20 GB
    // at 480p (+1.4 % per step) and from 19.19 to 16.78 GB at 720p with --max-vram 22 (+0.6 %). So on where memory
    // is what the user asked for (fp8 weights, --max-vram, --offload-dit); elsewhere the 1 % stays with speed.
    if (config.ffn_chunks > 0) return config.ffn_chunks;
    return memory_first(config, dit_fp8_weights) ? 4 : 1;
}

namespace {

// --offload-dit / --max-vram: how many DiT blocks stay on the device (Note [Streamed DiT blocks]).
// `models`: DiTs sharing the budget (2 for Wan2.2's experts, each gets half).
int64_t resident_dit_blocks(const EngineConfig& config, const io::WanConfig& c, dit::Precision precision, bool fp8,
                            int models, const std::string& variant) {
    if (config.max_vram_gb <= 0) return config.offload_dit ? 0 : c.num_layers;
    const double gib = 1024.0 * 1024.0 * 1024.0;
    const double working = planned_working_memory_bytes(c.dim, variant, resolved_ffn_chunks(config, fp8) > 1);
    const int64_t budget = static_cast<int64_t>((config.max_vram_gb * gib - working) / models) -
                           dit::root_weight_bytes(c, precision);
    const int64_t block = dit::block_weight_bytes(c, precision, fp8);
    const int64_t keep = dit::resident_block_count(std::max<int64_t>(budget, 0), block, c.num_layers);
    WAN_LOG_INFO("--max-vram %.1f GiB: %lld of %lld DiT blocks resident (%.2f GiB each), the rest streamed from host "
                 "memory; %.1f GiB kept for the working memory of the largest %s video",
                 config.max_vram_gb, static_cast<long long>(keep), static_cast<long long>(c.num_layers),
                 static_cast<double>(block) / gib, working / gib, variant.c_str());
    return keep;
}

// --dit-dtype, resolved against the file (auto: fp8 for an F8_E4M3 or F8_E5M2 file). FSDP shards keep the compute
// dtype.
dit::WeightDtype dit_weight_dtype(const EngineConfig& config, const io::WanConfig& wc, const io::TensorStore& store,
                                  dit::ModelOptions options, bool fsdp) {
    const std::optional<dit::WeightDtype> asked = dit::parse_weight_dtype(config.dit_dtype);
    WAN_CHECK(asked.has_value(), "--dit-dtype '%s': expected auto, fp8 or bf16", config.dit_dtype.c_str());
    options.weight_dtype = *asked;
    const dit::WeightDtype resolved = dit::resolve_weight_dtype(options, wc, store);
    if (resolved == dit::WeightDtype::Fp8 && fsdp) {
        WAN_LOG_WARN("--dit-dtype fp8 is not available with --dit-fsdp (the shards keep the compute dtype); the DiT "
                     "is held in bf16");
        return dit::WeightDtype::Compute;
    }
    if (resolved == dit::WeightDtype::Fp8 && wc.num_layers > 0) {
        const std::string probe = "blocks.0.ffn.0.weight";
        if (store.contains(probe) && store.stores_fp8(probe) && !store.stores_e4m3(probe))
            WAN_LOG_INFO("DiT: the F8_E5M2 block Linear weights are held as fp8, each row re-coded as e4m3 codes with "
                         "a power-of-two scale (exact but for values more than 2^16 times smaller than their row's "
                         "largest: a line per block counts them)");
    }
    return resolved;
}

// --ffn-chunks (resolved) on a built DiT: its FFN chunks, and lean activations with more than one.
void apply_ffn_chunks(dit::WanModel& model, const EngineConfig& config) {
    const int chunks = resolved_ffn_chunks(config, model.fp8_weights());
    model.set_activation_memory(chunks, chunks > 1);
    if (chunks > 1)
        WAN_LOG_INFO("DiT activations: the FFN in %d chunks of tokens, q/k/v from separate GEMMs, text K/V recomputed "
                     "per forward (--ffn-chunks %d%s)", chunks, chunks, "");
}

// One line saying how the DiT is held (the log, and what --inspect's users look for).
void log_dit_held(const dit::WanModel& model) {
    const auto [blocks, root] = model.weight_bytes();
    const char* held = model.fp8_weights()                               ? "fp8 (e4m3 Linear weights, a scale per row)"
                       : model.precision() == dit::Precision::BF16Mixed ? "bf16"
                                                                        : "f32";
    WAN_LOG_INFO("DiT held as %s: %.2f GB of block weights (%lld bytes) + %.2f GB embeddings and head", held,
                 static_cast<double>(blocks) / 1e9, static_cast<long long>(blocks), static_cast<double>(root) / 1e9);
}

}  // namespace

void T2VPipeline::Impl::warn_beyond_max_vram(const GenerationRequest& r) const {
    if (config.max_vram_gb <= 0) return;
    const bool lean = dit->options().lean_activations;
    const double need = working_memory_bytes(wan_config.dim, r.width, r.height, r.frame_num, lean);
    const double planned = planned_working_memory_bytes(wan_config.dim, info.model_variant, lean);
    if (need > planned * 1.05)
        WAN_LOG_WARN("--max-vram %.1f GiB: %d×%d×%d needs about %.1f GiB of working memory, the blocks were placed "
                     "for %.1f GiB; the GPU may use more than the limit (fewer frames, or a lower --max-vram)",
                     config.max_vram_gb, r.width, r.height, r.frame_num, need / (1 << 30), planned / (1 << 30));
}

dit::ModelOptions T2VPipeline::Impl::dit_options() const {
    dit::ModelOptions dopt = dit::ModelOptions::from_environment();  // WAN_FP8, WAN_FUSED, WAN_ATTENTION, ...
    dopt.device = device;
    dopt.fp8 = dopt.fp8 || config.fp8;
    const std::optional<dit::AttentionFp8> fp8_attention = dit::parse_attention_fp8(config.fp8_attention);
    WAN_CHECK(fp8_attention.has_value(), "--fp8-attention '%s': expected off, on or kmean", config.fp8_attention.c_str());
    if (*fp8_attention != dit::AttentionFp8::Off) dopt.attention_fp8 = *fp8_attention;  // else WAN_FP8_ATTENTION's
    return dopt;
}

std::unique_ptr<dit::WanModel> T2VPipeline::Impl::build_dit(const io::WanConfig& wc, const io::TensorStore& store,
                                                             std::unique_ptr<dist::Communicator> gather_comm,
                                                             std::shared_ptr<ParkableBlockWeights>* parkable) const {
    dist::Mesh* mesh = config.mesh;
    dit::ModelOptions dopt = dit_options();
    const bool fsdp = mesh && mesh->layout().dit_fsdp && mesh->cfg_half().size() > 1;
    dopt.weight_dtype = dit_weight_dtype(config, wc, store, dopt, fsdp);
    std::unique_ptr<dit::WanModel> model;
    if (gather_comm) {
        if (config.offload_dit || config.max_vram_gb > 0)
            WAN_LOG_WARN("--offload-dit / --max-vram are ignored with --dit-fsdp (each rank holds a shard)");
        dit::validate_checkpoint(wc, store);
        auto blocks = std::make_shared<ShardedDitBlocks>(wc, store, std::move(gather_comm), dopt);
        if (load_monitor) load_monitor->confirm_shard(static_cast<uint64_t>(blocks->params().bytes_read()));
        model = std::make_unique<dit::WanModel>(wc, dit::load_root_weights(wc, store, dopt), blocks, dopt);
    } else if (config.offload_dit || config.max_vram_gb > 0) {
        // Streamed blocks (Note [Streamed DiT blocks]); a two-expert model streams both experts' blocks.
        dit::validate_checkpoint(wc, store);
        const dit::Precision precision = dopt.precision != dit::Precision::Auto ? dopt.precision
                                         : device.is_cpu()                       ? dit::Precision::Float32
                                                                                 : dit::Precision::BF16Mixed;
        const bool fp8 = dopt.weight_dtype == dit::WeightDtype::Fp8;
        auto blocks = dit::StreamedBlockWeights::load(
            wc, store, dopt, resident_dit_blocks(config, wc, precision, fp8, ckpt.two_experts ? 2 : 1, wc.variant()));
        model = std::make_unique<dit::WanModel>(wc, dit::load_root_weights(wc, store, dopt), blocks, dopt);
    } else if (parkable) {
        dit::validate_checkpoint(wc, store);
        std::vector<dit::BlockWeights> blocks;
        for (int64_t i = 0; i < wc.num_layers; ++i) blocks.push_back(dit::load_block_weights(wc, store, i, dopt));
        *parkable = std::make_shared<ParkableBlockWeights>(std::move(blocks), device);
        model = std::make_unique<dit::WanModel>(wc, dit::load_root_weights(wc, store, dopt), *parkable, dopt);
    } else {
        model = std::make_unique<dit::WanModel>(wc, store, dopt);
    }
    if (mesh && mesh->layout().sp_size() > 1) model->set_sequence_parallel(std::make_shared<UspSequenceParallel>(*mesh));
    else if (mesh) model->set_sequence_parallel(std::make_shared<WatchedReadBack>());
    apply_ffn_chunks(*model, config);
    log_dit_held(*model);
    return model;
}

// One DiT, or the low-noise expert of Wan2.2 A14B (load_high_noise_dit() the other; both sharded under
// --dit-fsdp; with --offload-idle-expert parkable in host memory).
void T2VPipeline::Impl::load_dit() {
    const bool fsdp = config.mesh && config.mesh->layout().dit_fsdp;
    const bool streamed = config.offload_dit || config.max_vram_gb > 0;
    const bool park = ckpt.two_experts && config.offload_idle_expert && !fsdp && !streamed;
    if (config.offload_idle_expert && !ckpt.two_experts) WAN_LOG_WARN("--offload-idle-expert: the model has one DiT; ignored");
    if (config.offload_idle_expert && ckpt.two_experts && fsdp) WAN_LOG_WARN("--offload-idle-expert: ignored with --dit-fsdp");
    try {
        dit = build_dit(wan_config, ckpt.open_dit(), std::move(dit_gather_comm), park ? &parkable_low : nullptr);
        // Parked before the high-noise expert loads, so that the device never holds both; the first steps
        // (high-noise) then need no swap.
        if (park) parkable_low->park();
    } catch (const Cancelled&) {
        throw;
    } catch (const Error& e) {
        throw Error(std::string("loading the DiT from ") + ckpt.dit_path + ": " + e.what(), e.where());
    }
}

void T2VPipeline::Impl::load_high_noise_dit() {
    const bool park = parkable_low != nullptr;  // load_dit() made the low-noise expert parkable
    try {
        const io::WanConfig high = ckpt.high_noise_dit_config();
        WAN_CHECK(high.dim == wan_config.dim && high.num_heads == wan_config.num_heads &&
                      high.num_layers == wan_config.num_layers && high.in_dim == wan_config.in_dim,
                  "the high-noise expert (%s) and the low-noise expert (%s) differ in size", high.variant().c_str(),
                  wan_config.variant().c_str());
        dit_high = build_dit(high, ckpt.open_high_noise_dit(), std::move(dit_high_gather_comm),
                             park ? &parkable_high : nullptr);
        if (park) parkable_high->make_pinned_copy();  // at load, not at the first video's switch
    } catch (const Cancelled&) {
        throw;
    } catch (const Error& e) {
        throw Error(std::string("loading the high-noise expert from ") + ckpt.high_noise_dit_path + ": " + e.what(), e.where());
    }
}

dit::WanModel& T2VPipeline::Impl::expert_model(Expert e) {
    return e == Expert::HighNoise && dit_high ? *dit_high : *dit;
}

// With the idle expert parked: the other one out first, then `e` in (never both on the device at once).
void T2VPipeline::Impl::make_resident(Expert e) {
    if (!parkable_high || !parkable_low) return;
    const auto t0 = Clock::now();
    ParkableBlockWeights& active = e == Expert::HighNoise ? *parkable_high : *parkable_low;
    ParkableBlockWeights& idle = e == Expert::HighNoise ? *parkable_low : *parkable_high;
    if (!active.parked()) return;
    idle.park();
    active.unpark();
#if WAN_HAVE_CUDA
    // The copies are asynchronous; wait once so that the logged swap time is the copy's, not its launch's
    // (the next forward would wait for them anyway).
    if (device.is_cuda()) at::cuda::getCurrentCUDAStream(device.index()).synchronize();
#endif
    WAN_LOG_INFO("switched to the %s expert in %.2f s (idle expert parked in host memory)", expert_name(e), seconds_since(t0));
}

void T2VPipeline::Impl::load_vae() {
    try {
        vae::VAEOptions vopt;
        vopt.device = device;
        // auto: bf16 on CUDA (1.43 s vs 2.0 s for 480p×81 on the H100, PSNR 51 dB against f32 on random
        // weights: docs/PERFORMANCE.md), f32 on the CPU; --vae-dtype f32 gives upstream's precision.
        const bool bf16 = config.vae_dtype == "bf16" || (config.vae_dtype == "auto" && device.is_cuda());
        vopt.dtype = bf16 ? at::kBFloat16 : at::kFloat;
        vopt.load_encoder = false;  // T2V only decodes
        vopt.channels_last = device.is_cuda();  // cuDNN's native layout: 1.44 → 1.24 s at 480p, H200
        vopt.speed = default_vae_speed(device, memory_first(config, dit && dit->fp8_weights()));
        // --vae-chunk-frames (Note [Decode chunks]): not on by default. In the VAE benchmark three latent frames
        // per call decode 720p in 1.991 s instead of 2.052 s (H200, session 33, decode peak 8.85 → 13.10 GB), but
        // in a whole 480p job the decode measured 1.09 s with three against 0.97 s with one (another H200 of the
        // same day): not a clear win, so the user chooses.
        if (config.vae_chunk_frames > 0) vopt.speed.chunk_frames = config.vae_chunk_frames;
        if (config.vae_tile > 0) {
            vopt.tiling.enabled = true;
            vopt.tiling.tile_size = config.vae_tile;
            vopt.tiling.overlap = std::max<int64_t>(1, config.vae_tile / 4);
        }
        io::TensorStore store = ckpt.open_vae();
        vae = std::make_unique<vae::WanVAE>(store, vopt);
    } catch (const Cancelled&) {
        throw;
    } catch (const Error& e) {
        throw Error(std::string("loading the VAE from ") + ckpt.vae_path + ": " + e.what(), e.where());
    }
}

// Note [Warm-up at load]
// A process's first decode pays cuDNN's one-time set-up (kernels loaded on first use, a plan built per
// convolution shape): at 480p on the H200 1.8–2.0 s against 1.03 s for the next ones; the first T5 encode
// likewise (0.37 s against 0.01 s). Both run once at the end of the load on CUDA, at the job's size (the CLI's
// --size, else the model's default), so the first job costs what the next ones do:
//  - a decode of the first latent frames (warm_up_latent_frames): the decoder runs the first latent frame alone,
//    then chunks of VAESpeedOptions::chunk_frames (Note [Decode chunks]); the first frame, the first chunk (its
//    caches hold one frame), a steady chunk and the video's shorter last chunk meet every convolution shape of a
//    video of the model's default length at that size — three latent frames a frame at a time, nine in chunks of
//    three (21 = 1 + 6·3 + 2); two frames left a shape to the first job (its decode 1.24 s against 1.04 s for the
//    next, H200, 2026-12-02);
//  - the decode's pinned result buffer for the model's default frame count, allocated and released to LibTorch's
//    caching host allocator (WanVAE::reserve_result), which the first video's decode then takes;
//  - one T5 encode (it always runs its text_len tokens).
// With Note [VAE autotuning] the decode also pays cuDNN's algorithm search (2.7–6.4 s at load). Skipped where
// they would cost more than they save or involve peers: the decode across ranks (collective, other shapes), T5
// streamed from host memory or sharded.
void T2VPipeline::Impl::warm_up() {
    if (!device.is_cuda() || !config.warm_up) return;
    const auto t0 = Clock::now();
    GenerationRequest r;
    r.width = info.default_width;
    r.height = info.default_height;
    const int64_t video_latent = (info.default_frames - 1) / 4 + 1;
    r.frame_num = static_cast<int>(4 * (warm_up_latent_frames(vae ? vae->options().speed.chunk_frames : 1, video_latent) - 1) + 1);
    LatentShape s = latent_shape(r);
    if (config.warm_up_width > 0 && config.warm_up_height > 0) {
        GenerationRequest job = r;
        job.width = config.warm_up_width;
        job.height = config.warm_up_height;
        try {
            s = latent_shape(job);
            r = job;
        } catch (const Error& e) {  // the job itself will say what is wrong with its size
            WAN_LOG_WARN("warm-up at the default size: %s", e.what());
        }
    }
    const bool decode_warm = vae && decode_here && !decode_across_ranks;
    if (decode_warm) {
        (void)vae->decode(at::zeros({s.z_dim, s.T, s.h, s.w}, at::TensorOptions().device(device)));
        vae->reserve_result(info.default_frames, r.height, r.width);
    }
    const bool encode_warm = text && !t5_streamed && !config.t5_cpu && !t5_sharded();
    if (encode_warm) (void)text->encode({std::string("warm-up")});
    if (decode_warm || encode_warm)
        WAN_LOG_INFO("warm-up (%s%s%s, %d×%d) in %.2f s: the first job runs at full speed",
                     decode_warm ? (at::globalContext().benchmarkCuDNN() ? "VAE decode, cuDNN autotuned" : "VAE decode")
                                 : "",
                     decode_warm && encode_warm ? " + " : "", encode_warm ? "T5 encode" : "", r.width, r.height,
                     seconds_since(t0));
}

// Note [Load agreement]
// Loading reports progress and can be cancelled between tensors (LoadMonitor, installed as the io read
// observer). With a mesh the components are the agreement points: each ends with one on_every_rank() agreement,
// so a cancel (or a failure) seen by any rank ends the load on every rank at the same component boundary. No
// component calls a collective (FSDP's communicators are split before the first one: split_gather_communicators),
// so a rank that stops between tensors leaves no peer in a collective. The rank that
// sees the cancel also sends a notice (protocol Note [Cancel notices]) so that the peers stop their reading
// too instead of finishing the component. A cancelled load keeps nothing: the constructor throws and every
// part built so far is freed.
template <typename Work>
void T2VPipeline::Impl::load_component(LoadMonitor& monitor, const std::string& name, const std::string& file,
                                       Work&& work) {
    on_every_rank(config.mesh, nullptr, "loading the " + name,
                  "another rank failed while loading the " + name + " (see its log)", [&] {
                      monitor.begin(name, file);
                      work();
                      monitor.end();
                  });
}

bool T2VPipeline::Impl::t5_sharded() const {
    return config.mesh && config.mesh->layout().t5_fsdp && config.mesh->world().size() > 1 && !config.t5_cpu;
}

bool T2VPipeline::Impl::dit_sharded() const {
    return config.mesh && config.mesh->layout().dit_fsdp && config.mesh->cfg_half().size() > 1;
}

// Splitting is collective, so it happens here, on every rank, before any component: inside one a rank may stop
// early (a cancel), and a peer left in a split would wait forever. Each sharded part has a group of its own: on
// the GPU its gathers run on a side stream, which must not interleave with the attention collectives of the
// same NCCL communicator.
void T2VPipeline::Impl::split_gather_communicators() {
    if (t5_sharded()) t5_gather_comm = config.mesh->world().split(0, config.mesh->world().rank());
    if (!dit_sharded()) return;
    dist::Communicator& half = config.mesh->cfg_half();
    dit_gather_comm = half.split(0, half.rank());
    if (ckpt.two_experts) dit_high_gather_comm = half.split(0, half.rank());
}

// Note [FSDP load progress]
// The bar counts what this rank reads. Under --dit-fsdp / --t5-fsdp a rank copies only its shard of each block
// tensor out of the file's view (dist::ShardedParameters), so the plan counts those tensors at the rank's share,
// worked out from the headers by the same rule (shard_share), and each read counts that share, not the view's
// size: the head's bar ends at 100 % and its "x of y GB" is what the head read. The loader then says what it
// copied (confirm_shard), and a difference is logged, never hidden.
LoadMonitor::Share T2VPipeline::Impl::t5_share(const io::TensorStore& store) const {
    if (!t5_sharded()) return {};
    // Every block tensor is kept in one dtype, so whichever it is gives the same flat buffers.
    const ShardUnits units = ShardedT5Weights::units(text::UMT5Config::from_store(store), at::kFloat);
    return shard_share(store, units, config.mesh->world().size(), config.mesh->world().rank());
}

LoadMonitor::Share T2VPipeline::Impl::dit_share(const io::TensorStore& store, const io::WanConfig& wc) const {
    if (!dit_sharded()) return {};
    const ShardUnits units = ShardedDitBlocks::units(wc, dit_options());
    return shard_share(store, units, config.mesh->cfg_half().size(), config.mesh->cfg_half().rank());
}

void T2VPipeline::Impl::load_all() {
    const auto t0 = Clock::now();
    LoadMonitor monitor(config.load, config.mesh != nullptr);
    load_monitor = &monitor;
    struct Forget {  // the monitor lives only as long as this load
        LoadMonitor*& ref;
        ~Forget() { ref = nullptr; }
    } forget{load_monitor};
    // The plan first (headers only), so that the bytes of every component make one total from the start; agreed,
    // as a header that one host cannot read must not leave the others in the first component's agreement.
    const char* dit_name = ckpt.two_experts ? "low-noise DiT" : "DiT";
    on_every_rank(config.mesh, nullptr, "reading the model's headers",
                  "another rank could not read the model's headers (see its log)", [&] {
                      const io::TensorStore t5 = ckpt.open_t5();
                      monitor.plan("text encoder", t5.total_bytes(), t5_share(t5));
                      const io::TensorStore low = ckpt.open_dit();
                      monitor.plan(dit_name, low.total_bytes(), dit_share(low, wan_config));
                      if (ckpt.two_experts) {
                          const io::TensorStore high = ckpt.open_high_noise_dit();
                          monitor.plan("high-noise DiT", high.total_bytes(), dit_share(high, ckpt.high_noise_dit_config()));
                      }
                      monitor.plan("VAE", decode_here ? ckpt.open_vae().total_bytes() : 0);
                  });
    split_gather_communicators();
    const io::ScopedTensorReadObserver observe([&monitor](const io::TensorInfo& t) { monitor.tensor_read(t); });
    try {
        load_component(monitor, "text encoder", ckpt.t5_path, [&] { load_text_encoder(); });
        load_component(monitor, dit_name, ckpt.dit_path, [&] { load_dit(); });
        if (ckpt.two_experts)
            load_component(monitor, "high-noise DiT", ckpt.high_noise_dit_path, [&] { load_high_noise_dit(); });
        // On every rank, also where nothing is loaded (--vae-parallel false: only rank 0 decodes), since every
        // rank takes part in each component's agreement.
        load_component(monitor, "VAE", ckpt.vae_path, [&] {
            if (decode_here) load_vae();
        });
    } catch (const Cancelled&) {
        const std::string during = monitor.current_component();
        WAN_LOG_WARN("loading cancelled%s after %.1f s", during.empty() ? "" : (" during the " + during).c_str(),
                     seconds_since(t0));
        throw;
    }
    WAN_LOG_INFO("models loaded in %.1f s on %s", seconds_since(t0), device.str().c_str());
}

namespace {
/// Note [VAE autotuning] for this process (cuDNN's flag is global); WAN_CUDNN_BENCHMARK=0|1 overrides the option.
void set_vae_autotune(const EngineConfig& config, c10::Device device, bool decode_across_ranks) {
    const bool tune = vae_autotune_enabled(config, device.is_cuda(), decode_across_ranks);  // checks the value too
    if (!device.is_cuda()) return;
    const std::optional<std::string> bench = env_string("WAN_CUDNN_BENCHMARK");
    at::globalContext().setBenchmarkCuDNN(bench ? *bench == "1" : tune);
}
}  // namespace

T2VPipeline::T2VPipeline(const EngineConfig& config) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.config = config;
    m.use_lora_backup_place();
    const bool demo = config.ckpt_dir.empty() && config.components.empty();
    m.ckpt = io::ModelComponents::locate(demo ? demo_checkpoint_dir() : config.ckpt_dir, config.components);
    m.wan_config = m.ckpt.dit_config();
    m.device = dist::pick_device(config.device, config.device_index, 1);
    if (config.mesh) {
        config.mesh->layout().validate(m.wan_config.num_heads);
        m.decode_across_ranks = config.vae_parallel && config.vae_tile == 0 && config.mesh->world().size() > 1;
        m.decode_here = config.mesh->world().rank() == 0 || m.decode_across_ranks;
    }
    set_vae_autotune(config, m.device, m.decode_across_ranks);
    m.load_all();
    fill_info(m, demo, config.mesh);
    m.warm_up();
}

namespace {
/// The model's block weights, taken out of its provider (to hand them to another provider).
std::vector<dit::BlockWeights> take_blocks(dit::WanModel& model) {
    std::vector<dit::BlockWeights> blocks;
    for (int64_t i = 0; i < model.config().num_layers; ++i) {
        blocks.push_back(model.block_weights().acquire(i));
        model.block_weights().release(i);
    }
    return blocks;
}

// --offload-dit / --max-vram for a DiT built elsewhere (wan-bench's random weights): the blocks past the budget
// go to host memory and are streamed as when loading from a checkpoint (Note [Streamed DiT blocks]).
void stream_built_dit(dit::WanModel& model, const EngineConfig& config, const std::string& variant, int models) {
    const int64_t n = model.config().num_layers;
    const int64_t keep = resident_dit_blocks(config, model.config(), model.precision(), model.fp8_weights(), models,
                                             variant);
    model.set_block_weights_provider(dit::StreamedBlockWeights::from_device_blocks(take_blocks(model), model.device(), keep));
    model.weights_changed();
    WAN_LOG_INFO("DiT: %lld of %lld blocks resident, the rest streamed from host memory", static_cast<long long>(keep),
                 static_cast<long long>(n));
}

// --offload-idle-expert for built experts: the blocks behind a parkable provider, as load_dit() does.
std::shared_ptr<ParkableBlockWeights> make_parkable(dit::WanModel& model) {
    auto parkable = std::make_shared<ParkableBlockWeights>(take_blocks(model), model.device());
    model.set_block_weights_provider(parkable);
    model.weights_changed();
    return parkable;
}
}  // namespace

T2VPipeline::T2VPipeline(PipelineParts parts, const EngineConfig& config) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    WAN_CHECK(parts.text && parts.dit, "T2VPipeline: the text encoder and the DiT are required");
    m.config = config;
    m.use_lora_backup_place();
    m.wan_config = parts.dit->config();
    m.device = parts.dit->device();
    m.text = std::move(parts.text);
    const int models = parts.dit_high ? 2 : 1;
    const bool streamed = config.offload_dit || config.max_vram_gb > 0;
    for (auto* d : {&parts.dit, &parts.dit_high})
        if (*d && streamed) stream_built_dit(**d, config, parts.variant, models);
    if (parts.dit_high && config.offload_idle_expert && !streamed) {
        m.parkable_low = make_parkable(*parts.dit);
        m.parkable_high = make_parkable(*parts.dit_high);
        m.parkable_low->park();  // the first steps are the high-noise expert's
        m.parkable_high->make_pinned_copy();  // at load, not at the first video's switch
    }
    for (auto* d : {&parts.dit, &parts.dit_high}) {
        if (!*d) continue;
        apply_ffn_chunks(**d, config);
        log_dit_held(**d);
    }
    m.dit = std::move(parts.dit);
    m.dit_high = std::move(parts.dit_high);
    m.vae = std::move(parts.vae);
    m.decode_here = m.vae != nullptr;
    if (config.mesh) config.mesh->layout().validate(m.wan_config.num_heads);
    set_vae_autotune(config, m.device, false);
    fill_info(m, false, config.mesh, parts.variant);
    m.warm_up();
}

T2VPipeline::~T2VPipeline() = default;

const EngineInfo& T2VPipeline::info() const { return impl_->info; }
c10::Device T2VPipeline::device() const { return impl_->device; }

void T2VPipeline::set_teacache_threshold(double threshold) {
    WAN_CHECK(threshold >= 0, "teacache threshold %g: must be ≥ 0 (0 = off)", threshold);
    impl_->config.teacache_threshold = threshold;
}

GenerationRequest T2VPipeline::resolve(const GenerationRequest& request) const {
    const EngineInfo& info = impl_->info;
    GenerationRequest r = request;
    if (r.width == 0) r.width = info.default_width;
    if (r.height == 0) r.height = info.default_height;
    if (r.frame_num == 0) r.frame_num = info.default_frames;
    if (!r.denoising_steps.empty()) r.sample_steps = static_cast<int>(r.denoising_steps.size());  // the list decides
    if (r.sample_steps == 0) r.sample_steps = info.default_steps;
    if (r.sample_shift == -1) r.sample_shift = info.default_shift;
    resolve_expert_fields(r, info);  // the guide (pair) and, for two experts, the boundary
    if (r.negative_prompt.empty()) r.negative_prompt = text::kDefaultNegativePrompt;
    std::vector<std::string> errors = r.validate();
    if (r.sample_steps < 1) errors.push_back(strfmt("sample_steps %d: must be at least 1", r.sample_steps));
    if (!info.two_experts && (!r.loras_high.empty() || !r.loras_low.empty()))
        errors.push_back(strfmt("loras_high / loras_low (--lora-high / --lora-low): the %s model has one DiT; "
                                "per-expert LoRAs need a two-expert model (Wan2.2 T2V-A14B); use --lora",
                                info.model_variant.c_str()));
    if (!errors.empty()) {
        std::string msg = "invalid request:";
        for (const auto& e : errors) msg += "\n  " + e;
        throw Error(msg);
    }
    const std::string size = strfmt("%d*%d", r.width, r.height);
    const bool known_variant = impl_->wan_config.variant() == "1.3B" || impl_->wan_config.variant() == "14B";
    if (known_variant && std::find(info.sizes.begin(), info.sizes.end(), size) == info.sizes.end()) {
        std::string known;
        for (const auto& s : info.sizes) known += (known.empty() ? "" : ", ") + s;
        WAN_LOG_WARN("size %s is not one the %s model was trained for (%s); generating anyway", size.c_str(),
                     info.model_variant.c_str(), known.c_str());
    }
    return r;
}

LatentShape T2VPipeline::Impl::latent_shape(const GenerationRequest& r) const {
    LatentShape s;
    s.z_dim = wan_config.in_dim;
    s.T = (r.frame_num - 1) / 4 + 1;
    s.h = r.height / 8;
    s.w = r.width / 8;
    s.seq_len = sequence_length(s.T, s.h, s.w, config.mesh ? config.mesh->layout().sp_size() : 1);
    return s;
}

// Note [Prompt reuse]
// Trying seeds on one prompt is the common case, and T5 is deterministic: a job whose prompt (and negative prompt,
// when guided) equal the previous job's reuses that job's encodings, held on the device (8 MB), instead of running
// T5 again (0.01 s resident, 0.44 s streamed on the H200; seconds with --t5-cpu). The encodings are remembered
// only once every rank has agreed that the job's preparation succeeded, so all ranks of a mesh make the same
// choice (T5 FSDP encodes collectively). A new model means a new pipeline, hence an empty memory.
//
// Prompt and negative prompt in one batched call. Ref: §7.2 step 4. With every guide at 1 (the step-distill
// presets) no step runs the unconditional branch, so the negative prompt is not encoded (uncond stays undefined).
PromptContext T2VPipeline::Impl::encode_prompts(const GenerationRequest& r, PipelineOutput& out) const {
    const auto t0 = Clock::now();
    const bool any_guided = r.guide_scale != 1.0 || r.guide_scale_high != 1.0;  // resolved: high = low on one DiT
    if (last_prompts && last_prompts->prompt == r.prompt && last_prompts->guided == any_guided &&
        (!any_guided || last_prompts->negative == r.negative_prompt)) {
        WAN_LOG_INFO("text: the same prompt%s as the previous job: its encoding reused",
                     any_guided ? " and negative prompt" : "");
        out.seconds_text = seconds_since(t0);
        return last_prompts->ctx;
    }
    std::vector<at::Tensor> ctx = text->encode(any_guided ? std::vector<std::string>{r.prompt, r.negative_prompt}
                                                          : std::vector<std::string>{r.prompt});
    out.seconds_text = seconds_since(t0);
    return {ctx.at(0).to(device), any_guided ? ctx.at(1).to(device) : at::Tensor()};
}

// --init-noise: reproducible across machines. Ref: §7.2 step 5.
at::Tensor T2VPipeline::Impl::load_init_noise(const GenerationRequest& r, const LatentShape& s) const {
    io::TensorStore st = io::TensorStore::open_safetensors(r.init_noise);
    WAN_CHECK(st.contains("noise"), "--init-noise %s: no tensor named 'noise'", r.init_noise.c_str());
    at::Tensor n = st.load("noise", c10::Device(c10::kCPU), at::kFloat);
    if (n.dim() == 5 && n.size(0) == 1) n = n.squeeze(0);
    WAN_CHECK(n.sizes() == at::IntArrayRef({s.z_dim, s.T, s.h, s.w}),
              "--init-noise %s: tensor 'noise' has shape %s, this request needs [%lld, %lld, %lld, %lld]",
              r.init_noise.c_str(), c10::str(n.sizes()).c_str(), static_cast<long long>(s.z_dim),
              static_cast<long long>(s.T), static_cast<long long>(s.h), static_cast<long long>(s.w));
    return n.to(device);
}

// Noise from the seed. Ref: §7.2 step 3.
at::Tensor T2VPipeline::Impl::initial_noise(const GenerationRequest& r, const LatentShape& s, int64_t* seed_used) const {
    int64_t seed = r.seed >= 0 ? r.seed : draw_seed();  // the engine's head draws it before broadcasting
    // Every rank must draw the same noise: rank 0's seed wins (upstream broadcasts base_seed, §8.1).
    if (config.mesh) seed = dist::broadcast_int64(config.mesh->world().mpi_comm(), seed, 0);
    *seed_used = seed;
    auto opts = at::TensorOptions().dtype(at::kFloat).device(device);
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        // Same generator kind as upstream (CUDA Philox seeded with manual_seed, offset 0).
        at::Generator gen = at::cuda::detail::createCUDAGenerator(device.index());
        gen.set_current_seed(static_cast<uint64_t>(seed));
        return at::randn({s.z_dim, s.T, s.h, s.w}, gen, opts);
    }
#endif
    at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
    return at::randn({s.z_dim, s.T, s.h, s.w}, gen, opts);
}

// The live preview of step `step` (1-based): the clean-video estimate x0 = z - sigma·v of the latent the step
// started from, as small RGB frames (engine/preview). Only where progress is reported (the head), and only when
// asked for; a failure here must never fail the job, so it is logged and the step goes on without a preview.
// Started before the solver's step and finished after it is queued, so the device never waits for the host.
std::optional<preview::PendingFrames> T2VPipeline::Impl::start_preview(const at::Tensor& z, const at::Tensor& v,
                                                                      double sigma, int step, const JobContext& job) const {
    if (!config.live_preview || !job.progress) return std::nullopt;
    try {
        return preview::PendingFrames::start(z, v, sigma);
    } catch (const std::exception& e) {
        WAN_LOG_WARN("live preview of step %d skipped: %s", step, e.what());
        return std::nullopt;
    }
}

std::shared_ptr<const PreviewFrames> T2VPipeline::Impl::finish_preview(std::optional<preview::PendingFrames>& pending,
                                                                       int step) const {
    if (!pending) return nullptr;
    // The copy may be queued behind an NCCL operation that a failed peer never joins: wait for it as for a peer,
    // so that the failure notice still reaches this rank (a plain synchronize would block until the watchdog's
    // deadline). That failure is the step's, not the preview's: it propagates.
    protocol::wait_until([&] { return pending->ready(); }, "live preview read-back");
    try {
        auto frames = std::make_shared<PreviewFrames>(pending->frames());
        frames->step = step;
        if (!config.preview_dir.empty()) preview::write_preview_png(config.preview_dir, *frames);
        return frames;
    } catch (const std::exception& e) {
        WAN_LOG_WARN("live preview of step %d skipped: %s", step, e.what());
        return nullptr;
    }
}

// Denoising with classifier-free guidance. Ref: §7.2 step 6; Note [Distributed pipeline], Note [Step caching].
at::Tensor T2VPipeline::Impl::denoise(const GenerationRequest& r, const LatentShape& s, const PromptContext& ctx,
                                      at::Tensor z, const JobContext& job, PipelineOutput& out) {
    dist::Mesh* mesh = config.mesh;
    sched::SolverOptions sopt;
    sopt.bf16_einsum = device.is_cuda();  // upstream runs step() under autocast(bf16) on CUDA (§6.3)
    sopt.denoising_steps = r.denoising_steps;  // euler's explicit step list (validated with the request)
    auto solver = sched::make_solver(sched::solver_from_string(r.solver), r.sample_steps, r.sample_shift, sopt);
    // One pair of cross-attention caches per expert: each expert projects the context with its own weights.
    dit::CrossAttentionCache caches_cond[2], caches_uncond[2];
    // Step caching reuses the previous step's residual, which another expert's is not: off with two experts.
    const bool step_caching = config.teacache_threshold > 0 && !dit_high;
    if (config.teacache_threshold > 0 && dit_high) WAN_LOG_WARN("step caching is off for a two-expert model");
    dit::StepCacheOptions scopt;
    scopt.threshold = config.teacache_threshold;
    dit::StepCache step_cond(scopt), step_uncond(scopt);
    dit::StepCache* sc_cond = step_caching ? &step_cond : nullptr;
    dit::StepCache* sc_uncond = step_caching ? &step_uncond : nullptr;
    const auto& timesteps = solver->timesteps();
    const int steps = solver->num_steps();
    if (!r.preset.empty() || !r.denoising_steps.empty() || r.solver == "euler") {
        std::string list;
        for (int k : r.denoising_steps) list += (list.empty() ? "" : ",") + std::to_string(k);
        WAN_LOG_INFO("sampling%s%s: %s, %d steps%s%s, shift %g, guide %g", r.preset.empty() ? "" : " preset ",
                     r.preset.c_str(), r.solver.c_str(), steps, list.empty() ? "" : " ", list.c_str(), r.sample_shift,
                     r.guide_scale);
    }
    const auto t0 = Clock::now();
    job.report(Stage::Denoise, 0, steps, -1);
    const bool cfg_split = mesh && mesh->layout().cfg_split();
    // Guide scale 1: uncond + 1·(cond − uncond) = cond, so the unconditional pass is skipped (half the forwards).
    const bool guided = r.guide_scale != 1.0;
    if (!guided && cfg_split)
        WAN_LOG_INFO("guide scale 1 with --cfg-parallel: there is no unconditional branch, so both halves of the "
                     "world run the conditional one (same result, no speed-up; launch without --cfg-parallel to "
                     "use the ranks for sequence parallelism instead)");
    step_cond.begin(steps);
    step_uncond.begin(steps);
    for (int i = 0; i < steps; ++i) {
        at::Tensor v_cond, v_uncond;
        std::shared_ptr<const PreviewFrames> preview;
        // Wan2.2's two experts: one switch per video (timesteps only decrease); one DiT otherwise.
        const Expert expert = dit_high ? expert_for_timestep(static_cast<double>(timesteps[i]), r.boundary) : Expert::LowNoise;
        const double guide = guide_for(expert, r);
        const bool guided_step = guide != 1.0;  // guide 1: no unconditional pass (half the forwards)
        dit::WanModel& model = expert_model(expert);
        if (dit_high && i > 0 && expert != expert_for_timestep(static_cast<double>(timesteps[i - 1]), r.boundary))
            WAN_LOG_INFO("t = %g: the %s expert takes over at step %d of %d", static_cast<double>(timesteps[i]),
                         expert_name(expert), i, steps);
        dit::CrossAttentionCache& cache_cond = caches_cond[static_cast<int>(expert)];
        dit::CrossAttentionCache& cache_uncond = caches_uncond[static_cast<int>(expert)];
        on_every_rank(mesh, job.cancel, strfmt("step %d", i), strfmt("step %d failed on another rank (see its log)", i), [&] {
            test_hooks::maybe_stop_at_step(log_rank(), i);  // a stalled rank: its peers wait in the forward
            make_resident(expert);
            at::Tensor t = at::scalar_tensor(static_cast<double>(timesteps[i]), at::kDouble);
            if (!guided_step) {
                v_cond = model.forward(z, t, ctx.cond, s.seq_len, &cache_cond, sc_cond);
                out.dit_forwards += 1;
            } else if (cfg_split) {
                // Each half computes one branch; the pair exchange gives both to everyone (§ Note above).
                const bool cond_half = mesh->cfg_index() == 0;
                at::Tensor mine = cond_half ? model.forward(z, t, ctx.cond, s.seq_len, &cache_cond, sc_cond)
                                            : model.forward(z, t, ctx.uncond, s.seq_len, &cache_uncond, sc_uncond);
                at::Tensor both = mesh->cfg_pair()->all_gather(mine.unsqueeze(0), 0);  // [2, 16, T, h, w]
                v_cond = both[0];
                v_uncond = both[1];
                out.dit_forwards += 1;
            } else {
                v_cond = model.forward(z, t, ctx.cond, s.seq_len, &cache_cond, sc_cond);
                v_uncond = model.forward(z, t, ctx.uncond, s.seq_len, &cache_uncond, sc_uncond);
                out.dit_forwards += 2;
            }
            // uncond + g·(cond − uncond), f32, g an f32 scalar (§7.2), g the expert's guide; at g = 1 exactly cond.
            at::Tensor v = guided_step ? v_uncond + (v_cond - v_uncond) * guide : v_cond;
            auto pending = start_preview(z, v, solver->sigmas()[static_cast<size_t>(i)], i + 1, job);
            z = solver->step(v, i, z);
            preview = finish_preview(pending, i + 1);
            // The stage's time is the GPU's: without the live preview's wait the host is a forward ahead, and
            // that forward would be charged to the decode (and look like the preview's cost).
            if (i + 1 == steps) dist::synchronize_watched(device, "the last denoising step");
            // After the step's collectives: a failure here (or in the solver) leaves no peer inside one.
            test_hooks::maybe_fail_at_step(log_rank(), i);
        });
        job.emit("noise_pred_cond." + std::to_string(i), v_cond);
        if (v_uncond.defined()) job.emit("noise_pred_uncond." + std::to_string(i), v_uncond);
        job.emit("latents." + std::to_string(i + 1), z);
        if (dit_high) job.emit("expert." + std::to_string(i), at::scalar_tensor(static_cast<double>(expert)));
        const double per_step = seconds_since(t0) / (i + 1);
        job.report(Stage::Denoise, i + 1, steps, seconds_since(job.start) + per_step * (steps - i - 1),
                   std::move(preview));
    }
    out.seconds_denoise = seconds_since(t0);
    out.steps_computed = steps;
    WAN_LOG_INFO("denoising: %d steps, %d DiT forwards on this rank%s", steps, out.dit_forwards,
                 guided ? "" : " (guide scale 1: no unconditional pass)");
    if (step_caching) {
        // With cfg-parallel this rank ran one branch only; the other cache saw no calls.
        out.steps_computed = std::max(step_cond.steps_computed(), step_uncond.steps_computed());
        WAN_LOG_INFO("step caching (threshold %g): the DiT block stack ran %d of %d steps (cond %d, uncond %d)",
                     scopt.threshold, out.steps_computed, steps, step_cond.steps_computed(),
                     step_uncond.steps_computed());
    }
    return z;
}

// Decode (rank 0 only upstream; here by default every rank, a band of rows each, and rank 0 gets the video).
// Ref: §7.2 step 7, §5.4. The VAE polls the cancel flag between frames (agreed over the ranks when they share it).
void T2VPipeline::Impl::decode(const at::Tensor& z, const JobContext& job, PipelineOutput& out) {
    if (cancel_requested(job.cancel)) throw Cancelled();
    const auto t0 = Clock::now();
    vae::DecodeCallbacks cb;
    cb.cancel_flag = job.cancel;
    cb.progress = [&](int64_t done, int64_t total) {
        const double per = seconds_since(t0) / static_cast<double>(done);
        job.report(Stage::Decode, static_cast<int>(done), static_cast<int>(total),
                   seconds_since(job.start) + per * static_cast<double>(total - done));
    };
    job.report(Stage::Decode, 0, static_cast<int>(z.size(1)), -1);
    if (decode_across_ranks && config.mesh->world().rank() == 0) {
        WAN_LOG_INFO("decoding across %d ranks, a band of rows of each frame per rank (--vae-parallel)",
                     config.mesh->world().size());
    }
    const at::Tensor video = decode_across_ranks ? vae->decode_across(z, config.mesh->world(), cb) : vae->decode(z, cb);
    out.seconds_decode = seconds_since(t0);
    if (!video.defined()) return;  // a rank other than 0 of a decode across the ranks
    out.video = video.to(at::kCPU);
    job.emit("video", out.video);
}

// The job's LoRAs merged into the DiT weights (or the base restored), on every rank from its own copy of the
// files, each FSDP rank into its own shard; called inside the job's preparation so that a bad file on one rank
// fails the job on all.
void T2VPipeline::Impl::apply_loras(const GenerationRequest& r, PipelineOutput& out) {
    WAN_CHECK(dit_high || (r.loras_high.empty() && r.loras_low.empty()),
              "per-expert LoRAs (loras_high / loras_low) need a two-expert model");  // resolve() says it first
    const auto t0 = Clock::now();
    // Each expert: --lora's files, then its own. The shared ones give the same AppliedLora list on both.
    // A parked expert is merged into while resident (Note [Idle expert in host memory]): one swap per expert
    // that has LoRAs to merge or to take out.
    auto resident_for_merge = [&](Expert e, const lora::LoraSet& set, const std::vector<LoraSpec>& specs) {
        if (!specs.empty() || !set.applied().empty()) make_resident(e);
    };
    resident_for_merge(Expert::LowNoise, dit_loras, loras_for(Expert::LowNoise, r));
    std::vector<lora::AppliedLora> low = dit_loras.apply(*dit, loras_for(Expert::LowNoise, r));
    out.loras.assign(low.begin(), low.begin() + static_cast<std::ptrdiff_t>(r.loras.size()));
    out.loras_low.assign(low.begin() + static_cast<std::ptrdiff_t>(r.loras.size()), low.end());
    if (dit_high) {
        resident_for_merge(Expert::HighNoise, dit_high_loras, loras_for(Expert::HighNoise, r));
        std::vector<lora::AppliedLora> high = dit_high_loras.apply(*dit_high, loras_for(Expert::HighNoise, r));
        out.loras_high.assign(high.begin() + static_cast<std::ptrdiff_t>(r.loras.size()), high.end());
    }
    out.seconds_lora = seconds_since(t0);
    out.lora_backup_bytes = dit_loras.backup_bytes() + dit_high_loras.backup_bytes();
}

PipelineOutput T2VPipeline::generate(const GenerationRequest& request, const ProgressFn& progress,
                                     const std::atomic<bool>* cancel, const TraceFn& trace) {
    Impl& m = *impl_;
    const JobContext job{progress, trace, cancel};
    PipelineOutput out;
    out.resolved = resolve(request);
    const GenerationRequest& r = out.resolved;
    const LatentShape shape = m.latent_shape(r);
    m.warn_beyond_max_vram(r);

    // 1. Text and (optionally) the noise file. With a mesh, local failures (a missing --init-noise file on one
    // host, say) are agreed on before the first collective of the noise and the loop.
    job.report(Stage::Text, 0, 1, -1);
    PromptContext ctx;
    at::Tensor z;
    on_every_rank(m.config.mesh, cancel, "preparing the job", "another rank failed while preparing the job (see its log)",
                  [&] {
                      m.apply_loras(r, out);
                      ctx = m.encode_prompts(r, out);
                      if (!r.init_noise.empty()) z = m.load_init_noise(r, shape);
                  });
    m.last_prompts = Impl::EncodedPrompts{r.prompt, r.negative_prompt, ctx.uncond.defined(), ctx};
    job.emit("context", ctx.cond);
    if (ctx.uncond.defined()) job.emit("context_null", ctx.uncond);
    job.report(Stage::Text, 1, 1, -1);
    // 2. Noise.
    if (z.defined()) out.seed_used = r.seed;
    else z = m.initial_noise(r, shape, &out.seed_used);
    job.emit("noise", z);
    job.emit("latents.0", z);
    // 3. Denoising, 4. decoding.
    z = m.denoise(r, shape, ctx, z, job, out);
    out.latent = z.to(at::kCPU);
    job.emit("final_latent", z);
    if (m.vae) m.decode(z, job, out);
    if (!r.save_latents.empty() && out.video.defined()) {
        fs::make_parent_dirs(r.save_latents);
        io::NamedTensors saved{{"latent", out.latent.to(at::kFloat)}, {"video", out.video.to(at::kFloat)},
                               {"context", ctx.cond.to(at::kCPU).to(at::kFloat)}};
        if (ctx.uncond.defined()) saved.emplace_back("context_null", ctx.uncond.to(at::kCPU).to(at::kFloat));  // guided only
        io::save_safetensors_new(r.save_latents, saved, {{"request", r.to_json()}, {"seed_used", std::to_string(out.seed_used)}});
    }
    return out;
}

}  // namespace wan::pipeline
