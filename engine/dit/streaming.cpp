// DiT blocks streamed from host memory (streaming.h).
#include "dit/streaming.h"
#include "dit/internal.h"

#include "core/core.h"

#include <ATen/ATen.h>

#if WAN_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>

namespace wan::dit {

// Note [Streamed DiT blocks]
// The forward walks the blocks in order, so one block of lookahead suffices: acquire(i) hands out block i and
// starts copying block i+1 (when that one is streamed) on a side stream, which overlaps the copy with block i's
// compute. The first `resident` blocks stay on the device, so the first copy starts at acquire(resident − 1)
// and hides behind that block; with no resident block, block 0 is copied on demand. Nothing is prefetched past
// the last block: a copy carried over to the next forward could predate a LoRA merge into the host weights.
// On CUDA the copy runs from pinned memory on the side stream; the compute stream waits on an event recorded
// after it, and each device tensor is marked as used on the compute stream (record_stream) so that the caching
// allocator does not hand its memory to the next copy while block i still reads it. Peak device memory for
// weights is then the resident blocks plus two streamed blocks. On the CPU "host" and "device" are the same
// memory; the copies are plain clones, which keeps the logic testable there.

namespace {

int64_t bytes_of(const std::vector<ParameterSpec>& specs, Precision precision, bool fp8) {
    int64_t total = 0;
    for (const auto& s : specs) {
        int64_t n = 1;
        for (int64_t d : s.shape) n *= d;
        if (fp8 && is_fp8_linear(s))
            total += n + s.shape[0] * 4;  // a byte per code, an f32 scale per row
        else
            total += n * static_cast<int64_t>(c10::elementSize(parameter_dtype(s, precision)));
    }
    return total;
}

BlockWeights copy_block(const BlockWeights& from, c10::Device device, bool pin) {
    BlockWeights to = from;
    for (at::Tensor* f : block_tensors(to)) {
        at::Tensor& t = *f;
        if (pin)
            t = t.pin_memory();
        else
            t = t.to(device, t.scalar_type(), /*non_blocking=*/device.is_cuda(), /*copy=*/true);
    }
    return to;
}

}  // namespace

int64_t block_weight_bytes(const io::WanConfig& config, Precision precision, bool fp8) {
    return bytes_of(block_parameter_specs(config, 0), precision, fp8);
}

int64_t root_weight_bytes(const io::WanConfig& config, Precision precision) {
    const auto all = expected_parameter_shapes(config);
    std::vector<ParameterSpec> root;
    for (const auto& s : all)
        if (s.name.rfind("blocks.", 0) != 0) root.push_back(s);
    return bytes_of(root, precision, false);
}

int64_t resident_block_count(int64_t budget_bytes, int64_t block_bytes, int64_t num_blocks) {
    WAN_CHECK(block_bytes > 0 && num_blocks >= 0, "resident_block_count: block size must be positive");
    if (budget_bytes >= block_bytes * num_blocks) return num_blocks;
    const int64_t for_resident = budget_bytes - 2 * block_bytes;  // the two streaming buffers
    return std::clamp<int64_t>(for_resident / block_bytes, 0, num_blocks);
}

struct StreamedBlockWeights::Pending {
    BlockWeights weights;
#if WAN_HAVE_CUDA
    at::cuda::CUDAEvent copied;  ///< recorded on the side stream after the copy
#endif
};

struct StreamedBlockWeights::CudaState {
#if WAN_HAVE_CUDA
    explicit CudaState(c10::Device d) : side(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, d.index())) {}
    c10::cuda::CUDAStream side;
#endif
};

std::shared_ptr<StreamedBlockWeights> StreamedBlockWeights::load(const io::WanConfig& config,
                                                                 const io::TensorStore& store,
                                                                 const ModelOptions& options, int64_t resident) {
    WAN_CHECK(resident >= 0 && resident <= config.num_layers, "streamed DiT: %lld resident blocks of %lld",
              static_cast<long long>(resident), static_cast<long long>(config.num_layers));
    ModelOptions host = options;
    host.device = c10::Device(c10::kCPU);
    host.precision = detail::resolve_precision(options);  // the device's precision, not the CPU's default
    host.weight_dtype = resolve_weight_dtype(options, config, store);
    // Quantising is an elementwise pass over the whole weight: on the GPU rather than on the host's cores.
    const bool via_device = options.device.is_cuda() && host.weight_dtype == WeightDtype::Fp8;
    ModelOptions device = host;
    device.device = options.device;
    std::vector<BlockWeights> on_device, on_host;
    for (int64_t i = 0; i < config.num_layers; ++i) {
        if (i < resident) {
            on_device.push_back(load_block_weights(config, store, i, device));
        } else if (via_device) {
            const BlockWeights w = load_block_weights(config, store, i, device);
            on_host.push_back(copy_block(copy_block(w, host.device, /*pin=*/false), host.device, /*pin=*/true));
        } else {
            BlockWeights w = load_block_weights(config, store, i, host);
            on_host.push_back(options.device.is_cuda() ? copy_block(w, host.device, /*pin=*/true) : std::move(w));
        }
    }
    return std::make_shared<StreamedBlockWeights>(std::move(on_device), std::move(on_host), options.device);
}

