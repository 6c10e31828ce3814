// Pipeline behaviour on the tiny checkpoint: validation, seeds, cancellation, progress, save-latents.
#include "golden.h"
#include "small_request.h"

#include "dit/dit.h"
#include "dit/streaming.h"
#include "io/component_files.h"
#include "pipeline/load_monitor.h"
#include "pipeline/parallel.h"
#include "pipeline/pipeline.h"
#include "text/text.h"
#include "vae/vae.h"

#include <ATen/ATen.h>

#include <atomic>

#include <cstdio>

namespace {

wan::pipeline::T2VPipeline& tiny_pipeline() {
    static wan::pipeline::T2VPipeline* pipe = [] {
        wan::pipeline::EngineConfig cfg;
        cfg.ckpt_dir = wan::test::tiny_ckpt_dir();
        cfg.device = "cpu";
        return new wan::pipeline::T2VPipeline(cfg);
    }();
    return *pipe;
}

using wan::test::small_request;

std::string error_of(const wan::GenerationRequest& r) {
    try {
        tiny_pipeline().resolve(r);
    } catch (const wan::Error& e) {
        return e.what();
    }
    return "";
}

TEST(Pipeline, ValidationNamesTheProblem) {
    auto r = small_request();
    r.width = 40;
    EXPECT_NE(error_of(r).find("width 40: must be a positive multiple of 16"), std::string::npos);
    r = small_request();
    r.frame_num = 6;
    EXPECT_NE(error_of(r).find("4n+1"), std::string::npos);
    r = small_request();
    r.guide_scale = -2;
    EXPECT_NE(error_of(r).find("guide_scale"), std::string::npos);
    r = small_request();
    r.sample_shift = 0;
    EXPECT_NE(error_of(r).find("must be > 0"), std::string::npos);
    r = small_request();
    r.solver = "ddim";
    EXPECT_NE(error_of(r).find("'unipc', 'dpm++' or 'euler'"), std::string::npos);
}

TEST(Pipeline, DefaultsFilledFromTheModel) {
    wan::GenerationRequest r;
    r.prompt = "x";
    auto res = tiny_pipeline().resolve(r);
    EXPECT_EQ(res.width, tiny_pipeline().info().default_width);
    EXPECT_EQ(res.sample_steps, tiny_pipeline().info().default_steps);
    EXPECT_FALSE(res.negative_prompt.empty());
}

TEST(Pipeline, SameSeedSameVideoAndRandomSeedReported) {
    auto a = tiny_pipeline().generate(small_request());
    auto b = tiny_pipeline().generate(small_request());
    EXPECT_EQ(a.seed_used, 7);
    EXPECT_TRUE(a.latent.equal(b.latent));
    EXPECT_EQ(a.video.sizes(), at::IntArrayRef({3, 5, 32, 32}));
    auto r = small_request();
    r.seed = -1;
    auto c = tiny_pipeline().generate(r);
    EXPECT_GE(c.seed_used, 0);
    r.seed = c.seed_used;
    auto d = tiny_pipeline().generate(r);
    EXPECT_TRUE(c.latent.equal(d.latent));
}

// Note [Prompt reuse]: a job repeating the previous job's prompts reuses their encodings; any change encodes anew.
TEST(Pipeline, ReusedPromptEncodingsGiveTheSameVideo) {
    wan::pipeline::EngineConfig cfg;
    cfg.ckpt_dir = wan::test::tiny_ckpt_dir();
    cfg.device = "cpu";
    wan::pipeline::T2VPipeline fresh(cfg);
    auto r = small_request();
    r.seed = 11;
    (void)tiny_pipeline().generate(small_request());  // the shared pipeline's last prompts: small_request()'s
    const auto reused = tiny_pipeline().generate(r);
    EXPECT_TRUE(reused.latent.equal(fresh.generate(r).latent)) << "a reused encoding changed the video";
    r.negative_prompt = "blurry, static";
    const auto renegated = tiny_pipeline().generate(r);
    EXPECT_TRUE(renegated.latent.equal(fresh.generate(r).latent));
    EXPECT_FALSE(renegated.latent.equal(reused.latent)) << "a new negative prompt was not encoded";
    r.prompt += " at night";
    EXPECT_TRUE(tiny_pipeline().generate(r).latent.equal(fresh.generate(r).latent));
}

TEST(Pipeline, ProgressStagesAndCancellation) {
    std::vector<wan::ProgressInfo> seen;
    tiny_pipeline().generate(small_request(), [&](const wan::ProgressInfo& p) { seen.push_back(p); });
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.front().stage, wan::Stage::Text);
    bool denoise_done = false, decode_seen = false;
    for (const auto& p : seen) {
        if (p.stage == wan::Stage::Denoise && p.step == p.total && p.total == 2) denoise_done = true;
        if (p.stage == wan::Stage::Decode) decode_seen = true;
    }
    EXPECT_TRUE(denoise_done);
    EXPECT_TRUE(decode_seen);

