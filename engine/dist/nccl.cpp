// NCCL backend for CUDA tensors. Compiled only with WAN_HAVE_NCCL (CUDA LibTorch + NCCL found).
// Bootstrap as nccl-tests does: the group's rank 0 creates the unique id and broadcasts it over MPI.
// Every operation is enqueued on LibTorch's current CUDA stream of the communicator's device, except the
// ring shift, which runs on a side stream so that it overlaps the caller's compute (joined in wait()).
// Ref: style.md §3.1 (abort apart from destroy, c10d NCCLComm), §3.2 (NCCL_CHECK).
//
// Note [NCCL watchdog]
// NCCL work runs on the GPU: a peer that stops answering leaves our kernels spinning and the host blocked in a
// stream synchronisation, where no MPI deadline can see it. Each communicator therefore has a watchdog thread
// (as PyTorch's ProcessGroupNCCL): after every enqueued operation the main thread records a CUDA event; the
// watchdog polls ncclCommGetAsyncError and the oldest unfinished event, and when NCCL reports an error or the
// event is older than --collective-timeout it calls ncclCommAbort. The spinning kernels then return, the host
// wakes, the next use of the communicator throws (with the reason), and the step's MPI agreement (bounded
// itself, engine/protocol/deadline.h) fails the job on every rank or names the rank that stopped answering.
// After a failed agreement the mesh settles its communicators (Note [Communicator renewal] in dist.h): here,
// operations still running 2 s after the failure (a peer will never join them) make the communicator abort;
// an aborted one makes every rank re-create every communicator from a fresh unique id (renew), and the next
// job runs on those. The watchdog sees only work already on a stream; the host's own waits inside NCCL calls are
// bounded apart (Note [Bounded NCCL calls]).
//
// Note [Bounded NCCL calls]
// Before any work reaches a stream the host itself may wait for a peer: creating a communicator needs every member
// to arrive with the unique id, and the first operations between two ranks set up their connections inside the
// call (a collective, ncclGroupEnd). In NCCL's default blocking mode such a call returns only when the peer comes.
// One that never comes (killed, stopped, failed before its own call) keeps the host inside NCCL, where no event is
// watched yet, no MPI deadline polls and no failure notice is read. So every communicator is made non-blocking
// (ncclConfig_t.blocking = 0, NCCL >= 2.14): each call returns at once, with ncclInProgress while a thread of
// NCCL's finishes it, and until ncclCommGetAsyncError stops answering ncclInProgress nothing else may be done with
// the communicator nor queued behind its work. ready() is that wait, done our way: the state is polled together
// with the peers' failure notices and roll calls (protocol::wait_until_for, as the watched device waits do), and the
// wait gives up after --collective-timeout. Giving up (the deadline, a peer's notice, an error from NCCL) aborts the
// communicator, a half-made one too (ncclCommAbort also stops NCCL's thread), and throws, naming the operation, the
// group and the limit; in a step the agreement then fails the job on every rank and the mesh re-creates the
// communicators (Note [Communicator renewal]). Calls and state queries hold mutex_, as the watchdog's queries do:
// a query may complete NCCL's pending launch, which two threads must not do at once, and an abort frees the
// communicator. The price is some host time per call (NCCL launches each group from a thread of its own), not
// measured yet.
#if defined(WAN_HAVE_NCCL) && WAN_HAVE_NCCL

#include "dist/dist.h"

#include "core/core.h"
#include "dist/internal.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include "protocol/deadline.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>
#include <vector>

#if NCCL_VERSION_CODE < NCCL_VERSION(2, 14, 0)
#error "the NCCL backend needs NCCL 2.14 or newer (non-blocking communicators: Note [Bounded NCCL calls])"
#endif

#define NCCL_CHECK(call)                                                                        \
    do {                                                                                        \
        ncclResult_t wan_nccl_rc_ = (call);                                                     \
        if (wan_nccl_rc_ != ncclSuccess)                                                        \
            WAN_THROW("%s failed: %s (code %d)", #call, ncclGetErrorString(wan_nccl_rc_),       \
                      static_cast<int>(wan_nccl_rc_));                                          \
    } while (0)

