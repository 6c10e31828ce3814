// Parity of WanVAE::encode with the official WanVAE.encode on every vae_encode_* golden case: the normalised
// `latent` and, where the case has them, the per-chunk module outputs. Ref: wan21-reference.md §5.4.
#include "golden.h"
#include "vae/vae.h"
#include "vae_test_util.h"

#include <ATen/ATen.h>

namespace {

TEST(GoldenVaeEncode, EveryCase) {
    const auto store = wan::io::TensorStore::open_pth(wan::test::tiny_ckpt_dir() + "/Wan2.1_VAE.pth");
    const wan::vae::WanVAE vae(store);
    const wan::test::Tolerance tol = wan::test::tolerance("vae_encode");
    for (const std::string& name : wan::test::list_cases("vae_encode_")) {
        SCOPED_TRACE(name);
        const wan::test::GoldenCase c = wan::test::load_case(name);
        wan::test::IntermediateCapture capture;
        capture.golden = &c;
        const at::Tensor latent = vae.encode(c.get("video"), capture.callbacks());
        EXPECT_TRUE(wan::test::all_close(latent, c.get("latent"), tol, name + " latent"));
        wan::test::print_max_abs(name + " latent", latent, c.get("latent"));
        capture.check_all(tol);
    }
}

}  // namespace
