// wan-bench: Qt-free benchmark of WanStudio's models at real configurations with random weights.
// Prints seconds, achieved TFLOP/s (FLOPs counted as docs/PERFORMANCE.md says) and peak GPU memory; writes
// JSON lines with --json FILE. Speed is measured here, never in tests.
//
//   wan-bench dit --model 1.3B --size 832*480 --frames 81 [--layers N] [--runs 3]
//   wan-bench dit --model 14B --layers 4 --size 1280*720 --frames 81
//   wan-bench teacache --model 1.3B --size 832*480 --steps 50 --threshold 0.2   (step caching: speed, PSNR, SSIM)
//   wan-bench fp8-video --model 1.3B --preset lightx2v-4step [--what compute|weights]  (FP8 vs bf16 video: PSNR, SSIM)
//   wan-bench teacache --model tiny --steps 8 --threshold 0.3 --device cpu        (CPU smoke test)
//   wan-bench gen --model 14B --size 832*480 --preset lightx2v-4step --make-lora 64 --lora /tmp/r64.safetensors
//                                         (a random rank-64 LoRA on every block Linear: merge time and memory)
//   wan-bench lora --model 14B --make-lora 64 --lora /tmp/r64.safetensors   (reading the LoRA file: parse, read,
//                                         SHA-256; CPU, no model)
//   wan-bench gen --model 14B --size 1280*720 --max-vram 22     (DiT blocks past 22 GB streamed from host memory;
//                                         also --offload-dit: every block streamed) — peak memory per stage, s/step
//   wan-bench gen --model tiny --device cpu --offload-dit        (CPU smoke test of the streamed path)
//   wan-bench gen --model A14B --size 832*480 --steps 4 [--offload-idle-expert 1]   (Wan2.2's two 14B experts)
//   wan-bench vae --size 832*480 --dtype bf16 --fold-time 1 --stages 1   (VAE speed switches, stage table)
//   wan-bench vae --size 832*480 --dtype bf16 --cache-buffer 1 --fused-norm 1 --subpixel-upsample 1 --tail-frames 0|1
//                                         (the engine's switches; the decoder's tail one frame at a time: peak_gb)
//   wan-bench dit --model 14B --layers 4 --size 1280*720 --fp8-attention 1 [--k-mean 1] --compare 1
//                                         (FP8 self-attention: speed and error against bf16; Note [FP8 attention])
//   wan-bench gen --model 14B --size 832*480 --dit-dtype fp8 [--max-vram 22]
//                                         (block weights held as fp8: Note [FP8 weights]; also for `dit`)
//   wan-bench gen --model 14B --size 832*480 --steps 2 --dit-dtype fp8 --ffn-chunks 1|4
//                                         (lean activations off / on: Note [Activation memory]; gen's default is
//                                         the pipeline's, 4 with fp8 or streaming; `dit`'s is 1)
//   wan-bench load-dit --model 14B --format fp8   (issue 21: load time of a 14B single fp8 file, as --dit FILE;
//                                                  --format folder: the upstream folder's sharded bf16 DiT)
//   wan-bench all --json results.jsonl
#include "bench_util.h"

#include "core/core.h"
#include "core/env.h"
#include "core/presets.h"
#include "dist/dist.h"
#include "dit/dit.h"
#include "io/component_files.h"
#include "io/io.h"
#include "lora/lora.h"
#include "pipeline/pipeline.h"
#include "text/text.h"
#include "vae/vae.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using wan::strfmt;

struct Args {
    std::string command;
    std::map<std::string, std::string> opts;
    std::string get(const std::string& k, const std::string& def) const {
        auto it = opts.find(k);
        return it == opts.end() ? def : it->second;
    }
    int get_int(const std::string& k, int def) const { return opts.count(k) ? std::stoi(opts.at(k)) : def; }
};

wan::io::WanConfig model_config(const std::string& name) {
    wan::io::WanConfig c;  // defaults = 1.3B
    if (name == "14B" || name == "A14B") {  // A14B: two experts, each a 14B DiT
        c.dim = 5120;
        c.ffn_dim = 13824;
        c.num_heads = 40;
        c.num_layers = 40;
    } else {
        WAN_CHECK(name == "1.3B", "--model %s: expected 1.3B, 14B or A14B (gen only)", name.c_str());
    }
    return c;
}

void parse_size(const std::string& s, int& w, int& h) {
    auto star = s.find('*');
    WAN_CHECK(star != std::string::npos, "--size %s: expected W*H", s.c_str());
    w = std::stoi(s.substr(0, star));
    h = std::stoi(s.substr(star + 1));
}

/// FLOPs of one DiT forward (batch 1), see docs/PERFORMANCE.md: per block, the q/k/v/o and cross-attention
/// q/o projections and the FFN (2·N·D·(6D + 2F)), self-attention (4·N²·D) and cross-attention over 512 text
/// rows (4·N·512·D). Cross-attention K/V projections are cached per prompt and not counted.
double dit_flops(const wan::io::WanConfig& c, int64_t layers, int64_t n) {
    const double D = static_cast<double>(c.dim), F = static_cast<double>(c.ffn_dim), N = static_cast<double>(n);
    const double per_block = 2 * N * D * (6 * D + 2 * F) + 4 * N * N * D + 4 * N * static_cast<double>(c.text_len) * D;
    return per_block * static_cast<double>(layers);
}

std::vector<nlohmann::json> g_results;

void record(nlohmann::json j) {
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
    g_results.push_back(std::move(j));
}

/// `--dit-dtype auto|fp8|bf16` (default bf16: the random weights are bf16).
wan::dit::WeightDtype dit_dtype_of(const Args& a) {
    const std::string v = a.get("dit_dtype", "bf16");
    const std::optional<wan::dit::WeightDtype> d = wan::dit::parse_weight_dtype(v);
    WAN_CHECK(d.has_value(), "--dit-dtype '%s': expected auto, fp8 or bf16", v.c_str());
    return *d;
}

/// The error of `got` against `want`: max |got − want| / max |want|, and the SNR in dB (mean square of want over
/// mean square of the difference).
struct Deviation {
    double max_rel_err = 0, snr_db = 0;
};
Deviation deviation(const at::Tensor& got, const at::Tensor& want) {
    const double rel = ((got - want).abs().max() / want.abs().max()).item<double>();
    const double mse = (got - want).pow(2).mean().item<double>(), pw = want.pow(2).mean().item<double>();
    return {rel, 10 * std::log10(pw / std::max(mse, 1e-30))};
}

/// `--fp8-attention 1 [--k-mean 1] [--compare 1]`: FP8 self-attention (Note [FP8 attention]) against bf16
/// attention on the same weights and input: speed, and with --compare 1 the error of one forward.
void bench_fp8_attention(const Args& a, wan::dit::WanModel& m, const std::function<at::Tensor()>& forward,
                         double seconds_bf16, const nlohmann::json& what) {
    const auto mode = a.get("k_mean", "0") == "1" ? wan::dit::AttentionFp8::KMean : wan::dit::AttentionFp8::On;
    const auto was = m.options().attention_fp8;
    const at::Tensor probe = at::zeros({1, 128, 1, 128}, at::TensorOptions().device(m.device()).dtype(at::kBFloat16));
    const std::string misfit = wan::dit::flash_attention3_fp8_misfit(probe, probe, probe);
    nlohmann::json j = what;
    j["bench"] = "dit_fp8_attention";
    j["k_mean"] = mode == wan::dit::AttentionFp8::KMean;
    j["fp8_kernel"] = misfit.empty() ? "fa3-e4m3" : "none (bf16): " + misfit;
    if (a.get("compare", "0") == "1") {
        m.set_attention_fp8(wan::dit::AttentionFp8::Off);
        const at::Tensor want = forward();
        m.set_attention_fp8(mode);
        const Deviation d = deviation(forward(), want);
        j["max_rel_err"] = d.max_rel_err;
        j["snr_db"] = d.snr_db;
    }
    m.set_attention_fp8(mode);
    const auto timing = wan::bench::time_it(m.device(), 1, a.get_int("runs", 3), [&] { (void)forward(); });
    m.set_attention_fp8(was);
    j["seconds_fp8_attention"] = timing.mean_s;
    j["seconds_baseline"] = seconds_bf16;
    j["speedup"] = seconds_bf16 / timing.mean_s;
    record(j);
}

/// `--ffn-chunks N` (N ≥ 1; default 0 = the pipeline's choice: 4 with fp8 weights, --max-vram or --offload-dit).
int ffn_chunks_of(const Args& a) {
    const int n = a.get_int("ffn_chunks", 0);
    WAN_CHECK(n >= 0, "--ffn-chunks %d: expected a number of chunks ≥ 1", n);
    return n;
}

