// Bounded waits on other ranks (`--collective-timeout`). Every MPI wait of the engine runtime — protocol
// messages, host agreements and the MPI backend's tensor collectives — starts a nonblocking operation and
// completes it here, polling MPI_Test against a deadline. While polling, a rank also answers "roll calls":
// when a wait runs out, the rank that noticed asks every peer to answer within a short grace period; the
// ranks that do not answer are named in the message (a stopped, crashed or hung process), together with the
// stage the waiting rank was in. Then the job cannot be saved (an MPI collective cannot be cancelled), so the
// message is printed and MPI_Abort ends every rank: a clear end instead of a hang.
//
// The roll-call channel is a private duplicate of the world communicator made by start_watchdog()
// (collective, once, early). Before it exists, a wait that runs out aborts without naming a rank. MPI only
// (no LibTorch), like the rest of engine/protocol.
#pragma once

#include "core/core.h"

#include <mpi.h>

#include <functional>
#include <string>

namespace wan::protocol {

/// Seconds any single wait on other ranks may last; 0 = no deadline. Default 600. Not collective, but every
/// rank must be given the same value (it comes from the same command line).
void set_collective_timeout(double seconds);
double collective_timeout();

/// Collective over `world`: creates the roll-call channel. Idempotent (later calls do nothing).
void start_watchdog(MPI_Comm world);

/// What this rank is doing, for the message when a wait runs out ("step 3", "sending Generate"…).
void set_stage(const std::string& stage);
std::string current_stage();

/// Restores the previous stage at scope exit.
class StageScope {
public:
    explicit StageScope(const std::string& stage);
    ~StageScope();
    StageScope(const StageScope&) = delete;
    StageScope& operator=(const StageScope&) = delete;

private:
    std::string previous_;
};

// Note [Failure notices]
// A rank that fails inside a unit of work that ends with a step agreement (pipeline on_every_rank) may leave
// its peers inside a collective of that unit which it will never join (e.g. the next DiT block's all-to-all),
// where they would wait for the full --collective-timeout and then end without knowing why. So before joining
// the agreement, the failing rank sends every peer a notice (reason and agreement number) on the roll-call
// channel. A peer that receives it while waiting in any other collective of the same unit gives that wait a
// grace of kNoticeGraceSeconds (2 s): a collective the failed rank joined before failing still completes (its
// data is already on the way), and the peer goes on to the agreement with nothing to repair. One it never
// joined cannot complete, and an MPI collective cannot be cancelled: the peer abandons it (the request is left
// pending; after the agreement the failed rank posts the operation it missed, which completes it: Note [Unmatched
// operations] in engine/dist/unmatched.cpp) and throws PeerFailed naming the failing rank and its reason. Its work fails, it
// joins the agreement, and the job fails on every rank. The communicator of the abandoned operation is
// inconsistent from then on (one rank has an operation the others never match), so take_abandoned() tells the
// mesh to replace its communicators before the next job (dist::Mesh::recover_after_failure). A peer that is
// already in the agreement, or has passed it, ignores the notice. Agreements are counted alike on every rank.

/// Thrown by wait() / wait_all() when a peer's failure notice shows that the wait can never complete: the
/// operation was abandoned (see Note [Failure notices]).
class PeerFailed : public Error {
public:
    using Error::Error;
};

/// Sends the notice above to every peer (nonblocking; never waits). `reason` is this rank's error.
void announce_failure(const std::string& reason);
/// The wait that follows is the agreement itself (notices are expected there, not acted upon); RAII.
class AgreementWait {
public:
    AgreementWait();
    ~AgreementWait();  ///< counts the agreement as passed (also when it threw)
    AgreementWait(const AgreementWait&) = delete;
    AgreementWait& operator=(const AgreementWait&) = delete;
};

/// Whether a wait was abandoned (PeerFailed) since the last call; clears the mark. A communicator that carried
/// an abandoned operation must not be used again.
bool take_abandoned();

/// Prints `why` and ends every rank (MPI_Abort): for a failure that leaves the ranks unable to go on together.
[[noreturn]] void end_every_rank(const std::string& why);

// Note [Cancel notices]
// Loading a model has no collective between its tensors, so a Cancel seen by one rank (the head's window, a
// worker's Ctrl+C) would otherwise reach the others only at the agreement after the component they are reading
// (pipeline Note [Load agreement]): minutes for a 14B DiT. So the rank that sees it also sends every peer a
// notice on the roll-call channel, and the peers poll for it between tensors. The notice only makes them stop
// sooner: the agreement still decides, so a notice that is lost or late changes nothing but the time.

/// Sends the cancel notice to every peer (nonblocking; never waits; once per process).
void announce_cancel();
/// Whether a peer's cancel notice has arrived (polls without waiting; stays true once seen).
bool cancel_announced();

/// Completes `request` (which ends when the peers of `comm` take part), answering roll calls meanwhile.
/// `what` names the operation ("all-to-all", "message body"…). With a deadline that runs out: prints which
/// ranks stopped answering and the stage, then MPI_Abort(MPI_COMM_WORLD). When a peer's failure notice shows
/// that the wait cannot complete, throws PeerFailed after the notice's grace (Note [Failure notices]).
/// `bounded` false waits without deadline (a worker idle until the head's next request). Throws wan::Error
/// when MPI reports an error.
void wait(MPI_Request& request, const char* what, bool bounded = true);
/// The same for several requests at once (e.g. the two halves of a ring shift).
void wait_all(int count, MPI_Request* requests, const char* what, bool bounded = true);
/// Waits until `done()` is true — work queued on a GPU, say, which may sit behind an NCCL operation that a failed
/// peer never joins — polling as wait() does: roll calls are answered, and a peer's failure notice throws
/// PeerFailed after its grace (the mesh then aborts and re-creates the NCCL communicators, which ends that work).
/// No deadline of its own: the NCCL watchdog bounds GPU work. E.g. the head's read-back of the live preview.
void wait_until(const std::function<bool()>& done, const char* what);
/// wait_until() with a deadline: returns false when `done()` is still false after `limit_seconds` (0 = none). The
/// caller then releases what it waited for and says why (an NCCL call: Note [Bounded NCCL calls] in nccl.cpp),
/// which MPI cannot do, hence no MPI_Abort here.
bool wait_until_for(const std::function<bool()>& done, const char* what, double limit_seconds);

}  // namespace wan::protocol
