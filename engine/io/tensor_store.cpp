// TensorStore, the safetensors reader and writer, dtype names, and the atomic file writer.
#include "io/store_impl.h"

#include "core/core.h"
#include "io/untrusted.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <utility>

namespace wan::io {

int64_t TensorInfo::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d == 0) return 0;
    }
    for (int64_t d : shape) {
        WAN_CHECK(d >= 0 && checked_mul(n, d, &n), "%s: tensor '%s': element count overflows 64 bits", file.c_str(),
                  name.c_str());
    }
    return n;
}

size_t element_size(at::ScalarType dtype) {
    switch (dtype) {
        case at::kDouble: case at::kLong: return 8;
        case at::kFloat: case at::kInt: return 4;
        case at::kHalf: case at::kBFloat16: case at::kShort: return 2;
        case at::kChar: case at::kByte: case at::kBool: return 1;
        default: break;
    }
#if defined(WAN_HAVE_FLOAT8)
    if (dtype == at::kFloat8_e4m3fn || dtype == at::kFloat8_e5m2) return 1;
#endif
    WAN_THROW("unsupported tensor dtype %s", c10::toString(dtype));
}

at::ScalarType dtype_from_safetensors(const std::string& name, const std::string& context) {
    if (name == "F64") return at::kDouble;
    if (name == "F32") return at::kFloat;
    if (name == "F16") return at::kHalf;
    if (name == "BF16") return at::kBFloat16;
    if (name == "I64") return at::kLong;
    if (name == "I32") return at::kInt;
    if (name == "I16") return at::kShort;
    if (name == "I8") return at::kChar;
    if (name == "U8") return at::kByte;
    if (name == "BOOL") return at::kBool;
#if defined(WAN_HAVE_FLOAT8)
    if (name == "F8_E4M3") return at::kFloat8_e4m3fn;
    if (name == "F8_E5M2") return at::kFloat8_e5m2;
#endif
    WAN_THROW("%s: unknown dtype '%s' (expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL%s)",
              context.c_str(), name.c_str(),
#if defined(WAN_HAVE_FLOAT8)
              " F8_E4M3 F8_E5M2"
#else
              ""
#endif
    );
}

std::string dtype_to_safetensors(at::ScalarType dtype) {
    switch (dtype) {
        case at::kDouble: return "F64";
        case at::kFloat: return "F32";
        case at::kHalf: return "F16";
        case at::kBFloat16: return "BF16";
        case at::kLong: return "I64";
        case at::kInt: return "I32";
        case at::kShort: return "I16";
        case at::kChar: return "I8";
        case at::kByte: return "U8";
        case at::kBool: return "BOOL";
        default: break;
    }
#if defined(WAN_HAVE_FLOAT8)
    if (dtype == at::kFloat8_e4m3fn) return "F8_E4M3";
    if (dtype == at::kFloat8_e5m2) return "F8_E5M2";
#endif
    WAN_THROW("dtype %s cannot be written to safetensors", c10::toString(dtype));
}

// ---- TensorStore ------------------------------------------------------------------------------------

void TensorStore::Impl::add(StoreEntry entry) {
    const std::string name = entry.info.name;
    auto it = entries.find(name);
    if (it != entries.end()) {
        WAN_THROW("%s: duplicate tensor name '%s' (also in %s)", entry.info.file.c_str(), name.c_str(),
                  it->second.info.file.c_str());
    }
    names.push_back(name);
    entries.emplace(name, std::move(entry));
}

TensorStore::TensorStore() : impl_(std::make_unique<Impl>()) {}
TensorStore::TensorStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorStore::~TensorStore() = default;
TensorStore::TensorStore(TensorStore&&) noexcept = default;
TensorStore& TensorStore::operator=(TensorStore&&) noexcept = default;

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
std::string dirname_of(const std::string& path) {
    auto pos = path.find_last_of('/');
    return pos == std::string::npos ? std::string(".") : path.substr(0, pos);
}
}  // namespace

TensorStore TensorStore::open(const std::string& path) {
    if (ends_with(path, ".index.json")) return open_safetensors_index(path);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    WAN_CHECK(fd >= 0, "%s: cannot open: %s", path.c_str(), std::strerror(errno));
    unsigned char magic[4] = {0, 0, 0, 0};
    ssize_t n = ::read(fd, magic, 4);
    ::close(fd);
    if (n == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) return open_pth(path);
    return open_safetensors(path);
}

TensorStore TensorStore::open_safetensors(const std::string& path) {
    TensorStore st;
    st.impl_->source = path;
    read_safetensors_into(*st.impl_, path);
    return st;
}