    std::atomic<bool> cancel{false};
    int denoise_steps = 0;
    EXPECT_THROW(tiny_pipeline().generate(small_request(),
                                          [&](const wan::ProgressInfo& p) {
                                              if (p.stage == wan::Stage::Denoise && p.step == 1) cancel = true;
                                              if (p.stage == wan::Stage::Denoise && p.step > 0) ++denoise_steps;
                                          },
                                          &cancel),
                 wan::Cancelled);
    EXPECT_EQ(denoise_steps, 1);
}

wan::pipeline::EngineConfig tiny_config() {
    wan::pipeline::EngineConfig cfg;
    cfg.ckpt_dir = wan::test::tiny_ckpt_dir();
    cfg.device = "cpu";
    return cfg;
}

TEST(PipelineLoad, ProgressGrowsToTheTotalOverEveryComponent) {
    std::vector<wan::LoadProgress> seen;
    wan::pipeline::EngineConfig cfg = tiny_config();
    cfg.load.progress = [&](const wan::LoadProgress& p) { seen.push_back(p); };
    wan::pipeline::T2VPipeline pipe(cfg);
    ASSERT_GT(seen.size(), 10u);  // one per tensor, not one per component
    const uint64_t total = seen.front().bytes_total;
    EXPECT_GT(total, 100000u);
    std::vector<std::string> components;
    for (size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i].bytes_total, total);
        EXPECT_LE(seen[i].bytes_done, total);
        EXPECT_FALSE(seen[i].file.empty());
        if (i > 0) {
            EXPECT_GE(seen[i].bytes_done, seen[i - 1].bytes_done) << "at report " << i;
            EXPECT_GE(seen[i].elapsed_s, seen[i - 1].elapsed_s);
        }
        if (components.empty() || components.back() != seen[i].component) components.push_back(seen[i].component);
    }
    EXPECT_EQ(seen.back().bytes_done, total);
    EXPECT_EQ(components, (std::vector<std::string>{"text encoder", "DiT", "VAE"}));
    // The DiT's reports name its file (the tiny checkpoint's single safetensors).
    bool dit_file = false;
    for (const auto& p : seen)
        if (p.component == "DiT" && p.file.find("diffusion_pytorch_model") != std::string::npos) dit_file = true;
    EXPECT_TRUE(dit_file);
}

TEST(PipelineLoad, CancelMidLoadThrowsCancelledAndALaterLoadWorks) {
    std::atomic<bool> cancel{false};
    int reports_after_cancel = 0;
    wan::pipeline::EngineConfig cfg = tiny_config();
    cfg.load.cancel = &cancel;
    cfg.load.progress = [&](const wan::LoadProgress& p) {
        if (cancel) ++reports_after_cancel;
        if (p.component == "DiT" && p.bytes_done > 0) cancel = true;  // the Cancel button, mid-DiT
    };
    EXPECT_THROW(wan::pipeline::T2VPipeline{cfg}, wan::Cancelled);
    EXPECT_TRUE(cancel);
    EXPECT_LE(reports_after_cancel, 1);  // stopped at the next tensor, not at the end of the component

    // Nothing of the cancelled load lingers: a new load works and computes what the first pipeline computes.
    cancel = false;
    cfg.load = {};
    wan::pipeline::T2VPipeline again(cfg);
    EXPECT_TRUE(again.generate(small_request()).latent.equal(tiny_pipeline().generate(small_request()).latent));
}

