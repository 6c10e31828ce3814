// Private to engine/io: the storage behind TensorStore, shared by the safetensors and .pth readers.
#pragma once

#include "io/float8.h"
#include "io/io.h"
#include "io/mapped_file.h"

#include <unordered_map>

namespace wan::io {

struct StoreEntry {
    TensorInfo info;
    std::shared_ptr<MappedFile> file;
    /// 8-bit float tensors (safetensors F8_E4M3 / F8_E5M2) have `info.dtype` kByte (their raw bytes, readable
    /// on any LibTorch) and this set; load() to a floating dtype decodes them, get() gives the bytes.
    Float8Format float8 = Float8Format::None;
    /// Set on the entries of a component view (io/component_files.h) whose values are decoded from the
    /// stored bytes (fp8 widened, times a scale); get() and load() then return decoded copies.
    std::shared_ptr<const EntryDecoding> decoding;
};

struct TensorStore::Impl {
    std::string source;
    std::vector<std::string> names;
    std::unordered_map<std::string, StoreEntry> entries;
    std::map<std::string, std::string> metadata;

    /// Adds an entry; throws on a duplicate name (naming both files).
    void add(StoreEntry entry);
};

/// Bytes per element; throws for dtypes a checkpoint cannot hold.
size_t element_size(at::ScalarType dtype);

/// Fills `impl` from one safetensors file (used for single files and for every shard).
void read_safetensors_into(TensorStore::Impl& impl, const std::string& path);
/// Fills `impl` from a torch.save zip archive.
void read_pth_into(TensorStore::Impl& impl, const std::string& path);

/// How AtomicFileWriter::commit() puts the finished file at its path.
enum class Publish {
    Replace = 1,  ///< rename(): an existing file is replaced, but only by a complete one
    NewOnly = 2,  ///< link(): an existing file is never replaced (outputs; as engine/video/files.cpp)
};

/// Writes `bytes` to `path` through a temporary file in the same folder, created exclusively (O_EXCL, no
/// symbolic link followed), then published as `publish` says.
class AtomicFileWriter {
public:
    explicit AtomicFileWriter(const std::string& path, Publish publish = Publish::Replace);
    ~AtomicFileWriter();  ///< removes the temporary file whatever happened
    AtomicFileWriter(const AtomicFileWriter&) = delete;
    AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
    void write(const void* data, size_t n);
    uint64_t position() const { return pos_; }
    /// Throws "… already exists; WanStudio never overwrites outputs" (NewOnly) or naming the system's reason.
    void commit();

private:
    std::string path_;
    std::string tmp_path_;
    Publish publish_;
    int fd_ = -1;
    uint64_t pos_ = 0;
    bool tmp_gone_ = false;  ///< renamed into place
};

/// save_safetensors() with the given way of publishing (save_safetensors_new: Publish::NewOnly).
void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata, Publish publish);

}  // namespace wan::io
