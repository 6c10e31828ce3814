// Wan2.2 T2V-A14B (two experts) on the tiny two-expert checkpoint of tests/data/wan22: the loop against
// Wan2.2's reference (latents and expert per step, final latent, video), the expert selection at the
// boundary, the guide pair, the idle expert parked in host memory, and a folder missing one expert; the
// experts as two single files (--dit-high / --dit-low, written here from the folder's experts) and per-expert
// LoRAs (--lora-high / --lora-low, with tests/data/accel's LoRA files, made for this architecture).
#include "error_of.h"
#include "golden.h"

#include "core/guide_pair.h"
#include "core/model_defaults.h"
#include "dit/dit.h"
#include "io/component_files.h"
#include "pipeline/experts.h"
#include "pipeline/pipeline.h"
#include "text/text.h"
#include "vae/vae.h"

#include <ATen/ATen.h>

#include <atomic>
#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <unistd.h>

namespace {

using wan::pipeline::Expert;

std::string wan22_dir() { return wan::test::test_data_dir() + "/wan22"; }
std::string wan22_ckpt() { return wan22_dir() + "/tiny-ckpt"; }

wan::test::Tolerance wan22_tolerance(const std::string& key) {
    static const nlohmann::json table = [] {
        std::ifstream f(wan22_dir() + "/tolerances.json");
        return nlohmann::json::parse(f).at("recommended");
    }();
    const nlohmann::json& t = table.at(key);
    return {t.at("atol").get<double>(), t.at("rtol").get<double>()};
}

struct A14BCase {
    nlohmann::json meta;
    wan::io::TensorStore tensors;
    at::Tensor get(const std::string& n) const { return tensors.load(n); }
};

A14BCase load_a14b_case() {
    const std::string base = wan22_dir() + "/cases/pipeline_a14b_unipc";
    std::ifstream js(base + ".json");
    return {nlohmann::json::parse(js), wan::io::TensorStore::open_safetensors(base + ".safetensors")};
}

/// The case's request: its params with the guide pair [low, high] and its noise.
wan::GenerationRequest a14b_request(const A14BCase& c) {
    const auto& p = c.meta.at("params");
    wan::GenerationRequest r = wan::test::request_from_params(p);
    r.guide_scale = p.at("guide_scale").at(0).get<double>();
    r.guide_scale_high = p.at("guide_scale").at(1).get<double>();
    r.boundary = c.meta.at("boundary").get<double>();
    r.init_noise = wan::test::make_temp_dir("wan22") + "/noise.safetensors";
    wan::io::save_safetensors(r.init_noise, {{"noise", c.get("noise")}});
    return r;
}

wan::pipeline::T2VPipeline make_pipeline(bool offload, const wan::ComponentPaths& files = {}) {
    wan::pipeline::EngineConfig cfg;
    cfg.ckpt_dir = files.empty() ? wan22_ckpt() : "";
    cfg.components = files;
    cfg.device = "cpu";
    cfg.offload_idle_expert = offload;
    return wan::pipeline::T2VPipeline(cfg);
}

void expect_matches_reference(wan::pipeline::T2VPipeline& pipe, const std::string& label) {
    SCOPED_TRACE(label);
    const A14BCase c = load_a14b_case();
    std::map<std::string, at::Tensor> got;
    auto out = pipe.generate(a14b_request(c), {}, nullptr, [&](const std::string& n, const at::Tensor& t) { got[n] = t; });
    const at::Tensor experts = c.get("expert");
    for (int64_t i = 0; i < experts.size(0); ++i) {
        const std::string s = std::to_string(i);
        ASSERT_TRUE(got.count("expert." + s)) << "no expert traced for step " << i;
        EXPECT_EQ(got.at("expert." + s).item<double>(), static_cast<double>(experts[i].item<int64_t>())) << "step " << i;
    }
    const at::Tensor latents = c.get("latents");
    for (int64_t i = 0; i < latents.size(0); ++i) {
        const std::string s = std::to_string(i);
        EXPECT_TRUE(wan::test::all_close(got.at("latents." + s), latents[i], wan22_tolerance("pipeline.latents"), "latents." + s));
    }
    EXPECT_TRUE(wan::test::all_close(got.at("context"), c.get("context"), wan22_tolerance("pipeline.context"), "context"));
    EXPECT_TRUE(wan::test::all_close(out.latent, c.get("final_latent"), wan22_tolerance("pipeline.final_latent"), "final_latent"));
    EXPECT_TRUE(wan::test::all_close(out.video, c.get("video"), wan22_tolerance("pipeline.video"), "video"));
}

TEST(Wan22, LoopMatchesWan22Reference) {
    auto pipe = make_pipeline(false);
    EXPECT_TRUE(pipe.info().two_experts);
    EXPECT_NE(pipe.info().model_variant.find("two experts"), std::string::npos) << pipe.info().model_variant;
    expect_matches_reference(pipe, "both experts resident");
}

TEST(Wan22, IdleExpertParkedGivesTheSameResult) {
    // On the CPU the moves are no-ops, but the park/unpark calls and their checks run (a parked expert used
    // by mistake throws).
    auto pipe = make_pipeline(true);
    expect_matches_reference(pipe, "idle expert parked");
}

// Built parts with two experts (wan-bench's A14B on random weights) run the same loop as the loaded folder:
// resident, with the idle expert parked, and streamed under --offload-dit.
TEST(Wan22, BuiltExpertsMatchTheReference) {
    for (int mode = 0; mode < 3; ++mode) {
        const auto m = wan::io::ModelComponents::locate(wan22_ckpt());
        wan::pipeline::PipelineParts parts;
        parts.text = std::make_unique<wan::text::TextEncoder>(m);
        parts.dit = std::make_unique<wan::dit::WanModel>(m.dit_config(), m.open_dit());
        parts.dit_high = std::make_unique<wan::dit::WanModel>(m.high_noise_dit_config(), m.open_high_noise_dit());
        wan::vae::VAEOptions vopt;
        vopt.load_encoder = false;
        parts.vae = std::make_unique<wan::vae::WanVAE>(m.open_vae(), vopt);
        wan::pipeline::EngineConfig cfg;
        cfg.device = "cpu";
        cfg.offload_idle_expert = mode == 1;
        cfg.offload_dit = mode == 2;
        wan::pipeline::T2VPipeline pipe(std::move(parts), cfg);
        EXPECT_TRUE(pipe.info().two_experts);
        expect_matches_reference(pipe, mode == 0 ? "built, resident" : mode == 1 ? "built, idle parked" : "built, streamed");
    }
}

TEST(Wan22, LoadReportsBothExpertsAndCancelsInTheSecond) {
    wan::pipeline::EngineConfig cfg;
    cfg.ckpt_dir = wan22_ckpt();
    cfg.device = "cpu";
    cfg.offload_idle_expert = true;  // the low-noise expert parked before the high-noise one loads
    std::vector<std::string> components;
    uint64_t last = 0, total = 0;
    cfg.load.progress = [&](const wan::LoadProgress& p) {
        EXPECT_GE(p.bytes_done, last);
        last = p.bytes_done;
        total = p.bytes_total;
        if (components.empty() || components.back() != p.component) components.push_back(p.component);
    };
    wan::pipeline::T2VPipeline pipe(cfg);
    EXPECT_EQ(components, (std::vector<std::string>{"text encoder", "low-noise DiT", "high-noise DiT", "VAE"}));
    EXPECT_EQ(last, total);

    std::atomic<bool> cancel{false};
    cfg.load.cancel = &cancel;
    cfg.load.progress = [&](const wan::LoadProgress& p) {
        if (p.component == "high-noise DiT" && p.bytes_done > 0) cancel = true;
    };
    EXPECT_THROW(wan::pipeline::T2VPipeline{cfg}, wan::Cancelled);
    EXPECT_TRUE(cancel);
}

TEST(Wan22, DefaultsComeFromTheA14BRow) {
    auto pipe = make_pipeline(false);
    const wan::EngineInfo& info = pipe.info();
    EXPECT_EQ(info.default_guide_scale, 3.0);
    EXPECT_EQ(info.default_guide_scale_high, 4.0);
    EXPECT_EQ(info.default_boundary, 0.875);
    wan::GenerationRequest r;
    r.prompt = "x";
    wan::GenerationRequest got = pipe.resolve(r);
    EXPECT_EQ(got.guide_scale, 3.0);
    EXPECT_EQ(got.guide_scale_high, 4.0);
    EXPECT_EQ(got.boundary, 0.875);
    r.guide_scale = 6;  // one guide given: both experts (Wan2.1 meaning)
    got = pipe.resolve(r);
    EXPECT_EQ(got.guide_scale, 6.0);
    EXPECT_EQ(got.guide_scale_high, 6.0);
    // The A14B row of the defaults table itself is checked in tests/core/test_core_shared.cpp.
}

TEST(Wan22, ExpertSwitchAtTheBoundary) {
    EXPECT_EQ(wan::pipeline::expert_for_timestep(875, 0.875), Expert::HighNoise);  // exactly at: high (t ≥ b)
    EXPECT_EQ(wan::pipeline::expert_for_timestep(874.999, 0.875), Expert::LowNoise);
    EXPECT_EQ(wan::pipeline::expert_for_timestep(874, 0.875), Expert::LowNoise);
    EXPECT_EQ(wan::pipeline::expert_for_timestep(876, 0.875), Expert::HighNoise);
    EXPECT_EQ(wan::pipeline::expert_for_timestep(999, 0.875), Expert::HighNoise);
    EXPECT_EQ(wan::pipeline::expert_for_timestep(0, 0.0), Expert::HighNoise);    // boundary 0: high only
    EXPECT_EQ(wan::pipeline::expert_for_timestep(999, 1.0), Expert::LowNoise);   // boundary 1: low only
    wan::GenerationRequest r;
    r.guide_scale = 3;
    r.guide_scale_high = 4;
    EXPECT_EQ(wan::pipeline::guide_for(Expert::HighNoise, r), 4.0);
    EXPECT_EQ(wan::pipeline::guide_for(Expert::LowNoise, r), 3.0);
}

TEST(Wan22, GuidePairText) {
    wan::GenerationRequest r;
    wan::set_guide_scales("5", r, "--sample-guide-scale");
    EXPECT_EQ(r.guide_scale, 5.0);
    EXPECT_EQ(r.guide_scale_high, 5.0);
    wan::set_guide_scales("3,4.5", r, "--sample-guide-scale");
    EXPECT_EQ(r.guide_scale, 3.0);  // low-noise first, as upstream's pair
    EXPECT_EQ(r.guide_scale_high, 4.5);
    EXPECT_EQ(wan::guide_scales_text(r), "3,4.5");
    for (const char* bad : {"", "x", "3,", "1,2,3", "-1", "3,-2"}) {
        try {
            wan::set_guide_scales(bad, r, "--sample-guide-scale");
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const wan::Error& e) {
            EXPECT_NE(std::string(e.what()).find("--sample-guide-scale"), std::string::npos) << e.what();
        }
    }
    // JSON: the pair as an array, or the two fields; round trip.
    auto j = wan::GenerationRequest::from_json(R"({"prompt": "p", "sample_guide_scale": [2.5, 3.5], "boundary": 0.9})");
    EXPECT_EQ(j.guide_scale, 2.5);
    EXPECT_EQ(j.guide_scale_high, 3.5);
    EXPECT_EQ(j.boundary, 0.9);
    auto back = wan::GenerationRequest::from_json(j.to_json());
    EXPECT_EQ(back.guide_scale_high, 3.5);
    EXPECT_EQ(back.boundary, 0.9);
}

/// A copy of the tiny two-expert checkpoint without `expert` (symlinks to the files).
std::string checkpoint_without(const std::string& expert) {
    const std::string dir = wan::test::make_temp_dir("wan22-missing");
    const std::string src = wan22_ckpt();
    for (const char* f : {"Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth", "google", "high_noise_model", "low_noise_model"}) {
        if (expert == f) continue;
        EXPECT_EQ(::symlink((src + "/" + f).c_str(), (dir + "/" + f).c_str()), 0);
    }
    return dir;
}

TEST(Wan22, MissingExpertIsNamed) {
    for (const std::string expert : {"high_noise_model", "low_noise_model"}) {
        const std::string dir = checkpoint_without(expert);
        try {
            wan::io::ModelComponents::locate(dir);
            ADD_FAILURE() << "a folder without " << expert << " was accepted";
        } catch (const wan::Error& e) {
            const std::string msg = e.what();
            EXPECT_NE(msg.find(expert + "/"), std::string::npos) << msg;
            EXPECT_NE(msg.find(expert == "high_noise_model" ? "high-noise expert" : "low-noise expert"), std::string::npos) << msg;
            EXPECT_NE(msg.find("Wan2.2-T2V-A14B"), std::string::npos) << msg;
        }
    }
    const auto m = wan::io::ModelComponents::locate(wan22_ckpt());
    EXPECT_TRUE(m.two_experts);
    EXPECT_NE(m.high_noise_dit_path.find("high_noise_model/"), std::string::npos);
    EXPECT_NE(m.dit_path.find("low_noise_model/"), std::string::npos);
}

// ---- the experts as single files (--dit-high / --dit-low; Note [Expert files]) -----------------------------

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "'" << (part) << "' not in: " << (msg)

/// One expert of the folder as a single file, each tensor renamed by `rename` ("" drops it) and stored as
/// `dtype`, the way ComfyUI ships them.
std::string write_expert_file(const std::string& path, const char* expert,
                              const std::function<std::string(const std::string&)>& rename,
                              at::ScalarType dtype = at::kFloat) {
    const auto store = wan::io::TensorStore::open(wan22_ckpt() + "/" + expert + "/diffusion_pytorch_model.safetensors");
    wan::io::NamedTensors tensors;
    for (const auto& n : store.names()) {
        const std::string to = rename(n);
        if (!to.empty()) tensors.emplace_back(to, store.load(n, c10::Device(c10::kCPU), dtype));
    }
    wan::io::save_safetensors(path, tensors);
    return path;
}

std::function<std::string(const std::string&)> prefixed(const std::string& prefix) {
    return [prefix](const std::string& n) { return prefix + n; };
}

/// The two experts in ComfyUI's form (float32, so the values are the folder's exactly), and the other
/// components as files of the folder: no --ckpt-dir at all.
struct ExpertFiles {
    std::string dir, high, low;
    wan::ComponentPaths paths() const {
        wan::ComponentPaths p;
        p.dit_high = high;
        p.dit_low = low;
        p.dit_config = wan22_ckpt() + "/low_noise_model/config.json";  // head dim 32: not inferable from shapes
        p.t5 = wan22_ckpt() + "/models_t5_umt5-xxl-enc-bf16.pth";
        p.vae = wan22_ckpt() + "/Wan2.1_VAE.pth";
        p.tokenizer = wan22_ckpt() + "/google/umt5-xxl/spiece.model";
        return p;
    }
};
ExpertFiles write_expert_files() {
    ExpertFiles f;
    f.dir = wan::test::make_temp_dir("wan22-files");
    f.high = write_expert_file(f.dir + "/wan2.2_t2v_high_noise_tiny_fp32.safetensors", "high_noise_model",
                               prefixed("model.diffusion_model."));
    f.low = write_expert_file(f.dir + "/wan2.2_t2v_low_noise_tiny_fp32.safetensors", "low_noise_model", prefixed("model."));
    return f;
}

TEST(Wan22Files, ExpertFilesMatchTheReference) {
    const ExpertFiles f = write_expert_files();
    const auto m = wan::io::ModelComponents::locate("", f.paths());
    EXPECT_TRUE(m.two_experts);
    EXPECT_EQ(m.high_noise_dit_path, f.high);
    EXPECT_EQ(m.dit_path, f.low);
    auto pipe = make_pipeline(false, f.paths());
    EXPECT_TRUE(pipe.info().two_experts);
    expect_matches_reference(pipe, "expert files, no folder");
}

TEST(Wan22Files, FolderConfigsServeTheExpertFiles) {
    // Next to an A14B folder the files replace its experts; each takes its expert's config.json (it fits).
    const ExpertFiles f = write_expert_files();
    wan::ComponentPaths p;
    p.dit_high = f.high;
    p.dit_low = f.low;
    const auto m = wan::io::ModelComponents::locate(wan22_ckpt(), p);
    EXPECT_TRUE(m.two_experts);
    EXPECT_EQ(m.high_noise_dit_path, f.high);
    EXPECT_EQ(m.dit_path, f.low);
    EXPECT_EQ(m.high_noise_config_path, wan22_ckpt() + "/high_noise_model/config.json");
    EXPECT_EQ(m.dit_config_path, wan22_ckpt() + "/low_noise_model/config.json");
    EXPECT_EQ(m.high_noise_dit_config().num_heads, 4);
    EXPECT_EQ(m.dit_config().num_heads, 4);
    EXPECT_EQ(m.dit_config().num_layers, 2);
}

TEST(Wan22Files, BadPairsAreRefusedNamingTheOptions) {
    const ExpertFiles f = write_expert_files();
    auto locate_error = [](const wan::ComponentPaths& p) {
        return wan::test::error_of([&] { wan::io::ModelComponents::locate("", p); });
    };
    wan::ComponentPaths p = f.paths();
    p.dit_low.clear();
    EXPECT_HAS(locate_error(p), "--dit-high was given without --dit-low");
    p = f.paths();
    p.dit_high.clear();
    EXPECT_HAS(locate_error(p), "--dit-low was given without --dit-high");
    p = f.paths();
    p.dit = f.low;
    EXPECT_HAS(locate_error(p), "--dit cannot be combined with --dit-high / --dit-low");
    p = f.paths();
    p.dit_low = p.dit_high;
    EXPECT_HAS(locate_error(p), "--dit-high and --dit-low name the same file");
    p = f.paths();
    p.dit_high = f.dir + "/missing.safetensors";
    const std::string missing = locate_error(p);
    EXPECT_HAS(missing, "--dit-high " + f.dir + "/missing.safetensors: file not found");
    EXPECT_HAS(missing, "--dit-high and --dit-low");
    // Not a DiT at all: named as what it is, with the option.
    p = f.paths();
    p.dit_low = wan22_ckpt() + "/Wan2.1_VAE.pth";
    const std::string vae = locate_error(p);
    EXPECT_HAS(vae, "--dit-low: ");
    EXPECT_HAS(vae, "pass it with --vae");
    // Two DiTs of different shapes: a block missing, or one tensor of another size.
    p = f.paths();
    p.dit_low = write_expert_file(f.dir + "/one_block.safetensors", "low_noise_model", [](const std::string& n) {
        return n.rfind("blocks.1.", 0) == 0 ? std::string() : n;
    });
    const std::string fewer = locate_error(p);
    EXPECT_HAS(fewer, "are not two experts of one model");
    EXPECT_HAS(fewer, "is only in the high-noise file");
    EXPECT_HAS(fewer, "'blocks.1.");
    {
        const auto store = wan::io::TensorStore::open(f.low);
        wan::io::NamedTensors tensors;
        for (const auto& n : store.names()) {
            at::Tensor t = store.load(n);
            if (n == "model.blocks.0.ffn.0.weight") t = t.narrow(0, 0, t.size(0) / 2).contiguous();  // ffn 256 → 128
            tensors.emplace_back(n, t);
        }
        p.dit_low = f.dir + "/narrow_ffn.safetensors";
        wan::io::save_safetensors(p.dit_low, tensors);
    }
    EXPECT_HAS(locate_error(p), "tensor 'blocks.0.ffn.0.weight' is [256, 128] in the high-noise file and [128, 128] in "
                                "the low-noise file");
}

TEST(Wan22Files, DtypesMayDifferBetweenTheExperts) {
    // A bf16 high-noise file next to a float32 low-noise one: one architecture, accepted.
    const ExpertFiles f = write_expert_files();
    wan::ComponentPaths p = f.paths();
    p.dit_high = write_expert_file(f.dir + "/high_bf16.safetensors", "high_noise_model", prefixed(""), at::kBFloat16);
    EXPECT_NO_THROW(wan::io::ModelComponents::locate("", p));
}

// ---- per-expert LoRAs (--lora-high / --lora-low) ----------------------------------------------------------

std::string accel(const std::string& file) { return wan::test::test_data_dir() + "/accel/" + file; }

struct LoraRun {
    std::map<std::string, at::Tensor> traced;
    wan::pipeline::PipelineOutput out;
    at::Tensor latents(int step) const { return traced.at("latents." + std::to_string(step)); }
};

LoraRun run_with(wan::pipeline::T2VPipeline& pipe, const wan::GenerationRequest& base, std::vector<wan::LoraSpec> both,
             std::vector<wan::LoraSpec> high, std::vector<wan::LoraSpec> low) {
    wan::GenerationRequest r = base;
    r.loras = std::move(both);
    r.loras_high = std::move(high);
    r.loras_low = std::move(low);
    LoraRun run;
    run.out = pipe.generate(r, {}, nullptr, [&](const std::string& n, const at::Tensor& t) { run.traced[n] = t.clone(); });
    return run;
}

TEST(Wan22Loras, EachExpertGetsItsOwn) {
    auto pipe = make_pipeline(false);
    const A14BCase c = load_a14b_case();
    const wan::GenerationRequest r = a14b_request(c);
    const wan::LoraSpec native{accel("lora_native.safetensors"), 1.0}, kohya{accel("lora_kohya.safetensors"), 0.7};
    // The case's schedule: steps 0-3 on the high-noise expert, 4-5 on the low-noise one. "latents.<i>" is the
    // latent going into step i (latents.0 the noise), so latents.0-4 come from the high-noise expert alone.
    const at::Tensor experts = c.get("expert");
    ASSERT_EQ(experts.size(0), 6);
    ASSERT_EQ(experts[3].item<int64_t>(), 1);
    ASSERT_EQ(experts[4].item<int64_t>(), 0);

    const LoraRun base = run_with(pipe, r, {}, {}, {});
    const LoraRun low_only = run_with(pipe, r, {}, {}, {native});
    for (int i = 0; i <= 4; ++i) EXPECT_TRUE(at::equal(low_only.latents(i), base.latents(i))) << "before step " << i;
    EXPECT_FALSE(at::equal(low_only.latents(5), base.latents(5))) << "the low-noise LoRA changed nothing";
    ASSERT_EQ(low_only.out.loras_low.size(), 1u);
    EXPECT_EQ(low_only.out.loras_low[0].file_name, "lora_native.safetensors");
    EXPECT_TRUE(low_only.out.loras.empty() && low_only.out.loras_high.empty());

    const LoraRun high_only = run_with(pipe, r, {}, {native}, {});
    EXPECT_FALSE(at::equal(high_only.latents(1), base.latents(1))) << "the high-noise LoRA changed nothing";
    ASSERT_EQ(high_only.out.loras_high.size(), 1u);
    EXPECT_EQ(high_only.out.loras_high[0].spec.strength, 1.0);

    // --lora goes into both experts: the same as the pair of per-expert LoRAs.
    const LoraRun shared = run_with(pipe, r, {native}, {}, {});
    const LoraRun pair = run_with(pipe, r, {}, {native}, {native});
    EXPECT_TRUE(at::equal(shared.out.latent, pair.out.latent));
    EXPECT_FALSE(at::equal(shared.out.latent, base.out.latent));
    ASSERT_EQ(shared.out.loras.size(), 1u);
    EXPECT_TRUE(shared.out.loras_high.empty() && shared.out.loras_low.empty());

    // Stacking: an expert's own LoRAs merge after --lora's.
    const LoraRun stacked = run_with(pipe, r, {native}, {}, {kohya});
    const LoraRun spelled = run_with(pipe, r, {}, {native}, {native, kohya});
    EXPECT_TRUE(at::equal(stacked.out.latent, spelled.out.latent));
    for (int i = 0; i <= 4; ++i) EXPECT_TRUE(at::equal(stacked.latents(i), shared.latents(i))) << "before step " << i;
    EXPECT_FALSE(at::equal(stacked.latents(5), shared.latents(5)));
    ASSERT_EQ(stacked.out.loras_low.size(), 1u);
    EXPECT_EQ(stacked.out.loras_low[0].spec.strength, 0.7);

    // Back to no LoRA: both experts restored to their base weights.
    const LoraRun again = run_with(pipe, r, {}, {}, {});
    EXPECT_TRUE(at::equal(again.out.latent, base.out.latent));
    EXPECT_EQ(again.out.lora_backup_bytes, 0);
}

TEST(Wan22Loras, ParkedExpertsMergeTheSame) {
    // --offload-idle-expert: each expert is made resident before its merge (a merge into a parked one throws), and
    // a following job restores both. Same latents as with both experts resident, job after job.
    auto resident = make_pipeline(false), parked = make_pipeline(true);
    const wan::GenerationRequest r = a14b_request(load_a14b_case());
    const wan::LoraSpec native{accel("lora_native.safetensors"), 1.0}, kohya{accel("lora_kohya.safetensors"), 0.7};
    for (const auto& [high, low] : std::vector<std::pair<std::vector<wan::LoraSpec>, std::vector<wan::LoraSpec>>>{
             {{native}, {kohya}}, {{}, {native}}, {{}, {}}}) {
        const LoraRun want = run_with(resident, r, {}, high, low), got = run_with(parked, r, {}, high, low);
        EXPECT_TRUE(at::equal(got.out.latent, want.out.latent)) << high.size() << " high, " << low.size() << " low LoRAs";
    }
}

TEST(Wan22Loras, OneExpertModelRefusesThem) {
    wan::pipeline::EngineConfig cfg;
    cfg.ckpt_dir = wan::test::tiny_ckpt_dir();
    cfg.device = "cpu";
    wan::pipeline::T2VPipeline pipe(cfg);
    wan::GenerationRequest r;
    r.prompt = "x";
    r.loras_high = {{accel("lora_native.safetensors"), 1.0}};
    const std::string msg = wan::test::error_of([&] { (void)pipe.resolve(r); });
    EXPECT_HAS(msg, "--lora-high / --lora-low");
    EXPECT_HAS(msg, "has one DiT");
    EXPECT_HAS(msg, "use --lora");
}

}  // namespace
