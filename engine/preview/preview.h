// Live preview of a generation while it samples: the clean-video estimate of the current latent, turned into
// RGB with a fixed linear map per latent channel (no VAE), so every step costs one tiny matmul instead of a
// decode. The map is the one ComfyUI ships for Wan2.1's 16-channel latent (latent_formats.Wan21); its
// coefficients are facts about the VAE's latent space, written here from the published table.
//
// Example:
//   at::Tensor x0 = wan::preview::clean_estimate(latent, velocity, sigma);   // flow matching
//   wan::PreviewFrames frames = wan::preview::latent_to_frames(x0);          // [T] small RGB images
//   wan::preview::write_preview_png("runs/preview", frames);                 // runs/preview/preview.png
#pragma once

#include "core/preview_frames.h"

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace wan::preview {

/// Flow-matching clean-sample estimate: the model predicts the velocity v = noise - x0, and the current
/// sample is x = x0 + sigma·v, so x0 = x - sigma·v (sigma in [0, 1]).
at::Tensor clean_estimate(const at::Tensor& latent, const at::Tensor& velocity, double sigma);

/// A normalised Wan2.1 latent [16, T, h, w] (any device, any float dtype) → uint8 RGB [T, h, w, 3] on the CPU,
/// contiguous: rgb = latentᵀ·M + b, then (rgb + 1) / 2 clamped to [0, 1] and rounded to 0..255.
at::Tensor latent_to_rgb(const at::Tensor& latent);

/// latent_to_rgb packed for the progress callback (Torch-free on the receiving side).
PreviewFrames latent_to_frames(const at::Tensor& latent);

/// The clean-video estimate on its way to the host without draining the device's queue. start() queues the
/// estimate and a copy into pinned host memory (recording when it is done); frames() waits for that copy only —
/// not for the work queued after it, such as the solver's step — and does the small colour map on the CPU. So a
/// preview per step costs the device a few tiny kernels, and the host waits for the step's forwards only.
class PendingFrames {
public:
    static PendingFrames start(const at::Tensor& latent, const at::Tensor& velocity, double sigma);
    PendingFrames(PendingFrames&&) noexcept;
    PendingFrames& operator=(PendingFrames&&) noexcept;
    ~PendingFrames();
    /// Whether the copy has finished (frames() would not wait). Always true for CPU latents.
    bool ready() const;
    /// Waits for the copy; the same frames as latent_to_frames(clean_estimate(latent, velocity, sigma)).
    PreviewFrames frames();

private:
    PendingFrames();
    struct Copy;
    std::unique_ptr<Copy> copy_;
};

/// The frames laid out as one image: a grid of at most `max_columns` frames per row, 2-pixel black gaps.
/// Returns uint8 [H, W, 3]. Throws wan::Error for an empty preview.
at::Tensor contact_sheet(const PreviewFrames& frames, int max_columns = 7);

/// Writes `dir`/preview.png (the contact sheet), replacing the previous one atomically (written under a
/// temporary name in `dir`, then renamed), so a viewer never reads half a file. Needs the FFmpeg build
/// (libavcodec's PNG encoder); throws wan::Error naming the directory when it cannot write.
void write_preview_png(const std::string& dir, const PreviewFrames& frames);

/// True when this build can write preview PNGs (built with FFmpeg).
bool can_write_png();

}  // namespace wan::preview
