// Private helpers shared by the dist sources. Not part of the public API.
#pragma once

#include "dist/dist.h"
#include "protocol/deadline.h"

#include <ATen/core/Tensor.h>

#include <deque>
#include <initializer_list>
#include <memory>
#include <vector>

/// Starts the nonblocking MPI collective `fn(args…, &request)` and completes it within --collective-timeout
/// (protocol::wait: a silent peer is named and every rank ends instead of hanging). `what` names it.
#define MPI_BOUNDED(what, fn, ...)                                          \
    do {                                                                    \
        MPI_Request wan_request_ = MPI_REQUEST_NULL;                        \
        MPI_CHECK(fn(__VA_ARGS__, &wan_request_));                          \
        ::wan::protocol::wait(wan_request_, what);                          \
    } while (0)

namespace wan::dist::detail {

/// Tag of the ring shift's messages (MpiCommunicator::start_shift, and a rank completing a missed one).
constexpr int kShiftTag = 7001;

/// One MPI operation over a communicator's comm_, as a rank that missed it must post it (Note [Unmatched
/// operations] in unmatched.cpp). The same on every member for the operations we use (no per-rank counts).
struct MpiOperation {
    enum class Kind : int64_t { Barrier = 0, Broadcast, AllReduce, AllGather, AllToAll, Shift };
    Kind kind = Kind::Barrier;
    int count = 0;                 ///< elements per rank (AllToAll: per block; Shift: sent and received)
    MPI_Datatype type = MPI_BYTE;
    int root = 0;                  ///< Broadcast: the root; Shift: the offset
    MPI_Op op = MPI_OP_NULL;       ///< AllReduce only
};

/// The MPI operations this rank started on one communicator: how many, the last few (to tell a peer that missed
/// one what to post), and those abandoned after a peer's failure (their requests and the buffers MPI may still
/// use). Main thread only, like every MPI call of the engine.
class OperationLog {
public:
    void started(const MpiOperation& op);
    int64_t count() const { return count_; }
    /// Operation number `seq` (0-based) if it is among the last ones kept, else nullptr.
    const MpiOperation* find(int64_t seq) const;
    /// Keeps `requests` (left pending: a peer never joined) and `buffers` until complete_unmatched() ends them.
    void abandon(const MPI_Request* requests, int n, std::initializer_list<at::Tensor> buffers);
    /// Brings every member's operations on `comm` to the same count, then waits for every request this rank left
    /// pending, so that `comm` holds no operation any more. `fresh`: a consistent communicator of the same ranks
    /// in the same order, for the counts. Collective over the members. Returns false when an operation could not
    /// be completed (a rank missed one older than the log keeps): its requests stay pending, kept.
    bool complete_unmatched(MPI_Comm comm, MPI_Comm fresh);
    /// Requests left pending (abandoned, not completed yet).
    int64_t pending_requests() const { return static_cast<int64_t>(abandoned_.size()); }
    /// Hands the pending requests and their buffers over (to be kept for the life of the process).
    void release_pending(std::vector<MPI_Request>& requests, std::vector<at::Tensor>& buffers);
    /// Starts counting again (a renewed communicator: every member starts from zero).
    void restart();

private:
    int64_t count_ = 0;
    std::deque<MpiOperation> recent_;  ///< operations count_ - recent_.size() … count_ - 1
    std::vector<MPI_Request> abandoned_;
    std::vector<at::Tensor> kept_;
};

/// A bitwise MPI transport type for elements of `dtype`; `units_per_element` MPI elements per tensor
/// element (1 except for 16-byte dtypes).
MPI_Datatype mpi_transport_type(at::ScalarType dtype, int64_t& units_per_element);
/// `count` as an int; throws naming `what` when it exceeds INT_MAX.
int checked_count(int64_t count, const char* what);
/// For a PendingExchange's destructor: completes `exchange` and logs (does not throw) a failure, since an
/// exchange being discarded, perhaps during unwinding, has nobody left to report it to.
void wait_or_log(PendingExchange& exchange) noexcept;

#if defined(WAN_HAVE_NCCL) && WAN_HAVE_NCCL
/// NCCL backend for CUDA tensors on `device_index` (engine/dist/nccl.cpp). Collective over `comm`.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device_index);
#endif

}  // namespace wan::dist::detail