// Under --dit-fsdp / --t5-fsdp a rank reads only its shard of each block tensor (Note [FSDP load progress]): the
// plan's shares of every rank add up to each tensor exactly once, and only the block tensors are shared out.
TEST(PipelineLoad, ShardSharesOfTheRanksAddUpToEachTensorOnce) {
    const wan::io::TensorStore dit = wan::io::TensorStore::open(wan::test::tiny_ckpt_dir() + "/diffusion_pytorch_model.safetensors");
    const wan::io::WanConfig config = wan::io::WanConfig::from_json_file(wan::test::tiny_ckpt_dir() + "/config.json");
    const wan::io::TensorStore t5 = wan::io::TensorStore::open(wan::test::tiny_ckpt_dir() + "/models_t5_umt5-xxl-enc-bf16.pth");
    wan::dit::ModelOptions mixed;  // bf16 GEMM weights and f32 islands: two flat buffers per block
    mixed.precision = wan::dit::Precision::BF16Mixed;
    const std::vector<std::pair<const wan::io::TensorStore*, wan::pipeline::ShardUnits>> parts = {
        {&dit, wan::pipeline::ShardedDitBlocks::units(config, wan::dit::ModelOptions())},
        {&dit, wan::pipeline::ShardedDitBlocks::units(config, mixed)},
        {&t5, wan::pipeline::ShardedT5Weights::units(wan::text::UMT5Config::from_store(t5), at::kBFloat16)}};
    for (const auto& [store, units] : parts) {
        for (int64_t ranks : {2, 3, 4}) {
            std::map<std::string, uint64_t> summed;
            uint64_t read = 0, full = 0;
            for (int64_t r = 0; r < ranks; ++r) {
                const wan::pipeline::LoadMonitor::Share share = wan::pipeline::shard_share(*store, units, ranks, r);
                for (const auto& [name, bytes] : share.bytes_read) summed[name] += bytes;
                read += share.read_bytes();
                full = share.full_bytes;
                if (r > 0) EXPECT_GT(share.read_bytes(), 0u);
            }
            EXPECT_EQ(read, full) << store->source() << " over " << ranks;
            EXPECT_LT(full, store->total_bytes());  // embeddings, head, final norm: read whole by every rank
            for (const auto& [name, bytes] : summed) {
                const wan::io::TensorInfo& info = store->info(name);
                EXPECT_EQ(bytes, static_cast<uint64_t>(info.numel()) * c10::elementSize(info.dtype)) << name;
            }
        }
    }
}

// A sharded component counts what this rank copies: the total is the files less the sharded tensors plus this
// rank's share of them, a sharded tensor's read adds its share, and the end is exactly the total.
TEST(PipelineLoad, AShardedComponentCountsTheRanksShare) {
    std::vector<wan::LoadProgress> seen;
    wan::LoadControl control;
    control.progress = [&](const wan::LoadProgress& p) { seen.push_back(p); };
    wan::pipeline::LoadMonitor monitor(control, false);
    wan::pipeline::LoadMonitor::Share share;
    share.bytes_read = {{"blocks.0.w", 40}, {"blocks.1.w", 0}};  // this rank's part of two 100-byte tensors
    share.full_bytes = 200;
    monitor.plan("text encoder", 30);
    monitor.plan("DiT", 250, share);  // the two block tensors and a 50-byte head read whole
    auto tensor = [](const std::string& name, int64_t bytes) {
        wan::io::TensorInfo t;
        t.name = name;
        t.dtype = at::kByte;
        t.shape = {bytes};
        t.file = "dit.safetensors";
        return t;
    };
    monitor.begin("text encoder", "t5.pth");
    monitor.tensor_read(tensor("token_embedding.weight", 30));
    monitor.end();
    monitor.begin("DiT", "dit.safetensors");
    ASSERT_FALSE(seen.empty());
    EXPECT_EQ(seen.back().bytes_total, 30u + 50u + 40u);
    monitor.tensor_read(tensor("blocks.0.w", 100));
    EXPECT_EQ(seen.back().bytes_done, 30u + 40u);
    monitor.tensor_read(tensor("blocks.1.w", 100));  // another rank's part
    EXPECT_EQ(seen.back().bytes_done, 30u + 40u);
    monitor.tensor_read(tensor("head.w", 50));
    EXPECT_EQ(seen.back().bytes_done, seen.back().bytes_total);  // every byte read, before end() says so
    monitor.end();
    EXPECT_EQ(seen.back().bytes_done, 120u);
    EXPECT_EQ(seen.back().bytes_total, 120u);
}

