// WanStudio video output: H.264/MP4 writer with metadata tags, PNG poster frame, JSON side file, safe output
// names, and a small reader for tests and previews. FFmpeg libraries only (libavformat, libavcodec,
// libswscale); no LibTorch and no Qt, so the GUI can link it.
//
// Ref: wan21-reference.md §7.3 (upstream cache_video: imageio + libx264, yuv420p, 16 fps).
//
// Frames come in as packed RGB24 bytes [F, H, W, 3]. The pipeline converts its f32 [3, F, H, W] video in
// [-1, 1] exactly as upstream does (§7.3): x = clamp(x, -1, 1); x = (x + 1) / 2; u8 = uint8(x * 255) with
// TRUNCATION (no rounding); then permute to [F, H, W, 3] and make it contiguous.
//
// Example:
//   wan::video::check_output_dir(dir);                        // early, before a long generation
//   ...
//   wan::video::SaveOptions so;
//   so.dir = dir; so.prompt = prompt; so.when = std::time(nullptr);
//   so.video.metadata = {{"prompt", prompt}, {"seed", "42"}, {"solver", "unipc"}};
//   wan::video::SavedOutputs out = wan::video::save_outputs(so, {rgb.data(), F, H, W});
//   // out.video_path = ".../20261124_153000_a_red_fox.mp4", out.codec = "libx264"
#pragma once

#include "core/core.h"

#include <cstdint>
#include <ctime>
#include <map>
#include <string>
#include <vector>

