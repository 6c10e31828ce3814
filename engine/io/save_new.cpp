#include "io/save_new.h"

#include "core/core.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace wan::io {

namespace {

/// A new, exclusively created (O_EXCL, no link followed) empty file beside `path`; its name.
std::string create_exclusive_temp(const std::string& path) {
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
        const std::string tmp = strfmt("%s.tmp-%ld-%u", path.c_str(), static_cast<long>(::getpid()), counter++);
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0) {
            ::close(fd);
            return tmp;
        }
        WAN_CHECK(errno == EEXIST, "cannot create a temporary file beside '%s': %s", path.c_str(), std::strerror(errno));
    }
    WAN_THROW("cannot create a temporary file beside '%s': every name tried exists", path.c_str());
}

}  // namespace

void save_safetensors_new(const std::string& path, const NamedTensors& tensors,
                          const std::map<std::string, std::string>& metadata) {
    struct stat st;
    WAN_CHECK(::lstat(path.c_str(), &st) != 0, "output file '%s' already exists; WanStudio never overwrites outputs",
              path.c_str());
    const std::string tmp = create_exclusive_temp(path);
    try {
        save_safetensors(tmp, tensors, metadata);  // replaces only our own empty placeholder
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }
    const int rc = ::link(tmp.c_str(), path.c_str());
    const int err = errno;
    ::unlink(tmp.c_str());
    WAN_CHECK(rc == 0 || err != EEXIST, "output file '%s' already exists; WanStudio never overwrites outputs",
              path.c_str());
    WAN_CHECK(rc == 0, "cannot publish '%s': %s", path.c_str(), std::strerror(err));
}

}  // namespace wan::io