void bench_dit(const Args& a, c10::Device device) {
    const std::string model = a.get("model", "1.3B");
    wan::io::WanConfig cfg = model_config(model);
    int w = 0, h = 0;
    parse_size(a.get("size", model == "14B" ? "1280*720" : "832*480"), w, h);
    const int frames = a.get_int("frames", 81);
    const int layers = a.get_int("layers", static_cast<int>(cfg.num_layers));
    const int runs = a.get_int("runs", 3);
    const int64_t T = (frames - 1) / 4 + 1, lh = h / 8, lw = w / 8;
    const int64_t n = T * (lh / 2) * (lw / 2);

    wan::bench::reset_peak(device);
    auto opt = wan::dit::ModelOptions::from_environment();  // WAN_FUSED, WAN_ATTENTION, WAN_DIT_STAGES, WAN_FP8
    opt.device = device;
    opt.weight_dtype = dit_dtype_of(a);
    opt.ffn_chunks = std::max(1, ffn_chunks_of(a));  // dit: off unless asked
    opt.lean_activations = opt.ffn_chunks > 1;
    auto m = wan::dit::WanModel::random(cfg, opt, 0, layers);
    const double weights_gb = wan::bench::peak_gb(device);
    at::Tensor x = at::randn({cfg.in_dim, T, lh, lw}, at::TensorOptions().device(device));
    at::Tensor ctx = at::randn({120, cfg.text_dim}, at::TensorOptions().device(device)).to(at::kBFloat16);
    at::Tensor t = at::scalar_tensor(999.0, at::kDouble);
    wan::dit::CrossAttentionCache cache;
    wan::bench::reset_peak(device);
    auto timing = wan::bench::time_it(device, 1, runs, [&] { (void)m.forward(x, t, ctx, n, &cache); });
    const double flops = dit_flops(cfg, layers, n);
    if (a.get("fp8", "0") == "1") {
        // FP8 linears against bf16 on the same weights and input: speed and error (Note [FP8 linears]).
        at::Tensor ref = m.forward(x, t, ctx, n, &cache);
        m.set_fp8(true);
        at::Tensor got = m.forward(x, t, ctx, n, &cache);
        auto t8 = wan::bench::time_it(device, 1, runs, [&] { (void)m.forward(x, t, ctx, n, &cache); });
        m.set_fp8(false);
        const Deviation d = deviation(got, ref);
        record({{"bench", "dit_fp8"}, {"model", model}, {"layers", layers}, {"size", strfmt("%d*%d", w, h)},
                {"seconds_fp8", t8.mean_s}, {"seconds_bf16", timing.mean_s}, {"speedup", timing.mean_s / t8.mean_s},
                {"max_rel_err", d.max_rel_err}, {"snr_db", d.snr_db},
                {"attention", wan::dit::attention_kernel_name(device, opt.attention)}, {"device", wan::bench::device_name(device)}});
    }
    if (a.get("fp8_attention", "0") == "1")
        bench_fp8_attention(a, m, [&] { return m.forward(x, t, ctx, n, &cache); }, timing.mean_s,
                            {{"model", model}, {"layers", layers}, {"size", strfmt("%d*%d", w, h)},
                             {"fp8_gemms", m.options().fp8}, {"device", wan::bench::device_name(device)}});
    if (m.fp8_weights() && a.get("compare", "0") == "1") {
        // fp8-held weights against the same random weights in bf16 (random() draws the same values for both):
        // the error of one forward (Note [FP8 weights]; WAN_FP8_DIRECT=0 leaves out the FP8 GEMMs' own error).
        const at::Tensor got = m.forward(x, t, ctx, n, &cache);
        auto ref_opt = opt;
        ref_opt.weight_dtype = wan::dit::WeightDtype::Compute;
        const auto ref = wan::dit::WanModel::random(cfg, ref_opt, 0, layers);
        wan::dit::CrossAttentionCache ref_cache;
        const at::Tensor want = ref.forward(x, t, ctx, n, &ref_cache);
        const Deviation d = deviation(got, want);
        record({{"bench", "dit_fp8_weights"}, {"model", model}, {"layers", layers}, {"size", strfmt("%d*%d", w, h)},
                {"fp8_direct", opt.fp8_direct}, {"max_rel_err", d.max_rel_err}, {"snr_db", d.snr_db},
                {"device", wan::bench::device_name(device)}});
    }
    record({{"bench", "dit"}, {"model", model}, {"layers", layers}, {"size", strfmt("%d*%d", w, h)}, {"frames", frames},
            {"tokens", n}, {"seconds", timing.mean_s}, {"min_seconds", timing.min_s}, {"runs", runs},
            {"tflops", flops / timing.mean_s / 1e12}, {"weights_gb", weights_gb},
            {"dit_dtype", m.fp8_weights() ? "fp8" : m.precision() == wan::dit::Precision::BF16Mixed ? "bf16" : "f32"}, {"block_weights_gb", m.weight_bytes().first / 1e9},
            {"ffn_chunks", opt.ffn_chunks}, {"peak_gb", wan::bench::peak_gb(device)},
            {"attention", wan::dit::attention_kernel_name(device, opt.attention)},
            {"device", wan::bench::device_name(device)}});
}

// ---- VAE ----------------------------------------------------------------------------------------------

/// A random-weight VAE of the real size, written once to a safetensors file: the tiny checkpoint's key set
/// with every width scaled to the real base dim 96 (12→96, 24→192, 48→384, 96→768, 144→1152; kernel sizes,
/// z channels and RGB stay), so the tree is exactly the Wan2.1 VAE's.
std::string random_vae_file(const std::string& tiny_vae, const std::string& out_path) {
    auto tiny = wan::io::TensorStore::open(tiny_vae);
    const std::map<int64_t, int64_t> scale = {{12, 96}, {24, 192}, {48, 384}, {96, 768}, {144, 1152}};
    wan::io::NamedTensors tensors;
    at::manual_seed(0);
    for (const auto& name : tiny.names()) {
        auto shape = tiny.info(name).shape;
        for (size_t d = 0; d < shape.size() && d < 2; ++d) {  // only the two channel dims scale
            auto it = scale.find(shape[d]);
            if (it != scale.end()) shape[d] = it->second;
        }
        int64_t fan_in = 1;
        for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
        at::Tensor t = at::randn(shape) * (name.find("gamma") != std::string::npos ? 0.1 : 1.0 / std::sqrt(double(std::max<int64_t>(fan_in, 1))));
        if (name.find("gamma") != std::string::npos) t = t + 1.0;
        tensors.emplace_back(name, t);
    }
    wan::io::save_safetensors(out_path, tensors);
    return out_path;
}

/// The VAE speed switches from `--fold-time 0|1 --cache-buffer 0|1 --fused-norm 0|1 --pad-head 0|1`; `--fast 1`
/// turns those four on (each named one still wins); `--subpixel-upsample 0|1` (not part of --fast, which keeps
/// the meaning of the figures measured with it); `--chunk-frames N` latent frames per decoder call; `--tail-frames K`
/// output frames per call through the decoder's tail (a memory switch, Note [Decode tail]; 0: the whole chunk).
wan::vae::VAESpeedOptions vae_speed(const Args& a) {
    const std::string all = a.get("fast", "0");
    wan::vae::VAESpeedOptions s;
    s.fold_time = a.get("fold_time", all) == "1";
    s.cache_buffer = a.get("cache_buffer", all) == "1";
    s.fused_norm = a.get("fused_norm", all) == "1";
    s.pad_head = a.get("pad_head", all) == "1";
    s.subpixel_upsample = a.get("subpixel_upsample", "0") == "1";
    s.chunk_frames = a.get_int("chunk_frames", 1);
    s.tail_frames = a.get_int("tail_frames", 0);
    return s;
}

std::string vae_speed_str(const wan::vae::VAESpeedOptions& s) {
    std::string out;
    if (s.fold_time) out += "fold-time ";
    if (s.cache_buffer) out += "cache-buffer ";
    if (s.fused_norm) out += "fused-norm ";
    if (s.pad_head) out += "pad-head ";
    if (s.subpixel_upsample) out += "subpixel-upsample ";
    if (s.chunk_frames != 1) out += "chunk-frames=" + std::to_string(s.chunk_frames) + " ";
    if (s.tail_frames != 0) out += "tail-frames=" + std::to_string(s.tail_frames) + " ";
    return out.empty() ? "plain" : out.substr(0, out.size() - 1);
}

/// `speed`: the switches to use (default: none, the plain decode). `video_on_host`: the decoded frames go to host
/// memory as they come, as the pipeline's VAE does; else the video stays on `device` (the decode benchmarks).
std::unique_ptr<wan::vae::WanVAE> random_vae(const Args& a, c10::Device device, at::ScalarType dtype,
                                             wan::vae::VAESpeedOptions speed = {}, bool video_on_host = false) {
    const std::string path = a.get("vae_file", "/tmp/wan_bench_vae.safetensors");
    std::ifstream exists(path);
    if (!exists) random_vae_file(std::string(WAN_SOURCE_DIR) + "/tests/data/golden/tiny-ckpt/Wan2.1_VAE.pth", path);
    wan::vae::VAEOptions o;
    o.device = device;
    o.dtype = dtype;
    o.load_encoder = false;
    o.output_device = video_on_host ? c10::Device(c10::kCPU) : device;
    o.channels_last = a.get("channels_last", device.is_cuda() ? "1" : "0") == "1";  // the pipeline's default
    o.speed = speed;
    auto store = wan::io::TensorStore::open(path);
    return std::make_unique<wan::vae::WanVAE>(store, o);
}

