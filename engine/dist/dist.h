// Distributed runtime: MPI session, communicators (MPI for CPU tensors, NCCL for CUDA tensors), the
// Ulysses × Ring × CFG rank layout, sequence-parallel (USP) attention, FSDP-style parameter sharding and
// the step-boundary status agreement.
// Ref: ../shared/docs/wan21-reference.md §8; style.md §3.1, §3.2, §3.6.
//
// Every function documented as "collective" must be called by all ranks of the communicator in the same
// order, with arguments of the same shapes; otherwise ranks disagree on the next message and hang.
#pragma once

#include "core/engine_config.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace wan::io {
class TensorStore;
}

namespace wan::dist::detail {
struct MpiOperation;
class OperationLog;
}  // namespace wan::dist::detail

namespace wan::dist {

// ---- errors -----------------------------------------------------------------------------------------

/// Throws wan::Error "<what> failed: <MPI error string> (code N)" when `code` is not MPI_SUCCESS.
void mpi_check(int code, const char* what, const char* file, int line);

}  // namespace wan::dist

/// Turns an MPI return code into a wan::Error carrying MPI's own error string and the failing call.
/// Communicators created here use MPI_ERRORS_RETURN, so codes do come back instead of aborting the job.
#define MPI_CHECK(call) ::wan::dist::mpi_check((call), #call, __FILE__, __LINE__)

namespace wan::dist {

// ---- MPI session ------------------------------------------------------------------------------------

/// RAII owner of MPI_Init_thread / MPI_Finalize; lives in main(). Requests MPI_THREAD_SERIALIZED
/// because on rank 0 MPI is called from the engine thread, not the thread that initialised MPI
/// (style.md §3.5). Works when the program is started plainly (a world of one). If MPI was already
/// initialised by someone else, the session neither initialises nor finalises it.
class MpiSession {
public:
    /// Throws wan::Error when the library provides less than `required` thread support.
    explicit MpiSession(int* argc = nullptr, char*** argv = nullptr, int required = MPI_THREAD_SERIALIZED);
    ~MpiSession();
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;

