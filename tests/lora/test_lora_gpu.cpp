// LoRA merging on CUDA in the GPU precision (bf16 weights, self-attention q/k/v packed into one buffer, FP8
// copies derived at first use): the merge writes through the packed views, the derived copies follow the
// merged weights (WanModel::weights_changed), and the restore is exact.
#include "dit/dit.h"
#include "io/io.h"
#include "lora/lora.h"

#include "golden.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>

namespace {

std::string accel(const std::string& name) { return wan::test::test_data_dir() + "/accel/" + name + ".safetensors"; }

wan::dit::WanModel tiny(c10::Device device, bool fp8) {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    wan::dit::ModelOptions o;
    o.device = device;
    o.fp8 = fp8;
    return wan::dit::WanModel(ckpt.config(), ckpt.open_dit(), o);
}

at::Tensor run(const wan::dit::WanModel& m) {
    at::manual_seed(5);
    const at::Tensor x = at::randn({16, 2, 8, 8}).to(m.device());
    const at::Tensor ctx = at::randn({7, 64}).to(m.device());
    return m.forward(x, at::scalar_tensor(937.5, at::kDouble), ctx, 32).to(at::kCPU);
}

TEST(LoraGpu, MergeRestoreAndDerivedWeights) {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
    const c10::Device cuda(c10::kCUDA, 0);
    const std::vector<wan::LoraSpec> specs = {{accel("lora_native"), 0.7}, {accel("lora_distill"), 1.0}};
    for (bool fp8 : {false, true}) {
        SCOPED_TRACE(fp8 ? "fp8" : "bf16");
        wan::dit::WanModel a = tiny(cuda, fp8);
        std::map<std::string, at::Tensor> base;
        for (const auto& [n, t] : a.named_parameters()) base.emplace(n, t.clone());
        const at::Tensor out_base = run(a);  // builds any derived copies from the base weights
        wan::lora::LoraSet set;
        set.apply(a, specs);
        const at::Tensor out_a = run(a);
        // A model that never ran before the merge: no derived copy can be stale there.
        wan::dit::WanModel b = tiny(cuda, fp8);
        wan::lora::LoraSet set_b;
        set_b.apply(b, specs);
        EXPECT_TRUE(at::equal(out_a, run(b)));
        EXPECT_GT((out_a - out_base).abs().max().item<double>(), 1e-3);
        // Weights: the rule on the bf16 base, bf16(f32(W) + delta), with delta from the CPU f32 merge; within one
        // bf16 step (the GPU's f32 GEMM may round the delta differently in the last f32 bits).
        wan::dit::WanModel c = tiny(c10::Device(c10::kCPU), false);
        std::map<std::string, at::Tensor> base_c;
        for (const auto& [n, t] : c.named_parameters()) base_c.emplace(n, t.clone());
        wan::lora::LoraSet set_c;
        set_c.apply(c, specs);
        std::map<std::string, at::Tensor> merged_a;
        for (const auto& [n, t] : a.named_parameters()) merged_a.emplace(n, t);
        for (const auto& [n, t] : c.named_parameters()) {
            if (at::equal(t, base_c.at(n))) continue;
            const at::Tensor delta = t - base_c.at(n);
            const at::Tensor mine = base.at(n);
            const at::Tensor want = (mine.to(at::kCPU, at::kFloat) + delta).to(mine.scalar_type()).to(at::kFloat);
            const at::Tensor got = merged_a.at(n);
            const double rtol = mine.scalar_type() == at::kBFloat16 ? 1.0 / 128 : 1e-5;
            EXPECT_TRUE(wan::test::all_close(got.to(at::kCPU, at::kFloat), want, {1e-6, rtol}, n));
        }
        set.apply(a, {});
        for (const auto& [n, t] : a.named_parameters()) EXPECT_TRUE(at::equal(t, base.at(n))) << n;
        EXPECT_TRUE(at::equal(run(a), out_base));
    }
}

// The base copies on the GPU or on the host (--lora-backup): the same restore, bit for bit, and the place
// asked for is the place used (auto picks the GPU for a tiny model on any card).
TEST(LoraGpu, BackupOnDeviceOrHost) {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
    const c10::Device cuda(c10::kCUDA, 0);
    const std::vector<wan::LoraSpec> first = {{accel("lora_native"), 0.7}};
    const std::vector<wan::LoraSpec> second = {{accel("lora_distill"), 1.0}};
    using Place = wan::lora::LoraSet::BackupPlace;
    for (Place place : {Place::Auto, Place::Device, Place::Host}) {
        SCOPED_TRACE(static_cast<int>(place));
        wan::dit::WanModel m = tiny(cuda, false);
        const at::Tensor out_base = run(m);
        wan::lora::LoraSet set;
        set.set_backup_place(place);
        set.apply(m, first);
        ASSERT_GT(set.backup_bytes(), 0);
        EXPECT_EQ(set.device_backup_bytes(), place == Place::Host ? 0 : set.backup_bytes());
        set.apply(m, second);  // restore from the copies, then merge the other file
        wan::dit::WanModel fresh = tiny(cuda, false);
        wan::lora::LoraSet fresh_set;
        fresh_set.apply(fresh, second);
        EXPECT_TRUE(at::equal(run(m), run(fresh)));
        set.apply(m, {});
        EXPECT_EQ(set.backup_bytes(), 0);
        EXPECT_TRUE(at::equal(run(m), out_base));
    }
}

}  // namespace
