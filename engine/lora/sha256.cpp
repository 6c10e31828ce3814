// SHA-256 (FIPS 180-4) for the LoRA files' identity in the sidecar. With OpenSSL's libcrypto (WAN_HAVE_OPENSSL;
// libssl-dev) the digest is the library's, which picks the CPU's SHA extensions or AVX2 at run time; without it
// a small portable implementation here (several times slower: docs/PERFORMANCE.md has both rates). Files are
// hashed through a read-only mapping (no copy into a buffer; the pages are the ones the LoRA's tensor views
// read), and each file once per process and version on disk (sha256_file_cached).
#include "lora/lora.h"

#include "core/core.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if WAN_HAVE_OPENSSL
#include <openssl/crypto.h>
#include <openssl/evp.h>
#endif

namespace wan::lora {

namespace {

std::string to_hex(const uint8_t* digest, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += strfmt("%02x", digest[i]);
    return out;
}

#if WAN_HAVE_OPENSSL

class Digest {
public:
    Digest() : ctx_(EVP_MD_CTX_new()) {
        WAN_CHECK(ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1,
                  "SHA-256: OpenSSL could not start a digest");
    }
    ~Digest() { EVP_MD_CTX_free(ctx_); }
    Digest(const Digest&) = delete;
    Digest& operator=(const Digest&) = delete;

    void update(const uint8_t* p, size_t n) {
        WAN_CHECK(EVP_DigestUpdate(ctx_, p, n) == 1, "SHA-256: OpenSSL digest update failed");
    }
    std::string hex() {
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        WAN_CHECK(EVP_DigestFinal_ex(ctx_, md, &n) == 1, "SHA-256: OpenSSL digest final failed");
        return to_hex(md, n);
    }

private:
    EVP_MD_CTX* ctx_;
};

#else

constexpr std::array<uint32_t, 64> kRound = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

class Digest {
public:
    void update(const uint8_t* p, size_t n) {
        total_ += n;
        if (fill_ > 0) {
            const size_t take = std::min(n, sizeof(buf_) - fill_);
            std::memcpy(buf_ + fill_, p, take);
            fill_ += take;
            p += take;
            n -= take;
            if (fill_ < sizeof(buf_)) return;
            block(buf_);
            fill_ = 0;
        }
        for (; n >= 64; p += 64, n -= 64) block(p);
        std::memcpy(buf_, p, n);
        fill_ = n;
    }

    std::string hex() {
        const uint64_t bits = total_ * 8;
        const uint8_t one = 0x80, zero = 0;
        update(&one, 1);
        while (fill_ != 56) update(&zero, 1);
        uint8_t len[8];
        for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
        update(len, 8);
        uint8_t digest[32];
        for (int i = 0; i < 32; ++i) digest[i] = static_cast<uint8_t>(h_[i / 4] >> (24 - 8 * (i % 4)));
        return to_hex(digest, sizeof(digest));
    }

private:
    void block(const uint8_t* p) {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16) | (uint32_t{p[4 * i + 2]} << 8) |
                   uint32_t{p[4 * i + 3]};
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
        for (int i = 0; i < 64; ++i) {
            const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[i] + w[i];
            const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        h_[0] += a; h_[1] += b; h_[2] += c; h_[3] += d;
        h_[4] += e; h_[5] += f; h_[6] += g; h_[7] += h;
    }

    std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t buf_[64] = {};
    size_t fill_ = 0;
    uint64_t total_ = 0;
};

#endif

std::atomic<int64_t> g_files_hashed{0};

/// An open file descriptor, closed on scope exit.
struct Fd {
    int fd;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

const char* sha256_implementation() {
#if WAN_HAVE_OPENSSL
    return OpenSSL_version(OPENSSL_VERSION);  // the library found at run time, e.g. "OpenSSL 3.0.19 27 Jan 2026"
#else
    return "built-in";
#endif
}

std::string sha256_hex(const void* data, size_t size) {
    Digest h;
    h.update(static_cast<const uint8_t*>(data), size);
    return h.hex();
}

std::string sha256_file(const std::string& path) {
    const Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    WAN_CHECK(f.fd >= 0, "cannot open '%s' to hash it: %s", path.c_str(), std::strerror(errno));
    struct stat st {};
    WAN_CHECK(::fstat(f.fd, &st) == 0 && S_ISREG(st.st_mode), "cannot hash '%s': not a regular file", path.c_str());
    ++g_files_hashed;
    Digest h;
    const size_t size = static_cast<size_t>(st.st_size);
    if (size == 0) return h.hex();
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, f.fd, 0);
    WAN_CHECK(map != MAP_FAILED, "cannot map '%s' to hash it: %s", path.c_str(), std::strerror(errno));
    ::madvise(map, size, MADV_WILLNEED);  // a cold file: the kernel reads ahead while the first pages are hashed
    try {
        h.update(static_cast<const uint8_t*>(map), size);
    } catch (...) {
        ::munmap(map, size);
        throw;
    }
    ::munmap(map, size);
    return h.hex();
}

std::string sha256_file_cached(const std::string& path) {
    struct stat st {};
    WAN_CHECK(::stat(path.c_str(), &st) == 0, "cannot hash '%s': %s", path.c_str(), std::strerror(errno));
    // The file's version: a file rewritten in place or replaced by another one gets a new key.
    const std::string key = strfmt("%llu:%llu:%lld:%lld.%09ld|", static_cast<unsigned long long>(st.st_dev),
                                   static_cast<unsigned long long>(st.st_ino), static_cast<long long>(st.st_size),
                                   static_cast<long long>(st.st_mtim.tv_sec), static_cast<long>(st.st_mtim.tv_nsec)) +
                            path;
    static std::mutex mutex;
    static std::map<std::string, std::string> known;
    {
        std::lock_guard<std::mutex> lock(mutex);
        const auto it = known.find(key);
        if (it != known.end()) return it->second;
    }
    std::string hex = sha256_file(path);  // unlocked: two different files hash at the same time
    std::lock_guard<std::mutex> lock(mutex);
    return known.emplace(key, std::move(hex)).first->second;
}

int64_t sha256_files_hashed() { return g_files_hashed.load(); }

}  // namespace wan::lora