TEST(PipelineLoad, CancelBeforeTheLoadReadsNothing) {
    std::atomic<bool> cancel{true};
    int reports = 0;
    wan::pipeline::EngineConfig cfg = tiny_config();
    cfg.load.cancel = &cancel;
    cfg.load.progress = [&](const wan::LoadProgress&) { ++reports; };
    EXPECT_THROW(wan::pipeline::T2VPipeline{cfg}, wan::Cancelled);
    EXPECT_EQ(reports, 0);
}

TEST(Pipeline, SaveLatentsAndInitNoise) {
    const std::string dir = wan::test::make_temp_dir("pipe");
    auto r = small_request();
    r.save_latents = dir + "/out.safetensors";
    auto a = tiny_pipeline().generate(r);
    auto st = wan::io::TensorStore::open(r.save_latents);
    EXPECT_TRUE(st.get("latent").equal(a.latent));
    EXPECT_TRUE(st.get("video").equal(a.video));

    r = small_request();
    r.init_noise = dir + "/bad_noise.safetensors";
    wan::io::save_safetensors(r.init_noise, {{"noise", at::zeros({16, 1, 4, 4})}});
    try {
        tiny_pipeline().generate(r);
        FAIL();
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("needs [16, 2, 4, 4]"), std::string::npos) << e.what();
    }
}

// Step caching (EngineConfig::teacache_threshold, Note [Step caching]): off computes every step, on skips
// some (first and last always run) and stays close to the uncached latent. The request is the e2e test's.
TEST(Pipeline, StepCachingSkipsStepsAndStaysClose) {
    auto r = small_request();
    r.width = 64;
    r.height = 64;
    r.sample_steps = 8;
    r.seed = 1234;
    const auto ref = tiny_pipeline().generate(r);
    EXPECT_EQ(ref.steps_computed, 8);
    for (double th : {0.1, 0.3, 0.5}) {
        wan::pipeline::EngineConfig cfg;
        cfg.ckpt_dir = wan::test::tiny_ckpt_dir();
        cfg.device = "cpu";
        cfg.teacache_threshold = th;
        wan::pipeline::T2VPipeline cached(cfg);
        const auto out = cached.generate(r);
        ASSERT_TRUE(at::isfinite(out.latent).all().item<bool>());
        const double err = (out.latent - ref.latent).norm().item<double>() / ref.latent.norm().item<double>();
        const double video_err = (out.video - ref.video).abs().max().item<double>();
        std::printf("teacache %.2f: %d of 8 steps computed, final latent rel L2 %.4f, video max |diff| %.4f\n", th,
                    out.steps_computed, err, video_err);
        EXPECT_GE(out.steps_computed, 2);
        EXPECT_LT(err, 0.5);
        if (th >= 0.3) EXPECT_LT(out.steps_computed, 8) << "threshold " << th << " skipped nothing";
    }
}

TEST(Pipeline, Uint8ConversionTruncates) {
    at::Tensor v = at::tensor({-1.0f, 0.0f, 0.999f, 1.0f, 2.0f}).view({1, 5, 1, 1}).expand({3, 5, 1, 1});
    at::Tensor u = wan::pipeline::video_to_uint8(v);
    EXPECT_EQ(u.sizes(), at::IntArrayRef({5, 1, 1, 3}));
    EXPECT_EQ(u[0][0][0][0].item<int>(), 0);
    EXPECT_EQ(u[1][0][0][0].item<int>(), 127);  // 127.5 truncates
    EXPECT_EQ(u[3][0][0][0].item<int>(), 255);
    EXPECT_EQ(u[4][0][0][0].item<int>(), 255);
}

// Built parts (wan-bench's random weights) honour --offload-dit / --max-vram: the DiT's blocks past the budget
// move to host memory and are streamed, which on the CPU copies the same values (Note [Streamed DiT blocks]).
wan::pipeline::PipelineParts tiny_parts() {
    const auto m = wan::io::ModelComponents::locate(wan::test::tiny_ckpt_dir());
    wan::pipeline::PipelineParts parts;
    parts.text = std::make_unique<wan::text::TextEncoder>(m);
    parts.dit = std::make_unique<wan::dit::WanModel>(m.dit_config(), m.open_dit());
    wan::vae::VAEOptions vopt;
    vopt.load_encoder = false;
    parts.vae = std::make_unique<wan::vae::WanVAE>(m.open_vae(), vopt);
    return parts;
}