    int world_rank() const { return world_rank_; }
    int world_size() const { return world_size_; }
    int local_rank() const { return local_rank_; }  ///< rank among the processes of this node (GPU index)
    int local_size() const { return local_size_; }
    int thread_level() const { return provided_; }  ///< the MPI_THREAD_* level obtained
    MPI_Comm world() const { return MPI_COMM_WORLD; }

private:
    bool owns_ = false;
    int provided_ = 0;
    int world_rank_ = 0;
    int world_size_ = 1;
    int local_rank_ = 0;
    int local_size_ = 1;
};

// ---- rank facts and host-side control collectives ----------------------------------------------------
// The engine runtime's control plane: small collectives over plain host values, always over MPI (whatever
// the tensor backend). Each is collective over `world`.

/// Where this process sits: world rank/size and rank/size among the processes of its node.
struct RankFacts {
    int rank = 0;
    int size = 1;
    int local_rank = 0;  ///< this node's GPU index for the rank
    int local_size = 1;
};
/// Collective over `world` (the node split); rank_and_size() alone is not.
RankFacts rank_facts(MPI_Comm world);
/// {rank, size} of this process in `world`. Not collective.
std::pair<int, int> rank_and_size(MPI_Comm world);
/// This rank's device for `requested` (auto | cuda | cpu): cuda:<local_rank> when CUDA is used, else the CPU.
/// Throws wan::Error when CUDA is asked for but missing, or the node has more ranks than GPUs. Not collective.
c10::Device pick_device(const std::string& requested, int local_rank, int local_size);
/// The MPI thread level obtained ("MULTIPLE", "SERIALIZED", …) and whether it suffices (≥ SERIALIZED).
std::pair<std::string, bool> mpi_thread_level();
/// "Open MPI v4.1.6 (MPI standard 3.1)": the library and the standard version (for --version).
std::string mpi_library_version();
/// true only when `ok` is true on every rank.
bool all_ok(MPI_Comm world, bool ok);
/// Rank 0 receives every rank's string in rank order (other ranks get an empty vector).
std::vector<std::string> gather_strings(MPI_Comm world, const std::string& mine);
/// Rank 0 receives every rank's `mine` (same length on every rank), concatenated in rank order.
std::vector<double> gather_doubles(MPI_Comm world, const std::vector<double>& mine);
/// `value` of `root` on every rank.
int64_t broadcast_int64(MPI_Comm world, int64_t value, int root = 0);

// ---- waiting for a GPU ----------------------------------------------------------------------------------
// Note [Watched device waits]
// Work queued on a GPU may sit behind an NCCL operation that a failed peer never joins. A host thread blocked in a
// CUDA synchronisation (.item(), .cpu(), stream.synchronize()) would then wait until the NCCL watchdog's
// --collective-timeout aborts it, instead of noticing the peer's failure notice within seconds. So every such wait
// in a step goes through these two: a CUDA event is recorded and polled together with the failure notices
// (protocol::wait_until); the notice ends the wait with protocol::PeerFailed, the step fails on every rank and the
// mesh aborts and re-creates the NCCL communicators, which releases the GPU. CPU tensors never wait.

/// Waits until the work queued so far on the current CUDA stream of `device` has finished, polling as above;
/// nothing for a CPU device. `what` names the wait in the message.
void synchronize_watched(c10::Device device, const char* what);
/// `t` on the host: a CUDA tensor is copied asynchronously into pinned memory and waited for as above (as
/// `t.to(at::kCPU)` would, but noticing a peer's failure); a CPU tensor is returned as it is.
at::Tensor to_host_watched(const at::Tensor& t, const char* what);

// ---- communicators ----------------------------------------------------------------------------------

enum class ReduceOp { Sum = 1, Max = 2 };

/// An in-flight point-to-point exchange (ring shift). `wait()` completes it: after it returns the
/// receive tensor holds the data (on CUDA: work queued on the caller's current stream sees it). The
/// destructor waits too, so an exchange never outlives its buffers.
class PendingExchange {
public:
    virtual ~PendingExchange() = default;
    virtual void wait() = 0;
};

/// What this process holds of MPI for the communicators (for tests and logs): the MPI communicators of live
/// Communicators plus old ones that could not be freed, and the requests left pending by abandoned operations.
/// N failed jobs must not make either grow (Note [Unmatched operations] in unmatched.cpp).
struct MpiResources {
    int64_t communicators = 0;
    int64_t pending_requests = 0;
};
MpiResources mpi_resources();

/// A group of ranks with tensor collectives. Tensors must live on the backend's device kind (MPI: CPU;
/// a CUDA tensor given to the MPI backend is staged through host memory). Non-contiguous inputs are
/// accepted and handled through contiguous copies. Every operation is collective over the group.
/// Control data (bytes, status) always travels over MPI, whatever the tensor backend.
class Communicator {
public:
    virtual ~Communicator();
    Communicator(const Communicator&) = delete;
    Communicator& operator=(const Communicator&) = delete;

    int rank() const { return rank_; }
    int size() const { return size_; }
    MPI_Comm mpi_comm() const { return comm_; }  ///< the (duplicated) MPI communicator of the group
    virtual const char* backend() const = 0;     ///< "mpi" or "nccl"

