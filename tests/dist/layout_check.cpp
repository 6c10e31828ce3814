// Builds a Mesh for the layout given on the command line and reports success; a bad layout must end the
// run with a clear error on every rank (no hang). Usage: layout_check --ulysses U --ring R --heads H [--cfg]
#include "dist/dist.h"

#include "core/core.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
    int rank = 0;
    try {
        wan::dist::MpiSession mpi(&argc, &argv);
        rank = mpi.world_rank();
        wan::dist::ParallelLayout layout;
        layout.world = mpi.world_size();
        int64_t heads = 12;
        for (int i = 1; i < argc; ++i) {
            const bool has_value = i + 1 < argc;
            if (!std::strcmp(argv[i], "--ulysses") && has_value) layout.ulysses = std::atoi(argv[++i]);
            else if (!std::strcmp(argv[i], "--ring") && has_value) layout.ring = std::atoi(argv[++i]);
            else if (!std::strcmp(argv[i], "--heads") && has_value) heads = std::atoll(argv[++i]);
            else if (!std::strcmp(argv[i], "--cfg")) layout.cfg_parallel = true;
            else WAN_THROW("unknown argument '%s'", argv[i]);
        }
        wan::dist::MpiCommunicator world(MPI_COMM_WORLD);
        wan::dist::Mesh mesh(world, layout, heads);
        world.barrier();
        std::printf("[rank %d] layout ok\n", rank);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "[rank %d] error: %s\n", rank, e.what());
        return 2;
    }
}