#define CUDA_RT_CHECK(call)                                                                     \
    do {                                                                                        \
        cudaError_t wan_cuda_rc_ = (call);                                                      \
        if (wan_cuda_rc_ != cudaSuccess) WAN_THROW("%s failed: %s", #call, cudaGetErrorString(wan_cuda_rc_)); \
    } while (0)

namespace wan::dist {
namespace {

ncclDataType_t nccl_reduce_type(at::ScalarType dtype) {
    switch (dtype) {
        case at::kFloat: return ncclFloat32;
        case at::kDouble: return ncclFloat64;
        case at::kHalf: return ncclFloat16;
        case at::kBFloat16: return ncclBfloat16;
        case at::kInt: return ncclInt32;
        case at::kLong: return ncclInt64;
        case at::kChar: return ncclInt8;
        case at::kByte: return ncclUint8;
        default: WAN_THROW("all_reduce: dtype %s is not supported by the NCCL backend", c10::toString(dtype));
    }
}

size_t nbytes(const at::Tensor& t) { return static_cast<size_t>(t.numel()) * t.element_size(); }

/// Whether an NCCL call failed; ncclInProgress only says that NCCL finishes it in the background.
bool failed(ncclResult_t rc) { return rc != ncclSuccess && rc != ncclInProgress; }

/// NCCL's state of `comm`: ncclInProgress while a call is being finished, then ncclSuccess or the error.
ncclResult_t state_of(ncclComm_t comm) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm, &state);
    return rc == ncclSuccess ? state : rc;
}

/// ncclGroupStart, `ops` (the first failure, else ncclSuccess), ncclGroupEnd. The group is ended even when an
/// operation failed: NCCL would otherwise keep it open on this thread and take the next calls into it.
template <class Ops>
ncclResult_t grouped(Ops&& ops) {
    const ncclResult_t start = ncclGroupStart();
    if (failed(start)) return start;
    const ncclResult_t first = ops();
    const ncclResult_t end = ncclGroupEnd();
    return failed(first) ? first : end;
}

/// "world ranks 0, 2": the members of `comm` in its rank order, for messages.
std::string world_ranks(MPI_Comm comm) {
    MPI_Group group = MPI_GROUP_NULL, world = MPI_GROUP_NULL;
    MPI_Comm_group(comm, &group);
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    int n = 0;
    MPI_Group_size(group, &n);
    std::vector<int> local(static_cast<size_t>(n)), global(static_cast<size_t>(n), -1);
    std::iota(local.begin(), local.end(), 0);
    MPI_Group_translate_ranks(group, n, local.data(), world, global.data());
    MPI_Group_free(&group);
    MPI_Group_free(&world);
    std::string out = "world ranks ";
    for (size_t i = 0; i < global.size(); ++i) out += (i ? ", " : "") + std::to_string(global[i]);
    return out;
}

/// A communicator being created: aborted unless handed over, i.e. when its set-up failed or ran out of time.
class HalfMadeComm {
public:
    HalfMadeComm() = default;
    ~HalfMadeComm() {
        if (comm_ != nullptr) (void)ncclCommAbort(comm_);
    }
    HalfMadeComm(const HalfMadeComm&) = delete;
    HalfMadeComm& operator=(const HalfMadeComm&) = delete;
    ncclComm_t* out() { return &comm_; }
    ncclComm_t get() const { return comm_; }
    ncclComm_t release() { return std::exchange(comm_, nullptr); }

private:
    ncclComm_t comm_ = nullptr;
};

class NcclPendingExchange final : public PendingExchange {
public:
    NcclPendingExchange(at::Tensor send, at::Tensor recv, int device) : send_(std::move(send)), recv_(std::move(recv)), device_(device) {}
    ~NcclPendingExchange() override { detail::wait_or_log(*this); }
    void wait() override {
        if (waited_) return;
        waited_ = true;
        // The caller's stream waits for the transfer; the buffers are held until now, so the caching
        // allocator cannot hand them out while the side stream still uses them.
        done_.block(c10::cuda::getCurrentCUDAStream(device_));
        send_ = at::Tensor();
        recv_ = at::Tensor();
    }
    at::cuda::CUDAEvent done_;

private:
    at::Tensor send_, recv_;
    int device_;
    bool waited_ = false;
};

class NcclCommunicator final : public Communicator {
public:
    NcclCommunicator(MPI_Comm comm, int device) : Communicator(comm), device_(device) {
        CUDA_RT_CHECK(cudaSetDevice(device_));
        members_ = world_ranks(comm_);
        nccl_.store(init_nccl());
        try {
            if (size_ > 1) watchdog_ = std::thread([this] { watch(); });
        } catch (...) {
            destroy();  // no thread: nothing else holds the communicator
            throw;
        }
    }
    ~NcclCommunicator() override {
        stop_.store(true);
        if (watchdog_.joinable()) watchdog_.join();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            forget_inflight();
        }
        destroy();
    }

    const char* backend() const override { return "nccl"; }

    /// Normal teardown (all work finished).
    void destroy() noexcept {
        ncclComm_t comm = nccl_.exchange(nullptr);
        if (comm == nullptr) return;
        ncclResult_t rc = ncclCommDestroy(comm);
        if (failed(rc)) WAN_LOG_WARN("ncclCommDestroy failed: %s", ncclGetErrorString(rc));
    }

    void abort(const std::string& reason) override { abort_now(reason); }

    bool settle(std::chrono::steady_clock::time_point deadline) override {
        for (;;) {
            std::string error;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (nccl_.load() == nullptr) return false;  // aborted: the watchdog or an earlier failure
                error = reap_finished();
                if (error.empty() && inflight_.empty()) return true;
            }
            if (!error.empty()) {
                abort_now(error);
                return false;
            }
            if (std::chrono::steady_clock::now() >= deadline) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        abort_now("an operation was still running on the GPU 2 s after a rank failed (no peer will join it)");
        return false;
    }

    void renew(MPI_Comm fresh) override {
        {
            // Abort, never destroy: kernels of the old communicator may still wait for a peer (abort makes them
            // return). Nothing else uses it: the main thread is here, and the watchdog skips a null communicator.
            std::lock_guard<std::mutex> lock(mutex_);
            abort_locked();
        }
        Communicator::renew(fresh);
        CUDA_RT_CHECK(cudaSetDevice(device_));
        ncclComm_t created = init_nccl();  // a fresh unique id from the group's rank 0, over the new MPI communicator
        std::lock_guard<std::mutex> lock(mutex_);
        abort_reason_.clear();
        nccl_.store(created);
    }

    void barrier() override {
        synchronize_watched(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(device_)), "GPU work before a barrier");
        run_mpi("barrier", {detail::MpiOperation::Kind::Barrier}, {}, [&](MPI_Request* r) { return MPI_Ibarrier(comm_, r); });
    }

    void broadcast(at::Tensor& tensor, int root) override {
        WAN_CHECK(root >= 0 && root < size_, "broadcast: root %d outside the group of %d", root, size_);
        check_tensor(tensor, "broadcast");
        if (size_ == 1) return;
        at::Tensor t = tensor.contiguous();
        issue("broadcast", [&](ncclComm_t comm) {
            return ncclBroadcast(t.data_ptr(), t.data_ptr(), nbytes(t), ncclUint8, root, comm, stream());
        });
        track("broadcast", stream());
        if (!t.is_same(tensor)) tensor.copy_(t);
    }

    void all_reduce(at::Tensor& tensor, ReduceOp op) override {
        check_tensor(tensor, "all_reduce");
        if (size_ == 1) return;
        at::Tensor t = tensor.contiguous();
        const ncclDataType_t type = nccl_reduce_type(t.scalar_type());
        issue("all-reduce", [&](ncclComm_t comm) {
            return ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), type,
                                 op == ReduceOp::Sum ? ncclSum : ncclMax, comm, stream());
        });
        track("all-reduce", stream());
        if (!t.is_same(tensor)) tensor.copy_(t);
    }

    std::unique_ptr<PendingExchange> start_shift(const at::Tensor& send, at::Tensor& recv, int offset) override {
        check_tensor(send, "ring shift");
        check_tensor(recv, "ring shift");
        WAN_CHECK(send.is_contiguous() && recv.is_contiguous(), "ring shift: send and recv must be contiguous");
        WAN_CHECK(nbytes(send) == nbytes(recv), "ring shift: send (%zu bytes) and recv (%zu bytes) differ",
                  nbytes(send), nbytes(recv));
        auto pending = std::make_unique<NcclPendingExchange>(send, recv, device_);
        if (!side_) side_ = std::make_unique<c10::cuda::CUDAStream>(c10::cuda::getStreamFromPool(false, device_));
        // The side stream starts after everything the caller queued so far (producers of send/recv).
        at::cuda::CUDAEvent ready;
        ready.record(c10::cuda::getCurrentCUDAStream(device_));
        ready.block(*side_);
        const int to = ((rank_ + offset) % size_ + size_) % size_;
        const int from = ((rank_ - offset) % size_ + size_) % size_;
        const cudaStream_t side = side_->stream();
        issue("ring shift", [&](ncclComm_t comm) {
            return grouped([&] {
                const ncclResult_t sent = ncclSend(send.data_ptr(), nbytes(send), ncclUint8, to, comm, side);
                return failed(sent) ? sent : ncclRecv(recv.data_ptr(), nbytes(recv), ncclUint8, from, comm, side);
            });
        });
        track("ring shift", side_->stream());
        pending->done_.record(*side_);
        return pending;
    }

    std::unique_ptr<Communicator> split(int color, int key) override {
        MPI_Comm sub = split_mpi(color, key);
        if (sub == MPI_COMM_NULL) return nullptr;
        std::unique_ptr<Communicator> out;
        try {
            out = std::make_unique<NcclCommunicator>(sub, device_);
        } catch (...) {
            MPI_Comm_free(&sub);
            throw;
        }
        MPI_Comm_free(&sub);
        return out;
    }

