// MPI session, the Communicator base (MPI-side helpers shared by every backend) and the MPI backend.
// Ref: style.md §3.1 (RAII), §3.2 (MPI_CHECK), §3.6 (chunked byte broadcast); nccl-tests bootstrap.
#include "dist/dist.h"

#include "core/core.h"
#include "dist/internal.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <initializer_list>
#include <climits>
#include <cstdio>
#include <cstring>

namespace wan::dist {

void mpi_check(int code, const char* what, const char* file, int line) {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING + 1] = {0};
    int len = 0;
    if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) std::snprintf(text, sizeof text, "unknown MPI error");
    throw_error(file, line, strfmt("%s failed: %s (code %d)", what, text, code));
}

namespace {

const char* thread_level_name(int level) {
    switch (level) {
        case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
        case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
        case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
        case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
        default: return "unknown";
    }
}

bool mpi_finalized() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    return finalized != 0;
}

/// Every live communicator of this process, in creation order (Communicator::renew_all). Collective creation
/// makes that order the same on every member of any two groups, so renewing in it cannot deadlock. Used by the
/// one thread that calls MPI.
std::vector<Communicator*>& live_communicators() {
    static std::vector<Communicator*> live;
    return live;
}

/// Tags of the MPI_Comm_create_group calls of renew_all and complete_unmatched_all.
constexpr int kRenewTag = 7002;
constexpr int kCompleteTag = 7003;

/// MPI communicators that live Communicators hold (comm_), for mpi_resources().
int64_t& owned_communicators() {
    static int64_t count = 0;
    return count;
}

/// What could not be freed, kept for the life of the process (Note [Unmatched operations]): communicators with
/// requests still pending on them, those requests, and the buffers MPI may still use for them.
struct KeptForever {
    std::vector<MPI_Comm> communicators;
    std::vector<MPI_Request> requests;
    std::vector<at::Tensor> buffers;
};
KeptForever& kept_forever() {
    static auto* kept = new KeptForever();  // never destroyed, on purpose
    return *kept;
}

/// Frees a Communicator's `comm` unless requests are still pending on it: then it, they and their buffers are
/// kept for the life of the process. `comm` is MPI_COMM_NULL afterwards.
void free_or_keep(MPI_Comm& comm, detail::OperationLog& operations) noexcept {
    --owned_communicators();
    if (operations.pending_requests() == 0) {
        MPI_Comm_free(&comm);
        return;
    }
    KeptForever& kept = kept_forever();
    operations.release_pending(kept.requests, kept.buffers);
    kept.communicators.push_back(comm);
    comm = MPI_COMM_NULL;
}

/// A new communicator of the members of `comm`, in the same order, made over `control` (which never carries
/// an unmatched operation). Collective over those members only. The caller frees it.
MPI_Comm with_same_members(MPI_Comm control, MPI_Comm comm, int tag) {
    MPI_Group members = MPI_GROUP_NULL;
    MPI_CHECK(MPI_Comm_group(comm, &members));  // local: `comm` itself is not used
    MPI_Comm fresh = MPI_COMM_NULL;
    const int rc = MPI_Comm_create_group(control, members, tag, &fresh);
    MPI_Group_free(&members);
    mpi_check(rc, "MPI_Comm_create_group (a communicator of the same ranks)", __FILE__, __LINE__);
    return fresh;
}

}  // namespace

// ---- MpiSession -------------------------------------------------------------------------------------

MpiSession::MpiSession(int* argc, char*** argv, int required) {
    int initialized = 0;
    MPI_CHECK(MPI_Initialized(&initialized));
    if (!initialized) {
        MPI_CHECK(MPI_Init_thread(argc, argv, required, &provided_));
        owns_ = true;
    } else {
        MPI_CHECK(MPI_Query_thread(&provided_));
    }
    if (provided_ < required) {
        if (owns_) MPI_Finalize();
        WAN_THROW("MPI provides thread support %s but %s is required (rank 0 calls MPI from its engine "
                  "thread); use an MPI library built with thread support (e.g. Open MPI >= 3)",
                  thread_level_name(provided_), thread_level_name(required));
    }
    // Errors come back as codes (turned into wan::Error by MPI_CHECK) instead of killing the job.
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    const RankFacts facts = rank_facts(MPI_COMM_WORLD);
    world_rank_ = facts.rank;
    world_size_ = facts.size;
    local_rank_ = facts.local_rank;
    local_size_ = facts.local_size;
    set_log_rank(world_rank_);
}

