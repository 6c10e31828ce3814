// LoRA files for the Wan DiT: read a safetensors LoRA in any of the published key styles, map every key to an
// upstream DiT parameter ("blocks.3.self_attn.q.weight"), and merge stacked LoRAs with strengths into the
// resident weights in place, restoring the base weights before the next job's merge.
//
// Key styles (all seen in published Wan LoRAs; Note [LoRA key styles] in keys.cpp):
//   native / ComfyUI  [model.]diffusion_model.<module>.lora_A|lora_B|lora_down|lora_up.weight, .alpha (prefix optional)
//   kohya / musubi    lora_unet_blocks_0_self_attn_q.lora_down.weight (VideoX-Fun: lora_unet__...)
//   diffusers / PEFT  transformer.blocks.N.attn1.to_q ... (".default." may appear)
//   full deltas       <module>.diff (weight), <module>.diff_b (bias), blocks.N.diff_m (modulation)
// Merge rule (ComfyUI's): W += strength * (alpha / rank) * (up @ down), rank = rows of down, scale 1 without
// alpha; .diff / .diff_b / .diff_m add strength * delta. Deltas are computed in f32 on the weight's device,
// summed over the stacked LoRAs, added to the f32 value of the weight and stored back in the weight's dtype
// (one rounding per weight).
//
// Memory: LoraSet keeps a copy of the base value of every parameter the current LoRAs touch, at the
// parameter's resident dtype, so that the next job can restore them without reloading the checkpoint. A LoRA
// on every Linear of every block costs about the size of the block weights: 14B in bf16 ~28 GB, 1.3B ~2.8 GB
// (f32 on the CPU: twice that). A LoRA on the attention only costs ~60% of it. Where the copy lives
// (BackupPlace, --lora-backup): on the GPU when it fits with room to spare for the generation (a device copy
// takes milliseconds, a pageable host copy of 28 GB half a minute), else in host RAM. The merge itself
// needs one f32 temporary of the largest touched parameter on its device. Nothing is kept per step. With FSDP
// shards every figure here is per rank divided by the ranks: each keeps and merges only its shard's part.
//
// Example (the pipeline, once per job):
//   wan::lora::LoraSet loras;                                    // one per loaded model, lives with it
//   auto applied = loras.apply(dit, request.loras);             // merge (or restore + re-merge); no-op if unchanged
//   for (auto& a : applied) sidecar.add(a.file_name, a.sha256, a.spec.strength);
#pragma once

#include "core/lora_spec.h"
#include "dit/dit.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace wan::lora {

/// Live parameter tensors by upstream name (WanModel::named_parameters()). Merging writes into them in place.
using NamedParameters = std::vector<std::pair<std::string, at::Tensor>>;
/// The same as whole tensors or as this rank's parts of them (WanModel::parameter_parts(); FSDP shards).
using ParameterParts = std::vector<dit::ParameterPart>;

/// What one key of a LoRA file contributes.
enum class KeyPart { Down = 1, Up = 2, Alpha = 3, Diff = 4, DiffBias = 5, DiffModulation = 6 };

/// One key, mapped. `target` is the parameter it changes ("blocks.0.self_attn.q.weight"; the bias for
/// DiffBias, "blocks.N.modulation" for DiffModulation); empty when `image_to_video` (a key of an I2V model's
/// image branch: k_img, v_img, norm_k_img, img_emb), which a T2V model skips.
struct MappedKey {
    KeyPart part = KeyPart::Down;
    std::string target;
    std::string style;  ///< "native", "kohya" or "diffusers"
    bool image_to_video = false;
};

/// Maps LoRA keys onto a model's parameter names. Built once per model from its parameter names.
class KeyMapper {
public:
    explicit KeyMapper(const std::vector<std::string>& parameter_names);
    /// Throws wan::Error naming `file` and `key` when the key is not a LoRA tensor this engine understands or
    /// matches no parameter of the model.
    MappedKey map(const std::string& key, const std::string& file) const;

private:
    std::set<std::string> parameters_;
    std::map<std::string, std::string> kohya_modules_;  ///< "blocks_0_self_attn_q" -> "blocks.0.self_attn.q"
};