TensorStore TensorStore::open_safetensors_index(const std::string& index_path) {
    TensorStore st;
    st.impl_->source = index_path;
    MappedFile f(index_path);
    check_json_depth(reinterpret_cast<const char*>(f.data()), f.size(), index_path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f.data(), f.data() + f.size());
    } catch (const std::exception& e) {
        WAN_THROW("%s: not valid JSON: %s", index_path.c_str(), e.what());
    }
    WAN_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
              "%s: expected an object with a \"weight_map\" object (sharded safetensors index)",
              index_path.c_str());
    const std::string dir = dirname_of(index_path);
    std::vector<std::string> shards;
    std::map<std::string, std::string> wanted;  // tensor -> shard
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
        WAN_CHECK(it.value().is_string(), "%s: weight_map entry '%s' is not a file name", index_path.c_str(),
                  it.key().c_str());
        std::string shard = it.value().get<std::string>();
        WAN_CHECK(shard.find('/') == std::string::npos && shard != ".." && !shard.empty(),
                  "%s: shard name '%s' must be a plain file name", index_path.c_str(), shard.c_str());
        wanted[it.key()] = shard;
        if (std::find(shards.begin(), shards.end(), shard) == shards.end()) shards.push_back(shard);
    }
    for (const auto& shard : shards) {
        std::string p = dir + "/" + shard;
        WAN_CHECK(::access(p.c_str(), R_OK) == 0, "%s: names shard '%s', which is missing (%s)",
                  index_path.c_str(), shard.c_str(), p.c_str());
        read_safetensors_into(*st.impl_, p);
    }
    for (const auto& [name, shard] : wanted) {
        auto it = st.impl_->entries.find(name);
        WAN_CHECK(it != st.impl_->entries.end(), "%s: tensor '%s' is mapped to shard '%s', which does not hold it",
                  index_path.c_str(), name.c_str(), shard.c_str());
        WAN_CHECK(ends_with(it->second.info.file, "/" + shard),
                  "%s: tensor '%s' is mapped to '%s' but found in %s", index_path.c_str(), name.c_str(),
                  shard.c_str(), it->second.info.file.c_str());
    }
    if (j.contains("metadata") && j["metadata"].is_object()) {
        for (auto it = j["metadata"].begin(); it != j["metadata"].end(); ++it) {
            st.impl_->metadata[it.key()] = it.value().is_string() ? it.value().get<std::string>() : json_excerpt(it.value());
        }
    }
    return st;
}

TensorStore TensorStore::open_pth(const std::string& path) {
    TensorStore st;
    st.impl_->source = path;
    read_pth_into(*st.impl_, path);
    return st;
}

const std::string& TensorStore::source() const { return impl_->source; }
const std::vector<std::string>& TensorStore::names() const { return impl_->names; }
bool TensorStore::contains(const std::string& name) const { return impl_->entries.count(name) != 0; }
size_t TensorStore::size() const { return impl_->names.size(); }
const std::map<std::string, std::string>& TensorStore::metadata() const { return impl_->metadata; }

const TensorInfo& TensorStore::info(const std::string& name) const {
    auto it = impl_->entries.find(name);
    WAN_CHECK(it != impl_->entries.end(), "%s: no tensor named '%s'", impl_->source.c_str(), name.c_str());
    return it->second.info;
}

namespace {

thread_local TensorReadObserver t_read_observer;

/// Tells this thread's observer (if any) that `info` was read.
void notify_read(const TensorInfo& info) {
    if (t_read_observer) t_read_observer(info);
}

/// A zero-copy CPU view of a plain (not decoded) entry.
at::Tensor mapped_view(const StoreEntry& e) {
    std::shared_ptr<MappedFile> keep = e.file;
    void* base = const_cast<uint8_t*>(e.file->data() + e.info.data_offset);
    auto options = at::TensorOptions().dtype(e.info.dtype).device(at::kCPU);
    if (e.info.numel() == 0) return at::empty(e.info.shape, options);
    // The deleter owns a reference to the mapping: the view keeps the file mapped for as long as it lives.
    at::Tensor storage_view = at::from_blob(
        base, {static_cast<int64_t>(e.info.data_bytes / element_size(e.info.dtype))},
        [keep](void*) mutable { keep.reset(); }, options);
    return storage_view.as_strided(e.info.shape, e.info.strides, e.info.storage_offset);
}

}  // namespace

ScopedTensorReadObserver::ScopedTensorReadObserver(TensorReadObserver observer)
    : previous_(std::exchange(t_read_observer, std::move(observer))) {}

