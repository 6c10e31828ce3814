#include "launch/layout_proposal.h"

#include "core/core.h"
#include "core/engine_config.h"

#include <algorithm>
#include <numeric>
#include <set>

namespace wan::app {

namespace {
constexpr int kMaxGpus = 8;

std::string canonicalOption(const std::string& arg) {
    std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - 2);
    for (char& c : name) {
        if (c == '-') c = '_';
    }
    return name;
}
}  // namespace

LayoutProposal proposeLayout(int gpus, int64_t num_heads, bool weights_fit) {
    WAN_CHECK(gpus >= 1 && gpus <= kMaxGpus, "GPU count %d: expected 1 to %d", gpus, kMaxGpus);
    WAN_CHECK(num_heads >= 1, "head count %lld: expected at least 1", static_cast<long long>(num_heads));
    LayoutProposal p;
    p.gpus = gpus;
    // Ulysses moves heads (two all-to-alls per attention) and is cheaper than Ring's K/V rounds, so it takes
    // every factor the heads allow; Ring takes what is left (run_sequence_parallel_example.sh).
    p.ulysses = static_cast<int>(std::gcd(static_cast<int64_t>(gpus), num_heads));
    p.ring = gpus / p.ulysses;
    p.dit_fsdp = p.t5_fsdp = gpus > 1 && !weights_fit;  // a single process has nothing to shard
    return p;
}

LayoutProposal layoutOf(const ParallelLayout& running) {
    LayoutProposal p;
    p.gpus = std::max(1, running.world);
    p.ulysses = std::max(1, running.ulysses);
    p.ring = std::max(1, running.ring);
    p.dit_fsdp = running.dit_fsdp;
    p.t5_fsdp = running.t5_fsdp;
    p.cfg_parallel = running.cfg_parallel;
    return p;
}

std::vector<std::string> layoutProblems(const LayoutProposal& layout, int64_t num_heads) {
    // THE layout rule (core/engine_config.h), the one the command line and the engine apply.
    ParallelLayout l;
    l.world = layout.gpus;
    l.ulysses = layout.ulysses;
    l.ring = layout.ring;
    l.dit_fsdp = layout.dit_fsdp;
    l.t5_fsdp = layout.t5_fsdp;
    l.cfg_parallel = layout.cfg_parallel;
    return l.errors(num_heads);
}

std::string describeLayout(const LayoutProposal& l) {
    std::string s = strfmt("%d GPU%s: Ulysses %d × Ring %d", l.gpus, l.gpus == 1 ? "" : "s", l.ulysses, l.ring);
    if (l.dit_fsdp && l.t5_fsdp) s += ", DiT and T5 sharded (FSDP)";
    else if (l.dit_fsdp) s += ", DiT sharded (FSDP)";
    else if (l.t5_fsdp) s += ", T5 sharded (FSDP)";
    if (l.cfg_parallel) s += ", CFG-parallel";
    return s;
}

double estimatedWeightsGb(int64_t num_heads) {
    constexpr double kT5Gb = 11.4;  // umt5-xxl encoder, bf16
    if (num_heads == 40) return 28.6 + kT5Gb;  // 14B DiT, bf16
    if (num_heads == 12) return 2.8 + kT5Gb;   // 1.3B DiT, bf16
    return 0.0;
}

bool weightsFitOneGpu(int64_t num_heads, double gpu_memory_gb) {
    if (gpu_memory_gb <= 0) return true;
    return estimatedWeightsGb(num_heads) * 4.0 / 3.0 <= gpu_memory_gb;
}

std::vector<std::string> stripLayoutArgs(const std::vector<std::string>& args) {
    return stripOptions(args, {"ulysses_size", "ring_size", "connect", "api_token"}, {"dit_fsdp", "t5_fsdp", "cfg_parallel"});
}

std::vector<std::string> stripOptions(const std::vector<std::string>& args, const std::set<std::string>& with_value,
                                      const std::set<std::string>& flags) {
    std::vector<std::string> out;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.rfind("--", 0) != 0 || a.size() == 2) {
            out.push_back(a);
            continue;
        }
        const std::string name = canonicalOption(a);
        const bool inline_value = a.find('=') != std::string::npos;
        if (flags.count(name)) continue;
        if (with_value.count(name)) {
            if (!inline_value) ++i;  // skip the value too
            continue;
        }
        out.push_back(a);
    }
    return out;
}

LaunchLine mpirunCommand(const std::string& mpirun, const std::string& exe,
                          const std::vector<std::string>& original_args, const LayoutProposal& l, bool as_root) {
    const std::vector<std::string> kept = stripLayoutArgs(original_args);
    LaunchLine line;
    if (l.gpus == 1) {
        line.program = exe;
        line.args = kept;
        return line;
    }
    line.program = mpirun;
    // --bind-to none: OpenMPI pins each rank to one core otherwise (wanstudio_launch_common.sh says why).
    line.args = {"--bind-to", "none"};
    if (as_root) line.args.push_back("--allow-run-as-root");
    line.args.insert(line.args.end(), {"-np", std::to_string(l.gpus), exe});
    line.args.insert(line.args.end(), kept.begin(), kept.end());
    line.args.insert(line.args.end(), {"--ulysses-size", std::to_string(l.ulysses), "--ring-size",
                                       std::to_string(l.ring)});
    if (l.dit_fsdp) line.args.push_back("--dit-fsdp");
    if (l.t5_fsdp) line.args.push_back("--t5-fsdp");
    if (l.cfg_parallel) line.args.push_back("--cfg-parallel");
    return line;
}

std::string shellLine(const LaunchLine& line) {
    auto quote = [](const std::string& s) {
        if (!s.empty() && s.find_first_of(" \t\n'\"\\$`*?;&|<>()#~") == std::string::npos) return s;
        std::string q = "'";
        for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
        return q + "'";
    };
    std::string s = quote(line.program);
    for (const std::string& a : line.args) s += " " + quote(a);
    return s;
}

}  // namespace wan::app
