// wan-compare (the layout-parity checker of the e2e suite) must fail on non-finite outputs: with NaN every
// `|a - b| > tol` comparison is false, so a broken run writing NaN would otherwise match any reference.
// The binary comes from $WAN_COMPARE (set by CMake).
#include "golden.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdlib>
#include <sys/wait.h>

namespace {

std::string write_outputs(const std::string& path, at::Tensor latent) {
    wan::io::save_safetensors(path, {{"latent", latent},
                                     {"video", at::linspace(-1, 1, 24).reshape({3, 2, 2, 2})},
                                     {"context", at::ones({4, 8})},
                                     {"context_null", at::zeros({4, 8})}});
    return path;
}

int compare(const std::string& a, const std::string& b) {
    const char* bin = std::getenv("WAN_COMPARE");
    EXPECT_TRUE(bin && *bin) << "WAN_COMPARE is not set";
    const int st = std::system((std::string("exec '") + (bin ? bin : "wan-compare") + "' '" + a + "' '" + b + "' 1e-4 1e-3").c_str());
    EXPECT_TRUE(WIFEXITED(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class CompareOutputs : public ::testing::Test {
protected:
    std::string dir = wan::test::make_temp_dir("compare");
    at::Tensor latent = at::linspace(-2, 2, 64).reshape({4, 1, 4, 4});
};

TEST_F(CompareOutputs, IdenticalFilesMatch) {
    auto a = write_outputs(dir + "/a.safetensors", latent);
    EXPECT_EQ(compare(a, a), 0);
}

TEST_F(CompareOutputs, OneNaNFails) {
    auto a = write_outputs(dir + "/a.safetensors", latent);
    at::Tensor bad = latent.clone();
    bad[0][0][1][1] = NAN;
    auto b = write_outputs(dir + "/b.safetensors", bad);
    EXPECT_EQ(compare(a, b), 1);
    EXPECT_EQ(compare(b, a), 1);
}

TEST_F(CompareOutputs, AllNaNOnBothSidesFails) {
    auto a = write_outputs(dir + "/a.safetensors", at::full_like(latent, NAN));
    EXPECT_EQ(compare(a, a), 1);
}

TEST_F(CompareOutputs, InfinityFails) {
    at::Tensor inf = latent.clone();
    inf[1][0][0][0] = INFINITY;
    auto a = write_outputs(dir + "/a.safetensors", inf);
    EXPECT_EQ(compare(a, a), 1);
}

TEST_F(CompareOutputs, DifferenceBeyondToleranceFails) {
    auto a = write_outputs(dir + "/a.safetensors", latent);
    auto b = write_outputs(dir + "/b.safetensors", latent + 1e-2);
    EXPECT_EQ(compare(a, b), 1);
}

}  // namespace
