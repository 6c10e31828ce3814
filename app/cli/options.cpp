#include "cli/options.h"

#include "core/guide_pair.h"
#include "core/lora_spec.h"
#include "core/presets.h"

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>

namespace wan::app {

namespace {

std::string canonical(std::string name) {
    for (char& c : name) {
        if (c == '-') c = '_';
    }
    return name;
}

int toInt(const std::string& opt, const std::string& v) {
    try {
        size_t pos = 0;
        long long x = std::stoll(v, &pos);
        if (pos == v.size() && x >= INT32_MIN && x <= INT32_MAX) return static_cast<int>(x);
    } catch (const std::exception&) {
    }
    WAN_THROW("--%s '%s': expected an integer", opt.c_str(), v.c_str());
}

int64_t toInt64(const std::string& opt, const std::string& v) {
    try {
        size_t pos = 0;
        long long x = std::stoll(v, &pos);
        if (pos == v.size()) return x;
    } catch (const std::exception&) {
    }
    WAN_THROW("--%s '%s': expected an integer", opt.c_str(), v.c_str());
}

double toDouble(const std::string& opt, const std::string& v) {
    try {
        size_t pos = 0;
        double x = std::stod(v, &pos);
        if (pos == v.size()) return x;
    } catch (const std::exception&) {
    }
    WAN_THROW("--%s '%s': expected a number", opt.c_str(), v.c_str());
}

bool toBool(const std::string& opt, const std::string& v) {
    // upstream str2bool spellings
    std::string l;
    for (char c : v) l.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (l == "yes" || l == "true" || l == "t" || l == "y" || l == "1") return true;
    if (l == "no" || l == "false" || l == "f" || l == "n" || l == "0") return false;
    WAN_THROW("--%s '%s': expected a boolean (yes/no, true/false, 1/0)", opt.c_str(), v.c_str());
}

void parseSize(const std::string& v, GenerationRequest& r) {
    auto star = v.find('*');
    if (star == std::string::npos) star = v.find('x');
    bool ok = star != std::string::npos && star > 0 && star + 1 < v.size();
    if (ok) {
        try {
            size_t p1 = 0, p2 = 0;
            r.width = std::stoi(v.substr(0, star), &p1);
            r.height = std::stoi(v.substr(star + 1), &p2);
            ok = p1 == star && p2 == v.size() - star - 1;
        } catch (const std::exception&) {
            ok = false;
        }
    }
    WAN_CHECK(ok, "--size '%s': expected W*H such as 832*480 (width first, as upstream)", v.c_str());
}

}  // namespace

/// `--preset NAME` fills the sampling fields before any other option is read, wherever it stands, so that
/// explicit options override it. The last --preset wins; an unknown name lists the known ones.
void applyPresetFirst(int argc, char** argv, GenerationRequest& request) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        std::string name;
        if (arg == "--preset" && i + 1 < argc) name = argv[i + 1];
        else if (arg.rfind("--preset=", 0) == 0) name = arg.substr(9);
        else continue;
        apply_sampling_preset(find_sampling_preset(name, "--preset"), request);
    }
}