/// Max abs difference and PSNR (peak-to-peak 2) of two decoded videos.
std::pair<double, double> video_error(const at::Tensor& got, const at::Tensor& ref) {
    const at::Tensor d = got.to(at::kFloat) - ref.to(at::kFloat);
    const double mse = d.pow(2).mean().item<double>();
    return {d.abs().max().item<double>(), 10 * std::log10(4.0 / std::max(mse, 1e-20))};
}

/// wan-bench vae: seconds of a decode; with bf16 (--compare 1) its error against the plain f32 decode; with speed
/// switches (--compare-base 1) against the plain decode of the same dtype; with --stages 1 (or WAN_VAE_STAGES=1)
/// one more decode through the stage clock and its table (Note [VAE stage clock]).
void bench_vae(const Args& a, c10::Device device) {
    int w = 0, h = 0;
    parse_size(a.get("size", "832*480"), w, h);
    const int frames = a.get_int("frames", 81);
    const std::string dt = a.get("dtype", "f32");
    const at::ScalarType dtype = dt == "bf16" ? at::kBFloat16 : at::kFloat;
    const int runs = a.get_int("runs", 2);
    // --warmup 0 times the first decode of the process, cuDNN's algorithm search included (what the first job
    // of a session pays); the default 1 times the steady state.
    const int warmup = a.get_int("warmup", 1);
    const wan::vae::VAESpeedOptions speed = vae_speed(a);
    const std::string switches = vae_speed_str(speed);
    auto vae = random_vae(a, device, dtype, speed);
    at::Tensor z = at::randn({16, (frames - 1) / 4 + 1, h / 8, w / 8}, at::TensorOptions().device(device));
    wan::bench::reset_peak(device);
    at::Tensor video;
    auto timing = wan::bench::time_it(device, warmup, runs, [&] { video = vae->decode(z); });
    const double peak = wan::bench::peak_gb(device);
    const std::string size = strfmt("%d*%d", w, h);
    if (a.get("stages", wan::env_flag("WAN_VAE_STAGES", false) ? "1" : "0") == "1") {
        wan::vae::StageTimes times;
        wan::vae::DecodeCallbacks cb;
        cb.stage_times = &times;
        (void)vae->decode(z, cb);
        std::fprintf(stderr, "[vae stages] %s %s, %s:\n%s", size.c_str(), dt.c_str(), switches.c_str(),
                     times.table().c_str());
        nlohmann::json stages = nlohmann::json::object();
        for (const auto& e : times.entries) stages[e.stage] = e.ms;
        record({{"bench", "vae_stages"}, {"size", size}, {"dtype", dt}, {"switches", switches},
                {"total_ms", times.total_ms()}, {"stages_ms", stages}});
    }
    if (vae_speed_str(speed) != "plain") {
        if (a.get("compare_base", "1") == "1") {
            // The switches against the plain decode of the same dtype and latent: equal within rounding?
            const at::Tensor base = random_vae(a, device, dtype)->decode(z);
            const auto [max_abs, psnr] = video_error(video, base);
            record({{"bench", "vae_switches_vs_plain"}, {"size", size}, {"dtype", dt}, {"switches", switches},
                    {"max_abs", max_abs}, {"psnr_db", psnr}});
        }
    }
    if (dt == "bf16" && a.get("compare", "1") == "1") {
        // quality of bf16 against the plain f32 decode of the same latent (same weights)
        const at::Tensor v32 = random_vae(a, device, at::kFloat)->decode(z);
        const auto [max_abs, psnr] = video_error(video, v32);
        record({{"bench", "vae_bf16_vs_f32"}, {"size", size}, {"switches", switches}, {"max_abs", max_abs},
                {"psnr_db", psnr}});
    }
    record({{"bench", "vae_decode"}, {"dtype", dt}, {"size", size}, {"frames", frames},
            {"channels_last", vae->options().channels_last}, {"switches", switches}, {"warmup", warmup},
            {"cudnn_benchmark", at::globalContext().benchmarkCuDNN()}, {"seconds", timing.mean_s},
            {"min_seconds", timing.min_s}, {"first_seconds", timing.first_s}, {"runs", runs}, {"peak_gb", peak},
            {"device", wan::bench::device_name(device)}});
}

/// mpirun -np N wan-bench vae-ranks: WanVAE::decode_across on N ranks (one GPU each: cuda:<local rank>), against
/// the one-rank decode of the same latent on rank 0 (--compare 1, the default: max abs and PSNR); the vae
/// subcommand's switches (--tail-frames K ...) apply to both.
void bench_vae_ranks(const Args& a) {
    wan::dist::MpiSession mpi;
    const c10::Device device = wan::dist::pick_device(a.get("device", "auto"), mpi.local_rank(), mpi.local_size());
    std::unique_ptr<wan::dist::Communicator> comm = wan::dist::make_communicator(MPI_COMM_WORLD, device);
    int w = 0, h = 0;
    parse_size(a.get("size", "832*480"), w, h);
    const int frames = a.get_int("frames", 81);
    const std::string dt = a.get("dtype", device.is_cuda() ? "bf16" : "f32");
    const int runs = a.get_int("runs", 2);
    const int warmup = a.get_int("warmup", 1);
    // One rank writes the random weights file; all read the same weights.
    const std::string path = a.get("vae_file", "/tmp/wan_bench_vae.safetensors");
    if (comm->rank() == 0 && !std::ifstream(path)) {
        random_vae_file(std::string(WAN_SOURCE_DIR) + "/tests/data/golden/tiny-ckpt/Wan2.1_VAE.pth", path);
    }
    comm->barrier();
    auto vae = random_vae(a, device, dt == "bf16" ? at::kBFloat16 : at::kFloat, vae_speed(a));
    at::manual_seed(1);  // the same latent on every rank
    const at::Tensor z = at::randn({16, (frames - 1) / 4 + 1, h / 8, w / 8}).to(device);
    wan::bench::reset_peak(device);
    at::Tensor video;
    auto timing = wan::bench::time_it(device, warmup, runs, [&] {
        comm->barrier();
        video = vae->decode_across(z, *comm);
    });
    const double peak = wan::bench::peak_gb(device);
    if (comm->rank() != 0) return;
    double err = -1, psnr = -1;
    if (a.get("compare", "1") == "1") {
        const at::Tensor one = vae->decode(z);
        err = (video.to(at::kFloat) - one.to(at::kFloat)).abs().max().item<double>();
        const double mse = (video.to(at::kFloat) - one.to(at::kFloat)).pow(2).mean().item<double>();
        psnr = 10 * std::log10(4.0 / std::max(mse, 1e-20));
    }
    record({{"bench", "vae_decode_across_ranks"}, {"ranks", comm->size()}, {"backend", comm->backend()}, {"dtype", dt},
            {"switches", vae_speed_str(vae->options().speed)},
            {"size", strfmt("%d*%d", w, h)}, {"frames", frames}, {"channels_last", vae->options().channels_last},
            {"seconds", timing.mean_s}, {"min_seconds", timing.min_s}, {"runs", runs}, {"peak_gb_rank0", peak},
            {"max_abs_vs_one_rank", err}, {"psnr_db_vs_one_rank", psnr}, {"device", wan::bench::device_name(device)}});
}

// ---- T5 -----------------------------------------------------------------------------------------------

/// Random UMT5-XXL weights (5.7 B parameters) kept on `device`, in the encoder's dtype. Drawn on `draw_on`
/// (the GPU when there is one: drawing 5.7 B normals on the host takes minutes) one tensor at a time.
class RandomT5Weights : public wan::text::T5WeightProvider {
public:
    RandomT5Weights(const wan::text::UMT5Config& c, c10::Device device, at::ScalarType dtype,
                    std::optional<c10::Device> draw_on = std::nullopt) {
        const auto draw = at::TensorOptions().device(draw_on.value_or(device)).dtype(dtype);
        const auto o = at::TensorOptions().device(device).dtype(dtype);
        auto keep = [&](const at::Tensor& t) { return t.to(device); };
        auto lin = [&](int64_t out, int64_t in) { return keep(at::randn({out, in}, draw) * (1.0 / std::sqrt(double(in)))); };
        emb_ = keep(at::randn({c.vocab, c.dim}, draw));
        norm_ = at::ones({c.dim}, o);
        for (int64_t i = 0; i < c.num_layers; ++i) {
            wan::text::T5BlockWeights b;
            b.norm1 = at::ones({c.dim}, o);
            b.q = lin(c.dim_attn, c.dim);
            b.k = lin(c.dim_attn, c.dim);
            b.v = lin(c.dim_attn, c.dim);
            b.o = lin(c.dim, c.dim_attn);
            b.norm2 = at::ones({c.dim}, o);
            b.gate = lin(c.dim_ffn, c.dim);
            b.fc1 = lin(c.dim_ffn, c.dim);
            b.fc2 = lin(c.dim, c.dim_ffn);
            b.pos_embedding = keep(at::randn({c.num_buckets, c.num_heads}, draw));
            blocks_.push_back(b);
        }
    }
    int64_t num_blocks() const override { return static_cast<int64_t>(blocks_.size()); }
    const wan::text::T5BlockWeights& acquire(int64_t i) override { return blocks_.at(static_cast<size_t>(i)); }
    const at::Tensor& token_embedding() override { return emb_; }
    const at::Tensor& final_norm() override { return norm_; }

private:
    at::Tensor emb_, norm_;
    std::vector<wan::text::T5BlockWeights> blocks_;
};