MpiSession::~MpiSession() {
    if (owns_ && !mpi_finalized()) MPI_Finalize();
}

// ---- helpers ----------------------------------------------------------------------------------------

namespace detail {

MPI_Datatype mpi_transport_type(at::ScalarType dtype, int64_t& units_per_element) {
    // Bitwise transport: any MPI type of the element's size will do.
    const int64_t size = static_cast<int64_t>(c10::elementSize(dtype));
    units_per_element = 1;
    switch (size) {
        case 1: return MPI_UINT8_T;
        case 2: return MPI_UINT16_T;
        case 4: return MPI_UINT32_T;
        case 8: return MPI_UINT64_T;
        default:
            WAN_CHECK(size % 8 == 0, "dtype %s (element size %lld) cannot be sent over MPI",
                      c10::toString(dtype), static_cast<long long>(size));
            units_per_element = size / 8;
            return MPI_UINT64_T;
    }
}

int checked_count(int64_t count, const char* what) {
    WAN_CHECK(count <= INT_MAX, "%s: %lld elements in one MPI call exceed INT_MAX; split the tensor", what,
              static_cast<long long>(count));
    return static_cast<int>(count);
}

void wait_or_log(PendingExchange& exchange) noexcept {
    try {
        exchange.wait();
    } catch (const std::exception& e) {
        WAN_LOG_ERROR("ring shift failed while being discarded: %s", e.what());
    }
}

}  // namespace detail

using detail::checked_count;
using detail::mpi_transport_type;

namespace {

/// Reduction type; bf16/f16 are reduced as f32 by the caller.
MPI_Datatype mpi_reduce_type(at::ScalarType dtype) {
    switch (dtype) {
        case at::kFloat: return MPI_FLOAT;
        case at::kDouble: return MPI_DOUBLE;
        case at::kInt: return MPI_INT32_T;
        case at::kLong: return MPI_INT64_T;
        case at::kShort: return MPI_INT16_T;
        case at::kChar: return MPI_INT8_T;
        case at::kByte: return MPI_UINT8_T;
        default: WAN_THROW("all_reduce: dtype %s is not supported by the MPI backend", c10::toString(dtype));
    }
}

/// A contiguous CPU tensor with the values of `t` (the same tensor when it already is one).
at::Tensor host_contiguous(const at::Tensor& t) { return t.device().is_cpu() ? t.contiguous() : t.to(at::kCPU).contiguous(); }

/// Copies the host result back into `target` when it is not that very tensor.
void write_back(at::Tensor& target, const at::Tensor& host) {
    if (!target.is_same(host)) target.copy_(host);
}

}  // namespace

// ---- Communicator base ------------------------------------------------------------------------------

Communicator::Communicator(MPI_Comm comm) : operations_(std::make_unique<detail::OperationLog>()) {
    WAN_CHECK(comm != MPI_COMM_NULL, "Communicator: MPI_COMM_NULL given");
    MPI_CHECK(MPI_Comm_dup(comm, &comm_));
    ++owned_communicators();
    MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    MPI_CHECK(MPI_Comm_size(comm_, &size_));
    live_communicators().push_back(this);
}

Communicator::~Communicator() {
    auto& live = live_communicators();
    live.erase(std::remove(live.begin(), live.end(), this), live.end());
    // Frees only the communicator it created; after MPI_Finalize there is nothing left to free.
    if (comm_ != MPI_COMM_NULL && !mpi_finalized()) free_or_keep(comm_, *operations_);
}

