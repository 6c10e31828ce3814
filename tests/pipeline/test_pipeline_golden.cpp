// golden_pipeline: the whole WanT2V.generate loop on the tiny checkpoint with the given noise — contexts,
// every step's model output and latent, the final latent and the decoded video — for every pipeline_ case.
#include "golden.h"

#include "pipeline/pipeline.h"

#include <ATen/ATen.h>

#include <map>

namespace {

TEST(GoldenPipeline, EveryCase) {
    wan::pipeline::EngineConfig cfg;
    cfg.ckpt_dir = wan::test::tiny_ckpt_dir();
    cfg.device = "cpu";
    wan::pipeline::T2VPipeline pipe(cfg);
    for (const std::string& name : wan::test::list_cases("pipeline_")) {
        SCOPED_TRACE(name);
        wan::test::GoldenCase c = wan::test::load_case(name);
        const wan::GenerationRequest req = wan::test::pipeline_request(c, wan::test::make_temp_dir("pipe"));

        std::map<std::string, at::Tensor> got;
        auto out = pipe.generate(req, {}, nullptr, [&](const std::string& n, const at::Tensor& t) { got[n] = t; });

        EXPECT_TRUE(wan::test::all_close(got.at("context"), c.get("context"), wan::test::tolerance("pipeline.context"), name + " context"));
        EXPECT_TRUE(wan::test::all_close(got.at("context_null"), c.get("context_null"), wan::test::tolerance("pipeline.context"), name + " context_null"));
        at::Tensor latents = c.get("latents"), cond = c.get("noise_pred_cond"), uncond = c.get("noise_pred_uncond");
        for (int64_t i = 0; i < cond.size(0); ++i) {
            const std::string s = std::to_string(i);
            EXPECT_TRUE(wan::test::all_close(got.at("noise_pred_cond." + s), cond[i], wan::test::tolerance("pipeline.noise_pred_cond"), name + " noise_pred_cond." + s));
            EXPECT_TRUE(wan::test::all_close(got.at("noise_pred_uncond." + s), uncond[i], wan::test::tolerance("pipeline.noise_pred_cond"), name + " noise_pred_uncond." + s));
        }
        for (int64_t i = 0; i < latents.size(0); ++i) {
            const std::string s = std::to_string(i);
            EXPECT_TRUE(wan::test::all_close(got.at("latents." + s), latents[i], wan::test::tolerance("pipeline.latents"), name + " latents." + s));
        }
        EXPECT_TRUE(wan::test::all_close(out.latent, c.get("final_latent"), wan::test::tolerance("pipeline.final_latent"), name + " final_latent"));
        EXPECT_TRUE(wan::test::all_close(out.video, c.get("video"), wan::test::tolerance("pipeline.video"), name + " video"));
        EXPECT_EQ(wan::pipeline::sequence_length(out.latent.size(1), out.latent.size(2), out.latent.size(3), 1),
                  c.get("seq_len").item<int64_t>());
    }
}

}  // namespace