ScopedTensorReadObserver::~ScopedTensorReadObserver() { t_read_observer = std::move(previous_); }

at::Tensor TensorStore::get(const std::string& name) const {
    auto it = impl_->entries.find(name);
    WAN_CHECK(it != impl_->entries.end(), "%s: no tensor named '%s'", impl_->source.c_str(), name.c_str());
    const StoreEntry& e = it->second;
    at::Tensor view = e.decoding ? decode_entry(e, *e.decoding, c10::Device(c10::kCPU), e.info.dtype) : mapped_view(e);
    notify_read(e.info);
    return view;
}

at::Tensor TensorStore::load(const std::string& name, c10::Device device, c10::optional<at::ScalarType> dtype) const {
    const StoreEntry& e = impl_->entries.at(info(name).name);
    const at::ScalarType want = dtype.has_value() ? *dtype : e.info.dtype;
    at::Tensor out;
    if (e.decoding) {
        out = decode_entry(e, *e.decoding, device, want);
    } else if (e.float8 != Float8Format::None && at::isFloatingType(want)) {  // fp8 without a scale: scale 1
        out = decode_entry(e, EntryDecoding{e.float8, {}}, device, want);
    } else {
        // One copy straight from the mapping to the target: at most one tensor of extra host memory.
        const at::Tensor view = mapped_view(e);
        out = at::empty(view.sizes(), at::TensorOptions().dtype(want).device(device));
        out.copy_(view);
        // The copy is done: let the kernel drop the file pages we touched from this process, so that loading an
        // 11 GB file never keeps 11 GB resident (they stay in the page cache; a later read maps them again).
        const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
        const uint64_t begin = (e.info.data_offset / page) * page;
        const uint64_t end = e.info.data_offset + e.info.data_bytes;
        ::madvise(const_cast<uint8_t*>(e.file->data()) + begin, end - begin, MADV_DONTNEED);
    }
    notify_read(e.info);
    return out;
}

namespace {
Float8Format stored_float8(const StoreEntry& e) { return e.decoding ? e.decoding->float8 : e.float8; }
}  // namespace

bool TensorStore::stores_e4m3(const std::string& name) const {
    return stored_float8(impl_->entries.at(info(name).name)) == Float8Format::E4M3;
}

bool TensorStore::stores_fp8(const std::string& name) const {
    const Float8Format f = stored_float8(impl_->entries.at(info(name).name));
    return f == Float8Format::E4M3 || f == Float8Format::E5M2;
}

std::optional<Float8Codes> TensorStore::e4m3_codes(const std::string& name) const {
    if (!stores_fp8(name)) return std::nullopt;
    const StoreEntry& e = impl_->entries.at(name);
    const at::Tensor file_scale =
        e.decoding && e.decoding->scale.defined() ? e.decoding->scale.to(at::kFloat).reshape({-1}) : at::Tensor();
    if (stored_float8(e) == Float8Format::E5M2) {
        Float8Codes c = e5m2_as_e4m3(entry_bytes(e), e.info.file + ": tensor '" + name + "'");
        // The file's scale (per tensor or per row) times the power of two of each row: exact in f32.
        if (file_scale.defined()) {
            WAN_CHECK(file_scale.numel() == 1 || file_scale.numel() == c.scale.numel(),
                      "%s: tensor '%s': %lld scale values for %lld rows", e.info.file.c_str(), name.c_str(),
                      static_cast<long long>(file_scale.numel()), static_cast<long long>(c.scale.numel()));
            c.scale = c.scale * file_scale;
        }
        return c;
    }
    Float8Codes c;
    c.codes = entry_bytes(e);
    if (file_scale.defined()) c.scale = file_scale.clone();
    return c;
}

uint64_t TensorStore::total_bytes() const {
    uint64_t total = 0;
    for (const auto& [name, e] : impl_->entries) {
        uint64_t bytes = 0;
        WAN_CHECK(checked_mul(static_cast<uint64_t>(e.info.numel()), element_size(e.info.dtype), &bytes) &&
                      checked_add(total, bytes, &total),
                  "%s: total tensor size overflows 64 bits", impl_->source.c_str());
    }
    return total;
}

// ---- safetensors reader -----------------------------------------------------------------------------