AppOptions parseOptions(int argc, char** argv) {
    AppOptions o;
    bool mode_set = false;
    auto set_mode = [&](RunMode m, const std::string& opt) {
        WAN_CHECK(!mode_set || o.mode == m || (o.mode == RunMode::Headless && m == RunMode::Headless),
                  "--%s cannot be combined with the other action given", opt.c_str());
        o.mode = m;
        mode_set = true;
    };
    using Handler = std::function<void(const std::string& opt, const std::string& value)>;
    struct Spec { bool takesValue; Handler fn; };
    std::map<std::string, Spec> specs = {
        {"ckpt_dir", {true, [&](auto&, auto& v) { o.engine.ckpt_dir = v; }}},
        {"dit", {true, [&](auto&, auto& v) { o.engine.components.dit = v; }}},
        {"dit_config", {true, [&](auto&, auto& v) { o.engine.components.dit_config = v; }}},
        {"t5", {true, [&](auto&, auto& v) { o.engine.components.t5 = v; }}},
        {"vae", {true, [&](auto&, auto& v) { o.engine.components.vae = v; }}},
        {"tokenizer", {true, [&](auto&, auto& v) { o.engine.components.tokenizer = v; }}},
        {"dit_high", {true, [&](auto&, auto& v) { o.engine.components.dit_high = v; }}},
        {"dit_low", {true, [&](auto&, auto& v) { o.engine.components.dit_low = v; }}},
        {"offload_dit", {false, [&](auto&, auto&) { o.engine.offload_dit = true; }}},
        {"max_vram", {true, [&](auto& n, auto& v) { o.engine.max_vram_gb = toDouble(n, v);
             WAN_CHECK(o.engine.max_vram_gb > 0, "--%s %s: expected a positive number of GB, such as 22", n.c_str(), v.c_str()); }}},
        {"dit_dtype", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "auto" || v == "fp8" || v == "bf16", "--%s '%s': expected auto, fp8 or bf16", n.c_str(), v.c_str());
             o.engine.dit_dtype = v; }}},
        {"ffn_chunks", {true, [&](auto& n, auto& v) { o.engine.ffn_chunks = toInt(n, v);
             WAN_CHECK(o.engine.ffn_chunks >= 1, "--%s %s: expected a number of chunks ≥ 1 (1 = off)", n.c_str(), v.c_str()); }}},
        {"t5_fsdp", {false, [&](auto&, auto&) { o.engine.layout.t5_fsdp = true; }}},
        {"dit_fsdp", {false, [&](auto&, auto&) { o.engine.layout.dit_fsdp = true; }}},
        {"ulysses_size", {true, [&](auto& n, auto& v) { o.engine.layout.ulysses = toInt(n, v); }}},
        {"ring_size", {true, [&](auto& n, auto& v) { o.engine.layout.ring = toInt(n, v); }}},
        {"cfg_parallel", {false, [&](auto&, auto&) { o.engine.layout.cfg_parallel = true; }}},
        {"t5_cpu", {false, [&](auto&, auto&) { o.engine.t5_cpu = true; }}},
        {"offload_model", {true, [&](auto& n, auto& v) { o.engine.offload = toBool(n, v) ? OffloadMode::StreamT5 : OffloadMode::Off; }}},
        {"device", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "auto" || v == "cuda" || v == "cpu", "--%s '%s': expected auto, cuda or cpu", n.c_str(), v.c_str());
             o.engine.device = v; }}},
        {"vae_dtype", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "auto" || v == "f32" || v == "bf16", "--%s '%s': expected auto, f32 or bf16", n.c_str(), v.c_str());
             o.engine.vae_dtype = v; }}},
        {"t5_dtype", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "auto" || v == "f32" || v == "bf16", "--%s '%s': expected auto, f32 or bf16", n.c_str(), v.c_str());
             o.engine.t5_dtype = v; }}},
        {"vae_tile", {true, [&](auto& n, auto& v) { o.engine.vae_tile = toInt(n, v); WAN_CHECK(o.engine.vae_tile >= 0, "--vae-tile must be ≥ 0"); }}},
        {"vae_parallel", {true, [&](auto& n, auto& v) { o.engine.vae_parallel = toBool(n, v); }}},
        {"vae_autotune", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "auto" || v == "on" || v == "off", "--%s '%s': expected auto, on or off", n.c_str(), v.c_str());
             o.engine.vae_autotune = v; }}},
        {"vae_chunk_frames", {true, [&](auto& n, auto& v) { o.engine.vae_chunk_frames = toInt(n, v);
             WAN_CHECK(o.engine.vae_chunk_frames >= 0, "--%s %s: expected a number of latent frames ≥ 1 (0 = the engine's choice)", n.c_str(), v.c_str()); }}},
        {"collective_timeout", {true, [&](auto& n, auto& v) { o.engine.collective_timeout_s = toDouble(n, v); WAN_CHECK(o.engine.collective_timeout_s >= 0, "--collective-timeout must be ≥ 0 seconds (0 = no deadline)"); }}},
        {"teacache", {true, [&](auto& n, auto& v) { o.engine.teacache_threshold = toDouble(n, v); WAN_CHECK(o.engine.teacache_threshold >= 0, "--teacache must be ≥ 0"); }}},
        {"fp8", {false, [&](auto&, auto&) { o.engine.fp8 = true; }}},
        {"fp8_attention", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "off" || v == "on" || v == "kmean", "--%s '%s': expected off, on or kmean", n.c_str(), v.c_str());
             o.engine.fp8_attention = v; }}},
        {"prompt_extend_method", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "dashscope" || v == "local_qwen", "--%s '%s': expected dashscope or local_qwen", n.c_str(), v.c_str());
             o.engine.prompt_extend_method = v; }}},
        {"prompt_extend_model", {true, [&](auto&, auto& v) { o.engine.prompt_extend_model = v; }}},
        {"prompt_extend_target_lang", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "zh" || v == "en", "--%s '%s': expected zh or en", n.c_str(), v.c_str());
             o.promptExtendTargetLang = v; o.request.extend_target_lang = v; }}},
        {"use_prompt_extend", {false, [&](auto&, auto&) { o.usePromptExtend = true; o.request.use_prompt_extend = true; }}},
        {"size", {true, [&](auto&, auto& v) { parseSize(v, o.request);
             o.engine.warm_up_width = o.request.width;  // the warm-up at load meets this job's shapes
             o.engine.warm_up_height = o.request.height; }}},
        {"frame_num", {true, [&](auto& n, auto& v) { o.request.frame_num = toInt(n, v); }}},
        {"sample_steps", {true, [&](auto& n, auto& v) { o.request.sample_steps = toInt(n, v);
             WAN_CHECK(o.request.sample_steps >= 1, "--sample-steps %s: must be at least 1", v.c_str()); }}},
        {"sample_shift", {true, [&](auto& n, auto& v) { o.request.sample_shift = toDouble(n, v);
             WAN_CHECK(o.request.sample_shift > 0, "--sample-shift %s: must be > 0", v.c_str()); }}},
        {"sample_guide_scale", {true, [&](auto&, auto& v) { set_guide_scales(v, o.request, "--sample-guide-scale"); }}},
        {"boundary", {true, [&](auto& n, auto& v) { o.request.boundary = toDouble(n, v);
             WAN_CHECK(o.request.boundary >= 0 && o.request.boundary <= 1, "--boundary %s: must be in [0, 1]", v.c_str()); }}},
        {"offload_idle_expert", {false, [&](auto&, auto&) { o.engine.offload_idle_expert = true; }}},
        {"lora_backup", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "auto" || v == "device" || v == "host", "--%s '%s': expected auto, device or host",
                       n.c_str(), v.c_str());
             o.engine.lora_backup = v; }}},
        {"sample_solver", {true, [&](auto& n, auto& v) {
             WAN_CHECK(v == "unipc" || v == "dpm++" || v == "euler", "--%s '%s': expected unipc, dpm++ or euler",
                       n.c_str(), v.c_str());
             o.request.solver = v; }}},
        {"denoising_steps", {true, [&](auto& n, auto& v) {
             o.request.denoising_steps = parse_step_list(v, ("--" + n).c_str()); }}},
        {"lora", {true, [&](auto& n, auto& v) { o.request.loras.push_back(parse_lora_spec(v, ("--" + n).c_str())); }}},
        {"lora_high", {true, [&](auto& n, auto& v) { o.request.loras_high.push_back(parse_lora_spec(v, ("--" + n).c_str())); }}},
        {"lora_low", {true, [&](auto& n, auto& v) { o.request.loras_low.push_back(parse_lora_spec(v, ("--" + n).c_str())); }}},
        {"preset", {true, [&](auto&, auto&) { /* applied before every other option: applyPresetFirst */ }}},
        {"base_seed", {true, [&](auto& n, auto& v) { o.request.seed = toInt64(n, v);
             if (o.request.seed < 0) o.request.seed = -1; }}},
        {"prompt", {true, [&](auto& n, auto& v) { o.request.prompt = v; set_mode(RunMode::Headless, n); }}},
        {"negative_prompt", {true, [&](auto&, auto& v) { o.request.negative_prompt = v; }}},
        {"output_dir", {true, [&](auto&, auto& v) { o.engine.output_dir = v; }}},
        {"preview_dir", {true, [&](auto&, auto& v) { o.engine.preview_dir = v; }}},
        {"init_noise", {true, [&](auto&, auto& v) { o.request.init_noise = v; }}},
        {"save_latents", {true, [&](auto&, auto& v) { o.request.save_latents = v; }}},
        {"batch", {true, [&](auto& n, auto& v) { o.batchFile = v; set_mode(RunMode::Headless, n); }}},
        {"inspect", {true, [&](auto& n, auto& v) { o.inspectDir = v; set_mode(RunMode::Inspect, n); }}},
        {"check", {false, [&](auto& n, auto&) { set_mode(RunMode::Check, n); }}},
        {"extend_prompt", {true, [&](auto& n, auto& v) { o.extendText = v; set_mode(RunMode::ExtendPrompt, n); }}},
        {"listen", {true, [&](auto& n, auto& v) { o.listenAddress = v; set_mode(RunMode::Listen, n); }}},
        {"api_token", {true, [&](auto&, auto& v) { o.apiToken = v; }}},
        {"api_request_timeout", {true, [&](auto& n, auto& v) { o.apiRequestTimeoutS = toDouble(n, v);
             WAN_CHECK(o.apiRequestTimeoutS >= 0.1 && o.apiRequestTimeoutS <= 3600, "--%s %s: expected seconds "
                       "between 0.1 and 3600 (how long a client may take to send a whole request)", n.c_str(), v.c_str()); }}},
        {"connect", {true, [&](auto&, auto& v) { o.connectAddress = v; }}},
        {"version", {false, [&](auto& n, auto&) { set_mode(RunMode::Version, n); }}},
        {"help", {false, [&](auto& n, auto&) { set_mode(RunMode::Help, n); }}},
    };
    applyPresetFirst(argc, argv, o.request);
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h") arg = "--help";
        WAN_CHECK(arg.size() > 2 && arg[0] == '-' && arg[1] == '-',
                  "unexpected argument '%s' (options start with --; see --help)", arg.c_str());
        std::string name = arg.substr(2), value;
        bool has_inline = false;
        auto eq = name.find('=');
        if (eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_inline = true;
        }
        const std::string key = canonical(name);
        auto it = specs.find(key);
        WAN_CHECK(it != specs.end(), "unknown option --%s (see --help)", name.c_str());
        if (it->second.takesValue && !has_inline) {
            WAN_CHECK(i + 1 < argc, "--%s needs a value", name.c_str());
            value = argv[++i];
        }
        WAN_CHECK(it->second.takesValue || !has_inline, "--%s takes no value", name.c_str());
        it->second.fn(name, value);
    }
    o.request.output_dir = o.engine.output_dir;
    auto errors = o.request.validate();
    if (!errors.empty()) {
        std::string msg = "invalid options:";
        for (const auto& e : errors) msg += "\n  " + e;
        throw Error(msg);
    }
    WAN_CHECK(o.engine.layout.ulysses >= 1 && o.engine.layout.ring >= 1, "--ulysses-size and --ring-size must be ≥ 1");
    WAN_CHECK(o.apiRequestTimeoutS == 0 || o.mode == RunMode::Listen,
              "--api-request-timeout is the --listen server's deadline for a whole request; use it with --listen");
    const std::string expert_files = o.engine.components.expert_files_problem();
    WAN_CHECK(expert_files.empty(), "%s", expert_files.c_str());
    return o;
}