protected:
    at::Tensor all_gather_flat(const at::Tensor& local) override {
        check_tensor(local, "all_gather");
        std::vector<int64_t> shape = local.sizes().vec();
        shape[0] *= size_;
        at::Tensor out = at::empty(shape, local.options());
        issue("all-gather", [&](ncclComm_t comm) {
            return ncclAllGather(local.data_ptr(), out.data_ptr(), nbytes(local), ncclUint8, comm, stream());
        });
        track("all-gather", stream());
        return out;
    }

    at::Tensor all_to_all_flat(const at::Tensor& input) override {
        check_tensor(input, "all_to_all");
        at::Tensor out = at::empty_like(input);
        const size_t block = nbytes(input) / size_;
        auto* src = static_cast<uint8_t*>(input.data_ptr());
        auto* dst = static_cast<uint8_t*>(out.data_ptr());
        const cudaStream_t s = stream();
        issue("all-to-all", [&](ncclComm_t comm) {
            return grouped([&] {
                for (int peer = 0; peer < size_; ++peer) {
                    ncclResult_t rc = ncclSend(src + peer * block, block, ncclUint8, peer, comm, s);
                    if (!failed(rc)) rc = ncclRecv(dst + peer * block, block, ncclUint8, peer, comm, s);
                    if (failed(rc)) return rc;
                }
                return ncclSuccess;
            });
        });
        track("all-to-all", stream());
        return out;
    }