void read_safetensors_into(TensorStore::Impl& impl, const std::string& path) {
    auto file = std::make_shared<MappedFile>(path);
    const uint64_t size = file->size();
    WAN_CHECK(size >= 8, "%s: truncated safetensors file (%llu bytes, need at least the 8-byte header length)",
              path.c_str(), static_cast<unsigned long long>(size));
    uint64_t header_len = 0;
    std::memcpy(&header_len, file->data(), 8);  // little-endian host (x86-64, aarch64)
    WAN_CHECK(header_len <= size - 8,
              "%s: header length %llu runs past the end of the file (%llu bytes): truncated or not safetensors",
              path.c_str(), static_cast<unsigned long long>(header_len), static_cast<unsigned long long>(size));
    WAN_CHECK(header_len <= (100ull << 20), "%s: header length %llu is implausibly large", path.c_str(),
              static_cast<unsigned long long>(header_len));
    const uint64_t data_start = 8 + header_len;
    const uint64_t data_size = size - data_start;

    check_json_depth(reinterpret_cast<const char*>(file->data()) + 8, header_len, path + ": safetensors header");
    nlohmann::ordered_json header;  // ordered: names() keeps the file's order
    try {
        header = nlohmann::ordered_json::parse(file->data() + 8, file->data() + 8 + header_len);
    } catch (const std::exception& e) {
        WAN_THROW("%s: safetensors header is not valid JSON: %s", path.c_str(), e.what());
    }
    WAN_CHECK(header.is_object(), "%s: safetensors header is not a JSON object", path.c_str());

    struct Range { uint64_t begin, end; std::string name; };
    std::vector<Range> ranges;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            WAN_CHECK(v.is_object(), "%s: __metadata__ is not an object", path.c_str());
            for (auto m = v.begin(); m != v.end(); ++m) {
                WAN_CHECK(m.value().is_string(), "%s: __metadata__ value '%s' is not a string", path.c_str(),
                          m.key().c_str());
                impl.metadata[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        WAN_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"),
                  "%s: tensor '%s' needs dtype, shape and data_offsets", path.c_str(), name.c_str());
        WAN_CHECK(v["dtype"].is_string(), "%s: tensor '%s': dtype is not a string", path.c_str(), name.c_str());
        TensorInfo info;
        info.name = name;
        info.file = path;
        const std::string dtype_name = v["dtype"].get<std::string>();
        const Float8Format float8 = float8_format_from_safetensors(dtype_name);
        info.dtype = float8 != Float8Format::None ? at::kByte
                                                  : dtype_from_safetensors(dtype_name, path + ": tensor '" + name + "'");
        WAN_CHECK(v["shape"].is_array(), "%s: tensor '%s': shape is not an array", path.c_str(), name.c_str());
        // Element count and byte count are products of numbers from the file: checked, never wrapped.
        uint64_t expect = element_size(info.dtype);
        bool fits = true;
        for (const auto& d : v["shape"]) {
            WAN_CHECK(d.is_number_integer() && d.get<int64_t>() >= 0, "%s: tensor '%s': bad shape %s",
                      path.c_str(), name.c_str(), json_excerpt(v["shape"]).c_str());
            info.shape.push_back(d.get<int64_t>());
            fits = fits && checked_mul(expect, static_cast<uint64_t>(info.shape.back()), &expect);
        }
        if (std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end()) {
            fits = true;
            expect = 0;
        }
        WAN_CHECK(fits && expect <= static_cast<uint64_t>(INT64_MAX),
                  "%s: tensor '%s': shape %s of %s has more bytes than 64 bits can count: corrupt header",
                  path.c_str(), name.c_str(), json_excerpt(v["shape"]).c_str(), v["dtype"].get<std::string>().c_str());
        const auto& off = v["data_offsets"];
        WAN_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                  "%s: tensor '%s': data_offsets must be two non-negative integers", path.c_str(), name.c_str());
        uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        WAN_CHECK(begin <= end && end <= data_size,
                  "%s: tensor '%s': data offsets [%llu, %llu) are out of range (data section has %llu bytes): "
                  "file truncated or corrupt",
                  path.c_str(), name.c_str(), static_cast<unsigned long long>(begin),
                  static_cast<unsigned long long>(end), static_cast<unsigned long long>(data_size));
        WAN_CHECK(end - begin == expect,
                  "%s: tensor '%s': %llu bytes stored but dtype %s × shape %s needs %llu", path.c_str(), name.c_str(),
                  static_cast<unsigned long long>(end - begin), v["dtype"].get<std::string>().c_str(),
                  json_excerpt(v["shape"]).c_str(), static_cast<unsigned long long>(expect));
        info.data_offset = data_start + begin;
        info.data_bytes = end - begin;
        info.strides.resize(info.shape.size());
        int64_t stride = 1;
        for (int64_t k = static_cast<int64_t>(info.shape.size()) - 1; k >= 0; --k) {
            info.strides[k] = stride;
            // Only an empty tensor can get here with an overflowing product (its other sizes are unchecked).
            WAN_CHECK(checked_mul(stride, std::max<int64_t>(info.shape[k], 1), &stride),
                      "%s: tensor '%s': shape %s is too large for 64-bit strides", path.c_str(), name.c_str(),
                      json_excerpt(v["shape"]).c_str());
        }
        if (end > begin) ranges.push_back({begin, end, name});  // empty tensors (markers) overlap nothing
        impl.add(StoreEntry{std::move(info), file, float8, nullptr});
    }
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    for (size_t i = 1; i < ranges.size(); ++i) {
        WAN_CHECK(ranges[i].begin >= ranges[i - 1].end, "%s: tensors '%s' and '%s' overlap in the data section",
                  path.c_str(), ranges[i - 1].name.c_str(), ranges[i].name.c_str());
    }
}

