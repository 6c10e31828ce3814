// Bounded waits on other ranks and the roll call that names a silent rank. See deadline.h.
#include "protocol/deadline.h"

#include "core/clock.h"
#include "core/core.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace wan::protocol {

namespace {

constexpr int kPingTag = 1;
constexpr int kPongTag = 2;
constexpr int kFailureTag = 3;  ///< Note [Failure notices]
constexpr int kCancelTag = 4;   ///< Note [Cancel notices]
/// How long a wait goes on after a failure notice before it is abandoned: a collective the failed rank joined
/// before failing completes within this (its data is already on the way); one it never joins does not.
constexpr double kNoticeGraceSeconds = 2.0;
constexpr size_t kNoticeReasonMax = 4000;

std::atomic<double> g_timeout{600.0};
MPI_Comm g_roll = MPI_COMM_NULL;  ///< the roll-call channel (a duplicate of the world)
int g_rank = 0;
int g_size = 1;
std::mutex g_stage_mutex;
std::string g_stage = "start-up";

// Failure notices (main thread only, like every wait). g_agreements counts the step agreements passed.
struct FailureNotice {
    int rank = -1;
    int64_t agreement = 0;
    std::string stage, reason;
};
struct SentNotice {
    MPI_Request request = MPI_REQUEST_NULL;
    std::string payload;  ///< kept until the send completes
};
int64_t g_agreements = 0;
bool g_in_agreement = false;
std::optional<FailureNotice> g_notice;  ///< received for the current agreement, not acted upon yet
std::deque<SentNotice> g_sent;
bool g_abandoned = false;  ///< a wait was abandoned since the last take_abandoned()
bool g_cancel_sent = false;
bool g_cancel_seen = false;

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, buf, &len);
    WAN_THROW("%s failed: %s (code %d)", what, std::string(buf, static_cast<size_t>(len)).c_str(), rc);
}

/// Answers every roll call that arrived (a peer whose wait ran out asks whether this rank is alive).
void serve_roll_calls() {
    if (g_roll == MPI_COMM_NULL) return;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, kPingTag, g_roll, &flag, &st) != MPI_SUCCESS || !flag) return;
        int ping = 0, pong = g_rank;
        MPI_Recv(&ping, 1, MPI_INT, st.MPI_SOURCE, kPingTag, g_roll, MPI_STATUS_IGNORE);
        MPI_Send(&pong, 1, MPI_INT, st.MPI_SOURCE, kPongTag, g_roll);  // the asker has its receive posted
    }
}

/// Frees the notices this rank sent whose sends completed.
void reap_sent_notices() {
    while (!g_sent.empty()) {
        int done = 0;
        if (MPI_Test(&g_sent.front().request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS || !done) return;
        g_sent.pop_front();
    }
}

/// Receives the failure notices that arrived; keeps the first one for the current agreement in g_notice
/// (notices of an agreement already passed are stale: that job already failed on every rank).
void receive_notices() {
    if (g_roll == MPI_COMM_NULL) return;
    for (;;) {
        int flag = 0, count = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, kFailureTag, g_roll, &flag, &st) != MPI_SUCCESS || !flag) return;
        MPI_Get_count(&st, MPI_CHAR, &count);
        std::string text(static_cast<size_t>(std::max(count, 0)), '\0');
        MPI_Recv(text.data(), count, MPI_CHAR, st.MPI_SOURCE, kFailureTag, g_roll, MPI_STATUS_IGNORE);
        // "<agreement>\n<stage>\n<reason>"
        const size_t a = text.find('\n'), b = a == std::string::npos ? a : text.find('\n', a + 1);
        if (b == std::string::npos) continue;  // not ours to understand
        FailureNotice n{st.MPI_SOURCE, std::atoll(text.substr(0, a).c_str()), text.substr(a + 1, b - a - 1),
                        text.substr(b + 1)};
        if (n.agreement >= g_agreements && !g_notice) g_notice = std::move(n);
    }
}

/// A peer failed and will not join the collective this rank waits in: the operation is abandoned (left
/// pending: an MPI collective cannot be cancelled; the recovery completes it) and its communicator marked for
/// replacement.
[[noreturn]] void abandon_after_peer_failure(const FailureNotice& n, const char* what) {
    g_abandoned = true;
    const std::string msg = strfmt(
        "rank %d failed during %s: %s. Rank %d was waiting for it in the %s (stage: %s), which cannot complete "
        "now; it was abandoned and the communicators are re-created before the next job.",
        n.rank, n.stage.c_str(), n.reason.c_str(), g_rank, what, current_stage().c_str());
    throw PeerFailed(msg);  // logged by whoever fails the work (pipeline on_every_rank)
}

