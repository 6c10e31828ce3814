// `wanstudio --check`: the distributed setup check, as a table of checks run in order on every rank. Each
// check agrees with the other ranks on its verdict (so all ranks stop at the same check); rank 0 prints.
#include "server/server.h"

#include "dit/dit.h"
#include "io/component_files.h"
#include "io/io.h"
#include "server/engine.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

namespace wan::server {

namespace {

/// What the checks learn and share, and the printing of their lines.
struct CheckRun {
    EngineConfig config;
    std::ostream& out;
    MPI_Comm world = MPI_COMM_WORLD;
    dist::RankFacts facts;
    c10::Device device{c10::kCPU};
    std::string ckpt_dir;
    io::WanConfig wan_config;
    bool all_passed = true;

    void line(bool ok, const std::string& what) {
        if (facts.rank == 0) out << (ok ? "[ok]   " : "[FAIL] ") << what << "\n" << std::flush;
        all_passed = all_passed && ok;
    }
};

/// A check: prints its lines; returns false when the checks after it cannot run.
struct Check {
    const char* name;
    bool (*run)(CheckRun& c);
};

bool check_mpi(CheckRun& c) {
    const auto [level, enough] = dist::mpi_thread_level();
    c.line(enough, strfmt("MPI: %d rank(s), thread level %s", c.facts.size, level.c_str()));
    return true;  // later checks still say more
}

bool check_devices(CheckRun& c) {
    std::string mine, err;
    try {
        c.device = dist::pick_device(c.config.device, c.facts.local_rank, c.facts.local_size);
        mine = device_description(c.device);
    } catch (const std::exception& e) {
        err = e.what();
        mine = std::string("error: ") + e.what();
    }
    const auto devices = dist::gather_strings(c.world, strfmt("rank %d (local %d): %s", c.facts.rank, c.facts.local_rank, mine.c_str()));
    const bool ok = dist::all_ok(c.world, err.empty());
    for (const auto& d : devices) c.line(ok || d.find("error:") == std::string::npos, "device " + d);
    return ok;
}

bool check_checkpoint(CheckRun& c) {
    std::string err;
    try {
        const bool demo = c.config.ckpt_dir.empty() && c.config.components.empty();
        c.ckpt_dir = demo ? pipeline::demo_checkpoint_dir() : c.config.ckpt_dir;
        c.wan_config = io::ModelComponents::locate(c.ckpt_dir, c.config.components).dit_config();
    } catch (const std::exception& e) {
        err = e.what();
    }
    const bool ok = dist::all_ok(c.world, err.empty());
    c.line(ok, ok ? strfmt("checkpoint %s: DiT %s, %lld heads", c.ckpt_dir.c_str(), c.wan_config.variant().c_str(),
                           static_cast<long long>(c.wan_config.num_heads))
                  : "checkpoint: " + err);
    return ok;
}

bool check_layout(CheckRun& c) {
    const ParallelLayout& l = c.config.layout;
    const auto errors = l.errors(c.wan_config.num_heads);
    std::string text = strfmt("layout: world %d = ulysses %d × ring %d%s%s%s", l.world, l.ulysses, l.ring,
                              l.cfg_parallel ? " × 2 (cfg-parallel)" : "", l.dit_fsdp ? ", DiT FSDP" : "",
                              l.t5_fsdp ? ", T5 FSDP" : "");
    for (const auto& e : errors) text += "\n       " + e;
    c.line(errors.empty(), text);
    return errors.empty();
}

// A collective on the tensor backend: every rank gets 1 + 2 + … + N.
bool check_collective(CheckRun& c) {
    const int n = c.facts.size;
    bool ok = true;
    std::string backend = "none";
    try {
        c10::DeviceGuard dg(c.device);
        auto comm = dist::make_communicator(c.world, c.device);
        backend = comm->backend();
        at::Tensor t = at::full({4}, static_cast<double>(c.facts.rank + 1), at::TensorOptions().dtype(at::kFloat).device(c.device));
        comm->all_reduce(t, dist::ReduceOp::Sum);
        ok = t.to(at::kCPU).eq(n * (n + 1) / 2.0).all().item<bool>();
    } catch (const std::exception& e) {
        ok = false;
        WAN_LOG_ERROR("collective check: %s", e.what());
    }
    ok = dist::all_ok(c.world, ok);
    c.line(ok, strfmt("all-reduce over %d rank(s) on %s (%s backend): every rank got %g", n, c.device.str().c_str(),
                      backend.c_str(), n * (n + 1) / 2.0));
    return ok;
}

int64_t dit_parameter_count(const std::string& ckpt_dir, const ComponentPaths& components) {
    int64_t n = 0;
    auto st = io::ModelComponents::locate(ckpt_dir, components).open_dit();
    for (const auto& k : st.names()) n += st.info(k).numel();
    return n;
}

// Build the model with the chosen sharding (collective), report parameter counts and memory.
bool check_model(CheckRun& c) {
    try {
        EngineConfig config = c.config;
        config.prompt_extend_method.clear();
        Engine engine(config);
        const EngineInfo info = engine.info_with_memory();
        c.line(true, strfmt("model built: %s on %s", info.model_variant.c_str(), info.device.c_str()));
        if (c.device.is_cuda()) {
            // Which kernel the DiT's attention gets here (Note [Attention backend] in engine/dit/layers.cpp).
            const std::string kernel =
                dit::attention_kernel_name(c.device, dit::ModelOptions::from_environment().attention);
            c.line(true, kernel == "fa3"     ? std::string("attention: FlashAttention-3 (bf16, head dim 128)")
                         : kernel == "cudnn" ? std::string("attention: cuDNN fused attention")
                                             : "attention: WAN_ATTENTION=" + kernel);
        }
        c.line(true, strfmt("DiT parameters: %lld (%s)", static_cast<long long>(dit_parameter_count(c.ckpt_dir, c.config.components)),
                            c.config.layout.dit_fsdp && c.facts.size > 1 ? "sharded over the ranks" : "every rank holds all"));
        for (size_t r = 0; r < info.gpu_memory_used_gb.size(); ++r)
            c.line(true, strfmt("rank %zu GPU memory after loading: %.2f of %.1f GB", r, info.gpu_memory_used_gb[r],
                                info.gpu_memory_total_gb[r]));
    } catch (const std::exception& e) {
        c.line(false, std::string("model build: ") + e.what());
    }
    return true;
}

// In order: each needs what the ones before it found (the device, the checkpoint's heads, a working backend).
const Check kChecks[] = {
    {"mpi", check_mpi},               {"devices", check_devices}, {"checkpoint", check_checkpoint},
    {"layout", check_layout},         {"collective", check_collective}, {"model", check_model},
};

}  // namespace

int run_setup_check(const EngineConfig& config, std::ostream& out) {
    CheckRun c{config, out};
    c.facts = dist::rank_facts(c.world);
    c.config.layout.world = c.facts.size;
    set_log_rank(c.facts.rank);
    for (const Check& check : kChecks) {
        if (!check.run(c)) {
            WAN_LOG_DEBUG("setup check stopped after the %s check", check.name);
            break;
        }
    }
    const bool passed = dist::all_ok(c.world, c.all_passed);
    if (c.facts.rank == 0) out << (passed ? "setup check passed\n" : "setup check FAILED\n");
    return passed ? 0 : 1;
}

}  // namespace wan::server
