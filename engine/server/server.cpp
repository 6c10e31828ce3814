#include "server/server.h"

#include "core/sidecar.h"

#include "dist/dist.h"
#include "dit/dit.h"
#include "io/component_files.h"
#include "io/io.h"
#include "pipeline/pipeline.h"
#include "protocol/protocol.h"
#if WAN_HAVE_FFMPEG
#include "video/video.h"
#endif
#if WAN_HAVE_EXTEND
#include "extend/extend.h"
#endif

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/InferenceMode.h>
#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#endif
#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <random>
#include <thread>

namespace wan::server {

namespace {

using Clock = std::chrono::steady_clock;

int local_rank_of(MPI_Comm world, int* local_size) {
    MPI_Comm node;
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int r = 0;
    MPI_Comm_rank(node, &r);
    MPI_Comm_size(node, local_size);
    MPI_Comm_free(&node);
    return r;
}

/// This rank's device: cuda:<local rank> when CUDA is used, else the CPU. Clear error when the node has
/// more ranks than GPUs.
c10::Device pick_device(const std::string& requested, int local_rank, int local_size) {
    if (requested == "cpu" || (requested == "auto" && !at::hasCUDA())) return c10::Device(c10::kCPU);
    WAN_CHECK(at::hasCUDA(), "--device cuda: this build or machine has no CUDA device");
    const int gpus = static_cast<int>(at::getNumGPUs());
    WAN_CHECK(local_size <= gpus,
              "%d processes run on this node but it has %d GPU(s): start at most %d (one per GPU), e.g. "
              "mpirun -np %d, or use --device cpu",
              local_size, gpus, gpus, gpus);
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

std::pair<double, double> memory_gb(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
        const double used = static_cast<double>(stats.reserved_bytes[0].current) / 1e9;
        const double total = static_cast<double>(at::cuda::getDeviceProperties(device.index())->totalGlobalMem) / 1e9;
        return {used, total};
    }
#endif
    (void)device;
    return {0.0, 0.0};
}

std::string device_description(c10::Device device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) {
        size_t free_b = 0, total_b = 0;
        c10::cuda::CUDAGuard g(device.index());
        cudaMemGetInfo(&free_b, &total_b);
        return strfmt("%s (%s, %.1f of %.1f GB free)", device.str().c_str(),
                      at::cuda::getDeviceProperties(device.index())->name, free_b / 1e9, total_b / 1e9);
    }
#endif
    return device.str();
}

int64_t draw_seed() {
    std::random_device rd;
    std::uniform_int_distribution<int64_t> pick(0, INT64_MAX);
    return pick(rd);
}

/// Gathers one string per rank to rank 0 (for the setup check's per-rank lines).
std::vector<std::string> gather_strings(MPI_Comm world, const std::string& mine) {
    int rank = 0, size = 1;
    MPI_Comm_rank(world, &rank);
    MPI_Comm_size(world, &size);
    int n = static_cast<int>(mine.size());
    std::vector<int> lens(size), displs(size);
    MPI_Gather(&n, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, world);
    int total = 0;
    for (int i = 0; i < size; ++i) {
        displs[i] = total;
        total += lens[i];
    }
    std::string all(static_cast<size_t>(rank == 0 ? total : 0), '\0');
    MPI_Gatherv(mine.data(), n, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0, world);
    std::vector<std::string> out;
    if (rank == 0)
        for (int i = 0; i < size; ++i) out.push_back(all.substr(static_cast<size_t>(displs[i]), static_cast<size_t>(lens[i])));
    return out;
}

}  // namespace

