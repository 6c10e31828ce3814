// Output names, directory checks, atomic never-overwriting publication, the JSON side file and save_outputs.
#include "video/video.h"

#include "core/core.h"
#include "video/ffmpeg_util.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace wan::video {

namespace detail {

std::string temp_path_for(const std::string& final_path) {
    static std::atomic<unsigned> counter{0};
    const fs::path p(final_path);
    const std::string name = strfmt(".%s.%ld.%u.part", p.filename().string().c_str(), static_cast<long>(getpid()),
                                    counter.fetch_add(1));
    return (p.parent_path() / name).string();
}

namespace {
// Opens a new temporary file for `final_path` exclusively (O_EXCL, no link followed); returns its descriptor, or
// -1 with errno set. The name is unique per process and call; O_EXCL still guards against a leftover or planted
// file of that name (then the next name is tried).
int open_exclusive_temp(const std::string& final_path, std::string* tmp) {
    for (int attempt = 0; attempt < 100; ++attempt) {
        *tmp = temp_path_for(final_path);
        const int fd = open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}
}  // namespace

std::string create_temp_file(const std::string& final_path) {
    std::string tmp;
    const int fd = open_exclusive_temp(final_path, &tmp);
    WAN_CHECK(fd >= 0, "cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
    close(fd);
    return tmp;
}

void check_not_exists(const std::string& path) {
    struct stat st;
    WAN_CHECK(lstat(path.c_str(), &st) != 0, "output file '%s' already exists; WanStudio never overwrites outputs",
              path.c_str());
}

void publish_file(const std::string& tmp, const std::string& final_path) {
    // link() fails with EEXIST instead of replacing, which rename() would do silently.
    if (link(tmp.c_str(), final_path.c_str()) == 0) {
        unlink(tmp.c_str());
        return;
    }
    const int err = errno;
    if (err == EPERM || err == ENOTSUP || err == EOPNOTSUPP || err == EMLINK || err == EXDEV) {
        // No hard links on this file system (FAT, some network mounts): check, then rename. The window
        // between the two is the only place a concurrent writer could still be replaced.
        struct stat st;
        if (lstat(final_path.c_str(), &st) != 0 && rename(tmp.c_str(), final_path.c_str()) == 0) return;
    }
    unlink(tmp.c_str());
    if (err == EEXIST) {
        WAN_THROW("output file '%s' already exists; WanStudio never overwrites outputs", final_path.c_str());
    }
    WAN_THROW("cannot move the finished file '%s' to '%s': %s", tmp.c_str(), final_path.c_str(), std::strerror(err));
}

void sync_file(const std::string& path) {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    WAN_CHECK(fd >= 0, "cannot open '%s': %s", path.c_str(), std::strerror(errno));
    const int rc = fsync(fd);
    const int err = errno;
    close(fd);
    WAN_CHECK(rc == 0, "cannot flush '%s' to disk: %s", path.c_str(), std::strerror(err));
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
    check_not_exists(path);
    std::string tmp;
    const int fd = open_exclusive_temp(path, &tmp);
    WAN_CHECK(fd >= 0, "cannot create '%s': %s", tmp.c_str(), std::strerror(errno));
    const char* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < size) {
        const ssize_t n = write(fd, p + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : EIO;
            close(fd);
            unlink(tmp.c_str());
            WAN_THROW("writing '%s' failed: %s", tmp.c_str(), std::strerror(err));
        }
        done += static_cast<size_t>(n);
    }
    // The data must be on disk before the name appears, or a crash could leave an empty file under it.
    const int rc_sync = fsync(fd);
    const int err_sync = errno;
    const int rc_close = close(fd);
    if (rc_sync != 0 || rc_close != 0) {
        unlink(tmp.c_str());
        WAN_THROW("writing '%s' failed: %s", tmp.c_str(), std::strerror(rc_sync != 0 ? err_sync : errno));
    }
    publish_file(tmp, path);
}

int64_t file_size(const std::string& path) {
    struct stat st;
    WAN_CHECK(stat(path.c_str(), &st) == 0, "cannot stat '%s': %s", path.c_str(), std::strerror(errno));
    return static_cast<int64_t>(st.st_size);
}

}  // namespace detail

void write_text_file(const std::string& path, const std::string& text) {
    detail::write_file_atomic(path, text.data(), text.size());
}

std::string metadata_json(const std::map<std::string, std::string>& metadata) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : metadata) j[k] = v;
    // Invalid UTF-8 in a prompt must not make saving fail: replace it.
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void check_output_dir(const std::string& dir, bool create) {
    WAN_CHECK(!dir.empty(), "output directory is empty");
    std::error_code ec;
    if (create && !fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        WAN_CHECK(!ec, "cannot create output directory '%s': %s", dir.c_str(), ec.message().c_str());
    }
    struct stat st;
    WAN_CHECK(stat(dir.c_str(), &st) == 0, "output directory '%s' does not exist: %s", dir.c_str(),
              std::strerror(errno));
    WAN_CHECK(S_ISDIR(st.st_mode), "output directory '%s' is not a directory", dir.c_str());
    // access(W_OK) misses read-only mounts and ACLs in some setups; creating a file is the real test. It is
    // created exclusively under a temporary name: an existing file is never truncated or removed.
    std::string probe;
    const int fd = detail::open_exclusive_temp((fs::path(dir) / ".wanstudio-write-test").string(), &probe);
    WAN_CHECK(fd >= 0, "output directory '%s' is not writable: %s", dir.c_str(), std::strerror(errno));
    close(fd);
    unlink(probe.c_str());
}