void validateLayout(AppOptions& o, int world) {
    o.engine.layout.world = world;
    o.engine.layout.validate(ParallelLayout::kHeadsUnknown);
}

static std::string helpBody();

std::string helpText() {
    std::string presets;
    for (const SamplingPreset& p : sampling_presets())
        presets += "                              " + p.name + ": " + p.description + "\n";
    std::string text = helpBody();
    const size_t at = text.find("%PRESETS%");
    if (at != std::string::npos) text.replace(at, 9, presets);
    return text;
}

static std::string helpBody() {
    return R"(wanstudio — text-to-video with the Wan2.1 models (T2V-1.3B, T2V-14B), on one GPU or many.

Usage:
  wanstudio [--ckpt-dir DIR] [options]                 desktop app (rank 0 shows the window)
  wanstudio --prompt TEXT [options]                    generate headless, write MP4 + PNG + JSON
  wanstudio --batch FILE [options]                     one prompt per line, or JSON lines with per-job options
  wanstudio --inspect DIR                              print a checkpoint's layout, parameters and variant
  wanstudio --check [options]                          distributed setup check (one line per check)
  wanstudio --extend-prompt TEXT --prompt-extend-method M   print the extended prompt
  mpirun -np N wanstudio --ckpt-dir DIR --ulysses-size U --ring-size R [--dit-fsdp --t5-fsdp]
  [mpirun -np N] wanstudio --listen [ADDR:]PORT [options]   serve the HTTP API headless (remote GPU server)
  wanstudio --connect HOST:PORT [--api-token T]        the window (or --batch) on a remote --listen engine

Every option is accepted with underscores (as upstream generate.py) or dashes: --sample_steps = --sample-steps.

Model and placement:
  --ckpt-dir DIR            Wan2.1-T2V checkpoint directory (default: the built-in tiny demo checkpoint)
  --dit FILE                the DiT as one file (upstream names, ComfyUI's `model.diffusion_model.` prefix,
                            bf16/f16/f32/fp8, scaled fp8); replaces the folder's (with or without --ckpt-dir)
  --dit-config FILE         config.json for --dit (default: the folder's, else inferred from the shapes)
  --t5 FILE                 the UMT5 text encoder as one file (upstream .pth, or Hugging Face names such as
                            ComfyUI's umt5_xxl_fp8_e4m3fn_scaled.safetensors; its tokenizer is used if inside)
  --vae FILE                the Wan2.1 VAE as one file (.pth, or wan_2.1_vae.safetensors)
  --tokenizer FILE          spiece.model (default: the folder's, else the one inside the --t5 file)
  --dit-high FILE, --dit-low FILE
                            Wan2.2 T2V-A14B's two experts as single files (ComfyUI's
                            wan2.2_t2v_high_noise_14B_*.safetensors and ..._low_noise_...; the forms --dit
                            reads); both together, not with --dit; with --t5, --vae (or --ckpt-dir for them)
  --device auto|cuda|cpu    where to run (default auto: CUDA when available)
  --t5-cpu                  run the T5 text encoder on the CPU (upstream option)
  --offload-model BOOL      upstream's option (default: on for one process, off under mpirun); on CUDA it keeps
                            the T5 weights in host memory and streams them block by block while encoding
  --vae-dtype auto|f32|bf16 VAE precision (default auto: bf16 on CUDA, f32 on CPU; f32 = upstream's)
  --t5-dtype auto|f32|bf16  T5 compute precision (default auto: bf16 on CUDA, f32 on CPU; with --t5-cpu, bf16
                            is upstream's and ~2x faster on CPUs with bf16 instructions)
  --vae-tile N              decode the VAE in spatial tiles of N latent pixels (0 = off; for small GPUs)
  --vae-parallel BOOL       under mpirun, decode on every rank, each a band of rows of the frame (default true;
                            the same video as one rank); false: rank 0 decodes alone. Not with --vae-tile
  --vae-autotune auto|on|off  cuDNN's algorithm search for the VAE's convolutions (~14 % faster decodes); auto
                            (default): on for one GPU without --max-vram/--offload-dit, the search paid once by
                            the warm-up at load, at --size
  --vae-chunk-frames N      latent frames per VAE decoder call (default 0 = 1); 3 decoded 720p 3 % faster on an
                            H200 for 4.2 GB more memory (8.9 -> 13.1 GB), the same video
  --offload-dit             keep the DiT blocks in host memory and stream each to the GPU just before it runs
                            (the next block is copied while one computes; for GPUs too small for the model)
  --max-vram GB             keep as many DiT blocks on the GPU as fit in GB, stream the others from host memory
  --dit-dtype auto|fp8|bf16 how the DiT's block weights are held (default auto: fp8 for an fp8 e4m3/e5m2 file, else
                            bf16 on CUDA / f32 on CPU). fp8: one byte per weight and a scale per row, half of
                            bf16 (14B blocks: 14.0 GB); FP8 GEMMs on Hopper/Ada, widened per block elsewhere
                            The window sets these three in Engine → Memory… (kept in its settings; a window
                            started as one process without any of them loads with the saved ones)
  --ffn-chunks N            run the DiT's FFN on N chunks of tokens and keep its other activations lean (same
                            video, lower peak memory; default 4 with fp8 DiT weights, --max-vram or
                            --offload-dit, else 1 = off)
Distributed (mpirun -np N):
  --ulysses-size U          Ulysses sequence-parallel degree (heads % U == 0)       (default 1)
  --ring-size R             Ring attention degree; U × R = number of processes      (default 1)
  --dit-fsdp                shard the DiT parameters across ranks (gathered per block)
  --t5-fsdp                 shard the T5 parameters across ranks
  --cfg-parallel            run the two guidance branches on the two halves of the world
Generation (defaults: the loaded model's; upstream T2V: 1280*720 for 14B, 832*480 for 1.3B, 81 frames,
50 steps, shift 5.0, guide 5.0, unipc):
  --prompt TEXT             the prompt (headless)
  --negative-prompt TEXT    negative prompt (default: upstream's)
  --size W*H                width*height, multiples of 16
  --frame-num N             frames, 4n+1
  --sample-steps N          denoising steps
  --sample-shift X          sigma schedule shift (> 0)
  --sample-guide-scale X    classifier-free guidance scale (≥ 0); LOW,HIGH sets each expert's guide of a
                            two-expert model (Wan2.2 A14B: default 3,4)
  --boundary B              two-expert models: the high-noise expert runs while t ≥ B·1000 (default 0.875)
  --sample-solver unipc|dpm++|euler
                            euler: the deterministic flow-matching Euler step of step-distilled models
  --denoising-steps LIST    euler only: explicit steps such as 1000,750,500,250 (1..1000, decreasing);
                            default: --sample-steps evenly spaced steps
  --preset NAME             fill solver, steps, shift and guide from a preset; options given explicitly win:
%PRESETS%  --lora PATH[:STRENGTH]    merge a LoRA (safetensors; native/ComfyUI, kohya, diffusers key styles) into
                            the DiT for the job; repeatable (stacked), strength default 1, negative allowed.
                            Not with --dit-fsdp yet. Guide scale 1 skips the unconditional pass (half the
                            DiT forwards), as step-distilled accelerator LoRAs expect. With two experts
                            (Wan2.2 A14B) --lora merges into both
  --lora-high PATH[:STRENGTH], --lora-low PATH[:STRENGTH]
                            two-expert models: merge a LoRA into the high-noise / low-noise expert only
                            (after the --lora ones), as Wan2.2's accelerator LoRAs come as a high/low pair
  --base-seed N             seed (-1 = random; the seed used is reported)
  --output-dir DIR          where videos go (default: outputs)
  --preview-dir DIR         write DIR/preview.png after every denoising step (all latent frames of the
                            clean-video estimate, a rough colour preview; replaced atomically), to watch
                            a remote or headless run
  --init-noise FILE         initial noise from a safetensors file (tensor "noise")
  --save-latents FILE       write the final latent and the decoded video (float32) as safetensors
  --batch FILE              headless batch file
Prompt extension:
  --prompt-extend-method dashscope|local_qwen
  --prompt-extend-model NAME|DIR
  --prompt-extend-target-lang zh|en   (default zh)
  --use-prompt-extend       extend every prompt before generating
  --extend-prompt TEXT      print the extended prompt and exit
Beyond upstream (off by default; see README for measured trade-offs):
  --collective-timeout SECONDS  end every rank, naming the silent one, when a wait on another rank
                            lasts longer (default 600; 0 = wait forever)
  --teacache THRESHOLD      step caching: skip the block stack when the input barely changed
  --fp8                     FP8 (e4m3) linear layers on Hopper GPUs
  --fp8-attention off|on|kmean  DiT self-attention in FP8 (FlashAttention-3 builds, Hopper); kmean: K's mean
                            over the tokens subtracted first (exact for softmax); not implied by --fp8
  --offload-idle-expert     two-expert models: the idle expert waits in pinned host memory (swapped at the switch)
  --lora-backup auto|device|host  where LoRA-merged weights keep their base values for the next job
                            (auto: on the GPU when it leaves room for the generation, else host RAM)
Remote engine (README: "Remote GPU server"):
  --listen [ADDR:]PORT      run headless and serve the HTTP API (jobs, files, /api/events WebSocket) on
                            ADDR:PORT (default address 127.0.0.1; reach it through ssh -L 7860:localhost:7860)
  --api-token TOKEN         require "Authorization: Bearer TOKEN" on every request (or set WANSTUDIO_API_TOKEN);
                            required when ADDR is not a loopback address; with --connect: the token to send
  --api-request-timeout SECONDS  with --listen: a client must send a whole request (headers and body) within
                            this long of connecting or of the previous answer, else 408 (default 30; or set
                            WANSTUDIO_API_REQUEST_TIMEOUT_S)
  --connect HOST:PORT       use the engine of a `wanstudio --listen` server (e.g. localhost:7860 through an
                            SSH tunnel) instead of loading one here; videos are fetched into --output-dir
Other:
  --inspect DIR, --check, --version, --help
)";
}

}  // namespace wan::app