MpiResources mpi_resources() {
    MpiResources r;
    const KeptForever& kept = kept_forever();
    r.communicators = owned_communicators() + static_cast<int64_t>(kept.communicators.size());
    r.pending_requests = static_cast<int64_t>(kept.requests.size());
    for (const Communicator* c : live_communicators()) r.pending_requests += c->operations_->pending_requests();
    return r;
}

void Communicator::run_mpi(const char* what, const detail::MpiOperation& op, std::initializer_list<at::Tensor> buffers,
                           const std::function<int(MPI_Request*)>& start) {
    MPI_Request request = MPI_REQUEST_NULL;
    mpi_check(start(&request), what, __FILE__, __LINE__);
    operations_->started(op);
    try {
        protocol::wait(request, what);
    } catch (const protocol::PeerFailed&) {
        operations_->abandon(&request, 1, buffers);  // a peer never joins: pending until the recovery ends it
        throw;
    }
}

bool Communicator::settle_all(std::chrono::steady_clock::time_point deadline) {
    bool all = true;
    for (Communicator* c : live_communicators()) {
        ++c->failures_settled_;
        all = c->settle(deadline) && all;  // every one settled: no short cut
    }
    return all;
}

void Communicator::complete_unmatched_all(MPI_Comm control) {
    const std::vector<Communicator*> live = live_communicators();
    for (Communicator* c : live) {
        MPI_Comm fresh = with_same_members(control, c->comm_, kCompleteTag);
        try {
            c->operations_->complete_unmatched(c->comm_, fresh);
        } catch (...) {
            MPI_Comm_free(&fresh);
            throw;
        }
        MPI_Comm_free(&fresh);
    }
}

void Communicator::renew_all(MPI_Comm control) {
    const std::vector<Communicator*> live = live_communicators();  // renew() registers nothing, but be safe
    for (Communicator* c : live) {
        MPI_Comm fresh = with_same_members(control, c->comm_, kRenewTag);
        try {
            c->renew(fresh);
        } catch (...) {
            MPI_Comm_free(&fresh);
            throw;
        }
        MPI_Comm_free(&fresh);
    }
}

bool Communicator::settle(std::chrono::steady_clock::time_point /*deadline*/) { return true; }

void Communicator::renew(MPI_Comm fresh) {
    MPI_Comm next = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_dup(fresh, &next));
    MPI_CHECK(MPI_Comm_set_errhandler(next, MPI_ERRORS_RETURN));
    int rank = -1, size = 0;
    MPI_CHECK(MPI_Comm_rank(next, &rank));
    MPI_CHECK(MPI_Comm_size(next, &size));
    WAN_CHECK(rank == rank_ && size == size_, "renewing a communicator: the new one has rank %d of %d, the old one "
              "rank %d of %d", rank, size, rank_, size_);
    // Every member renews this communicator at the same point (renew_all), so the old one is freed by all of them
    // alike; it is kept instead while a request that could not be completed is pending on it.
    ++owned_communicators();
    free_or_keep(comm_, *operations_);
    operations_->restart();
    comm_ = next;
}

at::Tensor Communicator::all_gather(const at::Tensor& local, int64_t dim) {
    const int64_t nd = std::max<int64_t>(local.dim(), 1);
    if (dim < 0) dim += nd;
    WAN_CHECK(dim >= 0 && dim < nd, "all_gather: dim %lld out of range for a %lld-d tensor",
              static_cast<long long>(dim), static_cast<long long>(local.dim()));
    if (size_ == 1) return local.dim() == 0 ? local.reshape({1}).clone() : local.clone();
    at::Tensor src = local.dim() == 0 ? local.reshape({1}) : local;
    at::Tensor stacked = all_gather_flat(src.contiguous());  // [P·n0, ...]
    if (dim == 0) return stacked;
    std::vector<int64_t> shape{size_};
    shape.insert(shape.end(), src.sizes().begin(), src.sizes().end());
    std::vector<at::Tensor> parts = stacked.view(shape).unbind(0);  // P × [n0, ...]
    return at::cat(parts, dim);
}