    /// Host-side barrier (NCCL: after synchronising the current stream).
    virtual void barrier() = 0;
    /// In place: `tensor` takes `root`'s values on every rank (same shape and dtype everywhere).
    virtual void broadcast(at::Tensor& tensor, int root) = 0;
    /// In place element-wise reduction. bf16/f16 are reduced in f32 by the MPI backend.
    virtual void all_reduce(at::Tensor& tensor, ReduceOp op) = 0;
    /// Concatenation of every rank's `local` along `dim`, in rank order (shapes must be equal).
    at::Tensor all_gather(const at::Tensor& local, int64_t dim = 0);
    /// Equal splits along dim 0: block j of `input` goes to rank j; block i of the result came from
    /// rank i. `input.size(0)` must be divisible by size().
    at::Tensor all_to_all(const at::Tensor& input);
    /// Ulysses form: `input` is cut into size() equal chunks along `scatter_dim`; chunk j goes to rank j;
    /// the chunks received are concatenated along `gather_dim` in rank order. E.g. [B, s, H, D] with
    /// (scatter 2, gather 1) → [B, P·s, H/P, D]; (scatter 1, gather 2) reverses it.
    at::Tensor all_to_all(const at::Tensor& input, int64_t scatter_dim, int64_t gather_dim);
    /// Ring shift, started: sends `send` to rank+offset and receives into `recv` from rank−offset
    /// (mod size). Both must be contiguous and keep the same shape on every rank; they must stay alive
    /// and untouched until wait(). Nonblocking, so the caller can compute while data moves.
    virtual std::unique_ptr<PendingExchange> start_shift(const at::Tensor& send, at::Tensor& recv,
                                                         int offset = 1) = 0;
    /// Blocking ring shift: returns the tensor received from rank−offset.
    at::Tensor shift(const at::Tensor& send, int offset = 1);
    /// Sub-communicator of the ranks that pass the same `color` (≥ 0), ordered by (`key`, rank); ranks
    /// passing a negative color get nullptr. Same backend and device as this one. Collective.
    virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
    /// Broadcast of a byte vector (control messages); resized on receivers. Sent in chunks of at most
    /// `bytes_chunk_limit()` bytes so that no MPI count exceeds INT_MAX.
    void broadcast_bytes(std::vector<uint8_t>& bytes, int root);
    /// Chunk size of broadcast_bytes (default 1 GiB); tests lower it to exercise several chunks.
    void set_bytes_chunk_limit(size_t bytes);
    size_t bytes_chunk_limit() const { return bytes_chunk_limit_; }
    /// Stops the group after an unrecoverable error so that peers blocked in a collective return
    /// (NCCL: ncclCommAbort). The MPI backend can only log: MPI has no per-communicator abort; the
    /// caller decides whether MPI_Abort is needed (last resort, style.md §3.2).
    virtual void abort(const std::string& reason) = 0;
    /// How many failed jobs this communicator has been settled after (settle_all()). Data gathered over it before
    /// a failure may be incomplete or unmatched on the peers: never reuse it across a change of this number.
    int64_t failures_settled() const { return failures_settled_; }

