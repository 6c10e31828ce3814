// The live preview of a running generation as it travels from the engine to a window or a remote client:
// small RGB frames, one per latent frame. Torch-free, so the app and the protocol can hold it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wan {

struct PreviewFrames {
    int frames = 0;            ///< latent frames (21 for an 81-frame video)
    int height = 0, width = 0; ///< per frame, in latent pixels (1/8 of the video's)
    int step = 0;              ///< the denoising step this preview follows (1-based)
    std::vector<uint8_t> rgb;  ///< frames × height × width × 3, row-major RGB24

    bool empty() const { return frames == 0 || rgb.empty(); }
    const uint8_t* frame(int i) const { return rgb.data() + static_cast<size_t>(i) * height * width * 3; }
};

}  // namespace wan
