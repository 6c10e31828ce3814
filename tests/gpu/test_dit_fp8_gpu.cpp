// Block weights held as fp8 (--dit-dtype fp8, Note [FP8 weights] in dit/fp8_weights.cpp) on CUDA: the CUDA
// quantisation gives the CPU's codes, the device memory of the blocks halves, the widened path equals the model
// quantised up front, the direct FP8-GEMM path stays close to it, streamed fp8 blocks equal resident ones, and a
// LoRA merge restores exactly. Label gpu: built only where CUDA is built in.
#include "dit/dit.h"
#include "dit/streaming.h"
#include "lora/lora.h"

#include "golden.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <map>

namespace {

using wan::dit::WanModel;
using wan::dit::WeightDtype;

const c10::Device kCuda(c10::kCUDA, 0);

double rel_err(const at::Tensor& a, const at::Tensor& b) {
    const at::Tensor x = a.to(at::kDouble).cpu(), y = b.to(at::kDouble).cpu();
    return ((x - y).abs().max() / y.abs().max().clamp_min(1e-12)).item<double>();
}

int64_t allocated_bytes() {
    return c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].current;
}

wan::dit::ModelOptions cuda_options(WeightDtype dtype, bool direct = true) {
    wan::dit::ModelOptions o;
    o.device = kCuda;
    o.weight_dtype = dtype;
    o.fp8_direct = direct;
    return o;
}

at::Tensor run(const WanModel& m) {
    at::manual_seed(5);
    const at::Tensor x = at::randn({16, 2, 8, 8}).to(m.device());
    const at::Tensor ctx = at::randn({7, 64}).to(m.device());
    return m.forward(x, at::scalar_tensor(937.5, at::kDouble), ctx, 32).cpu();
}

class DitFp8Gpu : public ::testing::Test {
protected:
    void SetUp() override {
        if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
    }
    c10::InferenceMode guard;
};

TEST_F(DitFp8Gpu, CudaQuantisationGivesTheCpuCodes) {
    at::manual_seed(3);
    const at::Tensor w = at::randn({256, 384}) * at::logspace(-4, 2, 256).unsqueeze(1);  // 6 decades of row range
    // ATen's float8 cast on the GPU and io's encoder on the CPU: both round to nearest even.
    const wan::dit::Fp8Weight cpu = wan::dit::quantize_fp8(w);
    const wan::dit::Fp8Weight gpu = wan::dit::quantize_fp8(w.to(kCuda));
    EXPECT_TRUE(gpu.codes.is_cuda());
    EXPECT_TRUE(at::equal(gpu.scale.cpu(), cpu.scale));
    EXPECT_TRUE(at::equal(gpu.codes.cpu(), cpu.codes))
        << "codes differ in " << gpu.codes.cpu().ne(cpu.codes).sum().item<int64_t>() << " places";
    for (at::ScalarType dt : {at::kFloat, at::kBFloat16})
        EXPECT_TRUE(at::equal(wan::dit::dequantize_fp8(gpu.codes, gpu.scale, dt).cpu(),
                              wan::dit::dequantize_fp8(cpu.codes, cpu.scale, dt)));
}

TEST_F(DitFp8Gpu, BlocksTakeHalfTheDeviceMemory) {
    wan::io::WanConfig c;  // 1.3B widths, 2 layers
    c.num_layers = 2;
    const int64_t before = allocated_bytes();
    int64_t bf16 = 0, fp8 = 0;
    {
        const WanModel m = WanModel::random(c, cuda_options(WeightDtype::Compute), 0);
        bf16 = allocated_bytes() - before;
    }
    {
        const WanModel m = WanModel::random(c, cuda_options(WeightDtype::Fp8), 0);
        fp8 = allocated_bytes() - before;
        EXPECT_TRUE(m.fp8_weights());
    }
    const auto mixed = wan::dit::Precision::BF16Mixed;
    const int64_t root = wan::dit::root_weight_bytes(c, mixed);
    std::printf("1.3B widths, 2 blocks: bf16 %.1f MB, fp8 %.1f MB (root %.1f MB)\n", bf16 / 1e6, fp8 / 1e6, root / 1e6);
    EXPECT_LT(static_cast<double>(fp8 - root), 0.52 * static_cast<double>(bf16 - root));
    EXPECT_GT(static_cast<double>(fp8 - root), 0.48 * static_cast<double>(bf16 - root));
}