private:
    /// A new NCCL communicator for the group of comm_: the unique id made on rank 0 and broadcast over MPI.
    ncclComm_t init_nccl() {
        ncclUniqueId id;
        constexpr int kIdBytes = static_cast<int>(sizeof id);
        // Through a tensor that an abandoned broadcast can keep (Note [Unmatched operations] in unmatched.cpp).
        at::Tensor bytes = at::empty({kIdBytes}, at::kByte);
        if (rank_ == 0) {
            NCCL_CHECK(ncclGetUniqueId(&id));
            std::memcpy(bytes.data_ptr(), &id, sizeof id);
        }
        run_mpi("broadcast of the NCCL id", {detail::MpiOperation::Kind::Broadcast, kIdBytes, MPI_BYTE, 0}, {bytes},
                [&](MPI_Request* r) { return MPI_Ibcast(bytes.data_ptr(), kIdBytes, MPI_BYTE, 0, comm_, r); });
        std::memcpy(&id, bytes.data_ptr(), sizeof id);
        HalfMadeComm created;
        ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
        config.blocking = 0;  // Note [Bounded NCCL calls]
        const ncclResult_t rc = ncclCommInitRankConfig(created.out(), size_, id, rank_, &config);
        ready(rc, "communicator set-up", [&] { return state_of(created.get()); });
        return created.release();
    }

    /// `calls(comm)` on the live communicator, under mutex_, then ready(); when they fail or do not finish, the
    /// communicator is aborted and the error thrown (Note [Bounded NCCL calls]).
    template <class Calls>
    void issue(const char* what, Calls&& calls) {
        ncclResult_t rc = ncclSuccess;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            rc = calls(live_locked());
        }
        try {
            ready(rc, what, [&] {
                std::lock_guard<std::mutex> lock(mutex_);
                return state_of(live_locked());  // throws when the watchdog aborted it meanwhile
            });
        } catch (const std::exception& e) {
            abort_now(e.what());  // nothing to do when the watchdog was first
            throw;
        }
    }

    /// Waits until NCCL has finished the call `what` that returned `rc`, polling `state` together with the peers'
    /// failure notices (which throw protocol::PeerFailed). Throws when NCCL reports an error or the wait runs past
    /// --collective-timeout. Aborting is left to the caller, who owns the communicator.
    void ready(ncclResult_t rc, const char* what, const std::function<ncclResult_t()>& state) const {
        const double limit = protocol::collective_timeout();
        ncclResult_t last = rc;
        if (last == ncclInProgress &&
            !protocol::wait_until_for([&] { return (last = state()) != ncclInProgress; }, what, limit))
            WAN_THROW("the NCCL %s did not complete within %g s on the %s (stage: %s): a peer never joined it "
                      "(stopped, failed or killed; --collective-timeout). The communicator is aborted.",
                      what, limit, where().c_str(), protocol::current_stage().c_str());
        if (last != ncclSuccess)
            WAN_THROW("the NCCL %s failed on the %s: %s (code %d)", what, where().c_str(), ncclGetErrorString(last),
                      static_cast<int>(last));
    }

    /// "communicator of world ranks 0, 1 (rank 1 of 2, cuda:1)", for messages.
    std::string where() const {
        return strfmt("communicator of %s (rank %d of %d, cuda:%d)", members_.c_str(), rank_, size_, device_);
    }

    cudaStream_t stream() const { return c10::cuda::getCurrentCUDAStream(device_).stream(); }
    /// The live communicator; mutex_ held. Throws once it was destroyed or aborted.
    ncclComm_t live_locked() const {
        ncclComm_t comm = nccl_.load();
        if (comm == nullptr)
            WAN_THROW("NCCL %s used after %s", where().c_str(),
                      abort_reason_.empty() ? "destroy" : ("abort: " + abort_reason_).c_str());
        return comm;
    }

    // ---- watchdog (Note [NCCL watchdog]); inflight_ and abort_reason_ are guarded by mutex_ ----
    struct InFlight {
        cudaEvent_t done;
        const char* what;
        std::chrono::steady_clock::time_point since;
        std::string stage;
    };

    /// Records that the operation `what` just enqueued on `s` must finish within the deadline.
    void track(const char* what, cudaStream_t s) {
        std::lock_guard<std::mutex> lock(mutex_);
        cudaEvent_t ev = nullptr;
        if (cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess) return;  // unwatched, not fatal
        if (cudaEventRecord(ev, s) != cudaSuccess) {
            cudaEventDestroy(ev);
            return;
        }
        inflight_.push_back(InFlight{ev, what, std::chrono::steady_clock::now(), protocol::current_stage()});
    }

    void forget_inflight() {
        for (InFlight& f : inflight_) cudaEventDestroy(f.done);
        inflight_.clear();
    }

    /// ncclCommAbort once (main thread or watchdog): kernels waiting on peers return; later uses throw `reason`.
    /// Under mutex_, so the watchdog never queries a communicator that is being aborted (nor one already freed).
    void abort_now(const std::string& reason) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (nccl_.load() == nullptr) return;
        abort_reason_ = reason;
        WAN_LOG_ERROR("aborting NCCL communicator (rank %d of %d): %s", rank_, size_, reason.c_str());
        abort_locked();
    }

    /// ncclCommAbort of the live communicator, if any; mutex_ held.
    void abort_locked() {
        ncclComm_t comm = nccl_.exchange(nullptr);
        if (comm == nullptr) return;
        forget_inflight();
        ncclResult_t rc = ncclCommAbort(comm);
        if (failed(rc)) WAN_LOG_WARN("ncclCommAbort failed: %s", ncclGetErrorString(rc));
    }

    /// The watchdog thread: every 100 ms, NCCL's asynchronous error and the age of the oldest unfinished operation.
    void watch() {
        cudaSetDevice(device_);  // events and queries below refer to device_
        while (!stop_.load()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            std::string reason;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                ncclComm_t comm = nccl_.load();
                if (comm == nullptr) continue;  // aborted: nothing left to watch until destruction
                ncclResult_t async = ncclSuccess;
                if (ncclCommGetAsyncError(comm, &async) == ncclSuccess && async != ncclSuccess && async != ncclInProgress)
                    reason = strfmt("NCCL reported an asynchronous error: %s", ncclGetErrorString(async));
                else
                    reason = oldest_expired();
            }
            if (!reason.empty()) abort_now(reason);  // re-checks: the main thread may have aborted meanwhile
        }
    }

    /// Drops the finished operations from the front of inflight_; the reason to abort on a CUDA error, else "".
    /// mutex_ held.
    std::string reap_finished() {
        while (!inflight_.empty()) {
            const cudaError_t rc = cudaEventQuery(inflight_.front().done);
            if (rc == cudaErrorNotReady) break;
            if (rc != cudaSuccess)  // a sticky CUDA error: the operation will never finish; free the peers now
                return strfmt("CUDA error while the NCCL %s was running (stage: %s): %s", inflight_.front().what,
                              inflight_.front().stage.c_str(), cudaGetErrorString(rc));
            cudaEventDestroy(inflight_.front().done);
            inflight_.pop_front();
        }
        return {};
    }

    /// The reason to abort when the oldest unfinished operation is past the deadline, else ""; mutex_ held.
    std::string oldest_expired() {
        if (std::string error = reap_finished(); !error.empty()) return error;
        const double limit = protocol::collective_timeout();
        if (inflight_.empty() || limit <= 0) return {};
        const InFlight& oldest = inflight_.front();
        const double age = std::chrono::duration<double>(std::chrono::steady_clock::now() - oldest.since).count();
        if (age <= limit) return {};
        return strfmt("the NCCL %s did not complete within %g s (stage: %s): a peer stopped answering "
                      "(--collective-timeout)", oldest.what, limit, oldest.stage.c_str());
    }
    void check_tensor(const at::Tensor& t, const char* what) const {
        WAN_CHECK(t.is_cuda() && t.get_device() == device_, "%s: the NCCL communicator of cuda:%d got a tensor on %s",
                  what, device_, t.device().str().c_str());
    }

    int device_ = 0;
    std::string members_;  ///< "world ranks …" of the group, for messages
    std::atomic<ncclComm_t> nccl_{nullptr};
    std::unique_ptr<c10::cuda::CUDAStream> side_;
    mutable std::mutex mutex_;  ///< abort_reason_, inflight_ and every NCCL call or query (Note [Bounded NCCL calls])
    std::string abort_reason_;
    std::deque<InFlight> inflight_;
    std::atomic<bool> stop_{false};
    std::thread watchdog_;  ///< last: started when every member above exists, joined first
};

}  // namespace

namespace detail {
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device_index) {
    return std::make_unique<NcclCommunicator>(comm, device_index);
}
}  // namespace detail

}  // namespace wan::dist

#endif  // WAN_HAVE_NCCL
