// The step-distill sampler against tests/data/accel/distill_ref.safetensors: the tiny DiT with lora_distill
// merged at strength 1, the tiny T5's context for "a red kite over a beach", Euler at steps 1000,750,500,250
// with shift 5, conditional prediction only (guide 1), from distill_noise. Ref: shared/golden README §5.
#include "dit/dit.h"
#include "io/io.h"
#include "lora/lora.h"
#include "sched/sched.h"
#include "text/text.h"

#include "golden.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>

namespace {

std::string accel(const std::string& name) { return wan::test::test_data_dir() + "/accel/" + name + ".safetensors"; }

TEST(DistillGolden, LightX2VFourStepWithMergedLora) {
    const auto ckpt = wan::io::CheckpointDir::locate(wan::test::tiny_ckpt_dir());
    wan::dit::WanModel dit(ckpt.config(), ckpt.open_dit(), {});
    wan::text::TextEncoder text(ckpt);
    const at::Tensor context = text.encode({"a red kite over a beach"}).at(0).to(at::kFloat);

    wan::lora::LoraSet loras;
    loras.apply(dit, {{accel("lora_distill"), 1.0}});

    const wan::io::TensorStore ref = wan::io::TensorStore::open_safetensors(accel("distill_ref"));
    at::Tensor z = wan::io::TensorStore::open_safetensors(accel("distill_noise")).load("noise");  // [16, 2, 8, 8]
    wan::sched::SolverOptions opts;
    opts.denoising_steps = {1000, 750, 500, 250};
    auto solver = wan::sched::make_solver(wan::sched::SolverKind::Euler, 0, 5.0, opts);

    // The schedule is the reference's bit for bit (f32 arithmetic as LightX2V).
    const at::Tensor ts = at::tensor(at::ArrayRef<double>(solver->timesteps()), at::kDouble).to(at::kFloat);
    const at::Tensor sg = at::tensor(at::ArrayRef<float>(solver->sigmas()), at::kFloat).slice(0, 0, 4);
    EXPECT_TRUE(wan::test::all_equal(ts, ref.load("timesteps"), "timesteps"));
    EXPECT_TRUE(wan::test::all_equal(sg, ref.load("sigmas"), "sigmas"));

    const int64_t seq_len = z.size(1) * (z.size(2) / 2) * (z.size(3) / 2);  // 2 · 4 · 4 = 32
    for (int i = 0; i < solver->num_steps(); ++i) {
        const at::Tensor t = at::scalar_tensor(solver->timesteps()[static_cast<size_t>(i)], at::kDouble);
        const at::Tensor v = dit.forward(z, t, context, seq_len);
        z = solver->step(v, i, z);
    }
    const at::Tensor want = ref.load("latent");
    const double err = (z - want).abs().max().item<double>();
    std::printf("distill latent: max |err| %.3g (max |ref| %.3g)\n", err, want.abs().max().item<double>());
    // Measured 1.7e-6 max |err| on Debian's LibTorch 1.13 (CPU, f32); 30x margin for other BLAS / threading
    // (tests/data/accel/README.md).
    EXPECT_TRUE(wan::test::all_close(z, want, {5e-5, 5e-5}, "distill latent"));

    // Without the LoRA the same sampler lands elsewhere: the merge is what the reference measures.
    loras.apply(dit, {});
    auto plain = wan::sched::make_solver(wan::sched::SolverKind::Euler, 0, 5.0, opts);
    at::Tensor x = wan::io::TensorStore::open_safetensors(accel("distill_noise")).load("noise");
    for (int i = 0; i < plain->num_steps(); ++i)
        x = plain->step(dit.forward(x, at::scalar_tensor(plain->timesteps()[static_cast<size_t>(i)], at::kDouble), context, seq_len), i, x);
    EXPECT_GT((x - want).abs().max().item<double>(), 100 * std::max(err, 1e-6));
}

}  // namespace