std::string clean_model_text(const std::string& text) {
    std::string out;
    out.reserve(text.size());
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = s[i];
        if (c < 0x80) {
            if (c >= 0x20 ? c != 0x7f : (c == '\t' || c == '\n')) out += static_cast<char>(c);
            else if (c == '\r' && (i + 1 >= n || s[i + 1] != '\n')) out += '\n';  // a lone CR ends a line
            ++i;
            continue;
        }
        // One UTF-8 sequence: its length from the lead byte, continuation bytes, no overlong forms,
        // no surrogates, nothing above U+10FFFF (RFC 3629 table).
        size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) len = 2;
        else if (c >= 0xE0 && c <= 0xEF) len = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        size_t good = 0;
        if (len > 0 && i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
            good = 2;
            while (good < len && i + good < n && s[i + good] >= 0x80 && s[i + good] <= 0xBF) ++good;
        }
        if (len > 0 && good == len) {
            const bool c1_control = c == 0xC2 && s[i + 1] < 0xA0;  // U+0080..U+009F
            if (!c1_control) out.append(text, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD for the maximal invalid prefix, as decoders do
            i += good > 0 ? good : 1;
        }
    }
    const size_t b = out.find_first_not_of(" \t\n");
    if (b == std::string::npos) return {};
    return out.substr(b, out.find_last_not_of(" \t\n") - b + 1);
}

std::string sidecar_json(const GenerationRequest& resolved, const GenerationResult& result, const EngineInfo& info,
                         const std::string& codec, double teacache_threshold, int dit_steps_computed) {
    return make_sidecar(resolved, result, info, codec, teacache_threshold, dit_steps_computed).to_json();
}

struct EngineServer::Impl {
    MPI_Comm world = MPI_COMM_WORLD;
    int rank = 0, size = 1, local_rank = 0, local_size = 1;
    ServerConfig config;
    c10::Device device{c10::kCPU};
    std::unique_ptr<dist::Communicator> comm;
    std::unique_ptr<dist::Mesh> mesh;
    std::unique_ptr<pipeline::T2VPipeline> pipe;
#if WAN_HAVE_EXTEND
    std::unique_ptr<extend::PromptExtender> extender;
#endif
    bool shut_down = false;
    int64_t next_job = 1;

    EngineInfo info_with_memory();
};

EngineServer::EngineServer(MPI_Comm world, const ServerConfig& config) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.world = world;
    m.config = config;
    MPI_Comm_rank(world, &m.rank);
    MPI_Comm_size(world, &m.size);
    m.local_rank = local_rank_of(world, &m.local_size);
    set_log_rank(m.rank);
    // Ranks of a node share its cores: without this every rank starts one thread per core and they thrash.
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    if (m.local_size > 1 && cores > 0) at::set_num_threads(std::max(1, cores / m.local_size));
    std::string error;
    try {
        c10::InferenceMode guard;
        m.device = pick_device(config.device, m.local_rank, m.local_size);
        const bool demo = config.ckpt_dir.empty() && config.components.empty();
        const std::string dir = demo ? pipeline::demo_checkpoint_dir() : config.ckpt_dir;
        const io::WanConfig wan_config = io::ModelComponents::locate(dir, config.components).dit_config();
        dist::ParallelLayout layout;
        layout.world = m.size;
        layout.ulysses = config.ulysses_size;
        layout.ring = config.ring_size;
        layout.cfg_parallel = config.cfg_parallel;
        layout.dit_fsdp = config.dit_fsdp;
        layout.t5_fsdp = config.t5_fsdp;
        layout.validate(wan_config.num_heads);  // the same verdict on every rank: all leave together
        pipeline::EngineConfig ec;
        ec.ckpt_dir = config.ckpt_dir;
        ec.components = config.components;
        ec.device = m.device.is_cuda() ? "cuda" : "cpu";
        ec.device_index = m.device.is_cuda() ? m.device.index() : 0;
        ec.t5_cpu = config.t5_cpu;
        ec.offload_model = config.offload_model;
        ec.vae_dtype = config.vae_dtype;
        ec.vae_tile = config.vae_tile;
        ec.teacache_threshold = config.teacache_threshold;
        ec.fp8 = config.fp8;
        ec.dit_fsdp = config.dit_fsdp;
        ec.t5_fsdp = config.t5_fsdp;
        if (m.size > 1) {
            c10::DeviceGuard dg(m.device);
            m.comm = dist::make_communicator(world, m.device);
            m.mesh = std::make_unique<dist::Mesh>(*m.comm, layout, wan_config.num_heads);
            ec.mesh = m.mesh.get();
        }
        c10::DeviceGuard dg(m.device);
        m.pipe = std::make_unique<pipeline::T2VPipeline>(ec);
    } catch (const std::exception& e) {
        error = e.what();
        WAN_LOG_ERROR("%s", e.what());
    }
    // All ranks agree that loading worked before anyone waits for a request.
    int ok = error.empty() ? 1 : 0, all_ok = 0;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, world);
    if (!all_ok) {
        m.shut_down = true;  // nobody serves: no Shutdown message must be sent
        throw Error(error.empty() ? "another rank failed to load the engine (its error is in its log)" : error);
    }
}

