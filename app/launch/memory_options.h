// Engine → Memory…: the load-time options that trade GPU memory for speed (--dit-dtype, --max-vram, --offload-dit),
// as the window keeps them, shows them and puts them on the command line of the engine it restarts. Qt-free.
#pragma once

#include "core/engine_config.h"

#include <string>
#include <vector>

namespace wan::app {

struct MemoryOptions {
    std::string ditDtype = "auto";  ///< --dit-dtype: auto | fp8 | bf16
    double maxVramGb = 0;           ///< --max-vram GB; 0: no limit
    bool offloadDit = false;        ///< --offload-dit

    /// The options `config` was loaded with.
    static MemoryOptions of(const EngineConfig& config);
    void applyTo(EngineConfig& config) const;
    bool isDefault() const { return *this == MemoryOptions(); }
    /// Every problem, one sentence each (empty when valid): an unknown dtype, a negative budget.
    std::vector<std::string> problems() const;
    /// The options that differ from the defaults, as the command line takes them: "--dit-dtype fp8 --max-vram 22
    /// --offload-dit".
    std::vector<std::string> arguments() const;
    /// For the status bar, empty when default: "fp8 weights · at most 22 GB of GPU memory · DiT streamed".
    std::string summary() const;
    bool operator==(const MemoryOptions& o) const;
    bool operator!=(const MemoryOptions& o) const { return !(*this == o); }
};

/// `args` with their memory options (either spelling, `=value` or not) replaced by `memory`'s arguments().
std::vector<std::string> withMemoryOptions(const std::vector<std::string>& args, const MemoryOptions& memory);

}  // namespace wan::app
