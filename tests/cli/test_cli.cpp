// Command-line options (upstream names, dashes and underscores) and --inspect.
#include "golden.h"

#include "cli/inspect.h"
#include "cli/options.h"

#include <sstream>

namespace {

wan::app::AppOptions parse(std::vector<std::string> args) {
    args.insert(args.begin(), "wanstudio");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return wan::app::parseOptions(static_cast<int>(argv.size()), argv.data());
}

std::string parse_error(std::vector<std::string> args) {
    try {
        parse(std::move(args));
    } catch (const wan::Error& e) {
        return e.what();
    }
    return "";
}

TEST(Options, UpstreamSpellingsAndDashes) {
    auto a = parse({"--ckpt_dir", "/m", "--ulysses_size", "2", "--ring-size=2", "--size", "832*480", "--frame_num", "17",
                    "--sample-steps", "8", "--sample_shift", "3.5", "--sample-guide-scale", "6", "--sample_solver", "dpm++",
                    "--base-seed", "42", "--t5-fsdp", "--dit_fsdp", "--t5_cpu", "--prompt", "a fox"});
    EXPECT_EQ(a.mode, wan::app::RunMode::Headless);
    EXPECT_EQ(a.engine.ckpt_dir, "/m");
    EXPECT_EQ(a.engine.layout.ulysses, 2);
    EXPECT_EQ(a.engine.layout.ring, 2);
    EXPECT_EQ(a.request.width, 832);
    EXPECT_EQ(a.request.height, 480);
    EXPECT_EQ(a.request.frame_num, 17);
    EXPECT_EQ(a.request.sample_steps, 8);
    EXPECT_DOUBLE_EQ(a.request.sample_shift, 3.5);
    EXPECT_DOUBLE_EQ(a.request.guide_scale, 6);
    EXPECT_EQ(a.request.solver, "dpm++");
    EXPECT_EQ(a.request.seed, 42);
    EXPECT_TRUE(a.engine.layout.t5_fsdp && a.engine.layout.dit_fsdp && a.engine.t5_cpu);
    EXPECT_EQ(a.request.prompt, "a fox");
}

TEST(Options, ClearErrors) {
    EXPECT_NE(parse_error({"--size", "832x"}).find("expected W*H"), std::string::npos);
    EXPECT_NE(parse_error({"--size", "830*480"}).find("multiple of 16"), std::string::npos);
    EXPECT_NE(parse_error({"--frame-num", "80"}).find("4n+1"), std::string::npos);
    EXPECT_NE(parse_error({"--sample-steps", "0"}).find("at least 1"), std::string::npos);
    EXPECT_NE(parse_error({"--sample-shift", "0"}).find("> 0"), std::string::npos);
    EXPECT_NE(parse_error({"--sample-solver", "heun"}).find("expected unipc, dpm++ or euler"), std::string::npos);
    EXPECT_NE(parse_error({"--ulysses-size", "two"}).find("expected an integer"), std::string::npos);
    EXPECT_NE(parse_error({"--nonsense"}).find("unknown option --nonsense"), std::string::npos);
    EXPECT_NE(parse_error({"--prompt"}).find("needs a value"), std::string::npos);
}

TEST(Options, SizeAndFrameLimitsOfTheRotaryTables) {
    // 1024 positions per axis of 16 pixels / 4 frames: the largest accepted values pass, one step more fails.
    EXPECT_EQ(parse({"--size", "16384*16"}).request.width, 16384);
    EXPECT_EQ(parse({"--size", "16*16384"}).request.height, 16384);
    EXPECT_EQ(parse({"--frame-num", "4093"}).request.frame_num, 4093);
    EXPECT_NE(parse_error({"--size", "16400*16"}).find("width 16400: at most 16384"), std::string::npos);
    EXPECT_NE(parse_error({"--size", "16*16400"}).find("height 16400: at most 16384"), std::string::npos);
    EXPECT_NE(parse_error({"--frame-num", "4097"}).find("frame_num 4097: at most 4093"), std::string::npos);
}

TEST(Options, LayoutValidation) {
    auto a = parse({"--ulysses-size", "2", "--ring-size", "2"});
    EXPECT_NO_THROW(wan::app::validateLayout(a, 4));
    try {
        wan::app::validateLayout(a, 2);
        FAIL();
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("must equal the number of processes 2"), std::string::npos) << e.what();
    }
    EXPECT_THROW(wan::app::validateLayout(a, 1), wan::Error);
    auto c = parse({"--ulysses-size", "2", "--cfg-parallel"});
    EXPECT_NO_THROW(wan::app::validateLayout(c, 4));
    EXPECT_EQ(c.engine.layout.world, 4);
    EXPECT_THROW(wan::app::validateLayout(c, 3), wan::Error);
    // One rule with the engine (ParallelLayout::validate): --cfg-parallel in a single process is an error.
    auto single = parse({"--cfg-parallel"});
    try {
        wan::app::validateLayout(single, 1);
        FAIL();
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("cfg_parallel needs an even number of ranks"), std::string::npos) << e.what();
    }
    // FSDP in a single process has nothing to shard: accepted (the engine logs a warning).
    auto fsdp = parse({"--dit-fsdp", "--t5-fsdp"});
    EXPECT_NO_THROW(wan::app::validateLayout(fsdp, 1));
}

