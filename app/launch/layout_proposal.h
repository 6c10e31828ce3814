// Which layout to run on N GPUs, and the mpirun line that starts it: what Engine → GPUs… proposes.
// The rule is the example launchers' (scripts/examples): Ulysses takes the largest degree that divides both the
// GPU count and the DiT's attention heads (their gcd), Ring takes the rest, and FSDP (DiT and T5 sharded) is
// added when the weights would not fit one GPU. Every proposal is checked with the layout rule the command
// line and the engine apply (wan::ParallelLayout::errors, core/engine_config.h). Qt-free.
#pragma once

#include "core/engine_config.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace wan::app {

struct LayoutProposal {
    int gpus = 1;        ///< processes, one per GPU (mpirun -np)
    int ulysses = 1;
    int ring = 1;
    bool dit_fsdp = false;      ///< --dit-fsdp (a proposal shards both: dit_fsdp = t5_fsdp)
    bool t5_fsdp = false;       ///< --t5-fsdp
    bool cfg_parallel = false;  ///< --cfg-parallel: never proposed, kept when a relaunch repeats a running layout
};

/// The layout a process runs under (the command line's options and the MPI world size), as a relaunch repeats it.
LayoutProposal layoutOf(const ParallelLayout& running);

/// The layout for `gpus` (1–8) processes of a DiT with `num_heads` heads. Throws wan::Error for a GPU count
/// outside 1–8 or a head count below 1.
LayoutProposal proposeLayout(int gpus, int64_t num_heads, bool weights_fit);

/// Every problem of `layout` for `num_heads` heads, one sentence each (empty when valid):
/// wan::ParallelLayout::errors for a world of `layout.gpus`.
std::vector<std::string> layoutProblems(const LayoutProposal& layout, int64_t num_heads);

/// "4 GPUs: Ulysses 4 × Ring 1, DiT and T5 sharded (FSDP)".
std::string describeLayout(const LayoutProposal& layout);

/// Weights (DiT + T5 encoder, bf16) of the model with `num_heads` heads, in GB: 14B (40 heads) ≈ 40,
/// 1.3B (12 heads) ≈ 14; anything else (the tiny demo) ≈ 0.
double estimatedWeightsGb(int64_t num_heads);
/// Whether those weights, with a third more for activations and the VAE, fit a GPU of `gpu_memory_gb`.
/// Unknown memory (≤ 0, e.g. no GPU found) counts as fitting: FSDP is then the user's choice.
bool weightsFitOneGpu(int64_t num_heads, double gpu_memory_gb);

/// `args` without the options named in `with_value` (each with its value, either `--name value` or
/// `--name=value`) and in `flags`; names are canonical, with underscores ("ulysses_size"), and match either
/// spelling on the command line.
std::vector<std::string> stripOptions(const std::vector<std::string>& args, const std::set<std::string>& with_value,
                                      const std::set<std::string>& flags);

/// `args` (the program's arguments, without argv[0]) without the options that choose a layout or an engine:
/// --ulysses-size/--ring-size (with their value, either spelling, `=value` or not), --dit-fsdp, --t5-fsdp,
/// --cfg-parallel, --connect/--api-token (with value). The relaunch adds its own.
std::vector<std::string> stripLayoutArgs(const std::vector<std::string>& args);

/// A program and its arguments, as QProcess wants them.
struct LaunchLine {
    std::string program;
    std::vector<std::string> args;
};

/// `mpirun --bind-to none [--allow-run-as-root] -np N EXE ARGS --ulysses-size U --ring-size R [--dit-fsdp]
/// [--t5-fsdp] [--cfg-parallel]` with ARGS = stripLayoutArgs(original_args). A proposal for one GPU gives `EXE ARGS` (no
/// mpirun, so going back to one GPU works without OpenMPI). `as_root` adds OpenMPI's --allow-run-as-root,
/// which it needs to start as root (containers), as the example launchers do.
LaunchLine mpirunCommand(const std::string& mpirun, const std::string& exe,
                          const std::vector<std::string>& original_args, const LayoutProposal& layout,
                          bool as_root = false);

/// The line as a user would type it in a shell (arguments with spaces or quotes single-quoted).
std::string shellLine(const LaunchLine& line);

}  // namespace wan::app
