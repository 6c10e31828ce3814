// Parity of WanVAE::decode with the official WanVAE.decode on every vae_decode_* golden case: the clamped
// `video`, the `video_unclamped` and, where the case has them, the per-call module outputs.
// Ref: wan21-reference.md §5.4; golden README §2.
#include "golden.h"
#include "vae/vae.h"
#include "vae_test_util.h"

#include <ATen/ATen.h>

namespace {

TEST(GoldenVaeDecode, EveryCase) {
    const wan::vae::WanVAE vae = wan::test::load_tiny_vae();
    wan::test::for_each_golden_case("vae_decode", [&](const auto& c, auto& capture, wan::test::Tolerance tol) {
        const at::Tensor z = c.get("z");
        wan::test::expect_matches(c, "video_unclamped", vae.decode_unclamped(z, capture.callbacks()), tol);
        const at::Tensor video = vae.decode(z);
        EXPECT_EQ(video.scalar_type(), at::kFloat);
        wan::test::expect_matches(c, "video", video, tol);
    });
}

}  // namespace
