// Test main for the multi-process dist tests (style.md §4): MPI through MpiSession, gtest on every rank,
// ranks > 0 print only their failures (prefixed with the rank), and the pass flag is all-reduced so that
// every rank exits with the same code.
#include "test_util.h"

#include "core/core.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

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

/// Quiet printer for ranks > 0: only failed assertions, with the rank. The test name is remembered in
/// OnTestStart: gtest holds its own mutex while reporting a result, so current_test_info() would deadlock.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
public:
    explicit RankFailurePrinter(int rank) : rank_(rank) {}
    void OnTestStart(const ::testing::TestInfo& info) override {
        test_ = std::string(info.test_suite_name()) + "." + info.name();
    }
    void OnTestPartResult(const ::testing::TestPartResult& r) override {
        if (!r.failed()) return;
        std::fprintf(stderr, "[rank %d] FAILED %s at %s:%d\n%s\n", rank_, test_.c_str(),
                     r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
    }

private:
    int rank_;
    std::string test_;
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
