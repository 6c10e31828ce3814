// How progress is put into words and numbers, shared by the GUI (progress bar, job list) and --batch (terminal
// bar). Qt-free.
#pragma once

#include "core/core.h"

#include <string>

namespace wan::app {

/// Fraction of the whole job done, 0..1. Denoising dominates the run time, so the stages are weighted:
/// text 0–5 %, denoise 5–85 %, decode 85–97 %, encode 97–100 %.
double overallFraction(const ProgressInfo& info);
/// Seconds left: ProgressInfo::eta_s is the estimate for the whole job, so this is eta − elapsed
/// (clamped at 0); < 0 when unknown.
double remainingSeconds(const ProgressInfo& info);
/// "mm:ss", or "h:mm:ss" from an hour on; "--:--" for a negative (unknown) duration.
std::string formatDuration(double seconds);
/// Words for a stage: "Queued", "Encoding prompt", "Denoising", "Decoding", "Writing video", "Done".
std::string stageLabel(Stage stage);
/// One line: "Denoising 12/50 · 00:42 elapsed · ETA 01:10" (step/total only when total > 0). A job waiting in
/// a shared engine's queue (--connect) is Stage::Queued with `step` = its place there (1: it runs next; 0:
/// unknown): "Queued · next", "Queued · 3rd in line", "Queued", without time.
std::string progressText(const ProgressInfo& info);

}  // namespace wan::app