/// Short pause between polls once a wait is not immediate: keeps a waiting rank from eating a core that a
/// peer on the same node needs, at a cost of tens of microseconds of latency.
void pause_after(Clock::time_point t0) {
    if (seconds_since(t0) > 0.002) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

/// The ranks that do not answer a roll call within `grace` seconds (empty without a roll-call channel).
std::vector<int> silent_ranks(double grace) {
    std::vector<int> silent;
    if (g_roll == MPI_COMM_NULL) return silent;
    std::vector<MPI_Request> recv(static_cast<size_t>(g_size), MPI_REQUEST_NULL), send = recv;
    std::vector<int> pong(static_cast<size_t>(g_size), -1);
    int ping = g_rank;
    for (int p = 0; p < g_size; ++p) {
        if (p == g_rank) continue;
        MPI_Irecv(&pong[static_cast<size_t>(p)], 1, MPI_INT, p, kPongTag, g_roll, &recv[static_cast<size_t>(p)]);
        MPI_Isend(&ping, 1, MPI_INT, p, kPingTag, g_roll, &send[static_cast<size_t>(p)]);
    }
    const auto t0 = Clock::now();
    std::vector<bool> answered(static_cast<size_t>(g_size), false);
    answered[static_cast<size_t>(g_rank)] = true;
    for (;;) {
        bool all = true;
        for (int p = 0; p < g_size; ++p) {
            if (answered[static_cast<size_t>(p)]) continue;
            int flag = 0;
            MPI_Test(&recv[static_cast<size_t>(p)], &flag, MPI_STATUS_IGNORE);
            answered[static_cast<size_t>(p)] = flag != 0;
            all = all && flag;
        }
        if (all || seconds_since(t0) > grace) break;
        serve_roll_calls();  // a peer may be asking at the same moment
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (int p = 0; p < g_size; ++p)
        if (!answered[static_cast<size_t>(p)]) silent.push_back(p);
    return silent;  // the requests are left as they are: the job ends right after
}

[[noreturn]] void expire(const char* what, double limit) {
    const std::string stage = current_stage();
    const double grace = std::min(10.0, std::max(1.0, limit / 2));
    const std::vector<int> silent = silent_ranks(grace);
    std::string who;
    for (int p : silent) who += (who.empty() ? "" : ", ") + std::to_string(p);
    std::string msg;
    if (g_roll == MPI_COMM_NULL)
        msg = strfmt("rank %d: no answer from the other ranks within %g s (%s, stage: %s); --collective-timeout "
                     "ran out. Ending every rank.", g_rank, limit, what, stage.c_str());
    else if (silent.empty())
        msg = strfmt("rank %d: the %s did not complete within %g s (stage: %s), yet every rank answers: the ranks "
                     "disagree on the next collective. Ending every rank.", g_rank, what, limit, stage.c_str());
    else
        msg = strfmt("rank %s stopped answering: rank %d waited %g s in the %s (stage: %s) and rank %s did not "
                     "answer a roll call within %g s (stopped, hung or dead; --collective-timeout). Ending every rank.",
                     who.c_str(), g_rank, limit, what, stage.c_str(), who.c_str(), grace);
    end_every_rank(msg);
}

}  // namespace

void end_every_rank(const std::string& why) {
    WAN_LOG_ERROR("%s", why.c_str());
    std::fflush(stdout);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);  // MPI_Abort does not return; this keeps the promise of [[noreturn]] if it ever did
}

bool take_abandoned() {
    const bool was = g_abandoned;
    g_abandoned = false;
    return was;
}

void set_collective_timeout(double seconds) {
    WAN_CHECK(seconds >= 0, "--collective-timeout must be ≥ 0 seconds (0 = no deadline), got %g", seconds);
    g_timeout.store(seconds);
}

double collective_timeout() { return g_timeout.load(); }

void start_watchdog(MPI_Comm world) {
    if (g_roll != MPI_COMM_NULL) return;
    check(MPI_Comm_rank(world, &g_rank), "MPI_Comm_rank");
    check(MPI_Comm_size(world, &g_size), "MPI_Comm_size");
    MPI_Comm roll = MPI_COMM_NULL;
    check(MPI_Comm_dup(world, &roll), "MPI_Comm_dup (roll-call channel)");
    MPI_Comm_set_errhandler(roll, MPI_ERRORS_RETURN);
    g_roll = roll;
}

void set_stage(const std::string& stage) {
    std::lock_guard<std::mutex> lock(g_stage_mutex);
    g_stage = stage;
}

