// Private helpers shared by the dist sources. Not part of the public API.
#pragma once

#include "dist/dist.h"
#include "protocol/deadline.h"

#include <memory>

/// Starts the nonblocking MPI collective `fn(args…, &request)` and completes it within --collective-timeout
/// (protocol::wait: a silent peer is named and every rank ends instead of hanging). `what` names it.
#define MPI_BOUNDED(what, fn, ...)                                          \
    do {                                                                    \
        MPI_Request wan_request_ = MPI_REQUEST_NULL;                        \
        MPI_CHECK(fn(__VA_ARGS__, &wan_request_));                          \
        ::wan::protocol::wait(wan_request_, what);                          \
    } while (0)

namespace wan::dist::detail {

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
