// Private: RAII owners for FFmpeg handles, error checks and the log bridge.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

namespace wan::video::detail {

/// av_strerror text for an FFmpeg return code.
std::string av_error_string(int code);

/// Throws wan::Error "<what>: <FFmpeg message>" when `ret` < 0; returns `ret` otherwise.
int av_check(int ret, const std::string& what, const char* file, int line);
#define WAN_AV_CHECK(expr, ...) ::wan::video::detail::av_check((expr), ::wan::strfmt(__VA_ARGS__), __FILE__, __LINE__)

/// Routes FFmpeg's warnings and errors to the engine log (once per process); info/debug chatter (x264
/// statistics) is dropped.
void install_log_bridge();

/// Closes the output file (when the muxer opened it: not AVFMT_NOFILE, not custom I/O) and frees the muxer,
/// on every path: an error anywhere after avio_open (e.g. in avformat_write_header) used to leak the file.
struct OutputFormatDeleter {
    void operator()(AVFormatContext* p) const {
        if (p->pb != nullptr && !(p->oformat->flags & AVFMT_NOFILE) && !(p->flags & AVFMT_FLAG_CUSTOM_IO))
            avio_closep(&p->pb);
        avformat_free_context(p);
    }
};
struct InputFormatDeleter {
    void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecContextDeleter {
    void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct FrameDeleter {
    void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct PacketDeleter {
    void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
    void operator()(SwsContext* p) const { sws_freeContext(p); }
};
struct DictDeleter {
    void operator()(AVDictionary* p) const { av_dict_free(&p); }
};

using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;

/// An AVDictionary* that FFmpeg functions may replace (pass `.get()` address via `ptr()`), freed on scope exit.
class Dict {
public:
    Dict() = default;
    ~Dict() { av_dict_free(&d_); }
    Dict(const Dict&) = delete;
    Dict& operator=(const Dict&) = delete;
    void set(const std::string& key, const std::string& value);
    AVDictionary** ptr() { return &d_; }
    AVDictionary* get() const { return d_; }

private:
    AVDictionary* d_ = nullptr;
};

// ---- files (files.cpp) ----
/// A temporary file name in the directory of `final_path` (hidden, unique per process and call).
std::string temp_path_for(const std::string& final_path);
/// Creates an empty temporary file for `final_path` exclusively (O_EXCL: never an existing file, never through
/// a planted link) and returns its name; the caller writes it by that name and removes it on failure.
std::string create_temp_file(const std::string& final_path);
/// Moves the finished `tmp` to `final_path` without ever replacing an existing file (link + unlink; rename
/// after an existence check where the file system has no hard links). Removes `tmp` on failure.
void publish_file(const std::string& tmp, const std::string& final_path);
/// Throws when `path` exists (the writers never overwrite).
void check_not_exists(const std::string& path);
int64_t file_size(const std::string& path);
/// fsync of a finished file, so its data are on disk before its final name appears.
void sync_file(const std::string& path);
/// Writes the bytes to a temporary file, fsyncs it and publishes it under `path` (never overwrites).
void write_file_atomic(const std::string& path, const void* data, size_t size);

}  // namespace wan::video::detail
