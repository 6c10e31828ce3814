// Checkpoint I/O in the upstream formats: safetensors (single and sharded), torch.save .pth zip archives,
// writers for both, and the Wan2.1 checkpoint directory layout with its config.json.
// Ref: ../shared/docs/wan21-reference.md §1.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Optional.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wan::io {

class MappedFile;  // read-only mmap (RAII); shared by every tensor that views it

/// Where one tensor's bytes live. Offsets are absolute file offsets.
struct TensorInfo {
    std::string name;
    at::ScalarType dtype = at::ScalarType::Float;  ///< 8-bit floats (F8_E4M3/F8_E5M2): kByte, see component_files.h
    std::vector<int64_t> shape;
    std::vector<int64_t> strides;  ///< in elements; contiguous for safetensors
    int64_t storage_offset = 0;    ///< in elements from `data_offset` (pth views into a storage)
    uint64_t data_offset = 0;      ///< absolute file offset of the storage's first byte
    uint64_t data_bytes = 0;       ///< bytes of the storage region (what the file must hold)
    std::string file;              ///< path of the file that holds the bytes
    int64_t numel() const;
};

/// One weight held as 8-bit floats (e4m3 "fn": no infinities, max 448): value = decode(code) · scale.
struct Float8Codes {
    at::Tensor codes;  ///< uint8, the weight's shape, contiguous, owning its memory
    at::Tensor scale;  ///< float32: one value (per tensor) or one per row (dim 0); undefined = 1
    /// An F8_E5M2 weight re-coded as e4m3 with a power-of-two scale per row (Note [E5M2 as e4m3] in float8.cpp).
    bool from_e5m2 = false;
    int64_t rounded = 0;              ///< (from_e5m2) values held only rounded to e4m3's range; 0: exact
    double worst_relative_error = 0;  ///< (from_e5m2) max |held − stored| / |stored| of those (1: became 0)
};

/// e4m3 codes (uint8, CPU) → their float32 values (exact; one table lookup per element).
at::Tensor float8_e4m3_decode(const at::Tensor& codes);
/// float32 values (CPU) → the nearest e4m3 codes (uint8), ties to even, saturating at ±448, NaN → NaN.
at::Tensor float8_e4m3_encode(const at::Tensor& values);

/// Named tensors of one checkpoint: a safetensors file, a sharded safetensors set (through its
/// `*.safetensors.index.json`) or a `torch.save` `.pth` zip. Opening reads only headers; tensors are
/// zero-copy CPU views into the mapping and keep it alive, so the whole file is never read into memory.
/// Every malformed input throws wan::Error naming the file and the problem.
///
/// Example:
///   auto st = wan::io::TensorStore::open(dir + "/Wan2.1_VAE.pth");
///   at::Tensor w = st.load("conv1.weight", at::kCUDA, at::kFloat);
class TensorStore {
public:
    TensorStore();
    ~TensorStore();
    TensorStore(TensorStore&&) noexcept;
    TensorStore& operator=(TensorStore&&) noexcept;
    TensorStore(const TensorStore&) = delete;
    TensorStore& operator=(const TensorStore&) = delete;

    /// Opens by content: an `.index.json` path → sharded safetensors; a zip (`PK\3\4`) → .pth;
    /// anything else → safetensors.
    static TensorStore open(const std::string& path);
    static TensorStore open_safetensors(const std::string& path);
    static TensorStore open_safetensors_index(const std::string& index_json_path);
    static TensorStore open_pth(const std::string& path);

    const std::string& source() const;  ///< the path it was opened from
    const std::vector<std::string>& names() const;  ///< in file order (pth: pickle order)
    bool contains(const std::string& name) const;
    size_t size() const;
    /// Throws "<file>: no tensor named '<name>'" when absent.
    const TensorInfo& info(const std::string& name) const;
    /// Zero-copy CPU tensor viewing the mapped file (read-only memory: never write into it).
    at::Tensor get(const std::string& name) const;
    /// A copy on `device`, converted to `dtype` if given. Peak extra host memory is at most this one
    /// tensor (none when the dtype already matches and the device is the CPU... it is then still copied,
    /// so that the result owns its memory).
    at::Tensor load(const std::string& name, c10::Device device = c10::Device(c10::kCPU),
                    c10::optional<at::ScalarType> dtype = c10::nullopt) const;
    /// The weight's fp8 e4m3 codes and scale as the file stores them (an F8_E4M3 tensor, or scaled fp8, or
    /// fp8 bytes in a U8 container named by the quantisation metadata), for a loader that keeps them as fp8
    /// instead of widening them (dit --dit-dtype). An F8_E5M2 weight (scaled or not) comes re-coded as e4m3 with
    /// a power-of-two scale per row (Float8Codes::from_e5m2; exact unless `rounded`). nullopt for other dtypes.
    std::optional<Float8Codes> e4m3_codes(const std::string& name) const;
    /// Whether the file stores the tensor as F8_E4M3, so that e4m3_codes gives its own codes (reads no data).
    bool stores_e4m3(const std::string& name) const;
    /// Whether the file stores the tensor as F8_E4M3 or F8_E5M2: e4m3_codes has codes to give (reads no data).
    bool stores_fp8(const std::string& name) const;
    /// `__metadata__` of safetensors files (empty for .pth).
    const std::map<std::string, std::string>& metadata() const;
    /// Sum of the bytes of all tensors (numel × element size).
    uint64_t total_bytes() const;