/// Random weights kept on the host and streamed block by block, as the pipeline does with offload_model.
class RandomStreamingT5Weights : public wan::text::T5WeightProvider {
public:
    RandomStreamingT5Weights(const wan::text::UMT5Config& c, c10::Device device, at::ScalarType dtype)
        : device_(device), host_(c, c10::Device(c10::kCPU), dtype, device) {
        norm_ = host_.final_norm().to(device);
        for (int64_t i = 0; i < host_.num_blocks(); ++i) {
            wan::text::T5BlockWeights b = host_.acquire(i);
            for (at::Tensor* t : fields(b)) *t = t->pin_memory();
            pinned_.push_back(b);
        }
    }
    int64_t num_blocks() const override { return host_.num_blocks(); }
    const wan::text::T5BlockWeights& acquire(int64_t i) override {
        cur_ = pinned_.at(static_cast<size_t>(i));
        for (at::Tensor* t : fields(cur_)) *t = t->to(device_, true);
        return cur_;
    }
    static std::vector<at::Tensor*> fields(wan::text::T5BlockWeights& b) {
        return {&b.norm1, &b.q, &b.k, &b.v, &b.o, &b.norm2, &b.gate, &b.fc1, &b.fc2, &b.pos_embedding};
    }
    void release(int64_t) override { cur_ = {}; }
    const at::Tensor& token_embedding() override { return host_.token_embedding(); }
    const at::Tensor& final_norm() override { return norm_; }

private:
    c10::Device device_;
    RandomT5Weights host_;
    std::vector<wan::text::T5BlockWeights> pinned_;
    wan::text::T5BlockWeights cur_;
    at::Tensor norm_;
};

std::unique_ptr<wan::text::TextEncoder> random_text_encoder(c10::Device device, bool stream = false,
                                                            std::optional<at::ScalarType> dtype = std::nullopt) {
    wan::text::UMT5Config c;  // defaults = UMT5-XXL
    wan::text::UMT5Options o;
    o.device = device;
    if (dtype) o.dtype = *dtype;  // c10::optional in LibTorch 1.13
    std::shared_ptr<wan::text::T5WeightProvider> weights;
    const std::optional<c10::Device> draw_on =
        at::hasCUDA() ? std::optional<c10::Device>(c10::Device(c10::kCUDA, 0)) : std::nullopt;
    if (stream) weights = std::make_shared<RandomStreamingT5Weights>(c, device, o.resolved_dtype());
    else weights = std::make_shared<RandomT5Weights>(c, device, o.resolved_dtype(), draw_on);
    // The tokenizer only turns text into ids; the tiny checkpoint's spiece.model (ids < 1000) serves.
    return std::make_unique<wan::text::TextEncoder>(
        wan::text::UMT5Tokenizer(std::string(WAN_SOURCE_DIR) + "/tests/data/golden/tiny-ckpt/google/umt5-xxl/spiece.model"),
        wan::text::UMT5Encoder(c, weights, o));
}

/// `--device cpu` times the `--t5-cpu` encode on the host's cores (f32 by default, `--dtype bf16` to compare).
void bench_t5(const Args& a, c10::Device device) {
    wan::bench::reset_peak(device);
    std::optional<at::ScalarType> dtype;
    if (a.opts.count("dtype")) dtype = a.get("dtype", "") == "bf16" ? at::kBFloat16 : at::kFloat;
    auto te = random_text_encoder(device, false, dtype);
    const double weights_gb = wan::bench::peak_gb(device);
    const std::string prompt = "Two anthropomorphic cats in comfy boxing gear and bright gloves fight intensely on a spotlighted stage.";
    wan::bench::reset_peak(device);
    auto timing = wan::bench::time_it(device, 1, a.get_int("runs", 3), [&] { (void)te->encode({prompt, wan::text::kDefaultNegativePrompt}); });
    record({{"bench", "t5_encode"}, {"what", "prompt + negative prompt, one batched call (B=2, 512 tokens)"},
            {"dtype", c10::toString(dtype.value_or(device.is_cpu() ? at::kFloat : at::kBFloat16))},
            {"threads", at::get_num_threads()},
            {"seconds", timing.mean_s}, {"min_seconds", timing.min_s}, {"weights_gb", weights_gb},
            {"peak_gb", wan::bench::peak_gb(device)}, {"device", wan::bench::device_name(device)}});
}

// ---- full generation ------------------------------------------------------------------------------------

/// The random-weight pipeline of `--model 1.3B|14B` (text encoder, DiT with optional --layers, VAE), or with
/// `--model tiny` the tiny test checkpoint (a CPU smoke test of the benchmark's own code). `--offload-dit` /
/// `--max-vram GB` stream the DiT blocks as the app's options do; the random DiT is built on the device first
/// (fast), so loading peaks at its full size, and the blocks past the budget then move to host memory.
/// The engine options gen and teacache take: --live-preview, --offload-dit, --lora-backup, --max-vram,
/// --dit-dtype, --ffn-chunks.
wan::pipeline::EngineConfig engine_config_of(const Args& a) {
    wan::pipeline::EngineConfig ec;
    ec.live_preview = a.get("live_preview", "1") == "1";  // --live-preview 0: its cost is the difference in s/step
    ec.offload_dit = a.get("offload_dit", "0") == "1";
    ec.lora_backup = a.get("lora_backup", "auto");
    ec.max_vram_gb = std::stod(a.get("max_vram", "0"));
    WAN_CHECK(ec.max_vram_gb >= 0, "--max-vram %g: expected a positive number of GB", ec.max_vram_gb);
    ec.dit_dtype = wan::dit::weight_dtype_name(dit_dtype_of(a));
    ec.ffn_chunks = ffn_chunks_of(a);
    ec.warm_up = a.get("warm_up", "1") == "1";  // --warm-up 0: the first job pays the one-time set-up
    ec.vae_autotune = a.get("vae_autotune", "auto");  // Note [VAE autotuning]
    if (a.opts.count("size")) parse_size(a.get("size", ""), ec.warm_up_width, ec.warm_up_height);  // as the CLI: the job's size
    return ec;
}

std::unique_ptr<wan::pipeline::T2VPipeline> random_pipeline(const Args& a, c10::Device device,
                                                             wan::dit::WanModel** dit_out = nullptr) {
    const std::string model = a.get("model", "1.3B");
    wan::pipeline::EngineConfig ec = engine_config_of(a);
    if (model == "tiny") {
        ec.ckpt_dir = std::string(WAN_SOURCE_DIR) + "/tests/data/golden/tiny-ckpt";
        ec.device = device.is_cuda() ? "cuda" : "cpu";
        return std::make_unique<wan::pipeline::T2VPipeline>(ec);
    }
    wan::io::WanConfig cfg = model_config(model);
    wan::pipeline::PipelineParts parts;
    parts.text = random_text_encoder(device, a.get("t5_stream", "1") == "1");
    auto opt = wan::dit::ModelOptions::from_environment();
    opt.device = device;
    opt.weight_dtype = dit_dtype_of(a);  // quantised block by block as it is drawn: never the full bf16 model
    parts.dit = std::make_unique<wan::dit::WanModel>(wan::dit::WanModel::random(cfg, opt, 0, a.get_int("layers", -1)));
    if (dit_out) *dit_out = parts.dit.get();  // the pipeline owns it from here on
    if (model == "A14B") {  // the high-noise expert: the same shapes, other values
        ec.offload_idle_expert = a.get("offload_idle_expert", "0") == "1";
        parts.dit_high = std::make_unique<wan::dit::WanModel>(wan::dit::WanModel::random(cfg, opt, 1, a.get_int("layers", -1)));
    }
    // The video goes to host memory frame by frame as in the app (engine/pipeline's VAE); `--video-on-device 1`
    // keeps it on the GPU as gen did before session 30 (+0.39 GB at 480p, +0.90 GB at 720p, f32).
    // `--tail-frames K` / `--chunk-frames N` override the engine's (Note [Decode tail], Note [Decode chunks]).
    wan::vae::VAESpeedOptions vae_switches =
        wan::pipeline::default_vae_speed(device, wan::pipeline::memory_first(ec, parts.dit->fp8_weights()));
    vae_switches.tail_frames = a.get_int("tail_frames", static_cast<int>(vae_switches.tail_frames));
    vae_switches.chunk_frames = a.get_int("chunk_frames", static_cast<int>(vae_switches.chunk_frames));
    parts.vae = random_vae(a, device, a.get("vae_dtype", "bf16") == "bf16" ? at::kBFloat16 : at::kFloat,
                           vae_switches, a.get("video_on_device", "0") != "1");
    parts.variant = model == "A14B" ? "14B" : model;  // 14B with a second expert is A14B (the engine's info says so)
    return std::make_unique<wan::pipeline::T2VPipeline>(std::move(parts), ec);
}