EngineServer::~EngineServer() = default;

int EngineServer::rank() const { return impl_->rank; }
int EngineServer::world_size() const { return impl_->size; }

EngineInfo EngineServer::Impl::info_with_memory() {
    EngineInfo info = pipe->info();
    if (device.is_cuda()) (void)at::empty({1}, at::TensorOptions().device(device));  // allocator initialised
    auto [used, total] = memory_gb(device);
    double mine[2] = {used, total};
    std::vector<double> all(static_cast<size_t>(2 * size));
    MPI_Gather(mine, 2, MPI_DOUBLE, all.data(), 2, MPI_DOUBLE, 0, world);
    if (device.is_cuda()) {
        for (int r = 0; r < size; ++r) {
            info.gpu_memory_used_gb.push_back(all[2 * r]);
            info.gpu_memory_total_gb.push_back(all[2 * r + 1]);
        }
    }
    return info;
}

void EngineServer::serve() {
    Impl& m = *impl_;
    WAN_CHECK(m.rank != 0, "serve() is for ranks > 0; rank 0 is the head");
    c10::InferenceMode guard;
    c10::DeviceGuard dg(m.device);
    while (true) {
        protocol::Message msg;
        protocol::broadcast(m.world, 0, msg);
        switch (msg.tag) {
            case protocol::Tag::Generate: {
                try {
                    GenerationRequest req = GenerationRequest::from_json(msg.payload);
                    set_log_rank(m.rank);
                    m.pipe->generate(req);
                } catch (const pipeline::Cancelled&) {
                    // agreed with every rank at a step boundary; nothing to report here
                } catch (const std::exception& e) {
                    WAN_LOG_ERROR("job %lld failed: %s", static_cast<long long>(msg.job_id), e.what());
                }
                break;
            }
            case protocol::Tag::Info: (void)m.info_with_memory(); break;
            case protocol::Tag::Extend: break;  // computed on rank 0 only
            case protocol::Tag::Shutdown: return;
        }
    }
}