TEST_F(DitFp8Gpu, WidenedEqualsUpFrontAndDirectStaysClose) {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    const auto c = ckpt.config();
    const WanModel widened(c, ckpt.open_dit(), cuda_options(WeightDtype::Fp8, /*direct=*/false));
    const WanModel direct(c, ckpt.open_dit(), cuda_options(WeightDtype::Fp8, /*direct=*/true));
    // The same values up front: every block Linear weight quantised and dequantised on the CPU, held as bf16.
    std::vector<wan::dit::BlockWeights> blocks;
    for (int64_t i = 0; i < c.num_layers; ++i) {
        wan::dit::BlockWeights b = wan::dit::load_block_weights(c, ckpt.open_dit(), i, cuda_options(WeightDtype::Compute));
        auto up_front = [](at::Tensor& w) {
            const wan::dit::Fp8Weight q = wan::dit::quantize_fp8(w.cpu().to(at::kFloat));
            w = wan::dit::dequantize_fp8(q.codes, q.scale, at::kBFloat16).to(kCuda);
        };
        for (at::Tensor* w : {&b.self_attn.q_weight, &b.self_attn.k_weight, &b.self_attn.v_weight, &b.self_attn.o_weight,
                              &b.cross_attn.q_weight, &b.cross_attn.k_weight, &b.cross_attn.v_weight,
                              &b.cross_attn.o_weight, &b.ffn0_weight, &b.ffn2_weight})
            up_front(*w);
        blocks.push_back(std::move(b));
    }
    const WanModel reference(c, widened.root_weights(),
                             std::make_shared<wan::dit::ResidentBlockWeights>(std::move(blocks)),
                             cuda_options(WeightDtype::Compute));
    const WanModel bf16(c, ckpt.open_dit(), cuda_options(WeightDtype::Compute));
    const at::Tensor want = run(reference);
    const double widen_err = rel_err(run(widened), want), direct_err = rel_err(run(direct), want);
    const double weights_err = rel_err(want, run(bf16));
    std::printf("fp8 weights: widened vs up-front %.2e, direct FP8 GEMMs vs up-front %.2e, up-front vs bf16 %.2e\n",
                widen_err, direct_err, weights_err);
    EXPECT_LE(widen_err, 1e-2);   // same values, same kernels: expected 0 (bf16 GEMM order aside)
    EXPECT_LE(direct_err, 0.1);   // plus the per-token fp8 activations (where the FP8 GEMMs run)
    EXPECT_LE(weights_err, 0.1);  // the weights' own quantisation
}

TEST_F(DitFp8Gpu, StreamedFp8BlocksEqualResidentOnes) {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    const auto c = ckpt.config();
    for (bool direct : {false, true}) {
        SCOPED_TRACE(direct ? "direct FP8 GEMMs" : "widened per block");
        const WanModel resident(c, ckpt.open_dit(), cuda_options(WeightDtype::Fp8, direct));
        const at::Tensor want = run(resident);
        for (int64_t keep : {int64_t{0}, int64_t{1}}) {
            auto blocks = wan::dit::StreamedBlockWeights::load(c, ckpt.open_dit(), cuda_options(WeightDtype::Fp8, direct), keep);
            EXPECT_EQ(blocks->stored(c.num_layers - 1)->ffn0_weight.scalar_type(), at::kByte);
            EXPECT_TRUE(blocks->stored(c.num_layers - 1)->ffn0_weight.is_pinned());
            const WanModel streamed(c, resident.root_weights(), blocks, cuda_options(WeightDtype::Fp8, direct));
            EXPECT_LE(rel_err(run(streamed), want), 1e-3) << "resident blocks: " << keep;
        }
    }
}

TEST_F(DitFp8Gpu, LoraMergeAndExactRestore) {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    WanModel m(ckpt.config(), ckpt.open_dit(), cuda_options(WeightDtype::Fp8));
    std::map<std::string, at::Tensor> base;
    for (const auto& [n, t] : m.named_parameters()) base.emplace(n, t.clone());
    const at::Tensor out_base = run(m);
    wan::lora::LoraSet set;
    set.apply(m, {{wan::test::test_data_dir() + "/accel/lora_native.safetensors", 0.7}});
    EXPECT_GT((run(m) - out_base).abs().max().item<double>(), 1e-3);
    set.apply(m, {});
    for (const auto& [n, t] : m.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(n))) << n;
    EXPECT_TRUE(at::equal(run(m), out_base));
}

}  // namespace
