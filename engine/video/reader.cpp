// Reader for tests and previews: opens a file with libavformat, decodes its first video stream, optionally
// converts every frame to packed RGB24.
#include "video/video.h"

#include "core/core.h"
#include "video/ffmpeg_util.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

namespace wan::video {

using namespace detail;

namespace {

class Decoder {
public:
    explicit Decoder(const std::string& path) : path_(path) {
        install_log_bridge();
        AVFormatContext* raw = nullptr;
        WAN_AV_CHECK(avformat_open_input(&raw, path.c_str(), nullptr, nullptr), "opening '%s' for reading",
                     path.c_str());
        fmt_.reset(raw);
        WAN_AV_CHECK(avformat_find_stream_info(fmt_.get(), nullptr), "reading the stream info of '%s'", path.c_str());
#if LIBAVFORMAT_VERSION_MAJOR >= 59
        const AVCodec* codec = nullptr;  // FFmpeg 5+: const decoder_ret
#else
        AVCodec* codec = nullptr;  // FFmpeg 4.x (Ubuntu 22.04)
#endif
        stream_index_ = WAN_AV_CHECK(av_find_best_stream(fmt_.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0),
                                     "finding a decodable video stream in '%s'", path.c_str());
        AVStream* st = fmt_->streams[stream_index_];
        dec_.reset(avcodec_alloc_context3(codec));
        WAN_CHECK(dec_ != nullptr, "allocating the %s decoder failed (out of memory)", codec->name);
        WAN_AV_CHECK(avcodec_parameters_to_context(dec_.get(), st->codecpar), "configuring the %s decoder for '%s'",
                     codec->name, path.c_str());
        WAN_AV_CHECK(avcodec_open2(dec_.get(), codec, nullptr), "opening the %s decoder for '%s'", codec->name,
                     path.c_str());
        info_.width = st->codecpar->width;
        info_.height = st->codecpar->height;
        const AVRational rate = st->avg_frame_rate.num != 0 ? st->avg_frame_rate : st->r_frame_rate;
        info_.fps = rate.den != 0 ? av_q2d(rate) : 0.0;
        info_.codec = avcodec_get_name(st->codecpar->codec_id);
        const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(st->codecpar->format));
        info_.pix_fmt = pix ? pix : "";
        const AVDictionaryEntry* e = nullptr;
        while ((e = av_dict_get(fmt_->metadata, "", e, AV_DICT_IGNORE_SUFFIX)) != nullptr) info_.tags[e->key] = e->value;
        frame_.reset(av_frame_alloc());
        pkt_.reset(av_packet_alloc());
        WAN_CHECK(frame_ && pkt_, "allocating FFmpeg frame/packet failed (out of memory)");
    }

    // Decodes everything; appends RGB24 frames to `rgb` when given.
    VideoInfo run(std::vector<uint8_t>* rgb) {
        bool eof = false;
        while (!eof) {
            const int ret = av_read_frame(fmt_.get(), pkt_.get());
            if (ret == AVERROR_EOF) {
                eof = true;
                WAN_AV_CHECK(avcodec_send_packet(dec_.get(), nullptr), "flushing the decoder of '%s'", path_.c_str());
            } else {
                WAN_AV_CHECK(ret, "reading a packet from '%s'", path_.c_str());
                if (pkt_->stream_index != stream_index_) {
                    av_packet_unref(pkt_.get());
                    continue;
                }
                const int sent = avcodec_send_packet(dec_.get(), pkt_.get());
                av_packet_unref(pkt_.get());
                WAN_AV_CHECK(sent, "decoding a packet of '%s'", path_.c_str());
            }
            receive(rgb);
        }
        return info_;
    }

private:
    void receive(std::vector<uint8_t>* rgb) {
        for (;;) {
            const int ret = avcodec_receive_frame(dec_.get(), frame_.get());
            if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) return;
            WAN_AV_CHECK(ret, "decoding frame %lld of '%s'", static_cast<long long>(info_.frames), path_.c_str());
            ++info_.frames;
            if (rgb != nullptr) append_rgb(rgb);
            av_frame_unref(frame_.get());
        }
    }

    void append_rgb(std::vector<uint8_t>* rgb) {
        const int w = frame_->width, h = frame_->height;
        WAN_CHECK(w == info_.width && h == info_.height, "frame %lld of '%s' is %dx%d, the stream says %dx%d",
                  static_cast<long long>(info_.frames), path_.c_str(), w, h, info_.width, info_.height);
        sws_.reset(sws_getCachedContext(sws_.release(), w, h, static_cast<AVPixelFormat>(frame_->format), w, h,
                                        AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                                        nullptr, nullptr, nullptr));
        WAN_CHECK(sws_ != nullptr, "creating the %s -> rgb24 converter failed",
                  av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame_->format)));
        const size_t offset = rgb->size();
        rgb->resize(offset + static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
        uint8_t* dst[1] = {rgb->data() + offset};
        const int dst_stride[1] = {3 * w};
        WAN_AV_CHECK(sws_scale(sws_.get(), frame_->data, frame_->linesize, 0, h, dst, dst_stride),
                     "converting frame %lld of '%s' to rgb24", static_cast<long long>(info_.frames), path_.c_str());
    }

    std::string path_;
    InputFormatPtr fmt_;
    CodecContextPtr dec_;
    FramePtr frame_;
    PacketPtr pkt_;
    SwsPtr sws_;
    int stream_index_ = -1;
    VideoInfo info_;
};

}  // namespace

VideoInfo probe_video(const std::string& path) { return Decoder(path).run(nullptr); }

std::vector<uint8_t> decode_frames(const std::string& path, VideoInfo* info) {
    std::vector<uint8_t> rgb;
    VideoInfo i = Decoder(path).run(&rgb);
    if (info != nullptr) *info = std::move(i);
    return rgb;
}

}  // namespace wan::video