    /// After a failed job (Note [Communicator renewal]): settles every live communicator of this process and
    /// returns whether all are consistent. A communicator is consistent when every operation this rank started
    /// on it has finished by `deadline` (NCCL: the operations queued on the GPU; one still running is aborted so
    /// that its kernels return). The MPI backend waits for its operations on the host, so it always is (an
    /// abandoned wait is reported by protocol::take_abandoned() instead). Not collective.
    static bool settle_all(std::chrono::steady_clock::time_point deadline);
    /// After a failed job: on every live communicator, in creation order, the members that missed an MPI operation
    /// another member started post it with placeholder buffers, and every request left pending by an abandoned wait
    /// is completed (Note [Unmatched operations] in unmatched.cpp), so that no operation stays pending and the
    /// abandoned buffers are dropped. `control` as for renew_all(). Collective over each communicator's members.
    static void complete_unmatched_all(MPI_Comm control);
    /// Replaces every live communicator of this process, in creation order and in place (references stay
    /// valid), by a fresh one with the same members in the same order, made from `control`: a communicator of
    /// all ranks that never carried an abandoned operation (NCCL: the old one is aborted and a new one made from
    /// a fresh unique id). The old MPI communicator is freed once nothing is pending on it (after
    /// complete_unmatched_all(); otherwise kept, with its pending requests, for the life of the process).
    /// Collective over each communicator's members only (MPI_Comm_create_group), so ranks that are not in a group,
    /// or got nullptr from split(), take no part in renewing it.
    static void renew_all(MPI_Comm control);

protected:
    /// Duplicates `comm` (so our messages never mix with others') and sets MPI_ERRORS_RETURN on it.
    explicit Communicator(MPI_Comm comm);
    /// Dim-0 all-gather of a contiguous tensor: result [size·local.size(0), ...] (or [size] for 0-d).
    virtual at::Tensor all_gather_flat(const at::Tensor& local) = 0;
    /// Dim-0 all-to-all of a contiguous tensor with size(0) % size() == 0.
    virtual at::Tensor all_to_all_flat(const at::Tensor& input) = 0;
    /// MPI_Comm_split of the group's MPI communicator; MPI_COMM_NULL for negative colors. The caller owns it.
    MPI_Comm split_mpi(int color, int key) const;
    /// See settle_all(). The base (MPI backend): true.
    virtual bool settle(std::chrono::steady_clock::time_point deadline);
    /// See renew_all(): this communicator's part, `fresh` holding the same ranks in the same order. The base
    /// replaces comm_ by a duplicate of `fresh`.
    virtual void renew(MPI_Comm fresh);
    /// Starts the nonblocking MPI operation `op` over comm_ (`start` posts it and returns MPI's code) and completes
    /// it within --collective-timeout (protocol::wait). It is counted for Note [Unmatched operations]; when a peer's
    /// failure makes the wait abandon it, its request and `buffers` (all MPI may still touch) are kept until
    /// complete_unmatched_all() ends it.
    void run_mpi(const char* what, const detail::MpiOperation& op, std::initializer_list<at::Tensor> buffers,
                 const std::function<int(MPI_Request*)>& start);
    /// The MPI operations started on comm_ (ring shifts count and abandon theirs through it).
    detail::OperationLog& operations() { return *operations_; }

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0;
    int size_ = 1;

private:
    size_t bytes_chunk_limit_ = size_t(1) << 30;
    int64_t failures_settled_ = 0;
    std::unique_ptr<detail::OperationLog> operations_;
    friend MpiResources mpi_resources();
};

MpiResources mpi_resources();

/// MPI backend: CPU tensors (CUDA tensors are staged through host memory). Works everywhere.
class MpiCommunicator final : public Communicator {
public:
    explicit MpiCommunicator(MPI_Comm comm);
    const char* backend() const override { return "mpi"; }
    void barrier() override;
    void broadcast(at::Tensor& tensor, int root) override;
    void all_reduce(at::Tensor& tensor, ReduceOp op) override;
    std::unique_ptr<PendingExchange> start_shift(const at::Tensor& send, at::Tensor& recv, int offset = 1) override;
    std::unique_ptr<Communicator> split(int color, int key) override;
    void abort(const std::string& reason) override;

protected:
    at::Tensor all_gather_flat(const at::Tensor& local) override;
    at::Tensor all_to_all_flat(const at::Tensor& input) override;
};

/// The backend for tensors on `device`: NCCL for CUDA devices when built with NCCL (WAN_HAVE_NCCL; it
/// calls cudaSetDevice(device.index()) and creates the NCCL communicator, id made on the group's rank 0
/// and broadcast over MPI), otherwise MPI. Collective over `comm`.
std::unique_ptr<Communicator> make_communicator(MPI_Comm comm, c10::Device device = c10::Device(c10::kCPU));

// ---- rank layout ------------------------------------------------------------------------------------

/// The layout and its one validation live in core (core/engine_config.h): the CLI and GUI check it too.
using wan::ParallelLayout;
using wan::valid_ulysses_sizes;

/// A rank's view of the current step; the agreed status is the maximum (Failed beats Cancel beats
/// Continue). Ref: style.md §3.6.
enum class StepStatus { Continue = 1, Cancel = 2, Failed = 3 };

// Note [Communicator renewal]
// A job that fails in the middle of a step may leave a communicator inconsistent: on MPI, a peer abandoned a
// collective that the failed rank never joined (Note [Failure notices] in protocol/deadline.h); on NCCL, some
// rank's GPU has operations queued that no peer will ever match. Such a communicator hangs or mixes messages at
// its next use. So after every failed agreement the mesh settles: each rank checks whether it abandoned an
// operation or still has one running after a grace of 2 s (a collective the failed rank did join finishes within
// it); the ranks that missed an MPI operation a peer started post it, so that every pending MPI request completes
// and nothing is left allocated (Note [Unmatched operations] in unmatched.cpp); and the ranks agree, over a
// control communicator that carries agreements only and so never holds an abandoned operation. If any rank found
// an abandoned or unfinished operation, every rank replaces all its communicators — the mesh's groups and
// those split from them elsewhere (the FSDP gathers' own) — in place, so references stay valid, by fresh ones
// with the same members made from the control communicator, and the next job runs on those. Data gathered
// before the failure is not reused (failures_settled()). A failure seen at an agreement that every rank reaches
// before its next collective leaves nothing to replace. A rank that is lost (stopped, dead) is not recovered
// from: the deadline ends every rank (protocol/deadline.h).

/// The sub-communicators of a layout. Built collectively over the world. Inside each cfg half of H
/// ranks, half-rank i belongs to SP replica i / (U·R); with j = i % (U·R), its Ulysses group is the U
/// consecutive ranks j / U (member order = j % U) and its Ring group the strided ranks {j % U + U·m}
/// (member order m) (§8.3, yunchang use_ulysses_low). Hence the SP rank is j = ring.rank()·U +
/// ulysses.rank(): the token chunk this rank owns, and what usp_attention() assumes.
class Mesh {
public:
    /// Validates `layout` against the world size of `world` (layout.world must equal it) and `num_heads`.
    Mesh(Communicator& world, const ParallelLayout& layout, int64_t num_heads);
    ~Mesh();
    Mesh(const Mesh&) = delete;
    Mesh& operator=(const Mesh&) = delete;

