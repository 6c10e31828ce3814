// FSDP-style parameter sharding: each rank reads and keeps 1/N of every unit's flattened parameters and
// all-gathers a unit's full tensors just before it runs. Ref: wan21-reference.md §8.2.
#include "dist/dist.h"

#include "core/core.h"
#include "io/io.h"

#include <ATen/ATen.h>

#if defined(WAN_HAVE_CUDA) && WAN_HAVE_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <set>

namespace wan::dist {

namespace {

struct Entry {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset = 0;  // in elements, inside its dtype group's flat buffer
    int64_t numel = 0;
};

/// The tensors of one unit that share a dtype: one flat buffer, padded to a multiple of N ranks.
struct Group {
    at::ScalarType dtype = at::kFloat;
    std::vector<Entry> entries;
    int64_t total = 0;  // unpadded elements
    int64_t chunk = 0;  // elements per rank
    at::Tensor shard;   // [chunk] this rank's elements
};

struct Unit {
    std::vector<Group> groups;
};

struct Gathered {
    std::vector<at::Tensor> full;  // per group: [N·chunk]
    int64_t failures = 0;          // the communicator's failures_settled() when started
#if defined(WAN_HAVE_CUDA) && WAN_HAVE_CUDA
    std::unique_ptr<at::cuda::CUDAEvent> done;  // recorded on the side stream after the all-gathers
#endif
};

}  // namespace

struct ShardedParameters::Impl {
    Communicator& comm;
    ShardOptions options;
    std::vector<Unit> units;
    std::map<int64_t, Gathered> gathered;
    int64_t bytes_read = 0;
    int64_t local_bytes = 0;
    int64_t total_bytes = 0;
#if defined(WAN_HAVE_CUDA) && WAN_HAVE_CUDA
    std::unique_ptr<c10::cuda::CUDAStream> side;
#endif

    Impl(Communicator& c, ShardOptions o) : comm(c), options(std::move(o)) {}

    void check_unit(int64_t u) const {
        WAN_CHECK(u >= 0 && u < static_cast<int64_t>(units.size()), "sharded parameters: unit %lld out of range [0, %zu)",
                  static_cast<long long>(u), units.size());
    }

    /// The gathered (or prefetched) unit u, or end(). One started before a failed job is dropped: it may hold
    /// garbage, and its peers may not hold it at all (Note [Communicator renewal]), so it is gathered again.
    std::map<int64_t, Gathered>::iterator find_gathered(int64_t u) {
        auto it = gathered.find(u);
        if (it != gathered.end() && it->second.failures != comm.failures_settled()) {
            gathered.erase(it);
            return gathered.end();
        }
        return it;
    }

