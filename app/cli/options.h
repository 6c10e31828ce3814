// Command-line options of `wanstudio`, named as upstream generate.py and the multi-GPU Gradio script.
// Every option is accepted with underscores (upstream spelling) and with dashes: --ulysses_size = --ulysses-size,
// as `--opt value` or `--opt=value`. Qt-free, so the headless engine build has the same parser.
#pragma once

#include "core/core.h"
#include "core/engine_config.h"

#include <string>
#include <vector>

namespace wan::app {

enum class RunMode {
    Gui = 1,        ///< default: the desktop window (rank 0)
    Headless = 2,   ///< --prompt or --batch: generate without a display
    Inspect = 3,    ///< --inspect DIR: print the checkpoint layout and exit
    Check = 4,      ///< --check: the distributed setup check
    ExtendPrompt = 5,  ///< --extend-prompt TEXT: print the extended prompt and exit
    Version = 6,
    Help = 7,
    Listen = 8,     ///< --listen [ADDR:]PORT: serve the HTTP API headless (app/remote)
};

struct AppOptions {
    RunMode mode = RunMode::Gui;

    EngineConfig engine;             ///< load-time settings (checkpoint, device, layout, prompt extension, output dir)

    // prompt extension defaults of the jobs (the method and model are in `engine`)
    std::string promptExtendTargetLang = "zh";
    bool usePromptExtend = false;

    // per-job settings for --prompt / defaults for the GUI
    GenerationRequest request;       ///< prompt, size, frames, steps, shift, guide, solver, seed, …
    std::string batchFile;           ///< --batch FILE: one prompt per line, or JSON lines with per-job options
    std::string inspectDir;
    std::string extendText;

    // remote engine (app/remote)
    std::string listenAddress;   ///< --listen [ADDR:]PORT
    std::string apiToken;        ///< --api-token (else WANSTUDIO_API_TOKEN)
    /// --api-request-timeout SECONDS: how long a client may take to send a whole request (else
    /// WANSTUDIO_API_REQUEST_TIMEOUT_S, else 30 s); 0 when not given.
    double apiRequestTimeoutS = 0;
    std::string connectAddress;  ///< --connect HOST:PORT: the window (or --batch) drives a remote engine
};

/// Parses argv. Throws wan::Error naming the option and what was expected for anything unknown or
/// malformed (e.g. "--size 832x": expected W*H such as 832*480).
AppOptions parseOptions(int argc, char** argv);
/// Checks the parallel layout for `world_size` processes (ParallelLayout::validate, the engine's one rule;
/// the heads rule waits for the checkpoint) and records the world size in options.engine.layout. Throws wan::Error.
void validateLayout(AppOptions& options, int world_size);
/// The `--help` text (also the source of the man page).
std::string helpText();

}  // namespace wan::app
