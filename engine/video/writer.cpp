// MP4 (H.264, yuv420p) and PNG writers on libavformat/libavcodec/libswscale.
// Ref: wan21-reference.md §7.3 (upstream: imageio-ffmpeg, libx264, yuv420p, 16 fps); OBS obs-ffmpeg-output.c
// for the teardown order (trailer, then avio_closep unless AVFMT_NOFILE, then the contexts).
#include "video/video.h"

#include "core/core.h"
#include "video/ffmpeg_util.h"

extern "C" {
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

namespace wan::video {

using namespace detail;

namespace {

void check_frames(const RgbFrames& f, bool need_even) {
    WAN_CHECK(f.data != nullptr, "video frames: no pixel data");
    WAN_CHECK(f.frames >= 1, "video frames: frame count must be >= 1 (got %d)", f.frames);
    WAN_CHECK(f.width >= 2 && f.height >= 2 && f.width <= 16384 && f.height <= 16384,
              "video frames: size %dx%d is outside 2..16384", f.width, f.height);
    if (need_even) {
        WAN_CHECK(f.width % 2 == 0 && f.height % 2 == 0,
                  "video frames: width and height must be even for yuv420p H.264 (got %dx%d)", f.width, f.height);
    }
}

// Removes the temporary file unless release()d (every exit path of a writer).
class TempFile {
public:
    explicit TempFile(std::string path) : path_(std::move(path)) {}
    ~TempFile() {
        if (!path_.empty()) std::remove(path_.c_str());
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }
    void release() { path_.clear(); }

private:
    std::string path_;
};

// One MP4 file being written. Construction opens the encoder and the file and writes the header; finish()
// flushes the encoder, writes the trailer and closes the file; the destructor only frees.
class Mp4Muxer {
public:
    Mp4Muxer(const std::string& path, int width, int height, const VideoWriteOptions& opts);
    ~Mp4Muxer();
    Mp4Muxer(const Mp4Muxer&) = delete;
    Mp4Muxer& operator=(const Mp4Muxer&) = delete;

    void add_frame(const uint8_t* rgb);  // [H, W, 3]
    void finish();
    const std::string& codec() const { return codec_; }
    int64_t frames() const { return next_pts_; }

private:
    bool open_encoder(const std::string& name, const VideoWriteOptions& opts, std::string* why);
    void drain(bool flushing);

    std::string path_;
    int width_, height_;
    OutputFormatPtr fmt_;
    CodecContextPtr enc_;
    FramePtr frame_;
    PacketPtr pkt_;
    SwsPtr sws_;
    AVStream* stream_ = nullptr;  // owned by fmt_
    std::string codec_;
    int64_t next_pts_ = 0;
};

Mp4Muxer::Mp4Muxer(const std::string& path, int width, int height, const VideoWriteOptions& opts)
    : path_(path), width_(width), height_(height) {
    WAN_CHECK(opts.fps >= 1 && opts.fps <= 240, "video fps must be in 1..240 (got %d)", opts.fps);
    WAN_CHECK(opts.crf >= 0 && opts.crf <= 51, "video crf must be in 0..51 (got %d)", opts.crf);
    install_log_bridge();

    AVFormatContext* raw = nullptr;
    // The container is named explicitly: the temporary file name has no .mp4 extension.
    WAN_AV_CHECK(avformat_alloc_output_context2(&raw, nullptr, "mp4", path.c_str()),
                 "creating the MP4 muxer for '%s'", path.c_str());
    fmt_.reset(raw);

    std::string tried;
    for (const auto& name : opts.encoders) {
        std::string why;
        if (open_encoder(name, opts, &why)) break;
        tried += (tried.empty() ? "" : "; ") + name + ": " + why;
        WAN_LOG_DEBUG("video encoder %s not used: %s", name.c_str(), why.c_str());
    }
    WAN_CHECK(enc_ != nullptr, "no usable video encoder for '%s' (tried %s)", path.c_str(),
              tried.empty() ? "none: the encoder list is empty" : tried.c_str());
    if (codec_ != opts.encoders.front()) {
        WAN_LOG_WARN("video encoder %s is not available, writing with %s instead", opts.encoders.front().c_str(),
                     codec_.c_str());
    }

    stream_ = avformat_new_stream(fmt_.get(), nullptr);
    WAN_CHECK(stream_ != nullptr, "adding a video stream to '%s' failed (out of memory)", path.c_str());
    stream_->time_base = enc_->time_base;
    stream_->avg_frame_rate = enc_->framerate;
    WAN_AV_CHECK(avcodec_parameters_from_context(stream_->codecpar, enc_.get()),
                 "copying the %s parameters to the MP4 stream", codec_.c_str());

    for (const auto& [key, value] : opts.metadata) {
        WAN_AV_CHECK(av_dict_set(&fmt_->metadata, key.c_str(), value.c_str(), 0), "setting MP4 metadata '%s'",
                     key.c_str());
    }

    if (!(fmt_->oformat->flags & AVFMT_NOFILE)) {
        // Closed by fmt_'s deleter on every path, also when a later step of this constructor throws.
        WAN_AV_CHECK(avio_open(&fmt_->pb, path.c_str(), AVIO_FLAG_WRITE), "opening '%s' for writing", path.c_str());
    }
    Dict mux_opts;
    // use_metadata_tags: write every key as an mdta item (custom keys such as "seed" survive);
    // faststart: moov before mdat, so previews start playing before the whole file is read.
    mux_opts.set("movflags", "+use_metadata_tags+faststart");
    WAN_AV_CHECK(avformat_write_header(fmt_.get(), mux_opts.ptr()), "writing the MP4 header of '%s'", path.c_str());

    frame_.reset(av_frame_alloc());
    pkt_.reset(av_packet_alloc());
    WAN_CHECK(frame_ && pkt_, "allocating FFmpeg frame/packet failed (out of memory)");
    frame_->format = enc_->pix_fmt;
    frame_->width = width;
    frame_->height = height;
    WAN_AV_CHECK(av_frame_get_buffer(frame_.get(), 0), "allocating a %dx%d %s frame", width, height,
                 av_get_pix_fmt_name(enc_->pix_fmt));
    // Same-size conversion: only the chroma filter matters. BT.601 limited range, as ffmpeg's default
    // rgb24 -> yuv420p conversion (what upstream's imageio pipe gets).
    sws_.reset(sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, enc_->pix_fmt,
                              SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, nullptr, nullptr, nullptr));
    WAN_CHECK(sws_ != nullptr, "creating the rgb24 -> %s converter for %dx%d failed",
              av_get_pix_fmt_name(enc_->pix_fmt), width, height);
}

bool Mp4Muxer::open_encoder(const std::string& name, const VideoWriteOptions& opts, std::string* why) {
    const AVCodec* codec = avcodec_find_encoder_by_name(name.c_str());
    if (codec == nullptr) {
        *why = "not in this FFmpeg build";
        return false;
    }
    if (codec->type != AVMEDIA_TYPE_VIDEO) {
        *why = "not a video encoder";
        return false;
    }
    CodecContextPtr ctx(avcodec_alloc_context3(codec));
    WAN_CHECK(ctx != nullptr, "allocating the %s encoder context failed (out of memory)", name.c_str());
    ctx->width = width_;
    ctx->height = height_;
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->time_base = AVRational{1, opts.fps};
    ctx->framerate = AVRational{opts.fps, 1};
    ctx->sample_aspect_ratio = AVRational{1, 1};
    ctx->color_range = AVCOL_RANGE_MPEG;
    ctx->colorspace = AVCOL_SPC_BT470BG;  // BT.601 matrix, what swscale's default coefficients produce
    if (fmt_->oformat->flags & AVFMT_GLOBALHEADER) ctx->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;

    Dict codec_opts;
    if (name == "libx264") {
        codec_opts.set("crf", std::to_string(opts.crf));
        if (!opts.preset.empty()) codec_opts.set("preset", opts.preset);
    } else if (name == "mpeg4") {
        // Constant quantiser: crf 0..51 -> qscale 2..7 (2 is near-lossless for mpeg4).
        ctx->flags |= AV_CODEC_FLAG_QSCALE;
        ctx->global_quality = FF_QP2LAMBDA * (2 + opts.crf / 10);
    } else {
        // Encoders without a quality knob (libopenh264): about 0.25 bit per pixel per frame.
        ctx->bit_rate = std::max<int64_t>(200000, static_cast<int64_t>(width_) * height_ * opts.fps / 4);
    }
    const int ret = avcodec_open2(ctx.get(), codec, codec_opts.ptr());
    if (ret < 0) {
        *why = "opening failed: " + av_error_string(ret);
        return false;
    }
    enc_ = std::move(ctx);
    codec_ = name;
    return true;
}

void Mp4Muxer::add_frame(const uint8_t* rgb) {
    WAN_AV_CHECK(av_frame_make_writable(frame_.get()), "making frame %lld writable", static_cast<long long>(next_pts_));
    const uint8_t* src[1] = {rgb};
    const int src_stride[1] = {3 * width_};
    WAN_AV_CHECK(sws_scale(sws_.get(), src, src_stride, 0, height_, frame_->data, frame_->linesize),
                 "converting frame %lld from rgb24 to %s", static_cast<long long>(next_pts_),
                 av_get_pix_fmt_name(enc_->pix_fmt));
    frame_->pts = next_pts_;
    WAN_AV_CHECK(avcodec_send_frame(enc_.get(), frame_.get()), "encoding frame %lld with %s",
                 static_cast<long long>(next_pts_), codec_.c_str());
    ++next_pts_;
    drain(false);
}

void Mp4Muxer::drain(bool flushing) {
    for (;;) {
        const int ret = avcodec_receive_packet(enc_.get(), pkt_.get());
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
        WAN_AV_CHECK(ret, "receiving a packet from %s%s", codec_.c_str(), flushing ? " while flushing" : "");
        av_packet_rescale_ts(pkt_.get(), enc_->time_base, stream_->time_base);
        pkt_->stream_index = stream_->index;
        // av_interleaved_write_frame takes the packet's reference, leaving pkt_ blank for the next one.
        WAN_AV_CHECK(av_interleaved_write_frame(fmt_.get(), pkt_.get()), "writing a %s packet to '%s'",
                     codec_.c_str(), path_.c_str());
    }
}

void Mp4Muxer::finish() {
    WAN_AV_CHECK(avcodec_send_frame(enc_.get(), nullptr), "flushing the %s encoder", codec_.c_str());
    drain(true);
    WAN_AV_CHECK(av_write_trailer(fmt_.get()), "writing the MP4 trailer of '%s'", path_.c_str());
    if (fmt_->pb != nullptr && !(fmt_->oformat->flags & AVFMT_NOFILE)) {
        // Closed here rather than by the deleter so that a failing close (full disk) is reported.
        WAN_AV_CHECK(avio_closep(&fmt_->pb), "closing '%s'", path_.c_str());
    }
}

// Only frees: an unfinished file is abandoned without a trailer (its temporary name is removed by the caller).
// The unique_ptrs free the converter, packet, frame, encoder and muxer (closing its file) in that order.
Mp4Muxer::~Mp4Muxer() = default;

}  // namespace

VideoWriteResult write_mp4(const std::string& path, const RgbFrames& frames, const VideoWriteOptions& opts) {
    check_frames(frames, /*need_even=*/true);
    check_not_exists(path);
    const size_t frame_bytes = static_cast<size_t>(frames.height) * static_cast<size_t>(frames.width) * 3;
    TempFile tmp(create_temp_file(path));
    VideoWriteResult result;
    {
        Mp4Muxer mux(tmp.path(), frames.width, frames.height, opts);
        for (int f = 0; f < frames.frames; ++f) mux.add_frame(frames.data + frame_bytes * static_cast<size_t>(f));
        mux.finish();
        result.codec = mux.codec();
        result.frames = mux.frames();
    }
    sync_file(tmp.path());
    publish_file(tmp.path(), path);
    tmp.release();
    result.bytes = file_size(path);
    WAN_LOG_INFO("wrote %s (%lld frames %dx%d, %s, %lld bytes)", path.c_str(), static_cast<long long>(result.frames),
                 frames.width, frames.height, result.codec.c_str(), static_cast<long long>(result.bytes));
    return result;
}

void write_png(const std::string& path, const uint8_t* rgb, int height, int width) {
    check_frames(RgbFrames{rgb, 1, height, width}, /*need_even=*/false);
    check_not_exists(path);
    install_log_bridge();
    const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    WAN_CHECK(codec != nullptr, "this FFmpeg build has no PNG encoder (needed for '%s')", path.c_str());
    CodecContextPtr ctx(avcodec_alloc_context3(codec));
    WAN_CHECK(ctx != nullptr, "allocating the PNG encoder context failed (out of memory)");
    ctx->width = width;
    ctx->height = height;
    ctx->pix_fmt = AV_PIX_FMT_RGB24;
    ctx->time_base = AVRational{1, 1};
    WAN_AV_CHECK(avcodec_open2(ctx.get(), codec, nullptr), "opening the PNG encoder for %dx%d", width, height);

    FramePtr frame(av_frame_alloc());
    PacketPtr pkt(av_packet_alloc());
    WAN_CHECK(frame && pkt, "allocating FFmpeg frame/packet failed (out of memory)");
    frame->format = AV_PIX_FMT_RGB24;
    frame->width = width;
    frame->height = height;
    WAN_AV_CHECK(av_frame_get_buffer(frame.get(), 0), "allocating a %dx%d rgb24 frame", width, height);
    av_image_copy_plane(frame->data[0], frame->linesize[0], rgb, 3 * width, 3 * width, height);
    frame->pts = 0;
    WAN_AV_CHECK(avcodec_send_frame(ctx.get(), frame.get()), "encoding the PNG image '%s'", path.c_str());
    WAN_AV_CHECK(avcodec_send_frame(ctx.get(), nullptr), "flushing the PNG encoder");
    std::string bytes;
    for (;;) {
        const int ret = avcodec_receive_packet(ctx.get(), pkt.get());
        if (ret == AVERROR_EOF || ret == AVERROR(EAGAIN)) break;
        WAN_AV_CHECK(ret, "receiving the PNG data for '%s'", path.c_str());
        bytes.append(reinterpret_cast<const char*>(pkt->data), static_cast<size_t>(pkt->size));
        av_packet_unref(pkt.get());
    }
    WAN_CHECK(!bytes.empty(), "the PNG encoder produced no data for '%s'", path.c_str());
    write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace wan::video

namespace wan::video {

std::string default_encoder() {
    // The same order as write_mp4(): the first encoder of the default list that this FFmpeg has.
    for (const auto& name : VideoWriteOptions{}.encoders) {
        const AVCodec* c = avcodec_find_encoder_by_name(name.c_str());
        if (c != nullptr && c->type == AVMEDIA_TYPE_VIDEO) return name;
    }
    return {};
}

std::string ffmpeg_version_info() {
    auto triple = [](unsigned v) {
        return strfmt("%u.%u.%u", AV_VERSION_MAJOR(v), AV_VERSION_MINOR(v), AV_VERSION_MICRO(v));
    };
    std::string s = strfmt("FFmpeg %s (libavcodec %s, libavformat %s)", av_version_info(),
                           triple(avcodec_version()).c_str(), triple(avformat_version()).c_str());
    const std::vector<std::string> order = VideoWriteOptions{}.encoders;
    const std::string chosen = default_encoder();
    if (chosen.empty()) {
        std::string names;
        for (const auto& n : order) names += (names.empty() ? "" : ", ") + n;
        return s + "; no video encoder (none of " + names + "): videos cannot be written";
    }
    const AVCodec* c = avcodec_find_encoder_by_name(chosen.c_str());
    if (c->id == AV_CODEC_ID_H264) return s + "; H.264 encoder: " + chosen;
    return s + "; no H.264 encoder (libx264/libopenh264 missing): videos are written with " + chosen;
}

}  // namespace wan::video