/// The Linears of one DiT block that `--make-lora` covers (all of them), with their [out, in] for `model`.
struct BlockLinear {
    const char* name;
    int64_t out, in;
};
std::vector<BlockLinear> block_linears(const wan::io::WanConfig& c) {
    const int64_t D = c.dim, F = c.ffn_dim;
    return {{"self_attn.q", D, D}, {"self_attn.k", D, D}, {"self_attn.v", D, D}, {"self_attn.o", D, D},
            {"cross_attn.q", D, D}, {"cross_attn.k", D, D}, {"cross_attn.v", D, D}, {"cross_attn.o", D, D},
            {"ffn.0", F, D},         {"ffn.2", D, F}};
}

/// A random LoRA in the native key style on every Linear of every block (`--make-lora RANK`, written to the
/// `--lora` file): down [rank, in] ~ N(0, 1/in), up [out, rank] ~ N(0, (0.01/rank)^2), alpha = rank, bf16 — the
/// size of a published rank-RANK Wan LoRA on the block Linears, with a delta small enough to keep outputs finite.
void write_random_lora(const Args& a, int rank, const std::string& path) {
    const std::string model = a.get("model", "1.3B");
    WAN_CHECK(model != "tiny", "--make-lora: needs --model 1.3B or 14B (for tiny, use tests/data/accel's LoRA files)");
    WAN_CHECK(rank >= 1, "--make-lora %d: the rank must be at least 1", rank);
    const wan::io::WanConfig c = model_config(model);
    const int layers = a.get_int("layers", -1) > 0 ? a.get_int("layers", -1) : static_cast<int>(c.num_layers);
    wan::io::NamedTensors tensors;
    at::Generator gen = at::detail::createCPUGenerator(7);
    const auto f32 = at::TensorOptions().dtype(at::kFloat);
    for (int i = 0; i < layers; ++i) {
        for (const BlockLinear& l : block_linears(c)) {
            const std::string module = strfmt("diffusion_model.blocks.%d.%s", i, l.name);
            tensors.emplace_back(module + ".lora_A.weight",
                                 (at::randn({rank, l.in}, gen, f32) / std::sqrt(static_cast<double>(l.in))).to(at::kBFloat16));
            tensors.emplace_back(module + ".lora_B.weight", (at::randn({l.out, rank}, gen, f32) * (0.01 / rank)).to(at::kBFloat16));
            tensors.emplace_back(module + ".alpha", at::full({}, static_cast<double>(rank), f32));
        }
    }
    wan::io::save_safetensors(path, tensors);
    std::fprintf(stderr, "wan-bench: wrote a random rank-%d LoRA on %d blocks (%zu tensors) to %s\n", rank, layers,
                 tensors.size(), path.c_str());
}

/// Where reading a LoRA file goes (`wan-bench lora`, no model, CPU): the parse (header, key mapping, views), a
/// plain read of every byte, the SHA-256 of bytes already in memory, and the SHA-256 of the file as the merge
/// takes it. Runs on whatever the page cache holds: the first run after --make-lora reads a warm file.
void bench_lora(const Args& a) {
    const std::string path = a.get("lora", "");
    WAN_CHECK(!path.empty(), "lora: needs --lora FILE (with --make-lora RANK: written first)");
    if (a.opts.count("make_lora")) write_random_lora(a, a.get_int("make_lora", 64), path);
    const wan::io::WanConfig c = model_config(a.get("model", "14B"));
    std::vector<std::string> names;
    for (int64_t i = 0; i < c.num_layers; ++i)
        for (const BlockLinear& l : block_linears(c)) names.push_back(strfmt("blocks.%lld.%s.weight", static_cast<long long>(i), l.name));
    const wan::lora::KeyMapper mapper(names);
    // Wall seconds, and this thread's CPU seconds (every part is single-threaded): on a shared machine the wall
    // time counts the other programs' turns, the CPU time only this work.
    struct Seconds {
        double wall, cpu;
    };
    auto thread_cpu = [] {
        timespec ts{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    };
    auto timed = [&](const auto& fn) {
        const auto t0 = std::chrono::steady_clock::now();
        const double c0 = thread_cpu();
        fn();
        return Seconds{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), thread_cpu() - c0};
    };
    for (int run = 0; run < a.get_int("runs", 3); ++run) {
        size_t deltas = 0;
        const Seconds parse = timed([&] { deltas = wan::lora::LoraFile::read(path, mapper).deltas().size(); });
        std::vector<char> bytes;
        const Seconds read = timed([&] {
            std::ifstream f(path, std::ios::binary | std::ios::ate);
            bytes.resize(static_cast<size_t>(f.tellg()));
            f.seekg(0);
            f.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
            WAN_CHECK(f.good(), "lora: cannot read '%s'", path.c_str());
        });
        std::string in_memory, from_file;
        const Seconds hash = timed([&] { in_memory = wan::lora::sha256_hex(bytes.data(), bytes.size()); });
        const Seconds file = timed([&] { from_file = wan::lora::sha256_file(path); });
        WAN_CHECK(in_memory == from_file, "lora: the two SHA-256 of '%s' differ", path.c_str());
        const double gb = static_cast<double>(bytes.size()) / 1e9;
        std::printf("lora %s (%.3f GB, %zu parameters), wall / CPU seconds: parse %.3f / %.3f, read %.3f / %.3f, "
                    "sha256 in memory %.3f / %.3f (%.2f GB/s of CPU), sha256_file %.3f / %.3f\n",
                    path.c_str(), gb, deltas, parse.wall, parse.cpu, read.wall, read.cpu, hash.wall, hash.cpu,
                    gb / hash.cpu, file.wall, file.cpu);
        g_results.push_back({{"bench", "lora"}, {"file_gb", gb}, {"parse_s", parse.wall}, {"parse_cpu_s", parse.cpu},
                             {"read_s", read.wall}, {"read_cpu_s", read.cpu}, {"sha256_memory_s", hash.wall},
                             {"sha256_memory_cpu_s", hash.cpu}, {"sha256_file_s", file.wall},
                             {"sha256_file_cpu_s", file.cpu}});
    }
}

/// One timed generation for bench_gen: its times and peak GPU memory per stage (each stage's peak read when the
/// next one reports). `trace` non-empty: a Chrome trace of the denoising stage is written there (the profiler
/// slows the host side: that job's times are not comparable).
nlohmann::json timed_generation(wan::pipeline::T2VPipeline& pipe, const wan::GenerationRequest& r, c10::Device device,
                                const std::string& trace) {
    wan::bench::reset_peak(device);
    std::map<std::string, double> stage_peak;
    wan::Stage current = wan::Stage::Queued;
    std::optional<wan::bench::TraceSession> tracing;
    auto on_progress = [&](const wan::ProgressInfo& p) {
        if (p.stage == current) return;
        if (current != wan::Stage::Queued) stage_peak[wan::stage_name(current)] = wan::bench::peak_gb(device);
        if (tracing) {  // the denoising stage ended
            wan::bench::sync(device);
            tracing->save(trace);
            tracing.reset();
            std::fprintf(stderr, "trace of the denoising stage written to %s\n", trace.c_str());
        }
        wan::bench::reset_peak(device);
        current = p.stage;
        if (current == wan::Stage::Denoise && !trace.empty()) tracing.emplace();
    };
    const auto t0 = std::chrono::steady_clock::now();
    const auto out = pipe.generate(r, on_progress);
    wan::bench::sync(device);
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (current != wan::Stage::Queued) stage_peak[wan::stage_name(current)] = wan::bench::peak_gb(device);
    double peak = 0;
    nlohmann::json stage_json = nlohmann::json::object();
    for (const auto& [stage, gb] : stage_peak) {
        stage_json[stage] = gb;
        peak = std::max(peak, gb);
    }
    return {{"steps", out.steps_computed}, {"dit_forwards", out.dit_forwards}, {"lora_merge_s", out.seconds_lora},
            {"lora_backup_gb", static_cast<double>(out.lora_backup_bytes) / 1e9}, {"seconds", total},
            {"text_s", out.seconds_text}, {"denoise_s", out.seconds_denoise},
            {"per_step_s", out.seconds_denoise / std::max(1, out.steps_computed)}, {"decode_s", out.seconds_decode},
            {"peak_gb", std::max(peak, wan::bench::peak_gb(device))}, {"stage_peak_gb", stage_json}};
}

/// gen's request: `--size`, `--frames`, `--steps`, `--preset`, seed 42, the cats prompt.
wan::GenerationRequest bench_request(const Args& a) {
    const std::string model = a.get("model", "1.3B");
    wan::GenerationRequest r;
    parse_size(a.get("size", model == "14B" || model == "A14B" ? "1280*720" : model == "tiny" ? "64*64" : "832*480"),
               r.width, r.height);
    r.prompt = "Two anthropomorphic cats in comfy boxing gear and bright gloves fight intensely on a spotlighted stage.";
    r.frame_num = a.get_int("frames", model == "tiny" ? 5 : 81);
    r.sample_steps = a.get_int("steps", model == "tiny" ? 4 : 50);
    r.seed = 42;
    if (a.opts.count("preset")) {
        wan::apply_sampling_preset(wan::find_sampling_preset(a.get("preset", ""), "--preset"), r);
        if (a.opts.count("steps")) {  // an explicit --steps wins: evenly spaced steps instead of the list
            r.sample_steps = a.get_int("steps", 50);
            r.denoising_steps.clear();
        }
        if (r.sample_steps == 0) r.sample_steps = 50;
        if (r.sample_shift < 0) r.sample_shift = 5.0;
        if (r.guide_scale < 0) r.guide_scale = 5.0;
    }
    return r;
}

