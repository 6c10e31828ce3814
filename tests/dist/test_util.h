// Shared pieces of the dist tests: the world communicator of the test process.
#pragma once

#include "dist/dist.h"

namespace wan::dist::test {

/// MPI backend over MPI_COMM_WORLD, created on first use, destroyed by reset_world() before MPI ends.
Communicator& world();
void reset_world();

}  // namespace wan::dist::test
