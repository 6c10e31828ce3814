#include "preview/preview.h"

#include "core/core.h"
#if WAN_HAVE_FFMPEG
#include "video/video.h"
#endif

#include <ATen/ATen.h>
#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#endif

#include <algorithm>
#include <filesystem>
#include <unistd.h>
#include <vector>

namespace wan::preview {
namespace {

constexpr int kLatentChannels = 16;

// Row c = latent channel c, columns R, G, B (ComfyUI latent_formats.Wan21.latent_rgb_factors).
constexpr float kLatentToRgb[kLatentChannels][3] = {
    {-0.1299f, -0.1692f, 0.2932f}, {0.0671f, 0.0406f, 0.0442f},   {0.3568f, 0.2548f, 0.1747f},
    {0.0372f, 0.2344f, 0.1420f},   {0.0313f, 0.0189f, -0.0328f},  {0.0296f, -0.0956f, -0.0665f},
    {-0.3477f, -0.4059f, -0.2925f}, {0.0166f, 0.1902f, 0.1975f},  {-0.0412f, 0.0267f, -0.1364f},
    {-0.1293f, 0.0740f, 0.1636f},  {0.0680f, 0.3019f, 0.1128f},   {0.0032f, 0.0581f, 0.0639f},
    {-0.1251f, 0.0927f, 0.1699f},  {0.0060f, -0.0633f, 0.0005f},  {0.3477f, 0.2275f, 0.2950f},
    {0.1984f, 0.0913f, 0.1861f},
};
constexpr float kRgbBias[3] = {-0.1835f, -0.0868f, -0.3360f};

}  // namespace

at::Tensor clean_estimate(const at::Tensor& latent, const at::Tensor& velocity, double sigma) {
    WAN_CHECK(latent.sizes() == velocity.sizes(), "preview: latent %s and velocity %s differ in shape",
              c10::str(latent.sizes()).c_str(), c10::str(velocity.sizes()).c_str());
    return latent.to(at::kFloat) - velocity.to(at::kFloat) * sigma;
}

namespace {
/// latent_to_rgb on the latent's device: uint8 [T, h, w, 3], queued there without waiting for anything.
at::Tensor rgb_where_it_is(const at::Tensor& latent) {
    WAN_CHECK(latent.dim() == 4 && latent.size(0) == kLatentChannels,
              "preview: expected a Wan2.1 latent [16, T, h, w], got %s", c10::str(latent.sizes()).c_str());
    // The table is tiny; uploading it per call keeps this free of static device tensors. From pinned memory,
    // so that on a GPU the upload does not wait for the queue (a pageable copy would).
    auto upload = [&](const float* data, std::vector<int64_t> shape) {
        at::Tensor host = at::from_blob(const_cast<float*>(data), shape, at::kFloat);
        if (!latent.is_cuda()) return host;
        return host.pin_memory().to(latent.device(), /*non_blocking=*/true);
    };
    const at::Tensor factors = upload(&kLatentToRgb[0][0], {kLatentChannels, 3});
    const at::Tensor bias = upload(kRgbBias, {3});
    const at::Tensor rgb = at::matmul(latent.to(at::kFloat).permute({1, 2, 3, 0}), factors) + bias;  // [T, h, w, 3]
    const at::Tensor unit = ((rgb + 1.0) * 0.5).clamp(0.0, 1.0);
    return (unit * 255.0).round().to(at::kByte);
}
}  // namespace

at::Tensor latent_to_rgb(const at::Tensor& latent) { return rgb_where_it_is(latent).cpu().contiguous(); }

namespace {
/// uint8 RGB [T, h, w, 3] on the host, contiguous → PreviewFrames.
PreviewFrames pack_frames(const at::Tensor& rgb) {
    PreviewFrames out;
    out.frames = static_cast<int>(rgb.size(0));
    out.height = static_cast<int>(rgb.size(1));
    out.width = static_cast<int>(rgb.size(2));
    const auto* data = rgb.data_ptr<uint8_t>();
    out.rgb.assign(data, data + rgb.numel());
    return out;
}
}  // namespace

PreviewFrames latent_to_frames(const at::Tensor& latent) { return pack_frames(latent_to_rgb(latent)); }

struct PendingFrames::Copy {
    at::Tensor host;  ///< uint8 RGB [T, h, w, 3] on the host, written by an asynchronous copy from a GPU
#if WAN_HAVE_CUDA
    at::cuda::CUDAEvent done;  ///< recorded on the current stream after that copy
#endif
};

PendingFrames::PendingFrames() : copy_(std::make_unique<Copy>()) {}
PendingFrames::PendingFrames(PendingFrames&&) noexcept = default;
PendingFrames& PendingFrames::operator=(PendingFrames&&) noexcept = default;
PendingFrames::~PendingFrames() = default;

PendingFrames PendingFrames::start(const at::Tensor& latent, const at::Tensor& velocity, double sigma) {
    PendingFrames out;
    // The colour map runs where the latent is: on a GPU it is a few tiny kernels, and the host then only copies
    // the small RGB frames (done on the host instead, the f32 map of a 480p latent takes tens of milliseconds,
    // during which the GPU would sit idle).
    const at::Tensor rgb = rgb_where_it_is(clean_estimate(latent, velocity, sigma));
    if (!rgb.is_cuda()) {
        out.copy_->host = rgb.contiguous();
        return out;
    }
#if WAN_HAVE_CUDA
    // Pinned, so that the copy is asynchronous (from pageable memory the copy would wait for the whole queue).
    out.copy_->host = at::empty(rgb.sizes(), rgb.options().device(c10::kCPU).pinned_memory(true));
    out.copy_->host.copy_(rgb, /*non_blocking=*/true);
    out.copy_->done.record(at::cuda::getCurrentCUDAStream(rgb.device().index()));
#endif
    return out;
}

bool PendingFrames::ready() const {
#if WAN_HAVE_CUDA
    return !copy_ || copy_->done.query();  // an event never recorded (CPU latents) counts as done
#else
    return true;
#endif
}

PreviewFrames PendingFrames::frames() {
    WAN_CHECK(copy_ && copy_->host.defined(), "preview: frames() called on an empty PendingFrames");
#if WAN_HAVE_CUDA
    copy_->done.synchronize();  // a no-op when nothing was recorded (CPU latents)
#endif
    return pack_frames(copy_->host);
}

at::Tensor contact_sheet(const PreviewFrames& frames, int max_columns) {
    WAN_CHECK(!frames.empty(), "preview: no frames to lay out");
    WAN_CHECK(max_columns >= 1, "preview: max_columns must be >= 1, got %d", max_columns);
    constexpr int kGap = 2;
    const int columns = std::min(frames.frames, max_columns);
    const int rows = (frames.frames + columns - 1) / columns;
    at::Tensor sheet = at::zeros({rows * frames.height + (rows - 1) * kGap,
                                  columns * frames.width + (columns - 1) * kGap, 3}, at::kByte);
    for (int i = 0; i < frames.frames; ++i) {
        const int y = (i / columns) * (frames.height + kGap), x = (i % columns) * (frames.width + kGap);
        const at::Tensor frame = at::from_blob(const_cast<uint8_t*>(frames.frame(i)),
                                               {frames.height, frames.width, 3}, at::kByte);
        sheet.narrow(0, y, frames.height).narrow(1, x, frames.width).copy_(frame);
    }
    return sheet;
}

bool can_write_png() {
#if WAN_HAVE_FFMPEG
    return true;
#else
    return false;
#endif
}

void write_preview_png(const std::string& dir, const PreviewFrames& frames) {
#if WAN_HAVE_FFMPEG
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(dir, ec);
    WAN_CHECK(!ec && fs::is_directory(dir), "--preview-dir %s: cannot create the directory (%s)", dir.c_str(),
              ec ? ec.message().c_str() : "not a directory");
    const at::Tensor sheet = contact_sheet(frames);
    const fs::path final_path = fs::path(dir) / "preview.png";
    // The PNG writer never replaces a file, so write a private name first, then rename over the old preview
    // (rename is atomic within one directory: a viewer sees the old image or the new one, never half).
    const fs::path tmp = fs::path(dir) / strfmt(".preview.png.tmp-%d", static_cast<int>(getpid()));
    fs::remove(tmp, ec);
    video::write_png(tmp.string(), sheet.data_ptr<uint8_t>(), static_cast<int>(sheet.size(0)),
                     static_cast<int>(sheet.size(1)));
    fs::rename(tmp, final_path, ec);
    if (ec) {
        fs::remove(tmp);
        WAN_THROW("--preview-dir %s: cannot replace preview.png (%s)", dir.c_str(), ec.message().c_str());
    }
#else
    (void)frames;
    WAN_THROW("--preview-dir %s: this build has no FFmpeg, so it cannot write PNG files", dir.c_str());
#endif
}

}  // namespace wan::preview