at::Tensor Communicator::all_to_all(const at::Tensor& input) {
    WAN_CHECK(input.dim() >= 1 && input.size(0) % size_ == 0,
              "all_to_all: dim 0 (%lld) must be divisible by the group size %d",
              static_cast<long long>(input.dim() ? input.size(0) : 0), size_);
    if (size_ == 1) return input.clone();
    return all_to_all_flat(input.contiguous());
}

at::Tensor Communicator::all_to_all(const at::Tensor& input, int64_t scatter_dim, int64_t gather_dim) {
    const int64_t nd = input.dim();
    if (scatter_dim < 0) scatter_dim += nd;
    if (gather_dim < 0) gather_dim += nd;
    WAN_CHECK(scatter_dim >= 0 && scatter_dim < nd && gather_dim >= 0 && gather_dim < nd,
              "all_to_all: dims (%lld, %lld) out of range for a %lld-d tensor", static_cast<long long>(scatter_dim),
              static_cast<long long>(gather_dim), static_cast<long long>(nd));
    WAN_CHECK(input.size(scatter_dim) % size_ == 0,
              "all_to_all: size %lld of scatter dim %lld is not divisible by the group size %d",
              static_cast<long long>(input.size(scatter_dim)), static_cast<long long>(scatter_dim), size_);
    if (size_ == 1) return input.clone();
    // Chunk j → rank j: stack the chunks on a new leading dim, exchange blocks of dim 0, and concatenate
    // what came back along gather_dim in rank order.
    at::Tensor blocks = at::stack(input.chunk(size_, scatter_dim), 0).contiguous();  // [P, ..chunk..]
    at::Tensor received = all_to_all_flat(blocks);                                    // [P, ..chunk..]
    return at::cat(received.unbind(0), gather_dim);
}

at::Tensor Communicator::shift(const at::Tensor& send, int offset) {
    at::Tensor src = send.contiguous();
    at::Tensor recv = at::empty_like(src);
    start_shift(src, recv, offset)->wait();
    return recv;
}

MPI_Comm Communicator::split_mpi(int color, int key) const {
    MPI_Comm out = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &out));
    return out;
}

void Communicator::set_bytes_chunk_limit(size_t bytes) {
    WAN_CHECK(bytes > 0 && bytes <= static_cast<size_t>(INT_MAX), "bytes chunk limit must be in [1, INT_MAX], got %zu",
              bytes);
    bytes_chunk_limit_ = bytes;
}

void Communicator::broadcast_bytes(std::vector<uint8_t>& bytes, int root) {
    WAN_CHECK(root >= 0 && root < size_, "broadcast_bytes: root %d outside the group of %d", root, size_);
    using Kind = detail::MpiOperation::Kind;
    // Through tensors that an abandoned broadcast can keep (Note [Unmatched operations]), not `bytes` itself.
    at::Tensor length = at::full({1}, static_cast<int64_t>(rank_ == root ? bytes.size() : 0), at::kLong);
    run_mpi("byte broadcast (size)", {Kind::Broadcast, 1, MPI_INT64_T, root}, {length},
            [&](MPI_Request* r) { return MPI_Ibcast(length.data_ptr(), 1, MPI_INT64_T, root, comm_, r); });
    const auto total = static_cast<uint64_t>(length.item<int64_t>());
    if (rank_ != root) bytes.resize(total);
    for (uint64_t done = 0; done < total;) {
        const uint64_t n = std::min<uint64_t>(bytes_chunk_limit_, total - done);
        at::Tensor chunk = at::empty({static_cast<int64_t>(n)}, at::kByte);
        if (rank_ == root) std::memcpy(chunk.data_ptr(), bytes.data() + done, n);
        run_mpi("byte broadcast", {Kind::Broadcast, static_cast<int>(n), MPI_BYTE, root}, {chunk}, [&](MPI_Request* r) {
            return MPI_Ibcast(chunk.data_ptr(), static_cast<int>(n), MPI_BYTE, root, comm_, r);
        });
        if (rank_ != root) std::memcpy(bytes.data() + done, chunk.data_ptr(), n);
        done += n;
    }
}

