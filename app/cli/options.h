// Command-line options of `wanstudio`, named as upstream generate.py and the multi-GPU Gradio script.
// Every option is accepted with underscores (upstream spelling) and with dashes: --ulysses_size = --ulysses-size,
// as `--opt value` or `--opt=value`. Qt-free, so the headless engine build has the same parser.
#pragma once

#include "core/core.h"

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

    // load-time (engine) settings
    std::string ckpt_dir;            ///< empty → the built-in tiny demo checkpoint
    bool t5_fsdp = false;
    bool dit_fsdp = false;
    int ulysses_size = 1;
    int ring_size = 1;
    bool cfg_parallel = false;       ///< ours: the two CFG branches on the two halves of the world
    bool t5_cpu = false;
    int offload_model = -1;          ///< -1 unset (upstream: true single-process, false distributed), 0/1
    std::string device = "auto";     ///< auto | cuda | cpu
    std::string vae_dtype = "auto";  ///< auto (bf16 on CUDA, f32 on CPU) | f32 | bf16
    int vae_tile = 0;                ///< spatial tile size in latent pixels; 0 = no tiling
    double teacache_threshold = 0;   ///< > 0 enables step caching (beyond upstream)
    bool fp8 = false;                ///< FP8 linear layers on Hopper (beyond upstream)

    // prompt extension
    std::string prompt_extend_method;  ///< dashscope | local_qwen (empty = not configured)
    std::string prompt_extend_model;
    std::string prompt_extend_target_lang = "zh";
    bool use_prompt_extend = false;

    // per-job settings for --prompt / defaults for the GUI
    GenerationRequest request;       ///< prompt, size, frames, steps, shift, guide, solver, seed, …
    std::string batch_file;          ///< --batch FILE: one prompt per line, or JSON lines with per-job options
    std::string inspect_dir;
    std::string extend_text;
    std::string output_dir = "outputs";

    // remote engine (app/remote)
    std::string listen_address;  ///< --listen [ADDR:]PORT
    std::string api_token;       ///< --api-token (else WANSTUDIO_API_TOKEN)
    std::string connect_address; ///< --connect HOST:PORT: the window (or --batch) drives a remote engine

    int world_size = 1;  ///< filled by main from MPI
    int rank = 0;
};

/// Parses argv. Throws wan::Error naming the option and what was expected for anything unknown or
/// malformed (e.g. "--size 832x": expected W*H such as 832*480).
AppOptions parse_options(int argc, char** argv);
/// Checks the parallel layout against the world size (U·R = world, etc.). Throws wan::Error.
void validate_layout(const AppOptions& options, int world_size);
/// The `--help` text (also the source of the man page).
std::string help_text();

}  // namespace wan::app
