#include "pipeline/parallel.h"

#include "core/core.h"

#include <ATen/ATen.h>

#include <atomic>
#include <algorithm>
#include <iterator>

namespace wan::pipeline {

at::Tensor UspSequenceParallel::self_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                               int64_t k_len) {
    dist::UspOptions opt;
    // Keys past the real token count are padding: excluded, as on one GPU, so that every layout gives the
    // single-process result (upstream USP attends them, §8.3 PARITY; moot for the standard 81-frame sizes).
    opt.valid_len = k_len;
    // Without a ring the local attention needs no log-sum-exp: the DiT's fastest kernel does it (FP8 included).
    opt.local_attention = [backend = attention_backend(), fp8 = attention_fp8()](
                              const at::Tensor& ql, const at::Tensor& kl, const at::Tensor& vl, int64_t valid) {
        return dit::attention(ql, kl, vl, valid, backend, fp8);
    };
    static std::atomic<bool> said{false};
    if (attention_fp8() != dit::AttentionFp8::Off && mesh_.ring().size() > 1 && !said.exchange(true))
        WAN_LOG_WARN("FP8 attention is not used with ring attention (--ring-size > 1); attention stays bf16");
    // With a ring, each block's attention and log-sum-exp from FlashAttention-3 where it runs (bf16 only: the
    // FP8 path is not wired to the ring's merge).
    opt.block_attention = [](const at::Tensor& ql, const at::Tensor& kl, const at::Tensor& vl) {
        return dit::flash_attention3_with_lse(ql, kl, vl);
    };
    return dist::usp_attention(q, k, v, mesh_.ulysses(), mesh_.ring(), opt);
}

at::Tensor UspSequenceParallel::gather_sequence(const at::Tensor& local) {
    // SP rank j owns token chunk j (Mesh: j = ring.rank()·U + ulysses.rank()), so rank order = sequence order.
    return mesh_.sp().all_gather(local, 1);
}

void UspSequenceParallel::all_reduce_sum(at::Tensor& t) {
    // The step cache's two change sums: every SP rank must take the same skip decision.
    mesh_.sp().all_reduce(t, dist::ReduceOp::Sum);
}

LoadMonitor::Share shard_share(const io::TensorStore& store, const ShardUnits& units, int64_t ranks, int64_t rank) {
    LoadMonitor::Share share;
    for (const std::vector<std::string>& unit : units.names) {
        // One flat buffer per kept dtype, in the order the tensors first appear (dist::ShardedParameters).
        std::vector<std::pair<at::ScalarType, std::vector<const io::TensorInfo*>>> groups;
        for (const std::string& name : unit) {
            if (!store.contains(name)) continue;  // the loader names what is missing; the plan only counts
            const at::ScalarType dtype = units.kept_dtype(name);
            auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == dtype; });
            if (g == groups.end()) {
                groups.emplace_back(dtype, std::vector<const io::TensorInfo*>());
                g = std::prev(groups.end());
            }
            g->second.push_back(&store.info(name));
        }
        for (const auto& group : groups) {
            const std::vector<const io::TensorInfo*>& infos = group.second;
            int64_t total = 0;
            for (const io::TensorInfo* t : infos) total += t->numel();
            const int64_t chunk = (total + ranks - 1) / ranks;
            int64_t offset = 0;
            for (const io::TensorInfo* t : infos) {
                const int64_t lo = std::max(offset, rank * chunk);
                const int64_t hi = std::min(offset + t->numel(), (rank + 1) * chunk);
                const uint64_t element = c10::elementSize(t->dtype);
                share.bytes_read[t->name] = hi > lo ? static_cast<uint64_t>(hi - lo) * element : 0;
                share.full_bytes += static_cast<uint64_t>(t->numel()) * element;
                offset += t->numel();
            }
        }
    }
    return share;
}

ShardUnits ShardedDitBlocks::units(const io::WanConfig& config, const dit::ModelOptions& options) {
    const dit::Precision prec = options.precision == dit::Precision::Auto
                                    ? (options.device.is_cuda() ? dit::Precision::BF16Mixed : dit::Precision::Float32)
                                    : options.precision;
    ShardUnits units;
    std::map<std::string, at::ScalarType> dtypes;
    for (int64_t i = 0; i < config.num_layers; ++i) {
        std::vector<std::string> names;
        for (const auto& spec : dit::block_parameter_specs(config, i)) {
            names.push_back(spec.name);
            dtypes[spec.name] = dit::parameter_dtype(spec, prec);
        }
        units.names.push_back(std::move(names));
    }
    units.kept_dtype = [dtypes](const std::string& name) { return dtypes.at(name); };
    return units;
}