std::string current_stage() {
    std::lock_guard<std::mutex> lock(g_stage_mutex);
    return g_stage;
}

StageScope::StageScope(const std::string& stage) : previous_(current_stage()) { set_stage(stage); }
StageScope::~StageScope() { set_stage(previous_); }

void announce_failure(const std::string& reason) {
    if (g_roll == MPI_COMM_NULL || g_size < 2) return;
    reap_sent_notices();
    const std::string payload = strfmt("%lld\n%s\n", static_cast<long long>(g_agreements), current_stage().c_str()) +
                                reason.substr(0, kNoticeReasonMax);
    for (int p = 0; p < g_size; ++p) {
        if (p == g_rank) continue;
        g_sent.push_back(SentNotice{MPI_REQUEST_NULL, payload});  // deque: the element (and its buffer) stays put
        SentNotice& sent = g_sent.back();
        if (MPI_Isend(sent.payload.data(), static_cast<int>(sent.payload.size()), MPI_CHAR, p, kFailureTag, g_roll,
                      &sent.request) != MPI_SUCCESS)
            g_sent.pop_back();  // best effort: without the notice the peer's deadline still ends the wait
    }
}

void announce_cancel() {
    if (g_roll == MPI_COMM_NULL || g_size < 2 || g_cancel_sent) return;
    g_cancel_sent = true;
    reap_sent_notices();
    for (int p = 0; p < g_size; ++p) {
        if (p == g_rank) continue;
        g_sent.push_back(SentNotice{MPI_REQUEST_NULL, "cancel"});
        SentNotice& sent = g_sent.back();
        if (MPI_Isend(sent.payload.data(), static_cast<int>(sent.payload.size()), MPI_CHAR, p, kCancelTag, g_roll,
                      &sent.request) != MPI_SUCCESS)
            g_sent.pop_back();  // best effort: the agreement after the component still tells that peer
    }
}

bool cancel_announced() {
    if (g_cancel_seen || g_roll == MPI_COMM_NULL) return g_cancel_seen;
    int flag = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kCancelTag, g_roll, &flag, &st) != MPI_SUCCESS || !flag) return false;
    int count = 0;
    MPI_Get_count(&st, MPI_CHAR, &count);
    std::string text(static_cast<size_t>(std::max(count, 0)), '\0');
    MPI_Recv(text.data(), count, MPI_CHAR, st.MPI_SOURCE, kCancelTag, g_roll, MPI_STATUS_IGNORE);
    g_cancel_seen = true;
    return true;
}

AgreementWait::AgreementWait() { g_in_agreement = true; }

AgreementWait::~AgreementWait() {
    g_in_agreement = false;
    ++g_agreements;
    if (g_notice && g_notice->agreement < g_agreements) g_notice.reset();  // that job failed on every rank
}

namespace {

/// One poll of a wait on other ranks: answers roll calls and, outside the agreement, abandons the wait `what`
/// (throws PeerFailed) once a peer's failure notice is older than its grace. `noticed`: when this wait first saw it.
void poll_peers(const char* what, std::optional<Clock::time_point>& noticed) {
    serve_roll_calls();
    if (g_in_agreement) return;  // in the agreement a notice is expected: the failed rank is there too
    receive_notices();
    if (g_notice && !noticed) noticed = Clock::now();
    if (noticed && seconds_since(*noticed) > kNoticeGraceSeconds) abandon_after_peer_failure(*g_notice, what);
}

}  // namespace

void wait_all(int count, MPI_Request* requests, const char* what, bool bounded) {
    const double limit = bounded ? collective_timeout() : 0.0;
    const auto t0 = Clock::now();
    std::optional<Clock::time_point> noticed;
    for (;;) {
        int done = 0;
        check(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE), what);
        if (done) return;
        poll_peers(what, noticed);
        if (limit > 0 && seconds_since(t0) > limit) expire(what, limit);
        pause_after(t0);
    }
}

void wait_until(const std::function<bool()>& done, const char* what) { (void)wait_until_for(done, what, 0.0); }

bool wait_until_for(const std::function<bool()>& done, const char* what, double limit_seconds) {
    const auto t0 = Clock::now();
    std::optional<Clock::time_point> noticed;
    while (!done()) {
        if (limit_seconds > 0 && seconds_since(t0) > limit_seconds) return false;
        poll_peers(what, noticed);
        pause_after(t0);
    }
    return true;
}

void wait(MPI_Request& request, const char* what, bool bounded) { wait_all(1, &request, what, bounded); }

}  // namespace wan::protocol