TEST(Options, OffloadModelIsAnEnum) {
    EXPECT_EQ(parse({}).engine.offload, wan::OffloadMode::Auto);
    EXPECT_EQ(parse({"--offload-model", "true"}).engine.offload, wan::OffloadMode::StreamT5);
    EXPECT_EQ(parse({"--offload_model=no"}).engine.offload, wan::OffloadMode::Off);
}

TEST(Options, VaeParallelIsOnByDefault) {
    EXPECT_TRUE(parse({}).engine.vae_parallel);
    EXPECT_FALSE(parse({"--vae-parallel", "false"}).engine.vae_parallel);
    EXPECT_TRUE(parse({"--vae_parallel=yes"}).engine.vae_parallel);
    EXPECT_NE(parse_error({"--vae-parallel", "maybe"}).find("--vae-parallel 'maybe': expected a boolean"), std::string::npos)
        << parse_error({"--vae-parallel", "maybe"});
}

TEST(Options, VaeAutotuneAndTheWarmUpSize) {
    EXPECT_EQ(parse({}).engine.vae_autotune, "auto");
    EXPECT_EQ(parse({"--vae-autotune", "off"}).engine.vae_autotune, "off");
    EXPECT_EQ(parse({"--vae_autotune=on"}).engine.vae_autotune, "on");
    EXPECT_NE(parse_error({"--vae-autotune", "yes"}).find("--vae-autotune 'yes': expected auto, on or off"),
              std::string::npos)
        << parse_error({"--vae-autotune", "yes"});
    // The warm-up at load decodes at the job's size, so that it meets (and tunes) the job's convolutions.
    const auto o = parse({"--size", "1280*720"});
    EXPECT_EQ(o.engine.warm_up_width, 1280);
    EXPECT_EQ(o.engine.warm_up_height, 720);
    EXPECT_EQ(parse({}).engine.warm_up_width, 0) << "no --size: the model's default size";
}

TEST(Options, ComponentFilesAndDitStreaming) {
    auto a = parse({"--dit", "/m/dit.safetensors", "--dit_config=/m/config.json", "--t5", "/m/umt5.safetensors",
                    "--vae=/m/vae.safetensors", "--tokenizer", "/m/spiece.model", "--offload_dit", "--max-vram", "22.5"});
    EXPECT_TRUE(a.engine.ckpt_dir.empty());
    EXPECT_EQ(a.engine.components.dit, "/m/dit.safetensors");
    EXPECT_EQ(a.engine.components.dit_config, "/m/config.json");
    EXPECT_EQ(a.engine.components.t5, "/m/umt5.safetensors");
    EXPECT_EQ(a.engine.components.vae, "/m/vae.safetensors");
    EXPECT_EQ(a.engine.components.tokenizer, "/m/spiece.model");
    EXPECT_TRUE(a.engine.offload_dit);
    EXPECT_DOUBLE_EQ(a.engine.max_vram_gb, 22.5);
    auto b = parse({"--ckpt-dir", "/m", "--vae", "/v.safetensors"});
    EXPECT_EQ(b.engine.ckpt_dir, "/m");
    EXPECT_EQ(b.engine.components.vae, "/v.safetensors");
    EXPECT_TRUE(b.engine.components.dit.empty());
    EXPECT_FALSE(b.engine.offload_dit);
    EXPECT_EQ(b.engine.max_vram_gb, 0);
    EXPECT_NE(parse_error({"--max-vram", "0"}).find("--max-vram 0: expected a positive number of GB"), std::string::npos);
    EXPECT_NE(parse_error({"--max-vram", "lots"}).find("max-vram"), std::string::npos);
    EXPECT_NE(parse_error({"--dit"}).find("--dit needs a value"), std::string::npos);
    const std::string help = wan::app::helpText();
    for (const char* opt : {"--dit FILE", "--dit-config FILE", "--t5 FILE", "--vae FILE", "--tokenizer FILE",
                            "--offload-dit", "--max-vram GB"})
        EXPECT_NE(help.find(opt), std::string::npos) << opt;
}