std::string sanitize_filename(const std::string& text, size_t max_len) {
    std::string out;
    bool pending_sep = false;
    for (unsigned char c : text) {
        const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                          c == '_';
        if (!keep) {
            pending_sep = true;
            continue;
        }
        if (pending_sep && !out.empty()) out.push_back('_');
        pending_sep = false;
        out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
    }
    auto trim = [](std::string& s) {
        size_t b = 0, e = s.size();
        while (b < e && (s[b] == '_' || s[b] == '-')) ++b;
        while (e > b && (s[e - 1] == '_' || s[e - 1] == '-')) --e;
        s = s.substr(b, e - b);
    };
    trim(out);
    if (out.size() > max_len) {
        // Prefer to cut at the last word boundary in the second half of the allowed length.
        size_t cut = out.rfind('_', max_len);
        if (cut == std::string::npos || cut < max_len / 2) cut = max_len;
        out.resize(cut);
        trim(out);
    }
    if (out.empty()) out = "video";
    return out;
}

std::string make_output_stem(std::time_t when, const std::string& prompt, size_t max_prompt_len) {
    std::tm tm_local{};
    WAN_CHECK(localtime_r(&when, &tm_local) != nullptr, "cannot convert time %lld to local time",
              static_cast<long long>(when));
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y%m%d_%H%M%S", &tm_local);
    return std::string(stamp) + "_" + sanitize_filename(prompt, max_prompt_len);
}

std::string unique_output_stem(const std::string& dir, const std::string& stem, const std::vector<std::string>& exts) {
    for (int n = 0; n < 100000; ++n) {
        const std::string candidate = n == 0 ? stem : strfmt("%s_%d", stem.c_str(), n);
        bool taken = false;
        for (const auto& ext : exts) {
            struct stat st;
            if (lstat((fs::path(dir) / (candidate + ext)).c_str(), &st) == 0) {
                taken = true;
                break;
            }
        }
        if (!taken) return candidate;
    }
    WAN_THROW("no free output name for '%s' in '%s'", stem.c_str(), dir.c_str());
}

SavedOutputs save_outputs(const SaveOptions& opts, const RgbFrames& frames) {
    check_output_dir(opts.dir);
    const std::time_t when = opts.when != 0 ? opts.when : std::time(nullptr);
    // Claim the stem with an O_EXCL marker before writing: two processes saving the same prompt in the same
    // second (a batch on two hosts sharing a folder, parallel tests) would otherwise pick the same free stem,
    // and the second would fail on publishing its video. The marker counts as taken for unique_output_stem().
    std::string stem, marker;
    for (int attempt = 0;; ++attempt) {
        stem = unique_output_stem(opts.dir, make_output_stem(when, opts.prompt), {".mp4", ".png", ".json", ".reserved"});
        marker = (fs::path(opts.dir) / (stem + ".reserved")).string();
        const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::close(fd);
            break;
        }
        WAN_CHECK(errno == EEXIST && attempt < 1000, "%s: cannot reserve an output name: %s", marker.c_str(),
                  std::strerror(errno));
    }
    struct MarkerRemover {
        std::string path;
        ~MarkerRemover() { std::remove(path.c_str()); }
    } remove_marker{marker};
    const fs::path base = fs::path(opts.dir) / stem;

    SavedOutputs out;
    out.video_path = base.string() + ".mp4";
    VideoWriteResult r = write_mp4(out.video_path, frames, opts.video);
    out.codec = r.codec;
    try {
        if (opts.poster != PosterFrame::None) {
            const int index = opts.poster == PosterFrame::Middle ? frames.frames / 2 : 0;
            const size_t frame_bytes = static_cast<size_t>(frames.height) * static_cast<size_t>(frames.width) * 3;
            const std::string poster = base.string() + ".png";
            write_png(poster, frames.data + frame_bytes * static_cast<size_t>(index), frames.height, frames.width);
            out.poster_path = poster;  // only once written: the cleanup below must never remove a foreign file
        }
        if (opts.write_json) {
            const std::string json = base.string() + ".json";
            write_text_file(json, opts.json_text.empty() ? metadata_json(opts.video.metadata) : opts.json_text);
            out.json_path = json;
        }
    } catch (...) {
        // All or nothing: a generation without its side files would confuse the GUI's history.
        std::remove(out.video_path.c_str());
        if (!out.poster_path.empty()) std::remove(out.poster_path.c_str());
        throw;
    }
    return out;
}

}  // namespace wan::video