/// One parameter's delta from one file: low rank (scale * up @ down) and/or a full delta.
struct ParameterDelta {
    std::string target;
    std::string key;       ///< the file key named in messages (the lora_down key, else the full delta's key)
    at::Tensor up, down;   ///< CPU, as stored (views of the file); undefined when there is no low-rank part
    double scale = 1.0;    ///< alpha / rank, or 1 without alpha
    at::Tensor full;       ///< CPU, as stored; undefined when there is no full delta
    std::string full_key;  ///< the full delta's key
};

/// A LoRA file, read and mapped (tensors are zero-copy views of the mapped file).
class LoraFile {
public:
    /// Reads `path` and maps every key with `mapper`. Throws wan::Error naming the file and the key for an
    /// unknown key, a lora_down without its lora_up (or the reverse), an alpha without both, or a tensor that
    /// cannot be read. Image-to-video keys are counted, logged once and skipped.
    static LoraFile read(const std::string& path, const KeyMapper& mapper);

    const std::string& path() const { return path_; }
    const std::string& style() const { return style_; }  ///< of its first key
    const std::vector<ParameterDelta>& deltas() const { return deltas_; }
    int skipped_image_keys() const { return skipped_image_keys_; }

private:
    std::string path_, style_;
    std::vector<ParameterDelta> deltas_;
    int skipped_image_keys_ = 0;
};

/// Throws wan::Error naming `file`, the key and both shapes when `d` does not fit a parameter of `target_shape`.
void check_delta_shape(const ParameterDelta& d, at::IntArrayRef target_shape, const std::string& file);
/// strength * (scale * up @ down + full) in f32 on `device`, shaped like the target parameter of shape
/// `target_shape` (the product's coefficient strength*scale is formed in double and applied once). Throws
/// wan::Error naming `file`, the key and both shapes when they do not fit.
at::Tensor delta_tensor(const ParameterDelta& d, at::IntArrayRef target_shape, c10::Device device,
                        const std::string& file, double strength = 1.0);
/// Elements [offset, offset + count) of delta_tensor(...) flattened, as a 1-D f32 tensor on `device`, computing
/// only those: the rows of up @ down they fall in, and that range of a full delta (an FSDP rank's part of the
/// parameter; Note [Sharded weights] in merge.cpp). The same values as the slice of delta_tensor's result.
at::Tensor delta_part(const ParameterDelta& d, at::IntArrayRef target_shape, int64_t offset, int64_t count,
                      c10::Device device, const std::string& file, double strength = 1.0);

/// One LoRA as merged: for the sidecar / MP4 tags / history.
struct AppliedLora {
    LoraSpec spec;
    std::string file_name;  ///< the path's last component
    std::string sha256;     ///< lower-case hex of the whole file
    std::string style;
    int parameters = 0;     ///< parameters it changed
    int skipped_image_keys = 0;
};

/// The LoRAs merged into one model. Not thread-safe; call between jobs (never during a forward).
///
/// Sharded weights (FSDP) and FP8: apply() takes whole tensors or this rank's parts of them (ParameterParts);
/// with FSDP each rank merges only the elements of its shard and computes only that part of each delta
/// (Note [Sharded weights] in merge.cpp). FP8 copies are derived from the merged weights: apply(WanModel&) calls
/// WanModel::weights_changed() so they are rebuilt (and FSDP's gathered blocks dropped). Weights held as fp8
/// (--dit-dtype fp8) are dequantised, merged and quantised again (Note [LoRA on fp8 weights]).
class LoraSet {
public:
    /// Where the base copies live. Auto: on the weights' GPU when, after the copy, at least
    /// max(kDeviceReserveGb, a quarter of the card) stays free for the generation; else the host.
    enum class BackupPlace { Auto, Device, Host };
    static constexpr double kDeviceReserveGb = 8;
    /// "auto" | "device" | "host"; anything else throws naming `option`.
    static BackupPlace parse_backup_place(const std::string& text, const char* option);