// ---- MpiCommunicator --------------------------------------------------------------------------------

namespace {

class MpiPendingExchange final : public PendingExchange {
public:
    MpiPendingExchange(at::Tensor send_host, at::Tensor recv_host, at::Tensor recv_target, detail::OperationLog& log)
        : send_host_(std::move(send_host)), recv_host_(std::move(recv_host)), recv_target_(std::move(recv_target)),
          log_(log) {}
    ~MpiPendingExchange() override { detail::wait_or_log(*this); }
    void wait() override {
        if (done_) return;
        done_ = true;
        try {
            protocol::wait_all(2, requests_, "ring shift");
        } catch (const protocol::PeerFailed&) {
            log_.abandon(requests_, 2, {send_host_, recv_host_});  // Note [Unmatched operations]
            throw;
        }
        write_back(recv_target_, recv_host_);
    }
    MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};

private:
    at::Tensor send_host_, recv_host_, recv_target_;
    detail::OperationLog& log_;
    bool done_ = false;
};

using detail::kShiftTag;
using Kind = detail::MpiOperation::Kind;

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm) : Communicator(comm) {}

void MpiCommunicator::barrier() {
    run_mpi("barrier", {Kind::Barrier}, {}, [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
}

void MpiCommunicator::broadcast(at::Tensor& tensor, int root) {
    WAN_CHECK(root >= 0 && root < size_, "broadcast: root %d outside the group of %d", root, size_);
    if (size_ == 1) return;
    at::Tensor host = host_contiguous(tensor);
    int64_t units = 1;
    MPI_Datatype type = mpi_transport_type(host.scalar_type(), units);
    auto* base = static_cast<uint8_t*>(host.data_ptr());
    const int64_t total = host.numel() * units;
    const int64_t unit_bytes = static_cast<int64_t>(host.element_size()) / units;
    const int64_t chunk = int64_t(1) << 30;  // chunked below INT_MAX like the byte broadcast
    for (int64_t done = 0; done < total; done += chunk) {
        const int64_t n = std::min(chunk, total - done);
        run_mpi("tensor broadcast", {Kind::Broadcast, static_cast<int>(n), type, root}, {host}, [&](MPI_Request* r) {
            return MPI_Ibcast(base + done * unit_bytes, static_cast<int>(n), type, root, comm_, r);
        });
    }
    write_back(tensor, host);
}

void MpiCommunicator::all_reduce(at::Tensor& tensor, ReduceOp op) {
    if (size_ == 1) return;
    const at::ScalarType dtype = tensor.scalar_type();
    const bool widen = dtype == at::kBFloat16 || dtype == at::kHalf;
    at::Tensor host = widen ? tensor.to(at::kCPU, at::kFloat).contiguous() : host_contiguous(tensor);
    MPI_Op mop = op == ReduceOp::Sum ? MPI_SUM : MPI_MAX;
    const int count = checked_count(host.numel(), "all_reduce");
    const MPI_Datatype type = mpi_reduce_type(host.scalar_type());
    run_mpi("all-reduce", {Kind::AllReduce, count, type, 0, mop}, {host}, [&](MPI_Request* r) {
        return MPI_Iallreduce(MPI_IN_PLACE, host.data_ptr(), count, type, mop, comm_, r);
    });
    write_back(tensor, host);
}

at::Tensor MpiCommunicator::all_gather_flat(const at::Tensor& local) {
    at::Tensor host = host_contiguous(local);
    int64_t units = 1;
    MPI_Datatype type = mpi_transport_type(host.scalar_type(), units);
    std::vector<int64_t> shape = host.sizes().vec();
    shape[0] *= size_;
    at::Tensor out = at::empty(shape, host.options());
    const int count = checked_count(host.numel() * units, "all_gather");
    run_mpi("all-gather", {Kind::AllGather, count, type}, {host, out}, [&](MPI_Request* r) {
        return MPI_Iallgather(host.data_ptr(), count, type, out.data_ptr(), count, type, comm_, r);
    });
    return local.device().is_cpu() ? out : out.to(local.device());
}

at::Tensor MpiCommunicator::all_to_all_flat(const at::Tensor& input) {
    at::Tensor host = host_contiguous(input);
    int64_t units = 1;
    MPI_Datatype type = mpi_transport_type(host.scalar_type(), units);
    at::Tensor out = at::empty_like(host);
    const int count = checked_count(host.numel() / size_ * units, "all_to_all");
    run_mpi("all-to-all", {Kind::AllToAll, count, type}, {host, out}, [&](MPI_Request* r) {
        return MPI_Ialltoall(host.data_ptr(), count, type, out.data_ptr(), count, type, comm_, r);
    });
    return input.device().is_cpu() ? out : out.to(input.device());
}

std::unique_ptr<PendingExchange> MpiCommunicator::start_shift(const at::Tensor& send, at::Tensor& recv, int offset) {
    WAN_CHECK(send.is_contiguous() && recv.is_contiguous(), "ring shift: send and recv must be contiguous");
    WAN_CHECK(send.numel() == recv.numel() && send.scalar_type() == recv.scalar_type(),
              "ring shift: send (%lld × %s) and recv (%lld × %s) differ", static_cast<long long>(send.numel()),
              c10::toString(send.scalar_type()), static_cast<long long>(recv.numel()), c10::toString(recv.scalar_type()));
    at::Tensor send_host = host_contiguous(send);
    at::Tensor recv_host = recv.device().is_cpu() ? recv : at::empty(recv.sizes(), recv.options().device(at::kCPU));
    auto pending = std::make_unique<MpiPendingExchange>(send_host, recv_host, recv, operations());
    const int to = ((rank_ + offset) % size_ + size_) % size_;
    const int from = ((rank_ - offset) % size_ + size_) % size_;
    int64_t units = 1;
    MPI_Datatype type = mpi_transport_type(send.scalar_type(), units);
    const int count = checked_count(send.numel() * units, "ring shift");
    // Receive first, then send: both nonblocking, so compute can proceed until wait().
    MPI_CHECK(MPI_Irecv(recv_host.data_ptr(), count, type, from, kShiftTag, comm_, &pending->requests_[0]));
    MPI_CHECK(MPI_Isend(send_host.data_ptr(), count, type, to, kShiftTag, comm_, &pending->requests_[1]));
    operations().started({Kind::Shift, count, type, offset});
    return pending;
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key) {
    MPI_Comm sub = split_mpi(color, key);
    if (sub == MPI_COMM_NULL) return nullptr;
    std::unique_ptr<Communicator> out;
    try {
        out = std::make_unique<MpiCommunicator>(sub);
    } catch (...) {
        MPI_Comm_free(&sub);
        throw;
    }
    MPI_Comm_free(&sub);
    return out;
}

void MpiCommunicator::abort(const std::string& reason) {
    WAN_LOG_ERROR("MPI communicator (rank %d of %d) aborted: %s", rank_, size_, reason.c_str());
}

// ---- factory ----------------------------------------------------------------------------------------

std::unique_ptr<Communicator> make_communicator(MPI_Comm comm, c10::Device device) {
    if (device.is_cuda()) {
#if defined(WAN_HAVE_NCCL) && WAN_HAVE_NCCL
        return detail::make_nccl_communicator(comm, device.has_index() ? device.index() : 0);
#else
        WAN_LOG_WARN("built without NCCL: collectives of CUDA tensors go through host memory over MPI (slow)");
#endif
    }
    return std::make_unique<MpiCommunicator>(comm);
}

}  // namespace wan::dist