void bench_gen(const Args& a, c10::Device device) {
    const std::string model = a.get("model", "1.3B");
    wan::GenerationRequest r = bench_request(a);
    const int w = r.width, h = r.height;
    wan::bench::reset_peak(device);
    auto pipe_ptr = random_pipeline(a, device);
    wan::pipeline::T2VPipeline& pipe = *pipe_ptr;
    if (a.opts.count("lora")) {
        if (a.opts.count("make_lora")) write_random_lora(a, a.get_int("make_lora", 64), a.get("lora", ""));
        r.loras.push_back({a.get("lora", ""), 1.0});
    }
    const double load_gb = wan::bench::peak_gb(device);
    wan::bench::reset_peak(device);
    const double resident_gb = wan::bench::peak_gb(device);  // right after a reset: what stays allocated
    // --repeat N: N jobs in one process, a record each ("job": 1..N); the first pays the process's one-time CUDA,
    // cuDNN and allocator set-up, the later ones are what a running app's next job costs.
    const int repeat = a.get_int("repeat", 1);
    WAN_CHECK(repeat >= 1, "--repeat %d: expected a number of jobs >= 1", repeat);
    // Each job a new prompt, as a user's next idea (T5 runs); --same-prompt 1: the same one, as trying seeds (the
    // engine then reuses the encoding, Note [Prompt reuse]).
    const bool same_prompt = a.get("same_prompt", "0") == "1";
    const std::string prompt = r.prompt;
    for (int job = 1; job <= repeat; ++job) {
        if (!same_prompt && job > 1) r.prompt = prompt + strfmt(" Take %d.", job);
        nlohmann::json j = timed_generation(pipe, r, device, job == repeat ? a.get("trace", "") : "");
        j["same_prompt"] = same_prompt;
        j.update({{"bench", "generate"}, {"job", job}, {"model", model}, {"size", strfmt("%d*%d", w, h)},
                  {"frames", r.frame_num}, {"preset", r.preset}, {"live_preview", a.get("live_preview", "1") == "1"},
                  {"vae_autotune", at::globalContext().benchmarkCuDNN()},
                  {"loras", r.loras.size()}, {"weights_gb", load_gb}, {"resident_gb", resident_gb},
                  {"offload_dit", a.get("offload_dit", "0") == "1"}, {"max_vram_gb", std::stod(a.get("max_vram", "0"))},
                  {"offload_idle_expert", a.get("offload_idle_expert", "0") == "1"},
                  {"dit_dtype", a.get("dit_dtype", "bf16")},
                  {"ffn_chunks", wan::pipeline::resolved_ffn_chunks(engine_config_of(a), dit_dtype_of(a) == wan::dit::WeightDtype::Fp8)},
                  {"video_on_device", a.get("video_on_device", "0") == "1"},
                  {"vae_tail_frames", a.get("tail_frames", "engine")}, {"device", wan::bench::device_name(device)}});
        record(j);
    }
}

// ---- step caching: same seed without and with --teacache ------------------------------------------------

/// PSNR in dB of two uint8 videos [F, H, W, 3] (255² / MSE over every sample; inf when equal).
double psnr_u8(const at::Tensor& a, const at::Tensor& b) {
    const double mse = (a.to(at::kDouble) - b.to(at::kDouble)).pow(2).mean().item<double>();
    return mse == 0 ? INFINITY : 10.0 * std::log10(255.0 * 255.0 / mse);
}

/// Mean SSIM (Wang et al. 2004) of the luma of two uint8 videos [F, H, W, 3]: BT.601 luma in [0, 255],
/// 11×11 Gaussian window (σ 1.5, separable, valid region only), C1 = (0.01·255)², C2 = (0.03·255)²,
/// averaged over pixels and frames.
double ssim_luma_u8(const at::Tensor& a, const at::Tensor& b) {
    auto luma = [](const at::Tensor& v) {  // [F, H, W, 3] → [F, 1, H, W] f64
        const at::Tensor f = v.to(at::kDouble);
        return (f.select(3, 0) * 0.299 + f.select(3, 1) * 0.587 + f.select(3, 2) * 0.114).unsqueeze(1);
    };
    const at::Tensor x = luma(a), y = luma(b);
    const int64_t k = std::min<int64_t>({11, x.size(2), x.size(3)});
    at::Tensor g = at::arange(k, at::TensorOptions().dtype(at::kDouble)) - static_cast<double>(k - 1) / 2;
    g = at::exp(-g.pow(2) / (2 * 1.5 * 1.5));
    g = g / g.sum();
    const at::Tensor gh = g.view({1, 1, 1, k}), gv = g.view({1, 1, k, 1});
    auto blur = [&](const at::Tensor& t) { return at::conv2d(at::conv2d(t, gh), gv); };
    const at::Tensor mx = blur(x), my = blur(y);
    const at::Tensor sxx = blur(x * x) - mx * mx, syy = blur(y * y) - my * my, sxy = blur(x * y) - mx * my;
    const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
    const at::Tensor s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
    return s.mean().item<double>();
}

/// `wan-bench teacache --model 1.3B --size 832*480 --steps 50 --threshold X [--layers N] [--frames N]`:
/// one warm-up job (2 steps, same shapes: CUDA/cuDNN set-up out of the timings), then the same seed without
/// and with step caching. Prints both times, the speed-up, the DiT steps computed and PSNR / SSIM of the
/// cached video against the uncached one (8-bit frames). Random weights: the quality numbers only say how
/// far the cached trajectory drifts, not how a real model's video looks.
void bench_teacache(const Args& a, c10::Device device) {
    const std::string model = a.get("model", "1.3B");
    const double threshold = std::stod(a.get("threshold", "0.2"));
    WAN_CHECK(threshold > 0, "--threshold %g: must be > 0", threshold);
    wan::GenerationRequest r = bench_request(a);
    r.sample_steps = a.get_int("steps", 50);  // 50 for the tiny model too: caching needs steps to skip
    const int w = r.width, h = r.height;
    auto pipe = random_pipeline(a, device);
    auto run = [&](double th, int steps) {
        pipe->set_teacache_threshold(th);
        wan::GenerationRequest req = r;
        req.sample_steps = steps;
        auto t0 = std::chrono::steady_clock::now();
        auto out = pipe->generate(req);
        wan::bench::sync(device);
        return std::make_pair(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), out);
    };
    if (a.get("warmup", "1") == "1") run(0, std::min(2, r.sample_steps));
    wan::bench::reset_peak(device);
    const auto base = run(0, r.sample_steps);
    const double base_peak = wan::bench::peak_gb(device);
    wan::bench::reset_peak(device);
    const auto cached = run(threshold, r.sample_steps);
    const double cached_peak = wan::bench::peak_gb(device);
    const at::Tensor u0 = wan::pipeline::video_to_uint8(base.second.video);
    const at::Tensor u1 = wan::pipeline::video_to_uint8(cached.second.video);
    const double psnr = psnr_u8(u1, u0), ssim = ssim_luma_u8(u1, u0);
    const double latent_rel = (cached.second.latent - base.second.latent).norm().item<double>() /
                              base.second.latent.norm().item<double>();
    std::printf("teacache %g: %d of %d DiT steps computed; total %.2f s -> %.2f s (x%.2f), denoise %.2f s -> %.2f s "
                "(x%.2f); video PSNR %.2f dB, SSIM %.4f (cached vs uncached)\n",
                threshold, cached.second.steps_computed, r.sample_steps, base.first, cached.first,
                base.first / cached.first, base.second.seconds_denoise, cached.second.seconds_denoise,
                base.second.seconds_denoise / cached.second.seconds_denoise, psnr, ssim);
    record({{"bench", "teacache"}, {"model", model}, {"layers", a.get_int("layers", -1)},
            {"size", strfmt("%d*%d", w, h)}, {"frames", r.frame_num}, {"steps", r.sample_steps},
            {"threshold", threshold}, {"steps_computed", cached.second.steps_computed},
            {"seconds_uncached", base.first}, {"seconds_cached", cached.first},
            {"speedup", base.first / cached.first}, {"denoise_s_uncached", base.second.seconds_denoise},
            {"denoise_s_cached", cached.second.seconds_denoise},
            {"denoise_speedup", base.second.seconds_denoise / cached.second.seconds_denoise},
            {"psnr_db", std::isfinite(psnr) ? nlohmann::json(psnr) : nlohmann::json("inf")}, {"ssim", ssim},
            {"latent_rel_l2", latent_rel}, {"peak_gb_uncached", base_peak}, {"peak_gb_cached", cached_peak},
            {"device", wan::bench::device_name(device)}});
}

