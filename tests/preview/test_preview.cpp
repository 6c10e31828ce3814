// The live preview's latent → RGB projection against values computed by hand from the published table, the
// contact sheet layout, and the atomically replaced preview.png.
#include "preview/preview.h"

#include "core/core.h"
#if WAN_HAVE_FFMPEG
#include "video/video.h"
#endif

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <gtest/gtest.h>

#include <filesystem>

namespace {

using wan::preview::latent_to_rgb;

// One latent pixel, all channels 0 except `channel` = `value`; returns its RGB.
std::array<int, 3> rgb_of(int channel, float value) {
    at::Tensor latent = at::zeros({16, 1, 1, 1});
    if (channel >= 0) latent[channel].fill_(value);
    const at::Tensor rgb = latent_to_rgb(latent);
    EXPECT_EQ(rgb.scalar_type(), at::kByte);
    return {rgb[0][0][0][0].item<int>(), rgb[0][0][0][1].item<int>(), rgb[0][0][0][2].item<int>()};
}

TEST(Preview, ZeroLatentIsTheBias) {
    // bias (-0.1835, -0.0868, -0.3360): 255·(1 + b)/2 = 104.10, 116.43, 84.66
    EXPECT_EQ(rgb_of(-1, 0), (std::array<int, 3>{104, 116, 85}));
}

TEST(Preview, OneChannelAddsItsRow) {
    // channel 2 row (0.3568, 0.2548, 0.1747) + bias = (0.1733, 0.1680, -0.1613) → 149.6, 148.9, 106.9
    EXPECT_EQ(rgb_of(2, 1.0f), (std::array<int, 3>{150, 149, 107}));
    // channel 15 row (0.1984, 0.0913, 0.1861), value -2: (-0.5803, -0.2694, -0.7082) → 53.5, 93.1, 37.2
    EXPECT_EQ(rgb_of(15, -2.0f), (std::array<int, 3>{54, 93, 37}));
}

TEST(Preview, ClampsToTheUnitRange) {
    // channel 6 row (-0.3477, -0.4059, -0.2925) × 10 is far below -1 in every colour
    EXPECT_EQ(rgb_of(6, 10.0f), (std::array<int, 3>{0, 0, 0}));
    EXPECT_EQ(rgb_of(6, -10.0f), (std::array<int, 3>{255, 255, 255}));
}

TEST(Preview, KeepsFramesAndPixelsInPlace) {
    at::Tensor latent = at::zeros({16, 3, 2, 5});
    latent.select(1, 2).select(1, 1).select(1, 4)[2] = 1.0f;  // frame 2, row 1, column 4, channel 2
    const auto frames = wan::preview::latent_to_frames(latent);
    ASSERT_EQ(frames.frames, 3);
    ASSERT_EQ(frames.height, 2);
    ASSERT_EQ(frames.width, 5);
    ASSERT_EQ(frames.rgb.size(), 3u * 2 * 5 * 3);
    const uint8_t* px = frames.frame(2) + (1 * 5 + 4) * 3;
    EXPECT_EQ(px[0], 150);
    EXPECT_EQ(frames.frame(0)[0], 104);  // every other pixel is the bias colour
}

TEST(Preview, CleanEstimateIsFlowMatchingX0) {
    const at::Tensor x = at::full({16, 1, 2, 2}, 3.0), v = at::full({16, 1, 2, 2}, 2.0);
    EXPECT_TRUE(at::allclose(wan::preview::clean_estimate(x, v, 0.25), at::full({16, 1, 2, 2}, 2.5)));
    EXPECT_THROW(wan::preview::clean_estimate(x, v.narrow(3, 0, 1), 0.5), wan::Error);
}

// The asynchronous read-back gives the frames of the direct path: exactly on the CPU; on a GPU the colour map
// runs there, so a channel may round one level differently.
TEST(Preview, PendingFramesEqualTheDirectPath) {
    at::manual_seed(3);
    for (const c10::Device device : {c10::Device(c10::kCPU), c10::Device(c10::kCUDA, 0)}) {
        if (device.is_cuda() && !at::hasCUDA()) continue;
        const at::Tensor z = at::randn({16, 3, 4, 6}).to(device), v = at::randn({16, 3, 4, 6}).to(device);
        const auto want = wan::preview::latent_to_frames(wan::preview::clean_estimate(z, v, 0.6).cpu());
        auto pending = wan::preview::PendingFrames::start(z, v, 0.6);
        const auto got = pending.frames();
        EXPECT_EQ(got.frames, want.frames);
        EXPECT_EQ(got.height, want.height);
        EXPECT_EQ(got.width, want.width);
        ASSERT_EQ(got.rgb.size(), want.rgb.size());
        int worst = 0;
        for (size_t i = 0; i < got.rgb.size(); ++i) worst = std::max(worst, std::abs(int(got.rgb[i]) - int(want.rgb[i])));
        EXPECT_LE(worst, device.is_cuda() ? 1 : 0) << device;
    }
}

TEST(Preview, RejectsOtherLatents) {
    EXPECT_THROW(latent_to_rgb(at::zeros({48, 1, 2, 2})), wan::Error);  // a Wan2.2 VAE latent
    EXPECT_THROW(latent_to_rgb(at::zeros({16, 2, 2})), wan::Error);
}

TEST(Preview, ContactSheetGrid) {
    const auto frames = wan::preview::latent_to_frames(at::zeros({16, 9, 4, 6}));
    const at::Tensor sheet = wan::preview::contact_sheet(frames, 4);  // 4 + 4 + 1 frames, 3 rows
    EXPECT_EQ(sheet.size(0), 3 * 4 + 2 * 2);
    EXPECT_EQ(sheet.size(1), 4 * 6 + 3 * 2);
    EXPECT_EQ(sheet[0][0][0].item<int>(), 104);  // frame 0
    EXPECT_EQ(sheet[4][0][0].item<int>(), 0);    // the gap under row 0
}

#if WAN_HAVE_FFMPEG
TEST(Preview, PngIsReplacedAtomically) {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("wan-preview-test-" + std::to_string(getpid()));
    fs::remove_all(dir);
    at::Tensor latent = at::zeros({16, 2, 4, 4});
    wan::preview::write_preview_png(dir.string(), wan::preview::latent_to_frames(latent));
    latent[2].fill_(1.0f);
    wan::preview::write_preview_png(dir.string(), wan::preview::latent_to_frames(latent));  // replaces
    size_t files = 0;
    for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file() ? 1 : 0;
    EXPECT_EQ(files, 1u);  // no temporary left behind
    wan::video::VideoInfo info;
    const auto rgb = wan::video::decode_frames((dir / "preview.png").string(), &info);
    ASSERT_EQ(info.frames, 1);
    EXPECT_EQ(info.width, 2 * 4 + 2);
    ASSERT_FALSE(rgb.empty());
    EXPECT_EQ(rgb[0], 150);  // the second write's colour (PNG is lossless)
    fs::remove_all(dir);
}
#endif

}  // namespace