TEST(Pipeline, BuiltPartsStreamTheirDitBlocks) {
    auto latent = [](const wan::pipeline::EngineConfig& cfg) {
        wan::pipeline::T2VPipeline pipe(tiny_parts(), cfg);
        return pipe.generate(small_request()).latent;
    };
    wan::pipeline::EngineConfig resident;
    resident.device = "cpu";
    const at::Tensor want = latent(resident);
    wan::pipeline::EngineConfig offload = resident;
    offload.offload_dit = true;
    EXPECT_TRUE(at::equal(latent(offload), want)) << "--offload-dit";
    wan::pipeline::EngineConfig budget = resident;
    {  // room for the working memory set aside, the root weights, one resident block and the two streaming buffers
        const wan::io::WanConfig c = wan::io::ModelComponents::locate(wan::test::tiny_ckpt_dir()).dit_config();
        const auto f32 = wan::dit::Precision::Float32;
        const double bytes = wan::pipeline::planned_working_memory_bytes(c.dim, "") +
                             static_cast<double>(wan::dit::root_weight_bytes(c, f32)) +
                             3.5 * static_cast<double>(wan::dit::block_weight_bytes(c, f32));
        budget.max_vram_gb = bytes / (1024.0 * 1024.0 * 1024.0);
    }
    EXPECT_TRUE(at::equal(latent(budget), want)) << "--max-vram";
}

TEST(Pipeline, FfnChunksFollowTheMemoryMode) {
    using wan::pipeline::resolved_ffn_chunks;
    wan::pipeline::EngineConfig c;
    EXPECT_EQ(resolved_ffn_chunks(c, false), 1) << "resident bf16: speed first";
    EXPECT_EQ(resolved_ffn_chunks(c, true), 4) << "fp8 weights: memory first";
    c.max_vram_gb = 22;
    EXPECT_EQ(resolved_ffn_chunks(c, false), 4) << "--max-vram";
    c.max_vram_gb = 0;
    c.offload_dit = true;
    EXPECT_EQ(resolved_ffn_chunks(c, false), 4) << "--offload-dit";
    c.ffn_chunks = 1;
    EXPECT_EQ(resolved_ffn_chunks(c, true), 1) << "an explicit --ffn-chunks wins";
}

// Note [Decode tail]: the VAE's tail a frame at a time costs 10 % of the decode, so only where memory comes first.
TEST(Pipeline, VaeTailFramesFollowTheMemoryMode) {
    using wan::pipeline::default_vae_speed;
    using wan::pipeline::memory_first;
    const c10::Device cuda(c10::kCUDA, 0), cpu(c10::kCPU);  // device values only: nothing runs on them
    wan::pipeline::EngineConfig c;
    EXPECT_FALSE(memory_first(c, false));
    EXPECT_EQ(default_vae_speed(cuda, memory_first(c, false)).tail_frames, 0) << "resident bf16: speed first";
    EXPECT_EQ(default_vae_speed(cuda, memory_first(c, true)).tail_frames, 1) << "fp8 DiT weights";
    c.max_vram_gb = 22;
    EXPECT_EQ(default_vae_speed(cuda, memory_first(c, false)).tail_frames, 1) << "--max-vram";
    c.max_vram_gb = 0;
    c.offload_dit = true;
    EXPECT_EQ(default_vae_speed(cuda, memory_first(c, false)).tail_frames, 1) << "--offload-dit";
    EXPECT_EQ(default_vae_speed(cpu, true).tail_frames, 0) << "the CPU's RAM is not the limit";
    EXPECT_TRUE(default_vae_speed(cuda).subpixel_upsample);
    EXPECT_FALSE(default_vae_speed(cpu).subpixel_upsample);
}