TEST(Options, DitDtype) {
    EXPECT_EQ(parse({}).engine.dit_dtype, "auto");
    EXPECT_EQ(parse({"--dit-dtype", "fp8"}).engine.dit_dtype, "fp8");
    EXPECT_EQ(parse({"--dit_dtype=bf16"}).engine.dit_dtype, "bf16");
    const std::string bad = parse_error({"--dit-dtype", "fp16"});
    EXPECT_NE(bad.find("--dit-dtype 'fp16': expected auto, fp8 or bf16"), std::string::npos) << bad;
    EXPECT_NE(wan::app::helpText().find("--dit-dtype auto|fp8|bf16"), std::string::npos);
}

TEST(Options, T5Dtype) {
    EXPECT_EQ(parse({}).engine.t5_dtype, "auto");
    EXPECT_EQ(parse({"--t5-cpu", "--t5_dtype", "bf16"}).engine.t5_dtype, "bf16");
    const std::string bad = parse_error({"--t5-dtype", "fp8"});
    EXPECT_NE(bad.find("--t5-dtype 'fp8': expected auto, f32 or bf16"), std::string::npos) << bad;
    EXPECT_NE(wan::app::helpText().find("--t5-dtype auto|f32|bf16"), std::string::npos);
}

TEST(Options, Fp8Attention) {
    EXPECT_EQ(parse({}).engine.fp8_attention, "off");
    EXPECT_EQ(parse({"--fp8-attention", "kmean"}).engine.fp8_attention, "kmean");
    EXPECT_EQ(parse({"--fp8_attention=on"}).engine.fp8_attention, "on");
    EXPECT_EQ(parse({"--fp8"}).engine.fp8_attention, "off");  // --fp8 leaves attention bf16
    const std::string bad = parse_error({"--fp8-attention", "yes"});
    EXPECT_NE(bad.find("--fp8-attention 'yes': expected off, on or kmean"), std::string::npos) << bad;
    EXPECT_NE(wan::app::helpText().find("--fp8-attention off|on|kmean"), std::string::npos);
}

TEST(Options, FfnChunks) {
    EXPECT_EQ(parse({}).engine.ffn_chunks, 0);  // auto: chosen by the memory mode
    EXPECT_EQ(parse({"--ffn-chunks", "4"}).engine.ffn_chunks, 4);
    EXPECT_EQ(parse({"--ffn_chunks=1"}).engine.ffn_chunks, 1);
    const std::string bad = parse_error({"--ffn-chunks", "0"});
    EXPECT_NE(bad.find("--ffn-chunks 0: expected a number of chunks"), std::string::npos) << bad;
    EXPECT_NE(wan::app::helpText().find("--ffn-chunks N"), std::string::npos);
}

TEST(Options, VaeChunkFrames) {
    EXPECT_EQ(parse({}).engine.vae_chunk_frames, 0);  // the engine's choice (one)
    EXPECT_EQ(parse({"--vae-chunk-frames", "1"}).engine.vae_chunk_frames, 1);
    EXPECT_EQ(parse({"--vae_chunk_frames=3"}).engine.vae_chunk_frames, 3);
    const std::string bad = parse_error({"--vae-chunk-frames", "-2"});
    EXPECT_NE(bad.find("--vae-chunk-frames -2: expected a number of latent frames"), std::string::npos) << bad;
    EXPECT_NE(wan::app::helpText().find("--vae-chunk-frames N"), std::string::npos);
}