    const ParallelLayout& layout() const { return layout_; }
    Communicator& world() { return world_; }
    Communicator& cfg_half() { return *cfg_half_; }  ///< the ranks of my cfg half (all ranks without CFG split)
    Communicator& sp() { return *sp_; }              ///< my SP group (U·R ranks); rank = token chunk index
    Communicator& ulysses() { return *ulysses_; }
    Communicator& ring() { return *ring_; }
    /// The pair {rank i of half 0, rank i of half 1} (exchange of cond/uncond predictions); nullptr
    /// without CFG split.
    Communicator* cfg_pair() { return cfg_pair_.get(); }
    /// 0 = conditional half (or no split), 1 = unconditional half.
    int cfg_index() const { return cfg_index_; }

    /// The step agreement over the mesh's control communicator (see agree() below). Collective over the world.
    StepStatus agree(StepStatus mine);
    /// After an agreement that failed: settles the communicators, completes the MPI operations the failure left
    /// unmatched and, when any rank found one inconsistent, replaces all of them on every rank
    /// (Communicator::renew_all; Note [Communicator renewal]). Returns whether they were replaced. When the
    /// completion or the replacement fails, every rank ends (protocol::end_every_rank). Collective over the world.
    bool recover_after_failure();
    /// How many times recover_after_failure() replaced the communicators (for logs and tests).
    int renewals() const { return renewals_; }

private:
    Communicator& world_;
    ParallelLayout layout_;
    int cfg_index_ = 0;
    MPI_Comm control_ = MPI_COMM_NULL;  ///< agreements only; never replaced
    int renewals_ = 0;
    std::unique_ptr<Communicator> cfg_half_, sp_, ulysses_, ring_, cfg_pair_;
};

// ---- sequence-parallel attention --------------------------------------------------------------------

/// Options of usp_attention().
struct UspOptions {
    /// Valid tokens N of the GLOBAL sequence; keys at positions ≥ N (padding at the end) are excluded,
    /// as the single-GPU path does (§4.5 k_lens). -1: every key is valid.
    int64_t valid_len = -1;
    /// true: attend padded keys like upstream USP does (§8.3 PARITY), ignoring valid_len for keys.
    bool attend_padded_keys = false;
    /// Softmax scale; ≤ 0 means 1/sqrt(head_dim).
    double scale = 0.0;
    /// Upper bound of f32 score elements materialised at once by the math path (queries are chunked).
    int64_t score_budget = int64_t(1) << 26;
    /// On CUDA with LibTorch ≥ 2.1, use at::_scaled_dot_product_flash_attention (which returns the
    /// log-sum-exp) for bf16/f16 blocks without masked keys; the exact f32 math path otherwise.
    bool allow_flash = true;
    /// Plain attention of q [B, L, h, D] against the first `valid_keys` rows of k, v [B, L, h, D], returning
    /// [B, L, h, D] in q's dtype. When set and the ring has one member (Ulysses only, softmax scale left at
    /// its default), the attention after the all-to-all is this call instead of the log-sum-exp path,
    /// which only a ring needs: the pipeline passes the DiT's own attention (FlashAttention-3 / cuDNN).
    std::function<at::Tensor(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t valid_keys)>
        local_attention;
    /// Attention of one ring block with its log-sum-exp: q [B, L, h, D] against k, v [B, n, h, D] (the block's
    /// valid keys) → {O [B, L, h, D] in any float dtype, lse [B, h, L] f32}. Tried first for every block when
    /// the softmax scale is left at its default; two undefined tensors send the block to the built-in path.
    /// The pipeline passes FlashAttention-3 here.
    std::function<std::pair<at::Tensor, at::Tensor>(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v)>
        block_attention;
};

/// Attention of this rank's query chunk against the whole (global) sequence, with the sequence split
/// over `ulysses` × `ring` (a Mesh's groups). q, k, v: [B, s, H, D], this rank's contiguous token chunk
/// number ring.rank()·U + ulysses.rank() of the global sequence (S = s·U·R tokens). H % U == 0.
/// Returns [B, s, H, D] in q's dtype. Steps (§8.3): Ulysses all-to-all (heads ↔ sequence), ring
/// attention with the online log-sum-exp merge in f32 (next K/V transfer overlapping the current
/// block's compute), reverse all-to-all. With one rank in both groups this is plain exact attention.
at::Tensor usp_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, Communicator& ulysses,
                         Communicator& ring, const UspOptions& options = {});

