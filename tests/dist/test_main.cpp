// Test main for the multi-process dist tests (style.md §4): MPI through MpiSession, gtest on every rank,
// ranks > 0 print only their failures (prefixed with the rank), and the pass flag is all-reduced so that
// every rank exits with the same code.
#include "test_util.h"

#include "core/core.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

namespace wan::dist::test {

namespace {
std::unique_ptr<Communicator> g_world;
}

Communicator& world() {
    if (!g_world) g_world = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD);
    return *g_world;
}

void reset_world() { g_world.reset(); }

}  // namespace wan::dist::test

namespace {

/// Quiet printer for ranks > 0: only failed assertions, with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
public:
    explicit RankFailurePrinter(int rank) : rank_(rank) {}
    void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (!r.failed()) return;
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        std::fprintf(stderr, "[rank %d] FAILED %s.%s at %s:%d\n%s\n", rank_, info ? info->test_suite_name() : "?",
                     info ? info->name() : "?", r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
    }

private:
    int rank_;
};

}  // namespace

int main(int argc, char** argv) {
    int ok = 0;
    try {
        wan::dist::MpiSession mpi(&argc, &argv);
        ::testing::InitGoogleTest(&argc, argv);
        if (mpi.world_rank() > 0) {
            auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
            delete listeners.Release(listeners.default_result_printer());
            listeners.Append(new RankFailurePrinter(mpi.world_rank()));
        }
        ok = RUN_ALL_TESTS() == 0 ? 1 : 0;
        const int mine = ok;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
        if (mpi.world_rank() == 0 && mine && !ok) std::fprintf(stderr, "a test failed on another rank (see above)\n");
        wan::dist::test::reset_world();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fatal: %s\n", e.what());
        return 2;
    }
    return ok ? 0 : 1;
}
