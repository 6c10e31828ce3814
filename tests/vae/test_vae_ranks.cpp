// WanVAE::decode_across under mpirun (run at 1, 2, 3 and 4 processes): the decode with the frame rows split
// over the ranks equals the single-rank decode within float rounding on the tiny checkpoint — on every
// golden decode case (also against the golden video) and on random latents whose rows do not divide evenly
// — for every group size from 2 up to the world (sub-groups of the world), with more ranks than rows, in
// bfloat16 and in the channels-last layout, with the speed switches and the decoder's tail in groups of frames,
// and a cancel seen by one rank stops all. The max abs difference is printed by rank 0.
#include "golden.h"
#include "test_util.h"
#include "vae/row_split.h"
#include "vae/vae.h"
#include "vae_test_util.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <memory>

namespace {

using wan::dist::Communicator;
using wan::dist::test::world;
using wan::vae::WanVAE;

// f32: the split decode computes every pixel from the same terms as the whole-frame decode; only the
// convolution and attention kernels may order their sums differently on a smaller map.
constexpr double kF32Bound = 1e-5;

const wan::io::TensorStore& store() {
    static const wan::io::TensorStore s = wan::io::TensorStore::open_pth(wan::test::tiny_ckpt_dir() + "/Wan2.1_VAE.pth");
    return s;
}

const WanVAE& vae_f32() {
    static const WanVAE v(store());
    return v;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
    return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

/// Same latent on every rank (seeded), [16, t, h, w].
at::Tensor random_latent(int64_t t, int64_t h, int64_t w, uint64_t seed) {
    at::manual_seed(seed);
    return at::randn({16, t, h, w});
}

/// The first `n` ranks of the world as a group (nullptr on the others). Collective over the world.
std::unique_ptr<Communicator> first_ranks(int n) {
    return world().split(world().rank() < n ? 0 : -1, world().rank());
}

/// decode_across over every group of 1..world ranks against decode() on rank 0 of the group; `label` names
/// the latent in the printed differences.
void expect_every_group_matches(const WanVAE& vae, const at::Tensor& z, double bound, const std::string& label) {
    const at::Tensor reference = vae.decode_unclamped(z);
    for (int n = 1; n <= world().size(); ++n) {
        std::unique_ptr<Communicator> group = first_ranks(n);
        if (!group) continue;
        const at::Tensor video = vae.decode_across(z, *group, {}, /*clamp=*/false);
        if (group->rank() != 0) {
            EXPECT_FALSE(video.defined()) << "only rank 0 of the group returns the video";
            continue;
        }
        ASSERT_TRUE(video.defined());
        ASSERT_EQ(video.sizes(), reference.sizes());
        const double err = max_abs_diff(video, reference);
        std::printf("  %s, %d rank(s): max abs difference to one rank %.3g\n", label.c_str(), n, err);
        EXPECT_LE(err, bound) << label << " with " << n << " ranks";
    }
}

TEST(VaeRanks, RowSplitsAreEven) {
    const auto s = wan::vae::detail::RowSplit::even(7, 3);
    EXPECT_EQ(s.count, (std::vector<int64_t>{3, 2, 2}));
    EXPECT_EQ(s.start, (std::vector<int64_t>{0, 3, 5}));
    EXPECT_THROW(wan::vae::detail::RowSplit::even(2, 3), wan::Error);
}

TEST(VaeRanks, GoldenCasesMatchOneRankAndTheGolden) {
    for (const std::string& name : wan::test::list_cases("vae_decode_")) {
        SCOPED_TRACE(name);
        const wan::test::GoldenCase c = wan::test::load_case(name);
        const at::Tensor z = c.get("z");
        expect_every_group_matches(vae_f32(), z, kF32Bound, name);
        const at::Tensor video = vae_f32().decode_across(z, world());  // clamped, the whole world
        if (world().rank() == 0) {
            EXPECT_TRUE(wan::test::all_close(video, c.get("video"), wan::test::tolerance("vae_decode"), name + " video"));
        }
    }
}

TEST(VaeRanks, UnevenRowsMatchOneRank) {
    // 7 rows: 4+3 on 2 ranks, 3+2+2 on 3, 2+2+2+1 on 4; 3 latent frames exercise the causal caches
    // (including the temporal upsample's) across frames.
    expect_every_group_matches(vae_f32(), random_latent(3, 7, 5, 11), kF32Bound, "random 3x7x5");
    // 5 rows, one frame (an image), a wide frame.
    expect_every_group_matches(vae_f32(), random_latent(1, 5, 9, 12), kF32Bound, "random 1x5x9");
}

TEST(VaeRanks, MoreRanksThanRowsSitOut) {
    // One latent row: only rank 0 decodes; two rows: at most two ranks take part.
    expect_every_group_matches(vae_f32(), random_latent(2, 1, 4, 13), kF32Bound, "random 2x1x4");
    expect_every_group_matches(vae_f32(), random_latent(2, 2, 3, 14), kF32Bound, "random 2x2x3");
}

TEST(VaeRanks, Bfloat16MatchesOneRank) {
    wan::vae::VAEOptions opt;
    opt.dtype = at::kBFloat16;
    const WanVAE vae(store(), opt);
    // bf16 activations: the kernels round differently on a smaller map, and a rounding step early in the
    // decoder is carried to the output (|video| ≲ 1, bf16 spacing 2^-8 near 1).
    expect_every_group_matches(vae, random_latent(2, 6, 4, 15), 2e-2, "bf16 random 2x6x4");
}

TEST(VaeRanks, ChannelsLastMatchesOneRank) {
    // The CUDA layout (VAEOptions::channels_last), here on the CPU: the halo rows and bands keep it.
    wan::vae::VAEOptions opt;
    opt.channels_last = true;
    const WanVAE vae(store(), opt);
    expect_every_group_matches(vae, random_latent(2, 7, 4, 18), kF32Bound, "channels-last random 2x7x4");
}

TEST(VaeRanks, SpeedSwitchesMatchOneRank) {
    // VAEOptions::speed across the ranks: the time-folded convs take the haloed rows (no row padding), the
    // cache buffer gives way to the halo exchange, chunks of 2 latent frames; still the one-rank decode.
    wan::vae::VAEOptions opt;
    opt.channels_last = true;
    opt.speed.fold_time = opt.speed.cache_buffer = opt.speed.fused_norm = opt.speed.pad_head = true;
    opt.speed.chunk_frames = 2;
    const WanVAE vae(store(), opt);
    expect_every_group_matches(vae, random_latent(3, 7, 4, 19), kF32Bound, "all switches random 3x7x4");
}

TEST(VaeRanks, SubpixelUpsampleMatchesOneRank) {
    // Note [Sub-pixel upsample] across the ranks: the phase conv takes the halo rows instead of row padding;
    // in both layouts, and with the switches the pipeline turns on on CUDA.
    for (bool cl : {false, true}) {
        wan::vae::VAEOptions opt;
        opt.channels_last = cl;
        opt.speed.subpixel_upsample = true;
        opt.speed.cache_buffer = opt.speed.fused_norm = cl;
        const WanVAE vae(store(), opt);
        expect_every_group_matches(vae, random_latent(3, 7, 5, 20), kF32Bound,
                                   cl ? "sub-pixel channels-last random 3x7x5" : "sub-pixel random 3x7x5");
    }
}

TEST(VaeRanks, TailFramesMatchOneRank) {
    // Note [Decode tail] across the ranks: the tail's groups of frames exchange their halo rows group by group
    // (every rank runs the same groups); with the switches the pipeline turns on on CUDA, chunks of 2 latent
    // frames (8 output frames: groups of 3, 3, 2).
    wan::vae::VAEOptions opt;
    opt.channels_last = true;
    opt.speed.cache_buffer = opt.speed.fused_norm = opt.speed.subpixel_upsample = true;
    opt.speed.chunk_frames = 2;
    opt.speed.tail_frames = 3;
    const WanVAE vae(store(), opt);
    expect_every_group_matches(vae, random_latent(3, 7, 4, 21), kF32Bound, "tail frames 3, random 3x7x4");
    opt.speed.fold_time = true;  // the time-folded convs take the halo rows
    opt.speed.tail_frames = 1;
    expect_every_group_matches(WanVAE(store(), opt), random_latent(3, 5, 4, 22), kF32Bound,
                               "tail frames 1 + fold_time, random 3x5x4");
}

TEST(VaeRanks, CancelOnOneRankStopsAll) {
    const at::Tensor z = random_latent(3, 4, 4, 16);
    std::atomic<bool> cancel{world().rank() == world().size() - 1};  // the last rank only
    wan::vae::DecodeCallbacks cb;
    cb.cancel_flag = &cancel;
    EXPECT_THROW(vae_f32().decode_across(z, world(), cb), wan::Cancelled);
    // The group is still usable afterwards: nobody was left inside an exchange.
    cancel = false;
    const at::Tensor video = vae_f32().decode_across(z, world(), cb);
    EXPECT_EQ(video.defined(), world().rank() == 0);
}

TEST(VaeRanks, ProgressCountsLatentFrames) {
    const at::Tensor z = random_latent(3, 4, 4, 17);
    int64_t last = 0, total = 0;
    wan::vae::DecodeCallbacks cb;
    cb.progress = [&](int64_t done, int64_t of) {
        EXPECT_EQ(done, last + 1);
        last = done;
        total = of;
    };
    vae_f32().decode_across(z, world(), cb);
    EXPECT_EQ(last, 3);
    EXPECT_EQ(total, 3);
}

}  // namespace