/// Exact attention of one block, for tests and the single-rank path: returns O [B, Lq, H, D] (f32) and
/// the log-sum-exp [B, H, Lq] (f32) of q [B, Lq, H, D] against the first `valid_keys` (−1: all) of
/// k, v [B, Lk, H, D]. Computed in f32 with queries chunked to `score_budget` score elements.
std::pair<at::Tensor, at::Tensor> attention_with_lse(const at::Tensor& q, const at::Tensor& k,
                                                     const at::Tensor& v, int64_t valid_keys, double scale,
                                                     int64_t score_budget = int64_t(1) << 26);

// ---- FSDP-style parameter sharding ------------------------------------------------------------------

/// Returns a CPU view of the named checkpoint tensor (e.g. TensorStore::get: an mmap view). Only the
/// byte range a rank owns is ever copied out of it.
using TensorViewFn = std::function<at::Tensor(const std::string& name)>;
/// The dtype a parameter is kept in; default: the file's dtype (f32 DiT parameters stay f32).
using DtypeFn = std::function<at::ScalarType(const std::string& name, at::ScalarType file_dtype)>;

struct ShardOptions {
    c10::Device device = c10::Device(c10::kCPU);  ///< where shards live and full tensors are gathered
    DtypeFn dtype_for;                            ///< empty: keep each tensor's file dtype
};

