// What a failed job leaves on a communicator, and how the recovery ends it (Note [Unmatched operations]).
#include "dist/dist.h"
#include "dist/internal.h"

#include "core/core.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace wan::dist::detail {

// Note [Unmatched operations]
// A peer that abandons a collective after a failure notice (protocol/deadline.h, Note [Failure notices]) leaves
// its request pending: MPI has no way to cancel or free a pending collective (freeing or cancelling its request
// is erroneous), and its buffers may still be written by the ranks that did join. Left alone, every failed job
// would leak that request, its buffers (on the MPI backend, whole activations) and, after the renewal, the old
// communicator. So each communicator counts the operations this rank started on it and keeps the last few, as
// what a rank that missed one must post to match it (kind, count, type, root or offset, reduction). After a
// failed agreement every member of each communicator compares counts over a consistent communicator of the same
// ranks; for every operation some member missed, the ranks that did start it tell its form (an all-reduce of the
// encoded form: they all started it with the same one), and the ranks that missed it post it, in order, with
// placeholder buffers. Then every operation on the communicator has all its members, so every pending request
// completes: the abandoned ones are waited for (within --collective-timeout) and their buffers dropped, and the
// communicator can be freed like any other. This also matches an operation that completed on some ranks without
// a member that never joined it (a broadcast's root sends and goes on), which no rank would have abandoned.
// A rank further behind than the log keeps (kLogLength operations; a failed rank misses one or two) cannot be
// matched: its communicator's pending requests are kept for the life of the process (logged); the renewal still
// gives the next job consistent communicators.

namespace {

constexpr size_t kLogLength = 64;
constexpr int kFields = 5;  ///< kind, count, type, root, op

const MPI_Datatype kTypes[] = {MPI_BYTE,  MPI_UINT8_T, MPI_UINT16_T, MPI_UINT32_T, MPI_UINT64_T, MPI_FLOAT,
                               MPI_DOUBLE, MPI_INT8_T, MPI_INT16_T,  MPI_INT32_T,  MPI_INT64_T,  MPI_LONG_LONG};
const MPI_Op kOps[] = {MPI_OP_NULL, MPI_SUM, MPI_MAX, MPI_MIN};

template <typename T, size_t N>
int64_t index_of(const T (&table)[N], T value, const char* what) {
    for (size_t i = 0; i < N; ++i)
        if (table[i] == value) return static_cast<int64_t>(i);
    WAN_THROW("internal error: %s of an MPI operation not in the table of unmatched.cpp", what);
}

void encode(const MpiOperation& op, int64_t* out) {
    out[0] = static_cast<int64_t>(op.kind);
    out[1] = op.count;
    out[2] = index_of(kTypes, op.type, "datatype");
    out[3] = op.root;
    out[4] = index_of(kOps, op.op, "reduction");
}

MpiOperation decode(const int64_t* in) {
    WAN_CHECK(in[0] >= 0 && in[0] <= static_cast<int64_t>(MpiOperation::Kind::Shift) && in[2] >= 0 &&
                  in[2] < static_cast<int64_t>(std::size(kTypes)) && in[4] >= 0 &&
                  in[4] < static_cast<int64_t>(std::size(kOps)),
              "completing an unmatched operation: its form from the peers is not understood");
    MpiOperation op;
    op.kind = static_cast<MpiOperation::Kind>(in[0]);
    op.count = static_cast<int>(in[1]);
    op.type = kTypes[in[2]];
    op.root = static_cast<int>(in[3]);
    op.op = kOps[in[4]];
    return op;
}

/// Posts `op` on `comm` with placeholder buffers (kept in `scratch` until the requests complete).
void post_missed(const MpiOperation& op, MPI_Comm comm, std::vector<std::vector<uint8_t>>& scratch,
                 std::vector<MPI_Request>& requests) {
    int rank = 0, size = 1, type_size = 0;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    MPI_CHECK(MPI_Comm_size(comm, &size));
    MPI_CHECK(MPI_Type_size(op.type, &type_size));
    const size_t block = static_cast<size_t>(op.count) * static_cast<size_t>(type_size);
    auto buffer = [&](size_t bytes) { return scratch.emplace_back(std::max<size_t>(bytes, 1)).data(); };
    auto request = [&]() -> MPI_Request* { return &requests.emplace_back(MPI_REQUEST_NULL); };
    using Kind = MpiOperation::Kind;
    switch (op.kind) {
        case Kind::Barrier: MPI_CHECK(MPI_Ibarrier(comm, request())); break;
        case Kind::Broadcast: MPI_CHECK(MPI_Ibcast(buffer(block), op.count, op.type, op.root, comm, request())); break;
        case Kind::AllReduce:
            MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buffer(block), op.count, op.type, op.op, comm, request()));
            break;
        case Kind::AllGather: {
            uint8_t* send = buffer(block);
            MPI_CHECK(MPI_Iallgather(send, op.count, op.type, buffer(block * size), op.count, op.type, comm, request()));
            break;
        }
        case Kind::AllToAll: {
            uint8_t* send = buffer(block * size);
            MPI_CHECK(MPI_Ialltoall(send, op.count, op.type, buffer(block * size), op.count, op.type, comm, request()));
            break;
        }
        case Kind::Shift: {
            const int to = ((rank + op.root) % size + size) % size, from = ((rank - op.root) % size + size) % size;
            MPI_CHECK(MPI_Irecv(buffer(block), op.count, op.type, from, kShiftTag, comm, request()));
            MPI_CHECK(MPI_Isend(buffer(block), op.count, op.type, to, kShiftTag, comm, request()));
            break;
        }
    }
}

}  // namespace

