// Parity of WanVAE::encode with the official WanVAE.encode on every vae_encode_* golden case: the normalised
// `latent` and, where the case has them, the per-chunk module outputs. Ref: wan21-reference.md §5.4.
#include "golden.h"
#include "vae/vae.h"
#include "vae_test_util.h"

#include <ATen/ATen.h>

namespace {

TEST(GoldenVaeEncode, EveryCase) {
    const wan::vae::WanVAE vae = wan::test::load_tiny_vae();
    wan::test::for_each_golden_case("vae_encode", [&](const auto& c, auto& capture, wan::test::Tolerance tol) {
        wan::test::expect_matches(c, "latent", vae.encode(c.get("video"), capture.callbacks()), tol);
    });
}

}  // namespace
