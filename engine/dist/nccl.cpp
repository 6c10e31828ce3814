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
// job runs on those.
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
#include <mutex>
#include <thread>

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
        if (rc != ncclSuccess) WAN_LOG_WARN("ncclCommDestroy failed: %s", ncclGetErrorString(rc));
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
        NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), nbytes(t), ncclUint8, root, live(), stream()));
        track("broadcast", stream());
        if (!t.is_same(tensor)) tensor.copy_(t);
    }

    void all_reduce(at::Tensor& tensor, ReduceOp op) override {
        check_tensor(tensor, "all_reduce");
        if (size_ == 1) return;
        at::Tensor t = tensor.contiguous();
        NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()),
                                 nccl_reduce_type(t.scalar_type()), op == ReduceOp::Sum ? ncclSum : ncclMax, live(),
                                 stream()));
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
        ncclComm_t comm = live();
        NCCL_CHECK(ncclGroupStart());
        NCCL_CHECK(ncclSend(send.data_ptr(), nbytes(send), ncclUint8, to, comm, side_->stream()));
        NCCL_CHECK(ncclRecv(recv.data_ptr(), nbytes(recv), ncclUint8, from, comm, side_->stream()));
        NCCL_CHECK(ncclGroupEnd());
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
        NCCL_CHECK(ncclAllGather(local.data_ptr(), out.data_ptr(), nbytes(local), ncclUint8, live(), stream()));
        track("all-gather", stream());
        return out;
    }

    at::Tensor all_to_all_flat(const at::Tensor& input) override {
        check_tensor(input, "all_to_all");
        at::Tensor out = at::empty_like(input);
        const size_t block = nbytes(input) / size_;
        auto* src = static_cast<uint8_t*>(input.data_ptr());
        auto* dst = static_cast<uint8_t*>(out.data_ptr());
        ncclComm_t comm = live();
        NCCL_CHECK(ncclGroupStart());
        for (int peer = 0; peer < size_; ++peer) {
            NCCL_CHECK(ncclSend(src + peer * block, block, ncclUint8, peer, comm, stream()));
            NCCL_CHECK(ncclRecv(dst + peer * block, block, ncclUint8, peer, comm, stream()));
        }
        NCCL_CHECK(ncclGroupEnd());
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
        ncclComm_t created = nullptr;
        NCCL_CHECK(ncclCommInitRank(&created, size_, id, rank_));
        return created;
    }

    cudaStream_t stream() const { return c10::cuda::getCurrentCUDAStream(device_).stream(); }
    /// The live communicator. NCCL calls are made without holding mutex_: a call blocked on a silent peer (e.g.
    /// connection set-up in ncclGroupEnd) must not keep the watchdog from aborting, which is what unblocks it.
    ncclComm_t live() const {
        ncclComm_t comm = nccl_.load();
        if (comm == nullptr) {
            std::lock_guard<std::mutex> lock(mutex_);
            WAN_THROW("NCCL communicator (rank %d of %d) used after %s", rank_, size_,
                      abort_reason_.empty() ? "destroy" : ("abort: " + abort_reason_).c_str());
        }
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
        if (rc != ncclSuccess) WAN_LOG_WARN("ncclCommAbort failed: %s", ncclGetErrorString(rc));
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
    std::atomic<ncclComm_t> nccl_{nullptr};
    std::unique_ptr<c10::cuda::CUDAStream> side_;
    mutable std::mutex mutex_;  ///< abort_reason_ and inflight_, shared by the main thread and the watchdog
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
