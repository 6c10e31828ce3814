// The tiny checkpoint loads bit-exactly through both readers, and round trips through our writers are exact.
#include "golden.h"

#include <ATen/ATen.h>

namespace {

using wan::io::TensorStore;

TEST(Readers, TinyCheckpointLoads) {
    const std::string dir = wan::test::tiny_ckpt_dir();
    TensorStore dit = TensorStore::open(dir + "/diffusion_pytorch_model.safetensors");
    TensorStore t5 = TensorStore::open(dir + "/models_t5_umt5-xxl-enc-bf16.pth");
    TensorStore vae = TensorStore::open(dir + "/Wan2.1_VAE.pth");
    EXPECT_EQ(dit.size(), 12u + 27u * 2u + 3u);
    EXPECT_TRUE(t5.contains("blocks.0.pos_embedding.embedding.weight"));
    EXPECT_EQ(t5.info("token_embedding.weight").dtype, at::kBFloat16);
    EXPECT_EQ(vae.info("conv2.weight").shape, (std::vector<int64_t>{16, 16, 1, 1, 1}));
    auto count = [](const TensorStore& s) {
        int64_t n = 0;
        for (const auto& name : s.names()) n += s.info(name).numel();
        return n;
    };
    // Parameter counts recorded by the generator (tiny_config.json).
    EXPECT_EQ(count(t5), 146496);
    EXPECT_EQ(count(dit), 589248);
    EXPECT_EQ(count(vae), 2044087);
}

void expect_round_trip(const TensorStore& src, bool as_pth) {
    wan::io::NamedTensors all;
    for (const auto& n : src.names()) all.emplace_back(n, src.get(n));
    const std::string dir = wan::test::make_temp_dir("rt");
    const std::string path = dir + (as_pth ? "/rt.pth" : "/rt.safetensors");
    if (as_pth) wan::io::save_pth(path, all); else wan::io::save_safetensors(path, all);
    TensorStore back = TensorStore::open(path);
    ASSERT_EQ(back.names(), src.names());
    for (const auto& n : src.names()) {
        at::Tensor a = src.get(n), b = back.get(n);
        ASSERT_EQ(a.scalar_type(), b.scalar_type()) << n;
        ASSERT_TRUE(a.equal(b)) << n;
    }
}

TEST(Readers, RoundTripsAreBitExact) {
    const std::string dir = wan::test::tiny_ckpt_dir();
    TensorStore dit = TensorStore::open(dir + "/diffusion_pytorch_model.safetensors");
    TensorStore t5 = TensorStore::open(dir + "/models_t5_umt5-xxl-enc-bf16.pth");
    TensorStore vae = TensorStore::open(dir + "/Wan2.1_VAE.pth");
    for (bool pth : {false, true}) {
        expect_round_trip(dit, pth);
        expect_round_trip(t5, pth);
        expect_round_trip(vae, pth);
    }
}

TEST(Readers, ReadObserverSeesEachReadOnceOnItsThreadAndNests) {
    const std::string dir = wan::test::tiny_ckpt_dir();
    TensorStore t5 = TensorStore::open(dir + "/models_t5_umt5-xxl-enc-bf16.pth");
    std::vector<std::string> outer, inner;
    {
        const wan::io::ScopedTensorReadObserver watch([&](const wan::io::TensorInfo& i) { outer.push_back(i.name); });
        (void)t5.get("norm.weight");
        (void)t5.load("token_embedding.weight", c10::Device(c10::kCPU), at::kFloat);  // once, not get() too
        {
            const wan::io::ScopedTensorReadObserver nested([&](const wan::io::TensorInfo& i) { inner.push_back(i.name); });
            (void)t5.load("norm.weight");
        }
        (void)t5.get("norm.weight");  // the outer observer is back
    }
    (void)t5.get("norm.weight");  // none after the scope
    EXPECT_EQ(outer, (std::vector<std::string>{"norm.weight", "token_embedding.weight", "norm.weight"}));
    EXPECT_EQ(inner, (std::vector<std::string>{"norm.weight"}));
    // An observer that throws (a cancelled load) stops the loader at that read.
    const wan::io::ScopedTensorReadObserver stop([](const wan::io::TensorInfo&) { throw wan::Error("stop"); });
    EXPECT_THROW((void)t5.load("norm.weight"), wan::Error);
}

}  // namespace