void OperationLog::started(const MpiOperation& op) {
    ++count_;
    recent_.push_back(op);
    if (recent_.size() > kLogLength) recent_.pop_front();
}

const MpiOperation* OperationLog::find(int64_t seq) const {
    const int64_t first = count_ - static_cast<int64_t>(recent_.size());
    if (seq < first || seq >= count_) return nullptr;
    return &recent_[static_cast<size_t>(seq - first)];
}

void OperationLog::abandon(const MPI_Request* requests, int n, std::initializer_list<at::Tensor> buffers) {
    for (int i = 0; i < n; ++i)
        if (requests[i] != MPI_REQUEST_NULL) abandoned_.push_back(requests[i]);
    kept_.insert(kept_.end(), buffers);
}

bool OperationLog::complete_unmatched(MPI_Comm comm, MPI_Comm fresh) {
    int64_t range[2] = {count_, -count_};
    MPI_BOUNDED("count of the operations started", MPI_Iallreduce, MPI_IN_PLACE, range, 2, MPI_INT64_T, MPI_MAX, fresh);
    const int64_t last = range[0], first = -range[1];
    std::vector<std::vector<uint8_t>> scratch;
    std::vector<MPI_Request> requests;
    bool complete = true;
    for (int64_t seq = first; seq < last; ++seq) {
        int64_t form[kFields] = {-1, -1, -1, -1, -1};
        if (const MpiOperation* op = find(seq)) encode(*op, form);
        MPI_BOUNDED("form of a missed operation", MPI_Iallreduce, MPI_IN_PLACE, form, kFields, MPI_INT64_T, MPI_MAX,
                    fresh);
        if (form[0] < 0) {  // every rank that started it has forgotten it: the same verdict on every member
            complete = false;
            break;
        }
        if (count_ != seq) continue;  // this rank started it
        const MpiOperation op = decode(form);
        post_missed(op, comm, scratch, requests);
        started(op);
    }
    if (!complete) {
        WAN_LOG_WARN("a rank missed more than the last %zu operations of a communicator: %zu request(s) left pending "
                     "by the failure stay allocated", kLogLength, abandoned_.size());
        protocol::wait_all(static_cast<int>(requests.size()), requests.data(), "completing missed operations");
        return false;
    }
    requests.insert(requests.end(), abandoned_.begin(), abandoned_.end());
    protocol::wait_all(static_cast<int>(requests.size()), requests.data(), "completing operations left by a failure");
    abandoned_.clear();
    kept_.clear();
    return true;
}

void OperationLog::release_pending(std::vector<MPI_Request>& requests, std::vector<at::Tensor>& buffers) {
    requests.insert(requests.end(), abandoned_.begin(), abandoned_.end());
    buffers.insert(buffers.end(), kept_.begin(), kept_.end());
    abandoned_.clear();
    kept_.clear();
}

void OperationLog::restart() {
    count_ = 0;
    recent_.clear();
}

}  // namespace wan::dist::detail
