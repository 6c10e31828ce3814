#include "core/core.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace wan {

std::string vstrfmt(const char* fmt, va_list args) {
    va_list copy;
    va_copy(copy, args);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n <= 0) return {};
    std::vector<char> buf(static_cast<size_t>(n) + 1);
    std::vsnprintf(buf.data(), buf.size(), fmt, args);
    return std::string(buf.data(), static_cast<size_t>(n));
}

std::string strfmt(const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    std::string s = vstrfmt(fmt, args);
    va_end(args);
    return s;
}

void throw_error(const char* file, int line, const std::string& message) {
    const char* base = std::strrchr(file, '/');
    throw Error(message, strfmt("%s:%d", base ? base + 1 : file, line));
}

namespace {
struct LogState {
    std::mutex mutex;
    LogSink sink;
    LogLevel min_level = LogLevel::Info;
    int rank = 0;
    LogState() {
        const char* env = std::getenv("WAN_LOG");
        if (env && std::strcmp(env, "debug") == 0) min_level = LogLevel::Debug;
        if (env && std::strcmp(env, "warn") == 0) min_level = LogLevel::Warn;
        if (env && std::strcmp(env, "error") == 0) min_level = LogLevel::Error;
    }
};
LogState& log_state() {
    static LogState state;
    return state;
}
char level_letter(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return 'D';
        case LogLevel::Info: return 'I';
        case LogLevel::Warn: return 'W';
        case LogLevel::Error: return 'E';
    }
    return '?';
}
}  // namespace

void set_log_sink(LogSink sink) {
    auto& st = log_state();
    std::lock_guard<std::mutex> lock(st.mutex);
    st.sink = std::move(sink);
}

void set_log_level(LogLevel min_level) {
    auto& st = log_state();
    std::lock_guard<std::mutex> lock(st.mutex);
    st.min_level = min_level;
}

void set_log_rank(int rank) {
    auto& st = log_state();
    std::lock_guard<std::mutex> lock(st.mutex);
    st.rank = rank;
}

int log_rank() { return log_state().rank; }

void log_message(LogLevel level, const char* fmt, ...) {
    auto& st = log_state();
    if (static_cast<int>(level) < static_cast<int>(st.min_level)) return;
    if (level == LogLevel::Info && st.rank > 0) return;
    va_list args;
    va_start(args, fmt);
    std::string msg = vstrfmt(fmt, args);
    va_end(args);
    std::lock_guard<std::mutex> lock(st.mutex);
    if (st.sink) {
        st.sink(level, msg);
    } else {
        std::fprintf(stderr, "[r%d] %c %s\n", st.rank, level_letter(level), msg.c_str());
    }
}

const char* version_string() { return WAN_VERSION_STRING; }

}  // namespace wan
