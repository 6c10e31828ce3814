// LoraSet: merging stacked LoRAs into live weights and restoring the base values between jobs.
#include "lora/lora.h"

#include "core/clock.h"
#include "core/core.h"
#include "dit/dit.h"

#include <ATen/ATen.h>
#include <c10/util/accumulate.h>
#if WAN_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <ATen/cuda/CUDAContext.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <sys/stat.h>
#include <unordered_map>

namespace wan::lora {

// Note [Restoring base weights]
// Invariant: a parameter without an entry in base_ holds its base (checkpoint) value; one with an entry holds
// base + the current LoRAs' delta, and base_ has its base value on the host. apply() first copies every base_
// entry back (exact: a plain copy), then merges the new list; entries the new list does not touch are freed.
// Subtracting the old delta instead would need no copy but is not exact in bf16 (two roundings), and reloading
// from the checkpoint would cost a disk read per job. Where the copies sit is chosen once per apply() for the
// parameters it backs up (backup_device): on the GPU a copy and a restore are device-to-device (28 GB in tens
// of milliseconds on an H200); in pageable host memory each is a synchronous PCIe copy (14B, every Linear:
// ~28 GB, tens of seconds the first time, while the host pages are faulted in).

// Note [Sharded weights]
// The merge works on ParameterParts: whole tensors by name (resident weights, the same list merged into each
// rank's own copy under USP or cfg-parallel), or, with FSDP (--dit-fsdp), each rank's part of every block
// parameter: the elements [offset, offset + n) of the flattened parameter that its shard holds
// (dist::ShardedParameters::local_parts). A rank computes only its part of each delta (delta_part: for a low-rank
// delta only the rows of up @ down its elements fall in, at most two of them partial), adds it to its shard
// and keeps a copy of that part only: no rank gathers a weight or forms a whole delta, and the merge's time and
// the base copies' memory are divided by the number of ranks. The elements and their arithmetic are the
// resident merge's, so FSDP with LoRAs equals one process (up to the GEMM's row-blocking on the GPU).

// Note [LoRA on fp8 weights]
// A model holding fp8 weights (dit Note [FP8 weights]) exposes each block Linear as its codes ("<name>.weight",
// uint8) and their per-row scales ("<name>.weight_scale"). The merge dequantises, adds the delta in f32 and
// quantises again by the same rule (new codes and scales). Both tensors are backed up as they were, so the
// restore before the next job's merge puts back the loaded codes bit for bit and every merge starts from them.

// Note [Hashing LoRA files]
// The SHA-256 of each file (for the sidecar) is the largest part of reading a LoRA: the whole file goes through
// the digest (0.6 GB for a rank-64 14B LoRA), while the parse only reads the header and makes views. So the
// digest runs on its own thread from the moment the file parses, over its own mapping of the same pages the
// merge reads, and apply() waits for it only after the merge. A process-wide cache (sha256_file_cached) keeps
// each file version's digest, so a second expert or a later LoraSet does not hash the file again.

struct LoraSet::CachedFile {
    LoraFile file;
    std::string identity;
    std::shared_future<std::string> sha256;  ///< Note [Hashing LoRA files]
};

namespace {

// Inode, size and modification time: a changed (or replaced) file is read and hashed again.
std::string file_identity(const std::string& path) {
    struct stat st {};
    WAN_CHECK(::stat(path.c_str(), &st) == 0, "LoRA file '%s' cannot be read: %s", path.c_str(), std::strerror(errno));
    WAN_CHECK(S_ISREG(st.st_mode), "LoRA file '%s' is not a regular file", path.c_str());
    return strfmt("%llu:%lld:%lld.%09ld", static_cast<unsigned long long>(st.st_ino), static_cast<long long>(st.st_size),
                  static_cast<long long>(st.st_mtim.tv_sec), static_cast<long>(st.st_mtim.tv_nsec));
}

std::string base_name(const std::string& path) {
    const size_t slash = path.find_last_of("/\\");
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

using PartIndex = std::unordered_map<std::string, const dit::ParameterPart*>;

PartIndex index_of(const ParameterParts& parts) {
    PartIndex out;
    for (const auto& p : parts) out.emplace(p.name, &p);
    return out;
}

const dit::ParameterPart& find_part(const PartIndex& index, const std::string& name) {
    const auto it = index.find(name);
    WAN_CHECK(it != index.end(), "LoRA merge: the model exposes no parameter '%s'", name.c_str());
    return *it->second;
}

bool is_whole(const dit::ParameterPart& p) { return p.offset == 0 && p.values.sizes().vec() == p.shape; }

ParameterParts whole_parts(const NamedParameters& params) {
    ParameterParts out;
    for (const auto& [name, t] : params) out.push_back({name, t.sizes().vec(), 0, t});
    return out;
}

void wait_for_device(c10::Device device) {
#if WAN_HAVE_CUDA
    if (!device.is_cuda()) return;
    c10::cuda::CUDAGuard guard(device.index());
    cudaDeviceSynchronize();
#else
    (void)device;
#endif
}

/// What `device` could still hand out (the driver's free memory plus what the caching allocator holds unused)
/// and its size, in bytes; zeros when unknown (CPU builds).
struct DeviceMemory {
    int64_t available = 0, total = 0;
};
DeviceMemory device_memory(c10::Device device) {
    DeviceMemory m;
#if WAN_HAVE_CUDA
    c10::cuda::CUDAGuard guard(device.index());
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return m;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    m.available = static_cast<int64_t>(free_b) + stats.reserved_bytes[0].current - stats.allocated_bytes[0].current;
    m.total = static_cast<int64_t>(total_b);
#else
    (void)device;
#endif
    return m;
}

// The scale of an fp8 weight (Note [LoRA on fp8 weights]) belongs to the weight's merge.
constexpr const char* kScaleSuffix = "_scale";
std::string merged_parameter_of(const std::string& name) {
    const std::string tail = std::string(".weight") + kScaleSuffix;
    if (name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0)
        return name.substr(0, name.size() - std::strlen(kScaleSuffix));
    return name;
}

// codes/scale ← quantise(dequantise(codes, scale) + delta), in place.
void merge_into_fp8(at::Tensor& codes, at::Tensor& scale, const at::Tensor& delta) {
    const dit::Fp8Weight q = dit::quantize_fp8(dit::dequantize_fp8(codes, scale, at::kFloat).add_(delta));
    codes.copy_(q.codes);
    scale.copy_(q.scale);
}

}  // namespace

const LoraSet::CachedFile& LoraSet::load(const std::string& path, const KeyMapper& mapper) {
    const std::string identity = file_identity(path);
    auto& slot = files_[path];
    if (!slot || slot->identity != identity) {
        slot.reset();  // never keep a stale parse if reading fails
        auto fresh = std::make_shared<CachedFile>(CachedFile{LoraFile::read(path, mapper), identity, {}});
        fresh->sha256 = std::async(std::launch::async, sha256_file_cached, path).share();
        slot = std::move(fresh);
    }
    return *slot;
}

std::vector<AppliedLora> LoraSet::apply(const NamedParameters& params, const std::vector<LoraSpec>& specs) {
    return apply(whole_parts(params), specs);
}

std::vector<AppliedLora> LoraSet::apply(const ParameterParts& params, const std::vector<LoraSpec>& specs) {
    std::vector<std::string> identities;
    try {
        for (const auto& s : specs) identities.push_back(file_identity(s.path));
    } catch (...) {
        restore(params);  // as for any other error: base weights, no LoRAs
        throw;
    }
    if (specs == current_ && identities == current_identity_) return applied_;

    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> names;
    names.reserve(params.size());
    for (const auto& p : params) names.push_back(p.name);
    try {
        // Read and check everything before any weight changes.
        const KeyMapper mapper(names);
        const auto index = index_of(params);
        std::vector<const CachedFile*> files;
        const auto t_read = std::chrono::steady_clock::now();
        for (const auto& s : specs) {
            const CachedFile& f = load(s.path, mapper);
            for (const auto& d : f.file.deltas()) check_delta_shape(d, find_part(index, d.target).shape, s.path);
            files.push_back(&f);
        }
        read_seconds_ = seconds_since(t_read);
        merge(params, specs, files);
        const auto t_hash = std::chrono::steady_clock::now();
        for (size_t i = 0; i < files.size(); ++i) applied_[i].sha256 = files[i]->sha256.get();
        hash_wait_seconds_ = seconds_since(t_hash);
        current_identity_ = identities;
    } catch (...) {
        restore(params);
        files_.clear();  // never keep a failed digest (a file unreadable for a moment) for the next apply()
        throw;
    }
    if (!specs.empty()) {
        const std::string shard =
            sharded_ ? strfmt("; FSDP: this rank merged %lld of the %lld elements the LoRAs change (its shard)",
                              static_cast<long long>(merged_elements_), static_cast<long long>(touched_elements_))
                     : std::string();
        WAN_LOG_INFO("LoRA: merged %zu file(s) into %zu parameter(s) in %.2f s (files read %.2f s, base restored "
                     "%.2f s, backed up %.2f s, merged %.2f s, then waited %.2f s for the SHA-256 computed meanwhile); "
                     "%.1f MB of base weights kept (%.1f MB of it on the GPU) for the next job's restore%s",
                     specs.size(), merged_parameters(), seconds_since(t0), read_seconds_, merge_seconds_.restore,
                     merge_seconds_.backup, merge_seconds_.arithmetic, hash_wait_seconds_,
                     static_cast<double>(backup_bytes()) / 1e6, static_cast<double>(device_backup_bytes()) / 1e6,
                     shard.c_str());
    }
    return applied_;
}

void LoraSet::merge(const ParameterParts& params, const std::vector<LoraSpec>& specs,
                    const std::vector<const CachedFile*>& files) {
    const auto index = index_of(params);
    // Which (delta, strength, file) touch each parameter, in parameter order so that the merge is deterministic.
    struct Use {
        const ParameterDelta* delta;
        double strength;
        const std::string* file;
    };
    std::map<std::string, std::vector<Use>> by_target;
    applied_.clear();
    for (size_t i = 0; i < specs.size(); ++i) {
        const LoraFile& f = files[i]->file;
        for (const auto& d : f.deltas()) by_target[d.target].push_back({&d, specs[i].strength, &specs[i].path});
        AppliedLora a;
        a.spec = specs[i];
        a.file_name = base_name(specs[i].path);
        a.style = f.style();
        a.parameters = static_cast<int>(f.deltas().size());
        a.skipped_image_keys = f.skipped_image_keys();
        applied_.push_back(a);
        WAN_LOG_INFO("LoRA '%s' (%s keys, strength %g): %d parameter(s)", specs[i].path.c_str(), a.style.c_str(),
                     specs[i].strength, a.parameters);
    }
    // Back to base: every parameter the previous list touched.
    merge_seconds_ = {};
    auto clock = std::chrono::steady_clock::now();
    auto lap = [&clock](double& into) {  // host copies are synchronous; device-side ones are only queued here
        const auto now = std::chrono::steady_clock::now();
        into += std::chrono::duration<double>(now - clock).count();
        clock = now;
    };
    for (auto it = base_.begin(); it != base_.end();) {
        at::Tensor t = find_part(index, it->first).values;
        t.copy_(it->second);
        it = by_target.count(merged_parameter_of(it->first)) ? std::next(it) : base_.erase(it);
    }
    lap(merge_seconds_.restore);
    current_ = specs;
    // Where this merge's new base copies go, decided once for all of them (Note [Restoring base weights]).
    int64_t new_bytes = 0;
    c10::Device weights_on(c10::kCPU);
    for (const auto& entry : by_target) {
        if (base_.count(entry.first)) continue;
        const at::Tensor& t = find_part(index, entry.first).values;
        new_bytes += static_cast<int64_t>(t.nbytes());
        weights_on = t.device();
    }
    const c10::Device keep_on = backup_device(weights_on, new_bytes);
    merged_elements_ = touched_elements_ = 0;
    sharded_ = false;
    for (const auto& [name, uses] : by_target) {
        const dit::ParameterPart& part = find_part(index, name);
        at::Tensor t = part.values;
        touched_elements_ += c10::multiply_integers(part.shape);
        sharded_ = sharded_ || !is_whole(part);
        if (t.numel() == 0) continue;  // a parameter held entirely by other ranks (FSDP)
        auto back_up = [&](const std::string& n, const at::Tensor& v) {
            if (!base_.count(n)) base_.emplace(n, v.detach().to(keep_on, v.scalar_type(), false, true));
        };
        back_up(name, t);
        at::Tensor scale;  // defined for fp8 codes
        if (t.scalar_type() == at::kByte) {
            WAN_CHECK(is_whole(part), "LoRA merge: fp8 weight '%s' is sharded; fp8 weights merge whole only",
                      name.c_str());
            scale = find_part(index, name + kScaleSuffix).values;
            back_up(name + kScaleSuffix, scale);
        }
        lap(merge_seconds_.backup);
        at::Tensor sum;
        for (const Use& u : uses) {
            // Only this part's elements (all of them for a whole parameter; Note [Sharded weights]).
            at::Tensor d = delta_part(*u.delta, part.shape, part.offset, t.numel(), t.device(), *u.file, u.strength)
                               .view(t.sizes());
            sum = sum.defined() ? sum.add_(d) : d;
        }
        merged_elements_ += t.numel();
        // f32 arithmetic, one rounding to the weight's dtype (a no-op cast for f32 weights).
        if (scale.defined())
            merge_into_fp8(t, scale, sum);
        else if (t.scalar_type() == at::kFloat)
            t.add_(sum);
        else
            t.copy_(sum.add_(t.to(at::kFloat)));
        // On a GPU this is the launch time: the queued work finishes inside the next parameter's backup copy
        // (synchronous when it goes to the host), which therefore also counts the previous one's arithmetic.
        lap(merge_seconds_.arithmetic);
    }
    wait_for_device(weights_on);  // the logged merge time is the real one, not the launch time
    lap(merge_seconds_.arithmetic);
}

std::vector<AppliedLora> LoraSet::apply(dit::WanModel& model, const std::vector<LoraSpec>& specs) {
    if (specs.empty() && base_.empty()) return {};
    try {
        auto out = apply(model.parameter_parts(), specs);
        model.weights_changed();
        return out;
    } catch (...) {
        model.weights_changed();
        throw;
    }
}

void LoraSet::restore(const NamedParameters& params) { restore(whole_parts(params)); }

void LoraSet::restore(const ParameterParts& params) {
    const auto index = index_of(params);
    for (const auto& [name, base] : base_) {
        const auto it = index.find(name);
        if (it != index.end()) it->second->values.copy_(base);
    }
    base_.clear();
    current_.clear();
    current_identity_.clear();
    applied_.clear();
}

LoraSet::BackupPlace LoraSet::parse_backup_place(const std::string& text, const char* option) {
    if (text == "auto") return BackupPlace::Auto;
    if (text == "device") return BackupPlace::Device;
    if (text == "host") return BackupPlace::Host;
    throw Error(strfmt("%s '%s': expected auto, device or host", option, text.c_str()));
}

c10::Device LoraSet::backup_device(c10::Device device, int64_t bytes) const {
    const c10::Device host(c10::kCPU);
    if (!device.is_cuda() || backup_place_ == BackupPlace::Host || bytes == 0) return host;
    if (backup_place_ == BackupPlace::Device) return device;
    const double gb = 1e9;
    const DeviceMemory memory = device_memory(device);
    const double reserve = std::max(kDeviceReserveGb * gb, 0.25 * static_cast<double>(memory.total));
    const double left = static_cast<double>(memory.available) - static_cast<double>(bytes);
    if (left >= reserve) return device;
    WAN_LOG_INFO("LoRA: the base copies (%.1f GB) go to host memory: on %s they would leave %.1f GB free, less "
                 "than the %.1f GB kept for the generation (--lora-backup device forces the GPU)",
                 bytes / gb, device.str().c_str(), left / gb, reserve / gb);
    return host;
}

int64_t LoraSet::device_backup_bytes() const {
    int64_t n = 0;
    for (const auto& b : base_)
        if (b.second.device().is_cuda()) n += static_cast<int64_t>(b.second.nbytes());
    return n;
}

size_t LoraSet::merged_parameters() const {
    size_t n = 0;
    for (const auto& b : base_) n += merged_parameter_of(b.first) == b.first;  // an fp8 scale is its weight's
    return n;
}

int64_t LoraSet::backup_bytes() const {
    int64_t n = 0;
    for (const auto& b : base_) n += static_cast<int64_t>(b.second.nbytes());
    return n;
}

}  // namespace wan::lora