// ---- FP8 against bf16 on the same job -----------------------------------------------------------------

/// `wan-bench fp8-video --model 1.3B|14B [--size WxH] [--preset lightx2v-4step | --steps N] [--what compute|weights]
/// [--fp8-attention on|kmean|off]`: the same job (seed, prompt, random weights) in bf16 and with FP8, PSNR / SSIM
/// of the FP8 video against the bf16 one (8-bit frames) and the final latent's relative L2 error. compute: one
/// pipeline, the job run with bf16 GEMMs and attention, then with FP8 GEMMs (`--fp8`) and FP8 attention (default
/// kmean); weights: a bf16 DiT against the same values held as fp8 (`--dit-dtype fp8`, which on Hopper also runs
/// its GEMMs in FP8). Random weights: the numbers say how far FP8 moves a video of this model's size and depth,
/// not how a real model's video looks.
void bench_fp8_video(const Args& a, c10::Device device) {
    const std::string what = a.get("what", "compute");
    WAN_CHECK(what == "compute" || what == "weights", "--what %s: expected compute or weights", what.c_str());
    const wan::GenerationRequest r = bench_request(a);
    auto job = [&](wan::pipeline::T2VPipeline& pipe) {
        auto t0 = std::chrono::steady_clock::now();
        auto out = pipe.generate(r);
        wan::bench::sync(device);
        return std::make_pair(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), out);
    };
    std::pair<double, wan::pipeline::PipelineOutput> base, fp8;
    std::string fp8_what;
    if (what == "compute") {
        Args bf16 = a;
        bf16.opts["dit_dtype"] = "bf16";
        wan::dit::WanModel* dit = nullptr;
        auto pipe = random_pipeline(bf16, device, &dit);
        WAN_CHECK(dit != nullptr, "fp8-video --model %s: expected 1.3B or 14B (a random model)", a.get("model", "").c_str());
        dit->set_fp8(false);
        dit->set_attention_fp8(wan::dit::AttentionFp8::Off);
        base = job(*pipe);
        const auto mode = wan::dit::parse_attention_fp8(a.get("fp8_attention", "kmean"));
        WAN_CHECK(mode.has_value(), "--fp8-attention %s: expected off, on or kmean", a.get("fp8_attention", "").c_str());
        dit->set_fp8(true);
        dit->set_attention_fp8(*mode);
        fp8 = job(*pipe);
        fp8_what = std::string("FP8 GEMMs + FP8 attention ") + wan::dit::attention_fp8_name(*mode);
    } else {
        for (const char* dtype : {"bf16", "fp8"}) {
            Args one = a;
            one.opts["dit_dtype"] = dtype;
            at::manual_seed(11);  // the same random T5 in both pipelines (the DiT and the VAE seed themselves)
            auto pipe = random_pipeline(one, device);
            (std::string(dtype) == "bf16" ? base : fp8) = job(*pipe);
        }
        fp8_what = "fp8 DiT weights (--dit-dtype fp8)";
    }
    const at::Tensor u0 = wan::pipeline::video_to_uint8(base.second.video);
    const at::Tensor u1 = wan::pipeline::video_to_uint8(fp8.second.video);
    const double psnr = psnr_u8(u1, u0), ssim = ssim_luma_u8(u1, u0);
    const double latent_rel = (fp8.second.latent - base.second.latent).norm().item<double>() /
                              base.second.latent.norm().item<double>();
    record({{"bench", "fp8_video"}, {"model", a.get("model", "1.3B")}, {"what", fp8_what},
            {"size", strfmt("%d*%d", r.width, r.height)}, {"frames", r.frame_num}, {"steps", r.sample_steps},
            {"preset", r.preset}, {"seconds_bf16", base.first}, {"seconds_fp8", fp8.first},
            {"psnr_db", std::isfinite(psnr) ? nlohmann::json(psnr) : nlohmann::json("inf")}, {"ssim", ssim},
            {"latent_rel_l2", latent_rel}, {"device", wan::bench::device_name(device)}});
}

// ---- checkpoint loading: peak extra host memory ------------------------------------------------------------

long status_kb(const char* key) {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::string(key).size()));
    return -1;
}

/// `wan-bench load --file F [--dtype bf16|f32] [--device cpu|cuda]`: loads every tensor of F one after the
/// other (as the models do) and reports the process's peak resident memory growth against the file size and
/// the largest tensor. With --make N a file of N tensors of 100 MB each is written first.
void bench_load(const Args& a, c10::Device device) {
    const std::string path = a.get("file", "/tmp/wan_bench_load.safetensors");
    if (a.opts.count("make")) {
        const int n = a.get_int("make", 12);
        wan::io::NamedTensors t;
        for (int i = 0; i < n; ++i) t.emplace_back("t" + std::to_string(i), at::randn({25 * 1024 * 1024}));
        wan::io::save_safetensors(path, t);
    }
    const at::ScalarType dt = a.get("dtype", "bf16") == "f32" ? at::kFloat : at::kBFloat16;
    // Anonymous memory (what the process allocates) sampled while each loaded tensor is alive; the mapped file
    // pages the reader touches are page cache (file-backed, reclaimable) and reported separately.
    const long anon_before = status_kb("RssAnon:"), file_before = status_kb("RssFile:");
    long anon_peak = anon_before, file_peak = file_before;
    auto store = wan::io::TensorStore::open(path);
    int64_t largest = 0;
    for (const auto& n : store.names()) {
        const auto& info = store.info(n);
        largest = std::max<int64_t>(largest, info.numel() * 4);
        at::Tensor t = store.load(n, device, dt);  // dropped at once: the models keep theirs on the device
        anon_peak = std::max(anon_peak, status_kb("RssAnon:"));
        file_peak = std::max(file_peak, status_kb("RssFile:"));
    }
    record({{"bench", "load"}, {"file_gb", store.total_bytes() / 1e9}, {"largest_tensor_gb", largest / 1e9},
            {"peak_anon_growth_gb", (anon_peak - anon_before) * 1024.0 / 1e9},
            {"peak_file_pages_gb", (file_peak - file_before) * 1024.0 / 1e9}, {"dtype", c10::toString(dt)},
            {"device", wan::bench::device_name(device)}});
}

/// A random DiT of `cfg` with upstream names: fp8 → every block Linear weight as F8_E4M3 codes with a per-tensor
/// `.scale_weight` and the `scaled_fp8` marker (ComfyUI's scaled-fp8 files, Note [Component files]), the rest
/// bf16; otherwise everything bf16. Drawn on `device`, returned on the CPU.
wan::io::NamedTensors random_dit_tensors(const wan::io::WanConfig& cfg, bool fp8, c10::Device device) {
    wan::io::NamedTensors t;
    const auto on = at::TensorOptions().device(device).dtype(at::kFloat);
#if WAN_TORCH_VERSION >= 201
    if (fp8) t.emplace_back("scaled_fp8", at::empty({0}, at::TensorOptions().dtype(at::kFloat8_e4m3fn)));
#else
    WAN_CHECK(!fp8, "wan-bench load-dit --format fp8 needs LibTorch >= 2.1 (float8 tensors)");
#endif
    for (const wan::dit::ParameterSpec& s : wan::dit::expected_parameter_shapes(cfg)) {
        const at::Tensor w = at::randn(s.shape, on) * 0.02;
        const bool block_linear = s.name.rfind("blocks.", 0) == 0 && s.shape.size() == 2;
#if WAN_TORCH_VERSION >= 201
        if (fp8 && block_linear) {
            const at::Tensor scale = w.abs().amax().clamp_min(1e-12) / 448.0;
            t.emplace_back(s.name, (w / scale).to(at::kFloat8_e4m3fn).cpu());
            t.emplace_back(s.name.substr(0, s.name.size() - 7) + ".scale_weight", scale.cpu());
            continue;
        }
#endif
        (void)block_linear;
        t.emplace_back(s.name, w.to(at::kBFloat16).cpu());
    }
    return t;
}

/// ComfyUI's single file: the tensors under `model.diffusion_model.`.
void write_dit_file(const std::string& path, const wan::io::WanConfig& cfg, bool fp8, c10::Device device) {
    wan::io::NamedTensors t = random_dit_tensors(cfg, fp8, device);
    for (auto& [name, tensor] : t)
        if (name != "scaled_fp8") name = "model.diffusion_model." + name;
    wan::io::save_safetensors(path, t);
}