TEST(Options, LorasAreRepeatableWithStrengths) {
    auto a = parse({"--lora", "/l/a.safetensors", "--lora=/l/b.safetensors:-0.5", "--lora", "C:/x/c.safetensors:0.8"});
    ASSERT_EQ(a.request.loras.size(), 3u);
    EXPECT_EQ(a.request.loras[0].path, "/l/a.safetensors");
    EXPECT_DOUBLE_EQ(a.request.loras[0].strength, 1.0);
    EXPECT_EQ(a.request.loras[1].path, "/l/b.safetensors");
    EXPECT_DOUBLE_EQ(a.request.loras[1].strength, -0.5);
    EXPECT_EQ(a.request.loras[2].path, "C:/x/c.safetensors");
    EXPECT_DOUBLE_EQ(a.request.loras[2].strength, 0.8);
    EXPECT_NE(parse_error({"--lora", ":0.5"}).find("--lora ':0.5': expected PATH[:STRENGTH]"), std::string::npos);
    EXPECT_EQ(parse({}).engine.lora_backup, "auto");
    EXPECT_EQ(parse({"--lora_backup", "host"}).engine.lora_backup, "host");
    EXPECT_NE(parse_error({"--lora-backup", "gpu"}).find("--lora-backup 'gpu': expected auto, device or host"),
              std::string::npos);
    // Each FSDP rank merges into its own shard (Note [Sharded weights] in engine/lora/merge.cpp).
    EXPECT_EQ(parse({"--lora", "a.safetensors", "--dit-fsdp"}).request.loras.size(), 1u);
}

TEST(Options, ExpertFilesComeAsAPair) {
    auto a = parse({"--dit-high", "/m/high.safetensors", "--dit_low=/m/low.safetensors", "--t5", "/m/t5.safetensors",
                    "--vae", "/m/vae.safetensors"});
    EXPECT_EQ(a.engine.components.dit_high, "/m/high.safetensors");
    EXPECT_EQ(a.engine.components.dit_low, "/m/low.safetensors");
    EXPECT_TRUE(a.engine.components.dit.empty());
    EXPECT_FALSE(a.engine.components.empty());  // no demo fallback with expert files given
    // Refused before anything loads, naming the options.
    const std::string one = parse_error({"--dit-high", "/m/high.safetensors"});
    EXPECT_NE(one.find("--dit-high was given without --dit-low"), std::string::npos) << one;
    EXPECT_NE(one.find("wan2.2_t2v_low_noise_14B"), std::string::npos) << one;
    const std::string other = parse_error({"--dit-low", "/m/low.safetensors"});
    EXPECT_NE(other.find("--dit-low was given without --dit-high"), std::string::npos) << other;
    const std::string both = parse_error({"--dit", "/m/dit.safetensors", "--dit-high", "/m/h", "--dit-low", "/m/l"});
    EXPECT_NE(both.find("--dit cannot be combined with --dit-high / --dit-low"), std::string::npos) << both;
    const std::string same = parse_error({"--dit-high", "/m/x.safetensors", "--dit-low", "/m/x.safetensors"});
    EXPECT_NE(same.find("--dit-high and --dit-low name the same file (/m/x.safetensors)"), std::string::npos) << same;
    EXPECT_NE(wan::app::helpText().find("--dit-high FILE, --dit-low FILE"), std::string::npos);
}

TEST(Options, PerExpertLoras) {
    auto a = parse({"--lora", "/l/both.safetensors:0.5", "--lora-high", "/l/high.safetensors", "--lora_low=/l/low.safetensors:0.8",
                    "--lora-low", "/l/low2.safetensors"});
    ASSERT_EQ(a.request.loras.size(), 1u);
    EXPECT_EQ(a.request.loras[0].path, "/l/both.safetensors");
    ASSERT_EQ(a.request.loras_high.size(), 1u);
    EXPECT_EQ(a.request.loras_high[0].path, "/l/high.safetensors");
    EXPECT_DOUBLE_EQ(a.request.loras_high[0].strength, 1.0);
    ASSERT_EQ(a.request.loras_low.size(), 2u);
    EXPECT_EQ(a.request.loras_low[0].path, "/l/low.safetensors");
    EXPECT_DOUBLE_EQ(a.request.loras_low[0].strength, 0.8);
    EXPECT_EQ(a.request.loras_low[1].path, "/l/low2.safetensors");
    EXPECT_NE(parse_error({"--lora-high", ":2"}).find("--lora-high ':2': expected PATH[:STRENGTH]"), std::string::npos);
    EXPECT_EQ(parse({"--lora-low", "a.safetensors", "--dit-fsdp"}).request.loras_low.size(), 1u);
    EXPECT_NE(wan::app::helpText().find("--lora-high PATH[:STRENGTH], --lora-low PATH[:STRENGTH]"), std::string::npos);
}

