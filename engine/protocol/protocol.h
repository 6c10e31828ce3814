// Head ↔ engine-rank messages. Every request goes from world rank 0 to all ranks by one collective
// broadcast; each message starts with {protocol_version, tag, job_id, payload_bytes} so a stale or mismatched
// peer is detected instead of decoding garbage. MPI only (no LibTorch), as the GUI side links it.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace wan::protocol {

inline constexpr uint32_t kProtocolVersion = 1;

/// Every message kind in one registry (TensorRT-LLM mpiTags style). Zero is never valid.
enum class Tag : uint32_t {
    Generate = 1,  ///< payload: GenerationRequest JSON (defaults resolved, seed drawn)
    // 2 was Extend (prompt extension runs on rank 0 alone; never sent)
    Info = 3,      ///< payload: empty; ranks report memory through a gather
    Shutdown = 4,  ///< payload: empty; every rank leaves its loop (or, as the first message: no engine at all)
    Start = 5,     ///< payload: empty; the first message: every rank builds its share of the engine
};
const char* tag_name(Tag tag);
/// The tag with this wire value, or nullopt for a value no Tag has.
std::optional<Tag> tag_from_wire(uint32_t value);

struct Message {
    Tag tag = Tag::Shutdown;
    int64_t job_id = 0;
    std::string payload;
};

/// Wire format: little-endian header (version u32, tag u32, job_id i64, payload_bytes u64) + payload.
std::vector<uint8_t> encode(const Message& msg);
/// Throws wan::Error on a short buffer, a protocol version mismatch or an unknown tag.
Message decode(const uint8_t* data, size_t size);

/// Collective: `msg` on `root` reaches every rank of `comm` (other ranks' `msg` is overwritten). Large
/// payloads go in chunks below INT_MAX (MPI counts are int).
void broadcast(MPI_Comm comm, int root, Message& msg, size_t chunk_bytes = size_t(1) << 30);

}  // namespace wan::protocol
