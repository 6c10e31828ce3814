// Rank facts, the device choice and the host-side control collectives of the engine runtime (dist.h,
// "rank facts and host-side control collectives"). Plain host values over MPI, whatever the tensor backend.
#include "dist/dist.h"
#include "dist/internal.h"

#include "core/core.h"

#include <ATen/Context.h>

namespace wan::dist {

RankFacts rank_facts(MPI_Comm world) {
    RankFacts f;
    MPI_CHECK(MPI_Comm_rank(world, &f.rank));
    MPI_CHECK(MPI_Comm_size(world, &f.size));
    MPI_Comm node = MPI_COMM_NULL;
    MPI_CHECK(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, f.rank, MPI_INFO_NULL, &node));
    MPI_CHECK(MPI_Comm_rank(node, &f.local_rank));
    MPI_CHECK(MPI_Comm_size(node, &f.local_size));
    MPI_Comm_free(&node);
    return f;
}

std::pair<int, int> rank_and_size(MPI_Comm world) {
    int rank = 0, size = 1;
    MPI_CHECK(MPI_Comm_rank(world, &rank));
    MPI_CHECK(MPI_Comm_size(world, &size));
    return {rank, size};
}

c10::Device pick_device(const std::string& requested, int local_rank, int local_size) {
    WAN_CHECK(requested == "auto" || requested == "cuda" || requested == "cpu",
              "device '%s': expected auto, cuda or cpu", requested.c_str());
    if (requested == "cpu" || (requested == "auto" && !at::hasCUDA())) return c10::Device(c10::kCPU);
    WAN_CHECK(at::hasCUDA(), "--device cuda: this build or machine has no CUDA device");
    const int gpus = static_cast<int>(at::getNumGPUs());
    WAN_CHECK(local_size <= gpus,
              "%d processes run on this node but it has %d GPU(s): start at most %d (one per GPU), e.g. "
              "mpirun -np %d, or use --device cpu",
              local_size, gpus, gpus, gpus);
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

std::pair<std::string, bool> mpi_thread_level() {
    int provided = 0;
    MPI_CHECK(MPI_Query_thread(&provided));
    const char* name = provided >= MPI_THREAD_MULTIPLE     ? "MULTIPLE"
                       : provided >= MPI_THREAD_SERIALIZED ? "SERIALIZED"
                                                           : "too low";
    return {name, provided >= MPI_THREAD_SERIALIZED};
}

std::string mpi_library_version() {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0, major = 0, minor = 0;
    MPI_Get_library_version(lib, &len);
    MPI_Get_version(&major, &minor);
    const std::string text(lib, static_cast<size_t>(len));
    return strfmt("%s (MPI standard %d.%d)", text.substr(0, text.find_first_of(",\n")).c_str(), major, minor);
}

bool all_ok(MPI_Comm world, bool ok) {
    int mine = ok ? 1 : 0, all = 0;
    MPI_BOUNDED("agreement of all ranks", MPI_Iallreduce, &mine, &all, 1, MPI_INT, MPI_MIN, world);
    return all == 1;
}

std::vector<std::string> gather_strings(MPI_Comm world, const std::string& mine) {
    int rank = 0, size = 1;
    MPI_CHECK(MPI_Comm_rank(world, &rank));
    MPI_CHECK(MPI_Comm_size(world, &size));
    int n = static_cast<int>(mine.size());
    std::vector<int> lens(static_cast<size_t>(size)), displs(static_cast<size_t>(size));
    MPI_BOUNDED("gather of string sizes", MPI_Igather, &n, 1, MPI_INT, lens.data(), 1, MPI_INT, 0, world);
    int total = 0;
    for (int i = 0; i < size; ++i) {
        displs[static_cast<size_t>(i)] = total;
        total += lens[static_cast<size_t>(i)];
    }
    std::string all(static_cast<size_t>(rank == 0 ? total : 0), '\0');
    MPI_BOUNDED("gather of strings", MPI_Igatherv, mine.data(), n, MPI_CHAR, all.data(), lens.data(), displs.data(), MPI_CHAR, 0,
                world);
    std::vector<std::string> out;
    if (rank == 0)
        for (int i = 0; i < size; ++i)
            out.push_back(all.substr(static_cast<size_t>(displs[static_cast<size_t>(i)]),
                                     static_cast<size_t>(lens[static_cast<size_t>(i)])));
    return out;
}

std::vector<double> gather_doubles(MPI_Comm world, const std::vector<double>& mine) {
    int size = 1;
    MPI_CHECK(MPI_Comm_size(world, &size));
    std::vector<double> all(mine.size() * static_cast<size_t>(size));
    const int n = static_cast<int>(mine.size());
    MPI_BOUNDED("gather of numbers", MPI_Igather, mine.data(), n, MPI_DOUBLE, all.data(), n, MPI_DOUBLE, 0, world);
    return all;
}

int64_t broadcast_int64(MPI_Comm world, int64_t value, int root) {
    long long v = value;
    MPI_BOUNDED("broadcast of a number", MPI_Ibcast, &v, 1, MPI_LONG_LONG, root, world);
    return v;
}

}  // namespace wan::dist