namespace wan::video {

/// Borrowed view of packed RGB24 frames: `data` holds frames*height*width*3 bytes, [F, H, W, 3].
struct RgbFrames {
    const uint8_t* data = nullptr;
    int frames = 0;
    int height = 0;
    int width = 0;
};

struct VideoWriteOptions {
    /// Frames per second (upstream sample_fps = 16).
    int fps = 16;
    /// x264 constant rate factor, 0..51; lower is better. Upstream's imageio quality 8 is crf 10; 18 is
    /// visually lossless at a third of the size. For mpeg4 it maps to qscale 2 + crf/10, for libopenh264 it
    /// is ignored (a bit rate of about 0.25 bit/pixel/frame is used).
    int crf = 18;
    /// x264 preset ("" = x264's default "medium").
    std::string preset;
    /// Encoders to try in order; the first that exists and opens is used (reported in the result).
    std::vector<std::string> encoders = {"libx264", "libopenh264", "mpeg4"};
    /// Written as MP4 metadata (movflags +use_metadata_tags, so any key survives), e.g. prompt,
    /// negative_prompt, seed, size, frames, steps, shift, guide_scale, solver, model, program_version.
    std::map<std::string, std::string> metadata;
};

struct VideoWriteResult {
    std::string codec;       ///< encoder used, e.g. "libx264" or "mpeg4"
    int64_t frames = 0;      ///< frames encoded
    int64_t bytes = 0;       ///< size of the finished file
};

/// Encodes `frames` to an MP4 at `path` (yuv420p, so width and height must be even). The file is written
/// under a temporary name in the same directory and linked to `path` only when complete, so a crash never
/// leaves a partial file under the final name. Never overwrites: throws wan::Error if `path` exists.
/// Every failing FFmpeg call throws wan::Error with FFmpeg's message and what was attempted.
VideoWriteResult write_mp4(const std::string& path, const RgbFrames& frames, const VideoWriteOptions& opts = {});

/// Writes one RGB24 image [H, W, 3] as PNG with libavcodec's png encoder (atomic, never overwrites).
void write_png(const std::string& path, const uint8_t* rgb, int height, int width);

/// Writes `text` to `path` atomically (temporary file, fsync, then link). Never overwrites.
void write_text_file(const std::string& path, const std::string& text);

/// A flat JSON object of the map, keys sorted, values as JSON strings.
std::string metadata_json(const std::map<std::string, std::string>& metadata);

// ---- output files ------------------------------------------------------------------------------------

/// Checks that `dir` is (or, with `create`, can be made) a writable directory by creating and removing a
/// probe file. Throws wan::Error naming the directory and the system's reason otherwise.
void check_output_dir(const std::string& dir, bool create = true);

/// Lowercase ASCII letters, digits, '_' and '-' only: every run of other bytes (spaces, punctuation, '/',
/// '*', any non-ASCII UTF-8) becomes one '_'; leading/trailing '_' and '-' are trimmed; at most `max_len`
/// bytes (cut at a word boundary when possible); "video" when nothing is left.
std::string sanitize_filename(const std::string& text, size_t max_len = 48);

/// "YYYYMMDD_HHMMSS_<sanitized prompt>" in local time, e.g. "20261124_153000_a_red_fox".
std::string make_output_stem(std::time_t when, const std::string& prompt, size_t max_prompt_len = 48);

/// `stem`, else `stem_1`, `stem_2`, ...: the first for which no `dir/<candidate><ext>` exists for any of
/// `exts` (e.g. {".mp4", ".png", ".json"}), so the files of one generation share a name.
std::string unique_output_stem(const std::string& dir, const std::string& stem, const std::vector<std::string>& exts);

enum class PosterFrame { None = 1, First = 2, Middle = 3 };

struct SaveOptions {
    std::string dir;                ///< output directory (checked with check_output_dir)
    std::string prompt;             ///< used for the file name
    std::time_t when = 0;           ///< 0 = now
    VideoWriteOptions video;
    PosterFrame poster = PosterFrame::First;
    bool write_json = true;
    std::string json_text;          ///< "" = metadata_json(video.metadata)
};

struct SavedOutputs {
    std::string video_path;
    std::string poster_path;        ///< "" when PosterFrame::None
    std::string json_path;          ///< "" when !write_json
    std::string codec;
};

/// Checks the directory, picks a unique stem for .mp4/.png/.json, and writes the video, then the poster and
/// the JSON. If a later file fails the earlier ones are removed, so a generation is saved whole or not at all.
SavedOutputs save_outputs(const SaveOptions& opts, const RgbFrames& frames);

/// The files of one generation in `resolved.output_dir`: the MP4 at 16 fps whose tags carry the request
/// (prompt, original_prompt when extended, negative_prompt, seed, size, frame_num, sample_* settings, model,
/// encoder), its PNG poster (first frame) and the sidecar JSON `sidecar_json_text`. Named after the user's
/// prompt (the original one when extended). Saved whole or not at all (save_outputs).
SavedOutputs save_generation(const GenerationRequest& resolved, int64_t seed_used, const std::string& model_variant,
                             const RgbFrames& frames, const std::string& sidecar_json_text,
                             const std::map<std::string, std::string>& extra_tags = {});

// ---- version -----------------------------------------------------------------------------------------

/// One line for `wanstudio --version`: the FFmpeg release (av_version_info()), the runtime libavcodec and
/// libavformat versions, and the encoder write_mp4() will pick first from VideoWriteOptions{}.encoders, e.g.
/// "FFmpeg 5.1.6 (libavcodec 59.37.100, libavformat 59.27.100); H.264 encoder: libx264".
std::string ffmpeg_version_info();
/// The encoder write_mp4() uses with default options ("libx264", or a fallback), "" when none exists.
std::string default_encoder();

// ---- reading (tests, previews) -----------------------------------------------------------------------

struct VideoInfo {
    int64_t frames = 0;             ///< counted by decoding every frame
    int width = 0;
    int height = 0;
    double fps = 0;                 ///< average frame rate of the stream
    std::string codec;              ///< codec name, e.g. "h264"
    std::string pix_fmt;            ///< e.g. "yuv420p"
    std::map<std::string, std::string> tags;  ///< container metadata
};

/// Opens and fully decodes the first video stream of `path` (MP4, PNG, ...).
VideoInfo probe_video(const std::string& path);

/// Decodes every frame to packed RGB24 [F, H, W, 3]; fills `info` when given.
std::vector<uint8_t> decode_frames(const std::string& path, VideoInfo* info = nullptr);

}  // namespace wan::video