// ---- safetensors writer -----------------------------------------------------------------------------

AtomicFileWriter::AtomicFileWriter(const std::string& path, Publish publish) : path_(path), publish_(publish) {
    // A fresh name each time (pid and counter), created exclusively: never truncates or follows what is there.
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
        tmp_path_ = strfmt("%s.tmp-%ld-%u", path.c_str(), static_cast<long>(::getpid()), counter++);
        fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        WAN_CHECK(fd_ >= 0 || errno == EEXIST, "%s: cannot create: %s", tmp_path_.c_str(), std::strerror(errno));
    }
    WAN_CHECK(fd_ >= 0, "%s: cannot create a temporary file beside it: every name tried exists", path.c_str());
}

AtomicFileWriter::~AtomicFileWriter() {
    if (fd_ >= 0) ::close(fd_);
    if (!tmp_gone_) ::unlink(tmp_path_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        ssize_t w = ::write(fd_, p, n);
        if (w < 0 && errno == EINTR) continue;
        WAN_CHECK(w > 0, "%s: write failed: %s", tmp_path_.c_str(), std::strerror(errno));
        p += w;
        n -= static_cast<size_t>(w);
        pos_ += static_cast<uint64_t>(w);
    }
}

void AtomicFileWriter::commit() {
    WAN_CHECK(::fsync(fd_) == 0, "%s: fsync failed: %s", tmp_path_.c_str(), std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    if (publish_ == Publish::Replace) {
        WAN_CHECK(::rename(tmp_path_.c_str(), path_.c_str()) == 0, "%s: cannot rename into place: %s", path_.c_str(),
                  std::strerror(errno));
        tmp_gone_ = true;
        return;
    }
    // link() fails instead of replacing, also when the file appeared while we wrote; the destructor then
    // removes the temporary name (on success too: the data stays reachable at path_).
    const int rc = ::link(tmp_path_.c_str(), path_.c_str());
    const int err = errno;
    WAN_CHECK(rc == 0 || err != EEXIST, "output file '%s' already exists; WanStudio never overwrites outputs",
              path_.c_str());
    WAN_CHECK(rc == 0, "%s: cannot publish: %s", path_.c_str(), std::strerror(err));
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
    write_safetensors(path, tensors, metadata, Publish::Replace);
}

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata, Publish publish) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        nlohmann::ordered_json m = nlohmann::ordered_json::object();
        for (const auto& [k, v] : metadata) m[k] = v;
        header["__metadata__"] = m;
    }
    std::vector<at::Tensor> cpu;
    cpu.reserve(tensors.size());
    uint64_t offset = 0;
    for (const auto& [name, t] : tensors) {
        WAN_CHECK(!header.contains(name), "%s: duplicate tensor name '%s'", path.c_str(), name.c_str());
        at::Tensor c = t.detach().to(at::kCPU).contiguous();
        uint64_t nbytes = static_cast<uint64_t>(c.numel()) * element_size(c.scalar_type());
        header[name] = {{"dtype", dtype_to_safetensors(c.scalar_type())},
                        {"shape", c.sizes().vec()},
                        {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
        cpu.push_back(std::move(c));
    }
    std::string h = header.dump();
    while (h.size() % 8 != 0) h.push_back(' ');  // keeps the data section 8-byte aligned
    AtomicFileWriter out(path, publish);
    uint64_t len = h.size();
    out.write(&len, 8);
    out.write(h.data(), h.size());
    for (const auto& c : cpu) {
        if (c.numel() > 0) out.write(c.data_ptr(), static_cast<size_t>(c.numel()) * element_size(c.scalar_type()));
    }
    out.commit();
}

}  // namespace wan::io
