#include "video/ffmpeg_util.h"

#include "core/core.h"

#include <mutex>

namespace wan::video::detail {

std::string av_error_string(int code) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
    if (av_strerror(code, buf, sizeof(buf)) < 0) return strfmt("FFmpeg error %d", code);
    return buf;
}

int av_check(int ret, const std::string& what, const char* file, int line) {
    if (ret < 0) throw_error(file, line, what + ": " + av_error_string(ret));
    return ret;
}

void Dict::set(const std::string& key, const std::string& value) {
    WAN_AV_CHECK(av_dict_set(&d_, key.c_str(), value.c_str(), 0), "setting FFmpeg option '%s'", key.c_str());
}

namespace {
void log_bridge(void* avcl, int level, const char* fmt, va_list vl) {
    if (level > AV_LOG_WARNING) return;
    char line[1024];
    int print_prefix = 1;  // local: av_log_format_line2 keeps no state of its own with this argument
    va_list copy;
    va_copy(copy, vl);
    av_log_format_line2(avcl, level, fmt, copy, line, sizeof(line), &print_prefix);
    va_end(copy);
    std::string text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (!text.empty()) WAN_LOG_WARN("ffmpeg: %s", text.c_str());
}
}  // namespace

void install_log_bridge() {
    static std::once_flag once;
    std::call_once(once, [] { av_log_set_callback(log_bridge); });
}

}  // namespace wan::video::detail