    /// All-gathers unit u's groups (collective). On CUDA they run on the side stream, so that the
    /// communicator only ever sees one stream and a prefetch overlaps the caller's compute.
    Gathered start_gather(int64_t u) {
        Gathered g;
        g.failures = comm.failures_settled();
#if defined(WAN_HAVE_CUDA) && WAN_HAVE_CUDA
        if (options.device.is_cuda()) {
            const auto dev = options.device.index();
            if (!side) side = std::make_unique<c10::cuda::CUDAStream>(c10::cuda::getStreamFromPool(false, dev));
            at::cuda::CUDAEvent ready;
            ready.record(c10::cuda::getCurrentCUDAStream(dev));
            ready.block(*side);
            {
                c10::cuda::CUDAStreamGuard guard(*side);
                for (const Group& grp : units[u].groups) g.full.push_back(comm.all_gather(grp.shard, 0));
            }
            g.done = std::make_unique<at::cuda::CUDAEvent>();
            g.done->record(*side);
            return g;
        }
#endif
        for (const Group& grp : units[u].groups) g.full.push_back(comm.all_gather(grp.shard, 0));
        return g;
    }
};

ShardedParameters::ShardedParameters(const io::TensorStore& store, const std::vector<std::vector<std::string>>& units,
                                     Communicator& comm, ShardOptions options)
    : ShardedParameters([&store](const std::string& name) { return store.get(name); }, units, comm,
                        std::move(options)) {}

ShardedParameters::ShardedParameters(const TensorViewFn& view_of, const std::vector<std::vector<std::string>>& units,
                                     Communicator& comm, ShardOptions options)
    : impl_(std::make_unique<Impl>(comm, std::move(options))) {
    const int64_t N = comm.size();
    const int64_t r = comm.rank();
    std::set<std::string> seen;
    for (size_t u = 0; u < units.size(); ++u) {
        Unit unit;
        std::vector<std::pair<size_t, at::Tensor>> views;  // (group index, view) per entry, in order
        for (const std::string& name : units[u]) {
            WAN_CHECK(seen.insert(name).second, "sharded parameters: tensor '%s' is listed twice (unit %zu)",
                      name.c_str(), u);
            at::Tensor view = view_of(name);
            WAN_CHECK(view.defined() && view.device().is_cpu(), "sharded parameters: '%s' must be a CPU view",
                      name.c_str());
            const at::ScalarType dtype =
                impl_->options.dtype_for ? impl_->options.dtype_for(name, view.scalar_type()) : view.scalar_type();
            size_t gi = 0;
            while (gi < unit.groups.size() && unit.groups[gi].dtype != dtype) ++gi;
            if (gi == unit.groups.size()) {
                unit.groups.emplace_back();
                unit.groups.back().dtype = dtype;
            }
            Group& grp = unit.groups[gi];
            grp.entries.push_back({name, view.sizes().vec(), grp.total, view.numel()});
            grp.total += view.numel();
            impl_->total_bytes += view.numel() * static_cast<int64_t>(c10::elementSize(dtype));
            views.emplace_back(gi, view);
        }
        for (Group& grp : unit.groups) {
            grp.chunk = (grp.total + N - 1) / N;
            grp.shard = at::zeros({grp.chunk}, at::TensorOptions().dtype(grp.dtype).device(impl_->options.device));
            impl_->local_bytes += grp.chunk * static_cast<int64_t>(c10::elementSize(grp.dtype));
        }
        // Copy only this rank's element range [r·c, (r+1)·c) of each group out of the views: for an mmap
        // view that touches only those pages of the file.
        std::vector<size_t> next_entry(unit.groups.size(), 0);
        for (auto& [gi, view] : views) {
            Group& grp = unit.groups[gi];
            const Entry& e = grp.entries[next_entry[gi]++];
            const int64_t lo = std::max(e.offset, r * grp.chunk);
            const int64_t hi = std::min(e.offset + e.numel, (r + 1) * grp.chunk);
            if (lo >= hi) continue;
            // A non-contiguous (.pth) view is flattened through a copy of that one tensor.
            at::Tensor flat = view.is_contiguous() ? view.view({-1}) : view.reshape({-1});
            grp.shard.narrow(0, lo - r * grp.chunk, hi - lo).copy_(flat.narrow(0, lo - e.offset, hi - lo));
            impl_->bytes_read += (hi - lo) * static_cast<int64_t>(view.element_size());
        }
        impl_->units.push_back(std::move(unit));
    }
}

ShardedParameters::~ShardedParameters() = default;

int64_t ShardedParameters::num_units() const { return static_cast<int64_t>(impl_->units.size()); }

void ShardedParameters::prefetch(int64_t unit) {
    impl_->check_unit(unit);
#if defined(WAN_HAVE_CUDA) && WAN_HAVE_CUDA
    if (impl_->options.device.is_cuda() && impl_->find_gathered(unit) == impl_->gathered.end())
        impl_->gathered.emplace(unit, impl_->start_gather(unit));
#endif
}

std::map<std::string, at::Tensor> ShardedParameters::gather(int64_t unit) {
    impl_->check_unit(unit);
    auto it = impl_->find_gathered(unit);
    if (it == impl_->gathered.end()) it = impl_->gathered.emplace(unit, impl_->start_gather(unit)).first;
    Gathered& g = it->second;
#if defined(WAN_HAVE_CUDA) && WAN_HAVE_CUDA
    if (g.done) {
        auto current = c10::cuda::getCurrentCUDAStream(impl_->options.device.index());
        g.done->block(current);
        // Allocated on the side stream, read on this one: keep the allocator from reusing them early.
        for (at::Tensor& f : g.full) f.record_stream(current.unwrap());
        g.done.reset();
    }
#endif
    std::map<std::string, at::Tensor> out;
    const Unit& u = impl_->units[unit];
    for (size_t gi = 0; gi < u.groups.size(); ++gi)
        for (const Entry& e : u.groups[gi].entries)
            out.emplace(e.name, g.full[gi].narrow(0, e.offset, e.numel).view(e.shape));
    return out;
}

void ShardedParameters::release(int64_t unit) {
    impl_->check_unit(unit);
    impl_->gathered.erase(unit);
}

std::vector<ShardedParameters::LocalPart> ShardedParameters::local_parts(int64_t unit) {
    impl_->check_unit(unit);
    const int64_t r = impl_->comm.rank();
    std::vector<LocalPart> out;
    for (const Group& grp : impl_->units[unit].groups) {
        for (const Entry& e : grp.entries) {
            // The same element range the constructor copied out of the checkpoint for this rank.
            const int64_t lo = std::max(e.offset, r * grp.chunk);
            const int64_t hi = std::min(e.offset + e.numel, (r + 1) * grp.chunk);
            if (lo >= hi)
                out.push_back({e.name, e.shape, 0, grp.shard.narrow(0, 0, 0)});
            else
                out.push_back({e.name, e.shape, lo - e.offset, grp.shard.narrow(0, lo - r * grp.chunk, hi - lo)});
        }
    }
    return out;
}

void ShardedParameters::drop_gathered() { impl_->gathered.clear(); }

std::vector<int64_t> ShardedParameters::shard_numel(int64_t unit) const {
    impl_->check_unit(unit);
    std::vector<int64_t> out;
    for (const Group& g : impl_->units[unit].groups) out.push_back(g.chunk);
    return out;
}

int64_t ShardedParameters::local_bytes() const { return impl_->local_bytes; }
int64_t ShardedParameters::bytes_read() const { return impl_->bytes_read; }
int64_t ShardedParameters::total_bytes() const { return impl_->total_bytes; }

}  // namespace wan::dist