    struct Impl;  ///< opaque; defined privately in engine/io
    /// Used inside engine/io to build views (io/component_files.h).
    explicit TensorStore(std::unique_ptr<Impl> impl);
    const Impl& impl() const { return *impl_; }

private:
    std::unique_ptr<Impl> impl_;
};

/// Called after each tensor read through TensorStore::get() or load() on the thread that installed it.
using TensorReadObserver = std::function<void(const TensorInfo& info)>;

/// While alive, every TensorStore::get() / load() on this thread calls `observer` once the tensor is read: the
/// pipeline's load progress and cancel point, without every loader (T5, DiT in each of its forms, VAE) taking
/// a callback. The observer may throw (wan::Cancelled), which leaves the loader between two tensors. Reads on
/// other threads are not seen. Nests: the previous observer comes back at scope exit.
class ScopedTensorReadObserver {
public:
    explicit ScopedTensorReadObserver(TensorReadObserver observer);
    ~ScopedTensorReadObserver();
    ScopedTensorReadObserver(const ScopedTensorReadObserver&) = delete;
    ScopedTensorReadObserver& operator=(const ScopedTensorReadObserver&) = delete;

private:
    TensorReadObserver previous_;
};

/// Ordered list of named tensors to write.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

/// Writes a safetensors file (tensors made contiguous, CPU, little-endian). Written to a temporary file
/// and renamed, so an existing file is replaced only by a complete one.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Writes a `.pth` with the layout `torch.save` produces for an `OrderedDict[str, Tensor]` state dict:
/// zip (stored) with `<stem>/data.pkl` (protocol 2), `<stem>/data/<k>` aligned to 64 bytes,
/// `<stem>/version`. Temporary file + rename, as above.
void save_pth(const std::string& path, const NamedTensors& tensors);

/// safetensors dtype string ("F32", "BF16", ...) ↔ ScalarType. Throws on unknown names.
at::ScalarType dtype_from_safetensors(const std::string& name, const std::string& context);
std::string dtype_to_safetensors(at::ScalarType dtype);

// ---- Wan2.1 checkpoint directory --------------------------------------------------------------------

/// DiT hyper-parameters (config.json of the upstream checkpoint, §1.3). Fields not stored in the upstream
/// JSON take upstream's constructor defaults; `text_dim` is read when present (tiny checkpoints) else 4096.
struct WanConfig {
    std::string model_type = "t2v";
    int64_t dim = 1536;
    int64_t ffn_dim = 8960;
    int64_t freq_dim = 256;
    int64_t in_dim = 16;
    int64_t out_dim = 16;
    int64_t num_heads = 12;
    int64_t num_layers = 30;
    int64_t text_len = 512;
    int64_t text_dim = 4096;
    std::array<int64_t, 3> patch_size{1, 2, 2};
    double eps = 1e-6;
    bool qk_norm = true;
    bool cross_attn_norm = true;

    int64_t head_dim() const { return dim / num_heads; }
    /// "1.3B", "14B", or "custom (dim D, L layers)" for other sizes (the tiny test model).
    std::string variant() const;
    /// Throws wan::Error naming `source` and the bad field (head dim odd, dim % heads, …).
    void validate(const std::string& source = "config.json") const;
    static WanConfig from_json_file(const std::string& path);
    static WanConfig from_json_string(const std::string& text, const std::string& source);
};

/// The upstream checkpoint layout:
///   config.json, diffusion_pytorch_model.safetensors | diffusion_pytorch_model-0000k-of-0000n.safetensors
///   + diffusion_pytorch_model.safetensors.index.json, models_t5_umt5-xxl-enc-bf16.pth, Wan2.1_VAE.pth,
///   google/umt5-xxl/spiece.model
struct CheckpointDir {
    std::string root;
    std::string config_json;
    std::string dit_path;  ///< the single safetensors file, or the index json of a sharded set
    std::string t5_path;
    std::string vae_path;
    std::string tokenizer_path;

    static constexpr const char* kConfigName = "config.json";
    static constexpr const char* kDitName = "diffusion_pytorch_model.safetensors";
    static constexpr const char* kDitIndexName = "diffusion_pytorch_model.safetensors.index.json";
    static constexpr const char* kT5Name = "models_t5_umt5-xxl-enc-bf16.pth";
    static constexpr const char* kVaeName = "Wan2.1_VAE.pth";
    static constexpr const char* kTokenizerName = "google/umt5-xxl/spiece.model";

    /// Checks that every file is present; throws one message listing each missing file and what it is.
    static CheckpointDir locate(const std::string& dir);
    WanConfig config() const;
    TensorStore open_dit() const;
    TensorStore open_t5() const;
    TensorStore open_vae() const;
};

}  // namespace wan::io