std::shared_ptr<StreamedBlockWeights> StreamedBlockWeights::from_device_blocks(std::vector<BlockWeights> blocks,
                                                                               c10::Device device, int64_t resident) {
    const auto n = static_cast<int64_t>(blocks.size());
    WAN_CHECK(resident >= 0 && resident <= n, "streamed DiT: %lld resident blocks of %lld",
              static_cast<long long>(resident), static_cast<long long>(n));
    std::vector<BlockWeights> on_device, on_host;
    for (int64_t i = 0; i < n; ++i) {
        BlockWeights& w = blocks[static_cast<size_t>(i)];
        if (i < resident) {
            on_device.push_back(std::move(w));
            continue;
        }
        BlockWeights host = copy_block(w, c10::Device(c10::kCPU), /*pin=*/false);
        on_host.push_back(device.is_cuda() ? copy_block(host, c10::Device(c10::kCPU), /*pin=*/true) : std::move(host));
        w = BlockWeights();  // the device copy goes as soon as the host one exists
    }
    return std::make_shared<StreamedBlockWeights>(std::move(on_device), std::move(on_host), device);
}

StreamedBlockWeights::StreamedBlockWeights(std::vector<BlockWeights> device_blocks,
                                           std::vector<BlockWeights> host_blocks, c10::Device device)
    : device_(std::move(device_blocks)), host_(std::move(host_blocks)), device_type_(device) {
#if WAN_HAVE_CUDA
    if (device.is_cuda()) cuda_ = std::make_unique<CudaState>(device);
#endif
}

StreamedBlockWeights::~StreamedBlockWeights() = default;

void StreamedBlockWeights::start_copy(int64_t i, Event::Kind kind) {
    auto p = std::make_shared<Pending>();
    const BlockWeights& src = host_.at(static_cast<size_t>(i - resident_blocks()));
#if WAN_HAVE_CUDA
    if (cuda_) {
        const c10::cuda::CUDAStreamGuard guard(cuda_->side);
        p->weights = copy_block(src, device_type_, /*pin=*/false);
        p->copied.record(cuda_->side);
    } else {
        p->weights = copy_block(src, device_type_, /*pin=*/false);
    }
#else
    p->weights = copy_block(src, device_type_, /*pin=*/false);
#endif
    pending_[i] = std::move(p);
    events_.push_back({kind, i});
}

BlockWeights StreamedBlockWeights::acquire(int64_t i) {
    WAN_CHECK(i >= 0 && i < num_blocks(), "streamed DiT: block %lld of %lld", static_cast<long long>(i),
              static_cast<long long>(num_blocks()));
    std::lock_guard<std::mutex> lock(mu_);
    if (events_.size() > 4096) events_.erase(events_.begin(), events_.begin() + 2048);  // a bounded recent history
    const int64_t next = i + 1;
    const bool prefetch_next = next < num_blocks() && next >= resident_blocks() && !pending_.count(next);
    if (i < resident_blocks()) {
        if (prefetch_next) start_copy(next, Event::Prefetch);
        return device_[static_cast<size_t>(i)];
    }
    if (pending_.count(i))
        events_.push_back({Event::Hit, i});
    else
        start_copy(i, Event::Fetch);  // queued before the prefetch below, so it is not waiting behind it
    auto it = pending_.find(i);
    std::shared_ptr<Pending> p = it->second;
    pending_.erase(it);
    if (prefetch_next) start_copy(next, Event::Prefetch);
#if WAN_HAVE_CUDA
    if (cuda_) {
        const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device_type_.index());
        p->copied.block(compute);
        for (at::Tensor* t : block_tensors(p->weights)) t->record_stream(compute);
    }
#endif
    return p->weights;
}

void StreamedBlockWeights::release(int64_t /*i*/) {}

std::optional<BlockWeights> StreamedBlockWeights::stored(int64_t i) {
    WAN_CHECK(i >= 0 && i < num_blocks(), "streamed DiT: block %lld of %lld", static_cast<long long>(i),
              static_cast<long long>(num_blocks()));
    return i < resident_blocks() ? device_[static_cast<size_t>(i)] : host_[static_cast<size_t>(i - resident_blocks())];
}

void StreamedBlockWeights::weights_changed() {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.clear();
}

std::vector<StreamedBlockWeights::Event> StreamedBlockWeights::events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
}

void StreamedBlockWeights::clear_events() {
    std::lock_guard<std::mutex> lock(mu_);
    events_.clear();
}

}  // namespace wan::dit