GenerationResult EngineServer::run(const GenerationRequest& request,
                                   const std::function<void(const ProgressInfo&)>& progress,
                                   const std::atomic<bool>& cancel) {
    Impl& m = *impl_;
    const auto t0 = Clock::now();
    GenerationResult result;
    result.job_id = request.job_id ? request.job_id : m.next_job;
    m.next_job = result.job_id + 1;
    if (m.rank != 0) {
        result.message = "run() is for the head rank";
        return result;
    }
    c10::InferenceMode guard;
    c10::DeviceGuard dg(m.device);
    GenerationRequest req = request;
    req.job_id = result.job_id;
    if (req.output_dir.empty()) req.output_dir = m.config.output_dir;
    std::vector<std::string> notes;
    try {
        if (req.seed < 0) req.seed = draw_seed();  // drawn once here, so every rank uses the same noise
        if (req.use_prompt_extend) {
            try {
                std::string extended = extend_prompt(req.prompt, req.extend_target_lang, req.seed);
                req.original_prompt = req.prompt;
                req.prompt = extended;
            } catch (const std::exception& e) {
                notes.push_back(std::string("prompt extension failed, the original prompt was used: ") + e.what());
                WAN_LOG_WARN("%s", notes.back().c_str());
            }
        }
        GenerationRequest resolved = m.pipe->resolve(req);  // invalid requests fail here, before any rank computes
#if WAN_HAVE_FFMPEG
        if (!resolved.output_dir.empty()) video::check_output_dir(resolved.output_dir);  // fail before compute
#endif
        if (m.size > 1) {
            protocol::Message msg{protocol::Tag::Generate, result.job_id, resolved.to_json()};
            protocol::broadcast(m.world, 0, msg);
        }
        pipeline::PipelineOutput out = m.pipe->generate(resolved, progress, &cancel);
        result.seed_used = out.seed_used;
        result.prompt_used = resolved.prompt;
        result.status = JobStatus::Ok;
        if (m.pipe->info().demo_checkpoint)
            notes.push_back("demo checkpoint (tiny, random weights): the video is noise-like by design");
        if (!resolved.output_dir.empty()) {
            if (progress) progress(ProgressInfo{Stage::Encode, 0, 1, std::chrono::duration<double>(Clock::now() - t0).count(), -1});
#if WAN_HAVE_FFMPEG
            at::Tensor u8 = pipeline::video_to_uint8(out.video);  // [F, H, W, 3]
            video::SaveOptions so;
            so.dir = resolved.output_dir;
            so.prompt = resolved.original_prompt.empty() ? resolved.prompt : resolved.original_prompt;
            so.when = std::time(nullptr);
            so.video.fps = 16;
            auto& md = so.video.metadata;
            md["title"] = resolved.prompt;
            md["prompt"] = resolved.prompt;
            if (!resolved.original_prompt.empty()) md["original_prompt"] = resolved.original_prompt;
            md["negative_prompt"] = resolved.negative_prompt;
            md["seed"] = std::to_string(out.seed_used);
            md["size"] = strfmt("%d*%d", resolved.width, resolved.height);
            md["frame_num"] = std::to_string(resolved.frame_num);
            md["sample_steps"] = std::to_string(resolved.sample_steps);
            md["sample_shift"] = strfmt("%g", resolved.sample_shift);
            md["sample_guide_scale"] = strfmt("%g", resolved.guide_scale);
            md["sample_solver"] = resolved.solver;
            md["model"] = m.pipe->info().model_variant;
            md["encoder"] = std::string("WanStudio ") + version_string();
            result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
            so.json_text = sidecar_json(resolved, result, m.pipe->info(), video::default_encoder(), m.config.teacache_threshold,
                                        out.steps_computed);
            video::SavedOutputs saved = video::save_outputs(so, {u8.data_ptr<uint8_t>(), static_cast<int>(u8.size(0)),
                                                                 static_cast<int>(u8.size(1)), static_cast<int>(u8.size(2))});
            if (saved.codec != "libx264") notes.push_back("libx264 is not available; encoded with " + saved.codec);
            result.video_path = saved.video_path;
            result.poster_path = saved.poster_path;
            result.json_path = saved.json_path;
#else
            notes.push_back("built without FFmpeg: no video file written (use --save-latents)");
#endif
        }
    } catch (const pipeline::Cancelled&) {
        result.status = JobStatus::Cancelled;
        result.message = "cancelled";
    } catch (const std::exception& e) {
        result.status = JobStatus::Failed;
        result.message = e.what();
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (result.status == JobStatus::Ok) {
        for (const auto& n : notes) result.message += (result.message.empty() ? "" : "; ") + n;
    }
    if (progress && result.status == JobStatus::Ok) progress(ProgressInfo{Stage::Done, 1, 1, result.seconds, result.seconds});
    return result;
}

std::string EngineServer::extend_prompt(const std::string& prompt, const std::string& target_lang, int64_t seed) {
    Impl& m = *impl_;
    WAN_CHECK(!m.config.prompt_extend_method.empty(),
              "prompt extension is not configured: start with --prompt-extend-method dashscope|local_qwen");
#if WAN_HAVE_EXTEND
    if (!m.extender) {
        extend::ExtendOptions opt;
        if (m.device.is_cuda()) opt.device = m.device.str();
        m.extender = extend::make_prompt_extender(m.config.prompt_extend_method, m.config.prompt_extend_model, opt);
    }
    extend::ExtendResult r = m.extender->extend(prompt, target_lang.empty() ? "zh" : target_lang, seed);
    WAN_CHECK(r.ok, "prompt extension failed: %s", r.message.c_str());
    std::string text = clean_model_text(r.prompt);
    WAN_CHECK(!text.empty(), "prompt extension failed: the model returned no text");
    return text;
#else
    (void)prompt;
    (void)target_lang;
    (void)seed;
    WAN_THROW("prompt extension is not available in this build (libcurl/PCRE2 were missing at build time)");
#endif
}

EngineInfo EngineServer::info() {
    Impl& m = *impl_;
    if (m.size > 1 && m.rank == 0 && !m.shut_down) {
        protocol::Message msg{protocol::Tag::Info, 0, ""};
        protocol::broadcast(m.world, 0, msg);
    }
    return m.info_with_memory();
}

void EngineServer::shutdown() {
    Impl& m = *impl_;
    if (m.shut_down) return;
    m.shut_down = true;
    if (m.size > 1 && m.rank == 0) {
        protocol::Message msg{protocol::Tag::Shutdown, 0, ""};
        protocol::broadcast(m.world, 0, msg);
    }
}

// ---- setup check -------------------------------------------------------------------------------------

int run_setup_check(MPI_Comm world, const ServerConfig& config, std::ostream& out) {
    int rank = 0, size = 1, local_size = 1;
    MPI_Comm_rank(world, &rank);
    MPI_Comm_size(world, &size);
    const int local_rank = local_rank_of(world, &local_size);
    set_log_rank(rank);
    bool all_passed = true;
    auto line = [&](bool ok, const std::string& what) {
        if (rank == 0) out << (ok ? "[ok]   " : "[FAIL] ") << what << "\n" << std::flush;
        all_passed = all_passed && ok;
    };
    auto agree_ok = [&](bool ok) {
        int v = ok ? 1 : 0, all = 0;
        MPI_Allreduce(&v, &all, 1, MPI_INT, MPI_MIN, world);
        return all == 1;
    };
    int provided = 0;
    MPI_Query_thread(&provided);
    line(provided >= MPI_THREAD_SERIALIZED,
         strfmt("MPI: %d rank(s), thread level %s", size,
                provided >= MPI_THREAD_MULTIPLE ? "MULTIPLE" : provided >= MPI_THREAD_SERIALIZED ? "SERIALIZED" : "too low"));

    // Devices, one line per rank.
    std::string mine, err;
    c10::Device device(c10::kCPU);
    try {
        device = pick_device(config.device, local_rank, local_size);
        mine = device_description(device);
    } catch (const std::exception& e) {
        err = e.what();
        mine = std::string("error: ") + e.what();
    }
    auto devices = gather_strings(world, strfmt("rank %d (local %d): %s", rank, local_rank, mine.c_str()));
    const bool dev_ok = agree_ok(err.empty());
    for (const auto& d : devices) line(dev_ok || d.find("error:") == std::string::npos, "device " + d);
    if (!dev_ok) return 1;

    // Checkpoint, config and layout.
    io::WanConfig wan_config;
    std::string ckpt_err;
    std::string dir;
    try {
        const bool demo = config.ckpt_dir.empty() && config.components.empty();
        dir = demo ? pipeline::demo_checkpoint_dir() : config.ckpt_dir;
        wan_config = io::ModelComponents::locate(dir, config.components).dit_config();
    } catch (const std::exception& e) {
        ckpt_err = e.what();
    }
    const bool ckpt_ok = agree_ok(ckpt_err.empty());
    line(ckpt_ok, ckpt_ok ? strfmt("checkpoint %s: DiT %s, %lld heads", dir.c_str(), wan_config.variant().c_str(),
                                   static_cast<long long>(wan_config.num_heads))
                          : "checkpoint: " + ckpt_err);
    if (!ckpt_ok) return 1;
    dist::ParallelLayout layout;
    layout.world = size;
    layout.ulysses = config.ulysses_size;
    layout.ring = config.ring_size;
    layout.cfg_parallel = config.cfg_parallel;
    layout.dit_fsdp = config.dit_fsdp;
    layout.t5_fsdp = config.t5_fsdp;
    auto errors = layout.errors(wan_config.num_heads);
    std::string layout_text = strfmt("layout: world %d = ulysses %d × ring %d%s%s%s", size, layout.ulysses, layout.ring,
                                     layout.cfg_parallel ? " × 2 (cfg-parallel)" : "", layout.dit_fsdp ? ", DiT FSDP" : "",
                                     layout.t5_fsdp ? ", T5 FSDP" : "");
    for (const auto& e : errors) layout_text += "\n       " + e;
    line(errors.empty(), layout_text);
    if (!errors.empty()) return 1;

    // A collective on the tensor backend: every rank gets 1 + 2 + … + N.
    std::unique_ptr<dist::Communicator> comm;
    bool coll_ok = true;
    std::string backend = "none";
    try {
        c10::DeviceGuard dg(device);
        comm = dist::make_communicator(world, device);
        backend = comm->backend();
        at::Tensor t = at::full({4}, static_cast<double>(rank + 1), at::TensorOptions().dtype(at::kFloat).device(device));
        comm->all_reduce(t, dist::ReduceOp::Sum);
        const double expect = size * (size + 1) / 2.0;
        coll_ok = t.to(at::kCPU).eq(expect).all().item<bool>();
    } catch (const std::exception& e) {
        coll_ok = false;
        WAN_LOG_ERROR("collective check: %s", e.what());
    }
    coll_ok = agree_ok(coll_ok);
    line(coll_ok, strfmt("all-reduce over %d rank(s) on %s (%s backend): every rank got %g", size, device.str().c_str(),
                         backend.c_str(), size * (size + 1) / 2.0));
    if (!coll_ok) return 1;
    comm.reset();

    // Build the model with the chosen sharding (collective), report parameter counts.
    try {
        ServerConfig c = config;
        c.prompt_extend_method.clear();
        EngineServer server(world, c);
        EngineInfo info = server.info();
        line(true, strfmt("model built: %s on %s", info.model_variant.c_str(), info.device.c_str()));
        if (device.is_cuda()) {
            // Which kernel the DiT's attention gets here (Note [Attention backend] in engine/dit/layers.cpp).
            const std::string kernel =
                dit::attention_kernel_name(device, dit::ModelOptions::from_environment().attention);
            line(true, kernel == "fa3"     ? std::string("attention: FlashAttention-3 (bf16, head dim 128)")
                       : kernel == "cudnn" ? std::string("attention: cuDNN fused attention")
                                           : "attention: WAN_ATTENTION=" + kernel);
        }
        line(true, strfmt("DiT parameters: %s (%s)", std::to_string(static_cast<long long>(
                                                          [&] { int64_t n = 0; auto st = io::ModelComponents::locate(dir, config.components).open_dit();
                                                                for (const auto& k : st.names()) n += st.info(k).numel(); return n; }())).c_str(),
                          config.dit_fsdp && size > 1 ? "sharded over the ranks" : "every rank holds all"));
        for (size_t r = 0; r < info.gpu_memory_used_gb.size(); ++r)
            line(true, strfmt("rank %zu GPU memory after loading: %.2f of %.1f GB", r, info.gpu_memory_used_gb[r],
                              info.gpu_memory_total_gb[r]));
        if (rank == 0) server.shutdown();
        else server.serve();
    } catch (const std::exception& e) {
        line(false, std::string("model build: ") + e.what());
    }
    const bool passed = agree_ok(all_passed);
    if (rank == 0) out << (passed ? "setup check passed\n" : "setup check FAILED\n");
    return passed ? 0 : 1;
}

}  // namespace wan::server