    LoraSet() = default;
    LoraSet(const LoraSet&) = delete;
    LoraSet& operator=(const LoraSet&) = delete;

    /// Brings `params` to base + sum over `specs` of strength * delta. Parameters a previous apply() touched
    /// are restored from their host copies first; an empty `specs` restores the base model. When `specs`
    /// equals the current list and no file changed on disk, nothing is done. Every file is read and every
    /// key and shape checked before any weight changes; an error leaves the base weights in place (and the
    /// LoRA list empty). Logs one line per file and the merge time.
    std::vector<AppliedLora> apply(const ParameterParts& params, const std::vector<LoraSpec>& specs);
    std::vector<AppliedLora> apply(const NamedParameters& params, const std::vector<LoraSpec>& specs);
    /// The same on the model's weights (WanModel::parameter_parts(): FSDP shards included), then
    /// WanModel::weights_changed().
    std::vector<AppliedLora> apply(dit::WanModel& model, const std::vector<LoraSpec>& specs);

    /// Base values back into `params`; frees the host copies.
    void restore(const ParameterParts& params);
    void restore(const NamedParameters& params);

    const std::vector<AppliedLora>& applied() const { return applied_; }
    /// Bytes held for restoring (see the memory note at the top of this header), wherever they are.
    int64_t backup_bytes() const;
    /// Of backup_bytes(), those held in device memory.
    int64_t device_backup_bytes() const;
    /// Weight elements the last merge changed (with FSDP shards: this rank's part of them only).
    int64_t merged_elements() const { return merged_elements_; }
    void set_backup_place(BackupPlace p) { backup_place_ = p; }

private:
    struct CachedFile;
    const CachedFile& load(const std::string& path, const KeyMapper& mapper);
    void merge(const ParameterParts& params, const std::vector<LoraSpec>& specs,
               const std::vector<const CachedFile*>& files);
    size_t merged_parameters() const;  ///< parameters changed by the current list (base_ less fp8 scales)

    /// Decides where the copies of `bytes` more base values go (BackupPlace) for parameters on `device`.
    c10::Device backup_device(c10::Device device, int64_t bytes) const;

    std::map<std::string, at::Tensor> base_;  ///< copies of the touched parameters' base values (host or device)
    BackupPlace backup_place_ = BackupPlace::Auto;
    std::map<std::string, std::shared_ptr<CachedFile>> files_;
    std::vector<AppliedLora> applied_;
    std::vector<LoraSpec> current_;
    std::vector<std::string> current_identity_;  ///< per spec: size and mtime of the file when merged
    int64_t merged_elements_ = 0;   ///< weight elements the last merge changed here
    int64_t touched_elements_ = 0;  ///< elements of the parameters it touched (whole, on all ranks together)
    bool sharded_ = false;          ///< some of them were parts (FSDP)
    /// Where the last apply() spent its time (logged): reading the files, the merge's parts, and the wait at
    /// the end for the files' SHA-256, computed on other threads meanwhile.
    double read_seconds_ = 0, hash_wait_seconds_ = 0;
    struct MergeSeconds {
        double restore = 0, backup = 0, arithmetic = 0;
    } merge_seconds_;
};

/// SHA-256 of a file's bytes, lower-case hex, read through a mapping (no copy). Throws wan::Error naming the
/// file when it cannot be read.
std::string sha256_file(const std::string& path);
/// sha256_file, computed once per process for each version of a file (path, device, inode, size and
/// modification time): a re-merge of the same file, or the same file on a second expert, costs a stat().
/// Thread-safe.
std::string sha256_file_cached(const std::string& path);
/// SHA-256 of a buffer, lower-case hex (FIPS 180-4).
std::string sha256_hex(const void* data, size_t size);
/// What computes the digests: "OpenSSL <version>" (libcrypto, using the CPU's SHA extensions where it has
/// them) or "built-in" (portable code, several times slower) when the build found no OpenSSL.
const char* sha256_implementation();
/// Files sha256_file has read in this process (tests: a cached hash reads none).
int64_t sha256_files_hashed();

}  // namespace wan::lora
