// Parity of WanVAE::decode with the official WanVAE.decode on every vae_decode_* golden case: the clamped
// `video`, the `video_unclamped` and, where the case has them, the per-call module outputs.
// Ref: wan21-reference.md §5.4; golden README §2.
#include "golden.h"
#include "vae/vae.h"
#include "vae_test_util.h"

#include <ATen/ATen.h>

namespace {

TEST(GoldenVaeDecode, EveryCase) {
    const auto store = wan::io::TensorStore::open_pth(wan::test::tiny_ckpt_dir() + "/Wan2.1_VAE.pth");
    const wan::vae::WanVAE vae(store);
    const wan::test::Tolerance tol = wan::test::tolerance("vae_decode");
    for (const std::string& name : wan::test::list_cases("vae_decode_")) {
        SCOPED_TRACE(name);
        const wan::test::GoldenCase c = wan::test::load_case(name);
        const at::Tensor z = c.get("z");

        wan::test::IntermediateCapture capture;
        capture.golden = &c;
        const at::Tensor unclamped = vae.decode_unclamped(z, capture.callbacks());
        EXPECT_TRUE(wan::test::all_close(unclamped, c.get("video_unclamped"), tol, name + " video_unclamped"));
        wan::test::print_max_abs(name + " video_unclamped", unclamped, c.get("video_unclamped"));
        capture.check_all(tol);

        const at::Tensor video = vae.decode(z);
        EXPECT_EQ(video.scalar_type(), at::kFloat);
        EXPECT_TRUE(wan::test::all_close(video, c.get("video"), tol, name + " video"));
        wan::test::print_max_abs(name + " video", video, c.get("video"));
    }
}

}  // namespace