ShardedDitBlocks::ShardedDitBlocks(const io::WanConfig& config, const io::TensorStore& store,
                                   std::unique_ptr<dist::Communicator> comm, const dit::ModelOptions& options)
    : config_(config), options_(options), comm_(std::move(comm)) {
    for (int64_t i = 0; i < config.num_layers; ++i)
        for (const auto& spec : dit::block_parameter_specs(config, i))
            WAN_CHECK(store.contains(spec.name) && store.info(spec.name).shape == spec.shape,
                      "%s: tensor '%s' missing or misshapen", store.source().c_str(), spec.name.c_str());
    ShardUnits units = ShardedDitBlocks::units(config, options);
    dist::ShardOptions so;
    so.device = options.device;
    // Shards are kept in the precision the forward uses (bf16 GEMM weights on the GPU, f32 islands), so a
    // gathered block needs no conversion and FSDP equals the resident model bit for bit.
    so.dtype_for = [kept = units.kept_dtype](const std::string& name, at::ScalarType) { return kept(name); };
    params_ = std::make_unique<dist::ShardedParameters>(store, units.names, *comm_, so);
}

dit::BlockWeights ShardedDitBlocks::acquire(int64_t i) {
    std::map<std::string, at::Tensor> full = params_->gather(i);
    if (i + 1 < config_.num_layers) params_->prefetch(i + 1);  // overlaps the next gather with this block (GPU)
    return dit::block_weights_from(config_, i, [&](const std::string& n) { return full.at(n); }, options_);
}

void ShardedDitBlocks::release(int64_t i) { params_->release(i); }

std::vector<dit::ParameterPart> ShardedDitBlocks::stored_parts(int64_t i) {
    std::vector<dit::ParameterPart> out;
    for (auto& p : params_->local_parts(i)) out.push_back({p.name, p.shape, p.offset, p.values});
    return out;
}

ShardUnits ShardedT5Weights::units(const text::UMT5Config& cfg, at::ScalarType dtype) {
    ShardUnits units;
    for (int64_t i = 0; i < cfg.num_layers; ++i) {
        const std::string p = "blocks." + std::to_string(i) + ".";
        units.names.push_back({p + "norm1.weight", p + "attn.q.weight", p + "attn.k.weight", p + "attn.v.weight",
                               p + "attn.o.weight", p + "norm2.weight", p + "ffn.gate.0.weight", p + "ffn.fc1.weight",
                               p + "ffn.fc2.weight", p + "pos_embedding.embedding.weight"});
    }
    units.kept_dtype = [dtype](const std::string&) { return dtype; };
    return units;
}

ShardedT5Weights::ShardedT5Weights(const io::TensorStore& store, const text::UMT5Config& cfg,
                                   std::unique_ptr<dist::Communicator> comm, c10::Device device, at::ScalarType dtype)
    : num_blocks_(cfg.num_layers), device_(device), dtype_(dtype), comm_(std::move(comm)) {
    dist::ShardOptions so;
    so.device = device;
    so.dtype_for = [dtype](const std::string&, at::ScalarType) { return dtype; };
    params_ = std::make_unique<dist::ShardedParameters>(store, units(cfg, dtype).names, *comm_, so);
    token_embedding_ = store.load("token_embedding.weight", device, dtype);
    norm_ = store.load("norm.weight", device, dtype);
}

const text::T5BlockWeights& ShardedT5Weights::acquire(int64_t i) {
    std::map<std::string, at::Tensor> full = params_->gather(i);
    if (i + 1 < num_blocks_) params_->prefetch(i + 1);
    const std::string p = "blocks." + std::to_string(i) + ".";
    current_.norm1 = full.at(p + "norm1.weight");
    current_.q = full.at(p + "attn.q.weight");
    current_.k = full.at(p + "attn.k.weight");
    current_.v = full.at(p + "attn.v.weight");
    current_.o = full.at(p + "attn.o.weight");
    current_.norm2 = full.at(p + "norm2.weight");
    current_.gate = full.at(p + "ffn.gate.0.weight");
    current_.fc1 = full.at(p + "ffn.fc1.weight");
    current_.fc2 = full.at(p + "ffn.fc2.weight");
    current_.pos_embedding = full.at(p + "pos_embedding.embedding.weight");
    return current_;
}

void ShardedT5Weights::release(int64_t i) {
    current_ = text::T5BlockWeights{};
    params_->release(i);
}

}  // namespace wan::pipeline