/// The upstream folder's DiT: bf16 tensors in `shards` safetensors files of about equal size
/// (diffusion_pytorch_model-0000k-of-0000n.safetensors, as Wan-AI's 14B ships six) and the index json naming the
/// file of each tensor. Returns the index's path.
std::string write_dit_folder(const std::string& dir, const wan::io::WanConfig& cfg, int shards, c10::Device device) {
    std::filesystem::create_directories(dir);
    const wan::io::NamedTensors all = random_dit_tensors(cfg, false, device);
    int64_t total = 0;
    for (const auto& [name, tensor] : all) total += tensor.numel() * tensor.element_size();
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", nlohmann::json::object()}};
    wan::io::NamedTensors shard;
    int64_t written = 0;
    int k = 1;
    const auto flush = [&] {
        char name[96];
        std::snprintf(name, sizeof name, "diffusion_pytorch_model-%05d-of-%05d.safetensors", k++, shards);
        for (const auto& [n, tensor] : shard) index["weight_map"][n] = name;
        wan::io::save_safetensors(dir + "/" + name, shard);
        shard.clear();
    };
    for (const auto& [name, tensor] : all) {
        shard.emplace_back(name, tensor);
        const int64_t bytes = tensor.numel() * tensor.element_size();
        written += bytes;
        if (k < shards && written >= total * k / shards) flush();
    }
    if (!shard.empty()) flush();
    const std::string index_path = dir + "/" + wan::io::CheckpointDir::kDitIndexName;
    std::ofstream(index_path) << index.dump(1);
    return index_path;
}

uint64_t bytes_on_disk(const std::string& path) {
    if (!std::filesystem::is_directory(path)) return std::filesystem::file_size(path);
    uint64_t total = 0;
    for (const auto& e : std::filesystem::directory_iterator(path))
        if (e.is_regular_file()) total += e.file_size();
    return total;
}

/// `wan-bench load-dit --model 14B --format fp8|bf16|folder [--file F] [--write 1] [--runs 2]`: issue 21's load
/// time. Writes a random DiT of the model's size (--write 1, or when F does not exist; the writing leaves it in
/// the page cache): fp8 / bf16 as one ComfyUI-style file, timed as `--dit F` (open, infer the model from its
/// shapes, build the DiT on the device; fp8 files held as fp8); folder as the upstream folder's six bf16 shards
/// and index json (F is the folder), timed as the checkpoint folder's DiT (open the index, build the DiT). Each run
/// after the first reads from the page cache for certain.
void bench_load_dit(const Args& a, c10::Device device) {
    const std::string model = a.get("model", "14B"), format = a.get("format", "fp8");
    WAN_CHECK(format == "fp8" || format == "bf16" || format == "folder", "--format %s: expected fp8, bf16 or folder",
              format.c_str());
    const bool folder = format == "folder";
    const std::string path = a.get("file", "/tmp/wan_bench_dit_" + model + "_" + format + (folder ? "" : ".safetensors"));
    const std::string index_path = path + "/" + wan::io::CheckpointDir::kDitIndexName;
    const wan::io::WanConfig cfg = model_config(model);
    if (a.get("write", "0") == "1" || !std::ifstream(folder ? index_path : path).good()) {
        const auto t0 = std::chrono::steady_clock::now();
        if (folder) write_dit_folder(path, cfg, a.get_int("shards", 6), device);
        else write_dit_file(path, cfg, format == "fp8", device);
        std::fprintf(stderr, "wrote %s in %.1f s\n", path.c_str(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    // What is read: the file's (or shards') size, not the store's total_bytes, which counts scaled-fp8 tensors at
    // the bf16 width the store presents them in.
    const double file_gb = static_cast<double>(bytes_on_disk(path)) / 1e9;
    for (int run = 1; run <= a.get_int("runs", 2); ++run) {
        const auto t0 = std::chrono::steady_clock::now();
        const wan::io::TensorStore view =
            folder ? wan::io::TensorStore::open_safetensors_index(index_path) : wan::io::open_dit_file(path);
        const wan::io::WanConfig found = folder ? cfg : wan::io::infer_dit_config(view, path);
        auto opt = wan::dit::ModelOptions::from_environment();
        opt.device = device;
        wan::dit::WanModel m(found, view, opt);
        wan::bench::sync(device);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        record({{"bench", "load_dit"}, {"model", found.variant()}, {"format", format}, {"run", run},
                {"file_gb", file_gb}, {"seconds", s}, {"gb_per_s", file_gb / s},
                {"fp8_weights", m.fp8_weights()}, {"peak_gb", wan::bench::peak_gb(device)},
                {"device", wan::bench::device_name(device)}});
    }
}

void bench_all(const Args& a, c10::Device device) {
    Args d = a;
    d.opts = {{"model", "1.3B"}, {"size", "832*480"}};
    bench_dit(d, device);
    d.opts = {{"model", "14B"}, {"layers", "4"}, {"size", "1280*720"}};
    bench_dit(d, device);
    d.opts = {{"model", "14B"}, {"layers", "4"}, {"size", "832*480"}};
    bench_dit(d, device);
    d.opts = {{"size", "832*480"}, {"dtype", "f32"}};
    bench_vae(d, device);
    d.opts = {{"size", "832*480"}, {"dtype", "bf16"}};
    bench_vae(d, device);
    d.opts = {{"size", "1280*720"}, {"dtype", "f32"}};
    bench_vae(d, device);
    d.opts = {{"size", "1280*720"}, {"dtype", "bf16"}, {"compare", "0"}};
    bench_vae(d, device);
    d.opts = {};
    bench_t5(d, device);
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    if (argc < 2) {
        std::fprintf(stderr, "usage: wan-bench dit|vae|t5|gen|teacache|all [--model 1.3B|14B|tiny] [--size W*H] [--frames N] "
                             "[--layers N] [--steps N] [--threshold X] [--runs N] [--device cuda|cpu] [--json FILE]\n"
                             "       vae also: [--dtype f32|bf16] [--channels-last 0|1] [--warmup N] [--compare 0|1]\n"
                             "                 [--fold-time 0|1] [--cache-buffer 0|1] [--fused-norm 0|1] [--pad-head 0|1]\n"
                             "                 [--fast 1 (those four)] [--chunk-frames N] [--tail-frames K (memory)]\n"
                             "                 [--subpixel-upsample 0|1] [--compare-base 0|1]\n"
                             "                 [--stages 1 (or WAN_VAE_STAGES=1)]\n"
                             "       mpirun -np N wan-bench vae-ranks [--size W*H] [--frames N] [--dtype f32|bf16] [--compare 0|1]\n"
                             "                 [the vae switches]\n"
                             "       load-dit --model 1.3B|14B --format fp8|bf16|folder [--file F] [--write 1] [--runs N] (a DiT single file: load time)\n"
                             "       lora --lora FILE [--make-lora RANK] [--model 1.3B|14B] [--runs N] (read + hash times)\n"
                             "       gen also: [--preset NAME] [--lora FILE [--make-lora RANK]] [--offload-dit] [--max-vram GB]\n"
                             "                 [--model A14B [--offload-idle-expert 1]] [--lora-backup auto|device|host]\n"
                             "                 [--tail-frames K (the VAE's, default the engine's)]\n"
                             "       dit, gen also: [--dit-dtype bf16|fp8|auto] [--ffn-chunks N]; dit --dit-dtype fp8 --compare 1: error against bf16\n"
                             "       dit also: [--fp8-attention 1 [--k-mean 1] [--compare 1]] FP8 self-attention: speed, error\n"
                             "       gen also: [--video-on-device 1] (the decoded video kept on the GPU) [--repeat N [--same-prompt 1]] (N jobs)\n"
                             "                 [--trace FILE] (Chrome trace of the last job's denoising: kernels and host ops) [--warm-up 0]\n"
                             "                 [--vae-autotune auto|on|off] (Note [VAE autotuning]; WAN_CUDNN_BENCHMARK=0|1 overrides)\n"
                             "       fp8-video --model 1.3B|14B [--preset NAME | --steps N] [--what compute|weights] [--fp8-attention MODE]\n");
        return 2;
    }
    a.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        if (k.rfind("--", 0) == 0) k = k.substr(2);
        std::replace(k.begin(), k.end(), '-', '_');  // --make-lora and --make_lora alike, as the app's options
        // A flag is an option followed by another option or by nothing: `--offload-dit` means `--offload-dit 1`.
        const bool flag = i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0;
        a.opts[k] = flag ? "1" : argv[++i];
    }
    try {
        c10::InferenceMode guard;
        const char* cudnn_bench = std::getenv("WAN_CUDNN_BENCHMARK");
        at::globalContext().setBenchmarkCuDNN(cudnn_bench && std::string(cudnn_bench) == "1");  // as the pipeline
        const std::string dev = a.get("device", at::hasCUDA() ? "cuda" : "cpu");
        c10::Device device = dev == "cuda" ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
        if (a.command == "dit") bench_dit(a, device);
        else if (a.command == "vae") bench_vae(a, device);
        else if (a.command == "vae-ranks") bench_vae_ranks(a);
        else if (a.command == "t5") bench_t5(a, device);
        else if (a.command == "gen") bench_gen(a, device);
        else if (a.command == "load") bench_load(a, device);
        else if (a.command == "load-dit") bench_load_dit(a, device);
        else if (a.command == "lora") bench_lora(a);
        else if (a.command == "teacache") bench_teacache(a, device);
        else if (a.command == "fp8-video") bench_fp8_video(a, device);
        else if (a.command == "all") bench_all(a, device);
        else WAN_THROW("unknown benchmark '%s'", a.command.c_str());
        if (a.opts.count("json")) {
            std::ofstream f(a.opts.at("json"), std::ios::app);
            for (const auto& j : g_results) f << j.dump() << "\n";
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wan-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
