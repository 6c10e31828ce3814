// Private helpers shared by the dist sources. Not part of the public API.
#pragma once

#include "dist/dist.h"

#include <memory>

namespace wan::dist::detail {

/// A bitwise MPI transport type for elements of `dtype`; `units_per_element` MPI elements per tensor
/// element (1 except for 16-byte dtypes).
MPI_Datatype mpi_transport_type(at::ScalarType dtype, int64_t& units_per_element);
/// `count` as an int; throws naming `what` when it exceeds INT_MAX.
int checked_count(int64_t count, const char* what);

#if defined(WAN_HAVE_NCCL) && WAN_HAVE_NCCL
/// NCCL backend for CUDA tensors on `device_index` (engine/dist/nccl.cpp). Collective over `comm`.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm comm, int device_index);
#endif

}  // namespace wan::dist::detail
