#include "protocol/protocol.h"

#include "core/core.h"
#include "protocol/deadline.h"

#include <climits>
#include <cstdint>
#include <cstring>

namespace wan::protocol {

namespace {
constexpr size_t kHeaderBytes = 4 + 4 + 8 + 8;

void mpi_check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, buf, &len);
    WAN_THROW("%s failed: %s", what, std::string(buf, static_cast<size_t>(len)).c_str());
}
}  // namespace

const char* tag_name(Tag tag) {
    switch (tag) {
        case Tag::Generate: return "Generate";
        case Tag::Info: return "Info";
        case Tag::Shutdown: return "Shutdown";
        case Tag::Start: return "Start";
    }
    return "?";
}

std::optional<Tag> tag_from_wire(uint32_t value) {
    for (Tag t : {Tag::Generate, Tag::Info, Tag::Shutdown, Tag::Start})
        if (static_cast<uint32_t>(t) == value) return t;
    return std::nullopt;
}

std::vector<uint8_t> encode(const Message& msg) {
    std::vector<uint8_t> out(kHeaderBytes + msg.payload.size());
    const uint32_t version = kProtocolVersion, tag = static_cast<uint32_t>(msg.tag);
    const uint64_t n = msg.payload.size();
    std::memcpy(out.data(), &version, 4);
    std::memcpy(out.data() + 4, &tag, 4);
    std::memcpy(out.data() + 8, &msg.job_id, 8);
    std::memcpy(out.data() + 16, &n, 8);
    if (n) std::memcpy(out.data() + kHeaderBytes, msg.payload.data(), n);
    return out;
}

Message decode(const uint8_t* data, size_t size) {
    WAN_CHECK(size >= kHeaderBytes, "protocol: message of %zu bytes is shorter than its %zu-byte header", size, kHeaderBytes);
    uint32_t version = 0, tag = 0;
    uint64_t n = 0;
    Message m;
    std::memcpy(&version, data, 4);
    std::memcpy(&tag, data + 4, 4);
    std::memcpy(&m.job_id, data + 8, 8);
    std::memcpy(&n, data + 16, 8);
    WAN_CHECK(version == kProtocolVersion,
              "protocol: peer speaks version %u, this binary %u (every rank must run the same wanstudio build)", version,
              kProtocolVersion);
    const std::optional<Tag> known = tag_from_wire(tag);
    WAN_CHECK(known.has_value(), "protocol: unknown message tag %u", tag);
    WAN_CHECK(n == size - kHeaderBytes, "protocol: header says %llu payload bytes, %zu received",
              static_cast<unsigned long long>(n), size - kHeaderBytes);
    m.tag = *known;
    m.payload.assign(reinterpret_cast<const char*>(data + kHeaderBytes), n);
    return m;
}

void broadcast(MPI_Comm comm, int root, Message& msg, size_t chunk_bytes) {
    int rank = 0;
    mpi_check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank");
    WAN_CHECK(chunk_bytes > 0 && chunk_bytes < static_cast<size_t>(INT32_MAX), "protocol: bad chunk size");
    std::vector<uint8_t> bytes;
    uint64_t total = 0;
    if (rank == root) {
        bytes = encode(msg);
        total = bytes.size();
    }
    // A worker waits for the head's next message without deadline (the head may be idle for hours); once a
    // message has begun, every part of it is due within --collective-timeout.
    MPI_Request req = MPI_REQUEST_NULL;
    mpi_check(MPI_Ibcast(&total, 1, MPI_UINT64_T, root, comm, &req), "MPI_Ibcast (message size)");
    wait(req, rank == root ? "broadcast of a message to the workers" : "wait for the head's next message",
         /*bounded=*/rank == root);
    if (rank != root) bytes.resize(total);
    for (uint64_t off = 0; off < total; off += chunk_bytes) {
        int count = static_cast<int>(std::min<uint64_t>(chunk_bytes, total - off));
        mpi_check(MPI_Ibcast(bytes.data() + off, count, MPI_BYTE, root, comm, &req), "MPI_Ibcast (message body)");
        wait(req, "broadcast of a message body");
    }
    if (rank != root) msg = decode(bytes.data(), bytes.size());
}

}  // namespace wan::protocol
