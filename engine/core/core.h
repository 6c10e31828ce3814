// WanStudio engine core: errors, checks, logging and version. No LibTorch, no Qt: the GUI links this too.
#pragma once

#include <cstdarg>
#include <functional>
#include <stdexcept>
#include <string>

namespace wan {

/// Every engine error. The message is complete and meant for a person: it names the file, option or
/// tensor involved and what was expected. `where()` is "file:line" of the throw site, kept apart so that
/// user-facing text stays clean.
class Error : public std::runtime_error {
public:
    Error(std::string message, std::string where = {})
        : std::runtime_error(std::move(message)), where_(std::move(where)) {}
    const std::string& where() const noexcept { return where_; }

private:
    std::string where_;
};

/// printf-style formatting into a std::string.
std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrfmt(const char* fmt, va_list args);

[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

/// Log levels. Info comes from engine rank 0 only; warnings and errors from every rank, prefixed with
/// the rank. Debug is for per-step chatter (the denoising loop) and is off unless WAN_LOG=debug.
enum class LogLevel { Debug = 1, Info = 2, Warn = 3, Error = 4 };

/// One sink for all engine logging (llama_log_set style). The default writes "[r<rank>] W message" to
/// stderr. The app installs a sink that forwards to its log view. Thread-safe.
using LogSink = std::function<void(LogLevel, const std::string&)>;
void set_log_sink(LogSink sink);
void set_log_level(LogLevel min_level);
void set_log_rank(int rank);  ///< rank shown in the default sink's prefix; info is dropped on rank > 0
int log_rank();
void log_message(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

/// Program version ("0.1.0").
const char* version_string();

}  // namespace wan

/// Throws wan::Error with the formatted message when `cond` is false.
#define WAN_CHECK(cond, ...)                                                   \
    do {                                                                       \
        if (!(cond)) ::wan::throw_error(__FILE__, __LINE__, ::wan::strfmt(__VA_ARGS__)); \
    } while (0)

#define WAN_THROW(...) ::wan::throw_error(__FILE__, __LINE__, ::wan::strfmt(__VA_ARGS__))

#define WAN_LOG_DEBUG(...) ::wan::log_message(::wan::LogLevel::Debug, __VA_ARGS__)
#define WAN_LOG_INFO(...) ::wan::log_message(::wan::LogLevel::Info, __VA_ARGS__)
#define WAN_LOG_WARN(...) ::wan::log_message(::wan::LogLevel::Warn, __VA_ARGS__)
#define WAN_LOG_ERROR(...) ::wan::log_message(::wan::LogLevel::Error, __VA_ARGS__)