TEST(Options, EulerAndDenoisingSteps) {
    auto a = parse({"--sample-solver", "euler", "--denoising-steps", "1000, 750,500,250"});
    EXPECT_EQ(a.request.solver, "euler");
    EXPECT_EQ(a.request.denoising_steps, (std::vector<int>{1000, 750, 500, 250}));
    EXPECT_NE(parse_error({"--denoising-steps", "1000,750"}).find("denoising_steps: only with sample_solver 'euler'"),
              std::string::npos);
    EXPECT_NE(parse_error({"--sample-solver", "euler", "--denoising-steps", "500,750"}).find("strictly decreasing"),
              std::string::npos);
    EXPECT_NE(parse_error({"--sample-solver", "euler", "--denoising-steps", "1001,5"}).find("outside 1..1000"),
              std::string::npos);
    EXPECT_NE(parse_error({"--sample-solver", "euler", "--denoising-steps", "1000,x"}).find("bad element 'x'"),
              std::string::npos);
}

TEST(Options, PresetFirstThenExplicitOptionsWin) {
    // The preset fills its fields wherever it stands; an explicit option overrides it in either order.
    auto a = parse({"--sample-shift", "3", "--preset", "lightx2v-4step"});
    EXPECT_EQ(a.request.preset, "lightx2v-4step");
    EXPECT_EQ(a.request.solver, "euler");
    EXPECT_EQ(a.request.denoising_steps, (std::vector<int>{1000, 750, 500, 250}));
    EXPECT_DOUBLE_EQ(a.request.sample_shift, 3);
    EXPECT_DOUBLE_EQ(a.request.guide_scale, 1);
    auto d = parse({"--preset=default", "--sample-steps", "20"});
    EXPECT_EQ(d.request.solver, "unipc");
    EXPECT_EQ(d.request.sample_steps, 20);
    EXPECT_TRUE(d.request.denoising_steps.empty());
    EXPECT_DOUBLE_EQ(d.request.guide_scale, -1);  // the model's own
    const std::string e = parse_error({"--preset", "turbo"});
    EXPECT_NE(e.find("--preset 'turbo': unknown preset (known: 'default', 'lightx2v-4step')"), std::string::npos) << e;
    EXPECT_NE(wan::app::helpText().find("lightx2v-4step: "), std::string::npos);
    EXPECT_NE(wan::app::helpText().find("--lora PATH[:STRENGTH]"), std::string::npos);
}

TEST(Inspect, TinyCheckpointReport) {
    std::ostringstream out;
    wan::app::inspectCheckpoint(wan::test::tiny_ckpt_dir(), out);
    const std::string s = out.str();
    EXPECT_NE(s.find("589,248 parameters"), std::string::npos) << s;
    EXPECT_NE(s.find("146,496 parameters"), std::string::npos) << s;
    EXPECT_NE(s.find("2,044,087 parameters"), std::string::npos) << s;
    EXPECT_NE(s.find("BFloat16"), std::string::npos) << s;
    EXPECT_NE(s.find("Detected variant"), std::string::npos) << s;
}

// --inspect FILE: one component file, its format, dtypes and what it is.
TEST(Inspect, SingleFileReport) {
    std::ostringstream out;
    wan::app::inspectCheckpoint(wan::test::tiny_ckpt_dir() + "/models_t5_umt5-xxl-enc-bf16.pth", out);
    const std::string s = out.str();
    EXPECT_NE(s.find("torch .pth (zip)"), std::string::npos) << s;
    EXPECT_NE(s.find("BF16 ×"), std::string::npos) << s;
    EXPECT_NE(s.find("UMT5"), std::string::npos) << s;
    EXPECT_NE(s.find("--t5 FILE"), std::string::npos) << s;
    out.str("");
    wan::app::inspectCheckpoint(wan::test::tiny_ckpt_dir() + "/diffusion_pytorch_model.safetensors", out);
    EXPECT_NE(out.str().find("Wan2.1 T2V DiT custom (dim 128, 2 layers)"), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("--dit FILE"), std::string::npos) << out.str();
}

}  // namespace