/// Parameters of a sequence of units (DiT / T5 blocks, plus a root unit), sharded FSDP-style over `comm`
/// (Ref: §8.2). Per unit and per dtype the unit's tensors are flattened in the given order into one
/// buffer padded to a multiple of N ranks; rank r keeps elements [r·c, (r+1)·c), c = padded/N, and reads
/// only those elements from the checkpoint, so no rank ever holds (or touches the pages of) a whole model.
/// gather(u) all-gathers unit u's full tensors; release(u) drops them.
///
/// Unlike upstream FSDP (which all-gathers in bf16 and so rounds f32 parameters, §8.2 PARITY), tensors
/// keep their dtype (or the one dtype_for picks): an f32 norm weight gathered here is bit-identical to the
/// file, so an FSDP run equals a non-FSDP run exactly. Mirror upstream's rounding with dtype_for → bf16
/// if FSDP-to-FSDP parity is wanted.
///
/// gather/prefetch are collective over `comm` and must be called in the same unit order on all ranks.
/// On CUDA (WAN_HAVE_CUDA) gathers run on a side stream: prefetch(u+1) overlaps the transfer of the next
/// unit with the compute of the current one; gather(u) then only makes the current stream wait for it.
/// On the CPU prefetch is a no-op and gather is synchronous.
class ShardedParameters {
public:
    /// `units[u]` = ordered tensor names of unit u. Collective only in that it needs comm's size/rank.
    ShardedParameters(const TensorViewFn& view_of, const std::vector<std::vector<std::string>>& units,
                      Communicator& comm, ShardOptions options = {});
    /// Reads from a checkpoint through its zero-copy views.
    ShardedParameters(const io::TensorStore& store, const std::vector<std::vector<std::string>>& units,
                      Communicator& comm, ShardOptions options = {});
    ~ShardedParameters();
    ShardedParameters(const ShardedParameters&) = delete;
    ShardedParameters& operator=(const ShardedParameters&) = delete;

    int64_t num_units() const;
    /// Full tensors of `unit` (name → tensor, shapes as in the file). Held until release(unit), or until a failed
    /// job (Communicator::failures_settled): then the next gather() gathers the unit again.
    std::map<std::string, at::Tensor> gather(int64_t unit);
    /// Starts gathering `unit` ahead of time (CUDA); no-op on the CPU or when already gathered.
    void prefetch(int64_t unit);
    /// Drops this object's references to unit's gathered tensors (callers must drop theirs).
    void release(int64_t unit);

    /// This rank's elements of one tensor of a unit: elements [offset, offset + values.numel()) of the tensor
    /// flattened (row-major), as a 1-D view into this rank's shard.
    struct LocalPart {
        std::string name;
        std::vector<int64_t> shape;  ///< the whole tensor's
        int64_t offset = 0;
        at::Tensor values;
    };
    /// This rank's part of every tensor of `unit`, by dtype group (empty `values` for a tensor entirely on
    /// other ranks). Writing into `values` changes the parameters themselves (a LoRA merge: each rank changes
    /// only its own elements); call drop_gathered() after such writes.
    std::vector<LocalPart> local_parts(int64_t unit);
    /// Forgets every gathered or prefetched unit, so that the next gather() reads the shards as they are now.
    void drop_gathered();

    /// Elements of this rank's shard of `unit`, per dtype group in order of first appearance.
    std::vector<int64_t> shard_numel(int64_t unit) const;
    /// Bytes of all shards this rank holds.
    int64_t local_bytes() const;
    /// Bytes this rank copied out of the checkpoint views (its own elements only).
    int64_t bytes_read() const;
    /// Bytes of the unpadded full parameters of all units.
    int64_t total_bytes() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// ---- step-boundary agreement ------------------------------------------------------------------------

/// One tiny all-reduce (max) over `world` so that every rank leaves the loop at the same step. Call at
/// every step boundary; a rank that caught an exception passes Failed instead of skipping the call.
StepStatus agree(Communicator& world, StepStatus mine);

}  // namespace wan::dist