// Note [Warm-up at load]: with --vae-chunk-frames N the warm-up decodes enough latent frames to meet every chunk
// shape of an 81-frame video.
TEST(Pipeline, WarmUpMeetsEveryDecodeChunkShape) {
    EXPECT_EQ(wan::pipeline::default_vae_speed(c10::Device(c10::kCUDA, 0)).chunk_frames, 1) << "one at a time by default";
    using wan::pipeline::warm_up_latent_frames;
    EXPECT_EQ(warm_up_latent_frames(1, 21), 3) << "first, first cached, steady";
    EXPECT_EQ(warm_up_latent_frames(3, 21), 9) << "1 + 3 + 3 + the last chunk of 2";
    EXPECT_EQ(warm_up_latent_frames(2, 21), 5) << "1 + 2 + 2, no shorter chunk";
    EXPECT_EQ(warm_up_latent_frames(3, 5), 5) << "a video shorter than the warm-up: all of it";
    EXPECT_EQ(warm_up_latent_frames(3, 1), 1);
}

// Note [VAE autotuning]: auto tunes where the warm-up at load pays the search, never under a memory cap.
TEST(Pipeline, VaeAutotuneWhereTheWarmUpPaysTheSearch) {
    using wan::pipeline::vae_autotune_enabled;
    wan::pipeline::EngineConfig c;
    EXPECT_TRUE(vae_autotune_enabled(c, /*cuda=*/true, /*decode_across_ranks=*/false));
    EXPECT_FALSE(vae_autotune_enabled(c, false, false)) << "no cuDNN on the CPU";
    EXPECT_FALSE(vae_autotune_enabled(c, true, true)) << "the decode across ranks has no warm-up decode";
    c.max_vram_gb = 22;
    EXPECT_FALSE(vae_autotune_enabled(c, true, false)) << "--max-vram: the search's scratch memory";
    c.max_vram_gb = 0;
    c.offload_dit = true;
    EXPECT_FALSE(vae_autotune_enabled(c, true, false)) << "--offload-dit";
    c.offload_dit = false;
    c.warm_up = false;
    EXPECT_FALSE(vae_autotune_enabled(c, true, false)) << "no warm-up: the first job would pay the search";
    c.vae_autotune = "on";
    EXPECT_TRUE(vae_autotune_enabled(c, true, true)) << "an explicit on wins";
    EXPECT_FALSE(vae_autotune_enabled(c, false, false));
    c.vae_autotune = "off";
    c.warm_up = true;
    EXPECT_FALSE(vae_autotune_enabled(c, true, false)) << "an explicit off wins";
    c.vae_autotune = "sometimes";
    try {
        (void)vae_autotune_enabled(c, true, false);
        ADD_FAILURE() << "a bad value must be an error";
    } catch (const wan::Error& e) {
        EXPECT_NE(std::string(e.what()).find("--vae-autotune 'sometimes': expected auto, on or off"), std::string::npos)
            << e.what();
    }
}

TEST(Pipeline, DitDtypeFp8IsHeldAsFp8AndStreamsTheSame) {
    auto latent = [](const wan::pipeline::EngineConfig& cfg) {
        wan::pipeline::T2VPipeline pipe(cfg);
        return pipe.generate(small_request()).latent;
    };
    wan::pipeline::EngineConfig fp8;
    fp8.ckpt_dir = wan::test::tiny_ckpt_dir();
    fp8.device = "cpu";
    fp8.dit_dtype = "fp8";
    const at::Tensor want = latent(fp8);
    ASSERT_TRUE(at::isfinite(want).all().item<bool>());
    const at::Tensor f32 = tiny_pipeline().generate(small_request()).latent;
    EXPECT_FALSE(at::equal(want, f32)) << "--dit-dtype fp8 quantised nothing";
    std::printf("--dit-dtype fp8: final latent rel L2 against f32 weights %.4f\n",
                (want - f32).norm().item<double>() / f32.norm().item<double>());
    wan::pipeline::EngineConfig streamed = fp8;
    streamed.offload_dit = true;
    EXPECT_TRUE(at::equal(latent(streamed), want)) << "--dit-dtype fp8 --offload-dit";
    wan::pipeline::EngineConfig bad = fp8;
    bad.dit_dtype = "fp16";
    std::string msg;
    try {
        wan::pipeline::T2VPipeline pipe(bad);
    } catch (const wan::Error& e) {
        msg = e.what();
    }
    EXPECT_NE(msg.find("--dit-dtype 'fp16': expected auto, fp8 or bf16"), std::string::npos) << msg;
}

}  // namespace
