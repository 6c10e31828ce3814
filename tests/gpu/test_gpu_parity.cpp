// GPU parity (label gpu): the CUDA paths — bf16 mixed-precision DiT, f32/bf16 VAE, bf16 T5, the whole pipeline
// — against the CPU float32 golden data, with tolerances for bf16/TF32 arithmetic. Prints the measured
// errors (recorded in docs/PERFORMANCE.md and the issue notes). Skips where no CUDA device exists: the CPU
// parity suites (label golden) never skip.
#include "golden.h"

#include "dit/dit.h"
#include "pipeline/pipeline.h"
#include "text/text.h"
#include "vae/vae.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <map>

namespace {

c10::Device cuda() { return c10::Device(c10::kCUDA, 0); }

/// max |a - b| / max |b|
double rel_err(const at::Tensor& a, const at::Tensor& b) {
    at::Tensor x = a.to(at::kCPU).to(at::kDouble), y = b.to(at::kCPU).to(at::kDouble);
    return ((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item<double>();
}

class Gpu : public ::testing::Test {
protected:
    void SetUp() override {
        if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
    }
    c10::InferenceMode guard;
};

TEST_F(Gpu, DitBf16MixedAgainstGolden) {
    auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    auto store = ckpt.open_dit();
    auto opt = wan::dit::ModelOptions::from_environment();  // WAN_FUSED=0 etc. still select the paths here
    opt.device = cuda();
    wan::dit::WanModel model(ckpt.config(), store, opt);
    for (const auto& name : wan::test::list_cases("dit_")) {
        auto c = wan::test::load_case(name);
        int b = 0;
        while (c.has("x." + std::to_string(b))) {
            const std::string s = std::to_string(b);
            at::Tensor t = c.get("t");
            at::Tensor out = model.forward(c.get("x." + s).to(cuda()), t.numel() > 1 ? t[b] : t, c.get("context." + s).to(cuda()),
                                           c.get("seq_len").item<int64_t>());
            const double e = rel_err(out, c.get("out." + s));
            std::printf("[gpu] %s sample %d: DiT bf16-mixed vs f32 golden, max|err|/max|ref| = %.3g\n", name.c_str(), b, e);
            EXPECT_LT(e, 3e-2) << name << " sample " << b;
            ++b;
        }
    }
}

TEST_F(Gpu, VaeAgainstGolden) {
    auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    auto store = ckpt.open_vae();
    for (bool channels_last : {false, true}) {
        for (auto dtype : {at::kFloat, at::kBFloat16}) {
            wan::vae::VAEOptions o;
            o.device = cuda();
            o.dtype = dtype;
            o.channels_last = channels_last;
            wan::vae::WanVAE vae(store, o);
            int64_t outputs = 0, cl_outputs = 0;  // channels-last must really run channels-last on cuDNN
            wan::vae::DecodeCallbacks cb;
            cb.on_intermediate = [&](const std::string&, const at::Tensor& x) {
                ++outputs;
                if (x.dim() == 5 && x.is_contiguous(at::MemoryFormat::ChannelsLast3d)) ++cl_outputs;
            };
            for (const auto& name : wan::test::list_cases("vae_decode_")) {
                auto c = wan::test::load_case(name);
                const double e = rel_err(vae.decode(c.get("z").to(cuda()), cb), c.get("video"));
                std::printf("[gpu] %s: VAE decode %s%s vs f32 golden, max|err|/max|ref| = %.3g\n", name.c_str(),
                            dtype == at::kFloat ? "f32 (cuDNN TF32)" : "bf16", channels_last ? " channels-last" : "", e);
                EXPECT_LT(e, dtype == at::kFloat ? 1e-2 : 8e-2) << name;
            }
            std::printf("[gpu] channels_last=%d: %lld of %lld module outputs channels-last\n", channels_last,
                        static_cast<long long>(cl_outputs), static_cast<long long>(outputs));
            if (channels_last) EXPECT_GT(cl_outputs, outputs * 3 / 4);
        }
    }
}

// The decode's speed switches (VAESpeedOptions) on cuDNN and, for fused_norm, the CUDA kernel: within the same
// bounds of the golden as the plain decode, and next to the plain decode of the same dtype and layout.
TEST_F(Gpu, VaeSpeedSwitchesAgainstGolden) {
    auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    auto store = ckpt.open_vae();
    struct Variant {
        const char* name;
        bool fold, buffer, fused, pad, subpixel;
        int64_t chunk;
        int64_t tail = 0;  // Note [Decode tail]
    };
    const Variant variants[] = {{"fold-time", true, false, false, false, false, 1},
                                {"cache-buffer", false, true, false, false, false, 1},
                                {"fused-norm", false, false, true, false, false, 1},
                                {"cache-buffer fused-norm pad-head", false, true, true, true, false, 1},
                                {"subpixel-upsample", false, false, false, false, true, 1},
                                {"cache-buffer fused-norm subpixel-upsample", false, true, true, false, true, 1},
                                {"all", true, true, true, true, true, 1},
                                {"all chunk-frames=2", true, true, true, true, true, 2},
                                {"the engine's memory mode: cache-buffer fused-norm subpixel-upsample tail-frames=1",
                                 false, true, true, false, true, 1, 1},
                                {"all chunk-frames=2 tail-frames=3", true, true, true, true, true, 2, 3}};
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
        wan::vae::VAEOptions o;
        o.device = cuda();
        o.dtype = dtype;
        o.channels_last = true;
        const wan::vae::WanVAE plain(store, o);
        for (const Variant& v : variants) {
            o.speed.fold_time = v.fold;
            o.speed.cache_buffer = v.buffer;
            o.speed.fused_norm = v.fused;
            o.speed.pad_head = v.pad;
            o.speed.subpixel_upsample = v.subpixel;
            o.speed.chunk_frames = v.chunk;
            o.speed.tail_frames = v.tail;
            const wan::vae::WanVAE vae(store, o);
            for (const auto& name : wan::test::list_cases("vae_decode_")) {
                auto c = wan::test::load_case(name);
                const at::Tensor z = c.get("z").to(cuda());
                const at::Tensor y = vae.decode(z);
                const double e = rel_err(y, c.get("video"));
                const double d = (y - plain.decode(z)).abs().max().item<double>();
                std::printf("[gpu] %s: VAE decode %s channels-last %s: vs f32 golden %.3g, vs plain %.3g\n", name.c_str(),
                            dtype == at::kFloat ? "f32" : "bf16", v.name, e, d);
                EXPECT_LT(e, dtype == at::kFloat ? 1e-2 : 8e-2) << name << " " << v.name;
                EXPECT_LT(d, dtype == at::kFloat ? 1e-2 : 5e-2) << name << " " << v.name;
            }
        }
    }
}

TEST_F(Gpu, T5Bf16AgainstGolden) {
    auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    wan::text::UMT5Options o;
    o.device = cuda();
    wan::text::TextEncoder te(ckpt, o);
    auto c = wan::test::load_case("t5");
    int i = 0;
    while (c.has(std::to_string(i) + ".context")) {
        const std::string p = std::to_string(i);
        wan::text::TokenizedBatch batch;
        batch.ids = c.get(p + ".input_ids").unsqueeze(0);
        batch.mask = c.get(p + ".attention_mask").unsqueeze(0);
        batch.lengths = {batch.mask.sum().item<int64_t>()};
        at::Tensor ctx = te.encoder().encode(batch).at(0);
        const double e32 = rel_err(ctx, c.get(p + ".context"));
        std::printf("[gpu] t5 prompt %d: bf16 on CUDA vs f32 golden %.3g", i, e32);
        if (c.has(p + ".context_bf16_compute"))
            std::printf(", vs CPU bf16 golden %.3g", rel_err(ctx, c.get(p + ".context_bf16_compute")));
        std::printf("\n");
        EXPECT_LT(e32, 5e-2);
        ++i;
    }
}

TEST_F(Gpu, PipelineAgainstGolden) {
    wan::pipeline::EngineConfig cfg;
    cfg.ckpt_dir = wan::test::tiny_ckpt_dir();
    cfg.device = "cuda";
    wan::pipeline::T2VPipeline pipe(cfg);
    for (const auto& name : wan::test::list_cases("pipeline_")) {
        auto c = wan::test::load_case(name);
        const wan::GenerationRequest req = wan::test::pipeline_request(c, wan::test::make_temp_dir("gpu"));
        auto out = pipe.generate(req);
        const double el = rel_err(out.latent, c.get("final_latent")), ev = rel_err(out.video, c.get("video"));
        std::printf("[gpu] %s: final latent %.3g, video %.3g (max|err|/max|ref|, bf16 GPU vs f32 CPU golden)\n",
                    name.c_str(), el, ev);
        EXPECT_LT(el, 1e-1);
        EXPECT_LT(ev, 1e-1);
    }
}

}  // namespace
