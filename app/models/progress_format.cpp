#include "models/progress_format.h"

#include <algorithm>
#include <cmath>

namespace wan::app {

double overallFraction(const ProgressInfo& info) {
    double within = info.total > 0 ? std::clamp(static_cast<double>(info.step) / info.total, 0.0, 1.0) : 0.0;
    switch (info.stage) {
        case Stage::Queued: return 0.0;
        case Stage::Text: return 0.05 * within;
        case Stage::Denoise: return 0.05 + 0.80 * within;
        case Stage::Decode: return 0.85 + 0.12 * within;
        case Stage::Encode: return 0.97 + 0.03 * within;
        case Stage::Done: return 1.0;
    }
    return 0.0;
}

double remainingSeconds(const ProgressInfo& info) {
    if (info.eta_s < 0) return -1;
    return std::max(0.0, info.eta_s - info.elapsed_s);
}

std::string formatDuration(double seconds) {
    if (!(seconds >= 0) || !std::isfinite(seconds)) return "--:--";
    long long s = std::llround(seconds);
    long long h = s / 3600, m = (s / 60) % 60, sec = s % 60;
    if (h > 0) return strfmt("%lld:%02lld:%02lld", h, m, sec);
    return strfmt("%02lld:%02lld", m, sec);
}

std::string stageLabel(Stage stage) {
    switch (stage) {
        case Stage::Queued: return "Queued";
        case Stage::Text: return "Encoding prompt";
        case Stage::Denoise: return "Denoising";
        case Stage::Decode: return "Decoding";
        case Stage::Encode: return "Writing video";
        case Stage::Done: return "Done";
    }
    return "?";
}

namespace {
std::string ordinal(int n) {
    const int tens = n % 100, ones = n % 10;
    const char* suffix = (tens >= 11 && tens <= 13) || ones == 0 || ones > 3 ? "th" : ones == 1 ? "st" : ones == 2 ? "nd" : "rd";
    return strfmt("%d%s", n, suffix);
}
}  // namespace

std::string progressText(const ProgressInfo& info) {
    std::string text = stageLabel(info.stage);
    if (info.stage == Stage::Queued) {  // nothing runs yet: no step count, no clock
        if (info.step == 1) return text + " · next";
        return info.step > 1 ? text + " · " + ordinal(info.step) + " in line" : text;
    }
    if (info.total > 0) text += strfmt(" %d/%d", info.step, info.total);
    text += " · " + formatDuration(info.elapsed_s) + " elapsed";
    double left = remainingSeconds(info);
    if (left >= 0) text += " · ETA " + formatDuration(left);
    return text;
}

}  // namespace wan::app
